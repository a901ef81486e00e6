"""Runs' API tokens: made when a run starts, only their hash stored, good only while the run is active."""

from __future__ import annotations

import hashlib

import pytest
from run_fakes import World, a_spec, fake_world
from shipyard_run.adapters.store import _run_doc, _run_from
from shipyard_run.app.run_tokens import RunTokens
from shipyard_run.domain.run_tokens import RUN_TOKEN_PREFIX, issue_run_token, parse_run_token
from shipyard_run.domain.runs import RunStatus

from shipyard.kit.errors import Unauthenticated
from shipyard.kit.testing import ALICE, BOB

SERVER = "gateway.example:50051"


async def _world() -> World:
    return await fake_world(api_server=SERVER)


async def _started(world: World, name: str = "train") -> str:
    """Submit and start a run of alice's; the token its job got."""
    await world.runs.submit(ALICE, a_spec(name))
    await world.scheduler.tick()
    return world.executor.submitted[-1].api_token


def test_a_token_names_its_run_and_carries_256_random_bits() -> None:
    token, stored = issue_run_token("r1")
    other, _ = issue_run_token("r1")
    run_id, secret = parse_run_token(token)
    assert token.startswith(f"{RUN_TOKEN_PREFIX}r1.") and run_id == "r1" and token != other
    assert len(secret) >= 43 and stored == hashlib.sha256(secret.encode()).hexdigest()


@pytest.mark.parametrize("token", ["", "syr_", "syr_r1", "syr_.secret", "syr_r1.", "sy_r1.secret"])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed"):
        parse_run_token(token)


async def test_a_started_run_gets_a_token_and_the_server_and_only_a_hash_is_stored() -> None:
    world = await _world()
    token = await _started(world)
    job = world.executor.submitted[-1]
    run = await world.run("train")
    assert token.startswith(f"{RUN_TOKEN_PREFIX}{run.id}.") and job.api_server == SERVER
    secret = parse_run_token(token)[1]
    assert run.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(run)


async def test_a_running_runs_token_acts_as_its_owner_with_the_roles_at_submit() -> None:
    world = await _world()
    token = await _started(world)
    run = await RunTokens(world.uow).verify(token)
    assert (run.name, run.owner, set(run.owner_roles), run.status) == (
        "train", "alice", {"data-scientist"}, RunStatus.RUNNING)


async def test_the_token_stops_working_when_the_run_ends() -> None:
    world = await _world()
    token = await _started(world)
    world.executor.exit((await world.run("train")).id, 0)
    await world.scheduler.tick()
    assert await world.status("train") is RunStatus.COMPLETE
    with pytest.raises(Unauthenticated, match="the run 'train' has ended: its token no longer works"):
        await RunTokens(world.uow).verify(token)


async def test_the_token_works_while_the_run_is_stopping_and_not_once_stopped() -> None:
    world = await _world()
    token = await _started(world)
    await world.runs.stop(ALICE, "train")
    assert await world.status("train") is RunStatus.STOPPING
    assert (await RunTokens(world.uow).verify(token)).name == "train"
    world.executor.exit((await world.run("train")).id, 143)
    await world.scheduler.tick()
    with pytest.raises(Unauthenticated, match="has ended"):
        await RunTokens(world.uow).verify(token)


async def test_a_forged_secret_or_another_runs_id_is_refused() -> None:
    world = await _world()
    mine = await _started(world, "mine")
    await world.runs.submit(BOB, a_spec("bobs"))
    await world.scheduler.tick()
    bobs = await world.run("bobs")
    secret = parse_run_token(mine)[1]
    tokens = RunTokens(world.uow)
    forgeries = (f"{RUN_TOKEN_PREFIX}{bobs.id}.{secret}", mine + "x", f"{RUN_TOKEN_PREFIX}nosuchrun.{secret}")
    for forged in forgeries:
        with pytest.raises(Unauthenticated, match="not valid"):
            await tokens.verify(forged)


async def test_a_queued_run_has_no_token() -> None:
    world = await _world()
    run = await world.runs.submit(ALICE, a_spec("later"))
    assert run.token_hash == ""
    with pytest.raises(Unauthenticated, match="not valid"):
        await RunTokens(world.uow).verify(f"{RUN_TOKEN_PREFIX}{run.id}.guess")


async def test_each_start_makes_a_new_token() -> None:
    world = await _world()
    first = await _started(world)
    run = await world.run("train")
    async with world.uow() as uow:  # run-svc restarted while starting it: queued again
        await uow.runs.save(run.requeued("restarted"))
    with pytest.raises(Unauthenticated, match="not running"):
        await RunTokens(world.uow).verify(first)
    await world.scheduler.tick()
    second = world.executor.submitted[-1].api_token
    assert second != first and (await RunTokens(world.uow).verify(second)).name == "train"
    with pytest.raises(Unauthenticated, match="not valid"):
        await RunTokens(world.uow).verify(first)


async def test_a_run_stored_before_runs_had_tokens_reads_without_one() -> None:
    world = await _world()
    run = await world.runs.submit(ALICE, a_spec("old"))
    doc = {**_run_doc(run), "_rev": 3}
    del doc["token_hash"]
    assert _run_from(doc).token_hash == ""
    started = await _started(world, "new")
    stored = _run_from({**_run_doc(await world.run("new")), "_rev": 1})
    assert stored.token_hash == hashlib.sha256(parse_run_token(started)[1].encode()).hexdigest()
