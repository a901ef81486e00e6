"""Whose runs may start where the executor cannot isolate them: operators', or anyone's in
single-user mode; nobody else's."""

from __future__ import annotations

import pytest
from run_fakes import World, a_spec, fake_world
from shipyard_run.domain.runs import RunStatus

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.errors import FailedPrecondition
from shipyard.kit.testing import ALICE, OPERATOR_CALLER

MISSING = "bubblewrap is not installed (apt-get install bubblewrap)"


async def _world(missing: str = MISSING, single_user: bool = False) -> World:
    world = await fake_world(single_user=single_user)
    world.executor.missing_isolation = missing
    return world


async def test_without_isolation_a_data_scientists_run_is_refused_naming_why() -> None:
    world = await _world()
    with pytest.raises(FailedPrecondition) as refused:
        await world.runs.submit(ALICE, a_spec("r"))
    message = refused.value.message
    assert MISSING in message and "only operators" in message and "SHIPYARD_SINGLE_USER" in message
    assert await world.stored_runs() == [] and world.uow.published == []


async def test_without_isolation_an_operators_run_is_queued() -> None:
    world = await _world()
    run = await world.runs.submit(OPERATOR_CALLER, a_spec("r"))
    assert run.owner == OPERATOR_CALLER.user


async def test_in_single_user_mode_anyones_run_is_queued_without_isolation() -> None:
    world = await _world(single_user=True)
    run = await world.runs.submit(ALICE, a_spec("r"))
    assert run.owner == ALICE.user


async def test_with_isolation_anyones_run_is_queued() -> None:
    world = await _world(missing="")
    run = await world.runs.submit(ALICE, a_spec("r"))
    assert run.owner == ALICE.user


async def test_a_run_queued_while_isolated_does_not_start_after_isolation_went_away() -> None:
    """run-svc restarted without bubblewrap while a data scientist's run was queued: the run ends
    ``error`` with the submit refusal's words instead of starting as the platform."""
    world = await _world(missing="")
    await world.runs.submit(ALICE, a_spec("queued-before"))
    await world.runs.submit(OPERATOR_CALLER, a_spec("operators"))
    world.executor.missing_isolation = MISSING

    await world.scheduler.tick()

    refused = await world.run("queued-before")
    assert refused.status is RunStatus.ERROR
    assert MISSING in refused.status_reason and "only operators" in refused.status_reason
    assert world.executor.submitted_names() == ["operators"]  # an operator's run still starts
    assert [e.name for e in world.events(events_pb2.RunFailed)] == ["queued-before"]


async def test_in_single_user_mode_a_queued_run_starts_after_isolation_went_away() -> None:
    world = await _world(missing="", single_user=True)
    await world.runs.submit(ALICE, a_spec("r"))
    world.executor.missing_isolation = MISSING

    await world.scheduler.tick()

    assert await world.status("r") is RunStatus.RUNNING
