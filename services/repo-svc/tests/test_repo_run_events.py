"""Run events in repo-svc: outputs become versions exactly once; inputs remember their runs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from repo_fakes import FakeManifests
from repo_world import World, repo_world
from shipyard_repo.app.repos import Repos
from shipyard_repo.app.run_events import RunEvents
from shipyard_repo.app.versions import Versions
from shipyard_repo.domain.repos import RepoFields
from shipyard_repo.domain.sources import NoSource, RepoKind

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.errors import FailedPrecondition, Unavailable
from shipyard.kit.events import new_event
from shipyard.kit.manifest import Manifest, ManifestEntry
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER


def _completed(
    run_id: str, digest: str, repo: str = "mnist", by: Caller = ALICE, repo_id: str = ""
) -> events_pb2.RunCompleted:
    return events_pb2.RunCompleted(
        run_id=run_id,
        name="train-1",
        outputs=[
            common_pb2.RunOutput(repo_kind="model", repo=repo, manifest_digest=digest, repo_id=repo_id)
        ],
        metrics={"accuracy": 0.93},
        hyperparameters={"lr": "0.01"},
        actor=common_pb2.Actor(user=by.user, roles=sorted(by.roles)),
    )


def _weights(manifests: FakeManifests) -> str:
    data = b"weights"
    entry = ManifestEntry("model.pt", 7, hashlib.sha256(data).hexdigest(), 0o644)
    return manifests.upload(Manifest((entry,)))


async def _apply(handler: RunEvents, completed: events_pb2.RunCompleted) -> None:
    await handler.apply([new_event(completed, source="test", subject=f"runs/{completed.run_id}")])


async def _world(tmp_path: Path) -> tuple[Repos, Versions, World, FakeManifests]:
    world = await repo_world(tmp_path)
    return world.app.repos, world.app.versions, world, world.manifests


def _versions_made(world: World) -> list[tuple[str, int]]:
    made = world.units.messages(events_pb2.VersionCreated)
    return [(v.repo, v.version) for v in made if isinstance(v, events_pb2.VersionCreated)]


async def test_an_output_its_runs_owner_may_not_write_gets_no_version_and_the_refusal_is_published(
        tmp_path: Path) -> None:
    repos, versions, world, manifests = await _world(tmp_path)
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    handler = world.app.run_events
    await _apply(handler, _completed("run-bob", _weights(manifests), by=BOB))
    await _apply(handler, _completed("run-nobody", _weights(manifests), by=Caller("", frozenset())))
    assert (await versions.get(RepoKind.MODEL, "mnist", 0))[1].number == 1  # the placeholder only
    assert _versions_made(world) == [("mnist", 1)]
    assert [e.subject for e in world.units.published if isinstance(e.data, events_pb2.VersionRefused)] == [
        "runs/train-1", "runs/train-1"]
    refused = world.units.messages(events_pb2.VersionRefused)
    assert [(r.run_id, r.run_name, r.repo_kind, r.repo, r.actor.user, r.reason) for r in refused] == [
        ("run-bob", "train-1", "model", "mnist", "bob",
         "model 'mnist' belongs to 'alice'; only its owner or an operator may write its versions"),
        ("run-nobody", "train-1", "model", "mnist", "",
         "the run names no owner, so nobody may write its outputs")]


async def test_an_output_whose_repo_is_gone_is_refused_with_why(tmp_path: Path) -> None:
    _, _, world, manifests = await _world(tmp_path)
    await _apply(world.app.run_events, _completed("run-2", _weights(manifests), repo="missing"))
    refused = world.units.messages(events_pb2.VersionRefused)
    assert len(refused) == 1 and isinstance(refused[0], events_pb2.VersionRefused)
    assert (refused[0].repo, refused[0].reason) == ("missing", "model 'missing' not found")


async def test_an_operators_run_may_write_anyones_repo(tmp_path: Path) -> None:
    repos, versions, world, manifests = await _world(tmp_path)
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    await _apply(world.app.run_events, _completed("run-ops", _weights(manifests), by=OPERATOR_CALLER))
    _, latest = await versions.get(RepoKind.MODEL, "mnist", 0)
    assert (latest.number, latest.owner, latest.produced_by_run) == (2, "olga", "run-ops")


async def test_the_output_goes_to_the_repo_authorized_at_submit_not_one_made_since_under_its_name(
        tmp_path: Path) -> None:
    repos, versions, world, manifests = await _world(tmp_path)
    first = await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    await repos.delete(ALICE, RepoKind.MODEL, "mnist")
    await repos.create(BOB, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    handler = world.app.run_events
    await _apply(handler, _completed("run-1", _weights(manifests), by=ALICE, repo_id=first.id))
    assert (await versions.get(RepoKind.MODEL, "mnist", 0))[1].number == 1  # bob's placeholder only


async def test_the_output_follows_its_repo_through_a_rename(tmp_path: Path) -> None:
    repos, versions, world, manifests = await _world(tmp_path)
    repo = await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    renamed = RepoFields(kind=RepoKind.MODEL, name="digits")
    await repos.update(ALICE, RepoKind.MODEL, "mnist", renamed, ["name"])
    await _apply(world.app.run_events, _completed("run-1", _weights(manifests), repo_id=repo.id))
    assert (await versions.get(RepoKind.MODEL, "digits", 0))[1].produced_by_run == "run-1"


async def test_a_completed_run_makes_one_version_however_often_it_arrives(tmp_path: Path) -> None:
    repos, versions, world, manifests = await _world(tmp_path)
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    data = b"weights"
    digest = manifests.upload(
        Manifest((ManifestEntry("model.pt", 7, hashlib.sha256(data).hexdigest(), 0o644),))
    )
    handler = world.app.run_events
    event = new_event(_completed("run-1", digest), source="test", subject="runs/run-1")
    again = new_event(_completed("run-1", digest), source="test", subject="runs/run-1")  # a new event id

    await handler.apply([event])
    await handler.apply([event, again])

    _, latest = await versions.get(RepoKind.MODEL, "mnist", 0)
    assert (latest.number, latest.produced_by_run, latest.metrics, latest.params) == (
        2,
        "run-1",
        {"accuracy": 0.93},
        {"lr": "0.01"},
    )
    created = [e for e in world.units.published if isinstance(e.data, events_pb2.VersionCreated)]
    assert [e.data.version for e in created] == [1, 2]  # the placeholder, then the run's one


async def test_an_output_that_cannot_become_a_version_is_skipped_not_retried_forever(tmp_path: Path) -> None:
    world = await repo_world(tmp_path)
    handler = world.app.run_events
    await handler.apply([new_event(_completed("run-2", "a" * 64, repo="missing"), source="t", subject="s")])
    assert await world.documents("versions") == []


async def test_a_submitted_run_is_listed_on_the_versions_it_reads(tmp_path: Path) -> None:
    repos, versions, world, _ = await _world(tmp_path)
    await repos.create(ALICE, RepoFields(kind=RepoKind.DATASET, name="digits", source=NoSource()))
    submitted = events_pb2.RunSubmitted(
        run_id="run-9", inputs=[common_pb2.VersionRef(repo="digits", version=1, repo_kind="dataset")]
    )
    handler = world.app.run_events
    for _ in range(2):
        await handler.apply([new_event(submitted, source="t", subject="runs/run-9")])
    _, version = await versions.get(RepoKind.DATASET, "digits", 1)
    assert version.used_by_runs == ("run-9",)


async def test_versions_name_the_runs_that_made_and_read_them(tmp_path: Path) -> None:
    repos, versions, world, manifests = await _world(tmp_path)
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    handler = world.app.run_events
    await _apply(handler, _completed("run-1", _weights(manifests)))
    submitted = events_pb2.RunSubmitted(
        run_id="run-7", name="evaluate-3",
        inputs=[common_pb2.VersionRef(repo="mnist", version=2, repo_kind="model")],
    )
    await handler.apply([new_event(submitted, source="t", subject="runs/run-7")])

    _, version = await versions.get(RepoKind.MODEL, "mnist", 2)
    assert version.run_names == {"run-1": "train-1", "run-7": "evaluate-3"}
    assert (version.run_name("run-1"), version.run_name("run-7"), version.run_name("old")) == \
        ("train-1", "evaluate-3", "old")
    with pytest.raises(FailedPrecondition, match="was read by run evaluate-3: deleting it breaks"):
        await versions.delete(ALICE, RepoKind.MODEL, "mnist", 2)


async def test_a_runs_artifacts_are_a_set_however_often_they_arrive_and_go_with_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, world, manifests = await _world(tmp_path)
    plot, model = hashlib.sha256(b"plot").hexdigest(), hashlib.sha256(b"model").hexdigest()
    manifests.blobs.update({plot, model})
    logged = events_pb2.RunArtifactsLogged(run_id="run-1", name="train-1", digests=[plot, model, plot])
    for _ in range(2):  # redelivered
        await world.app.run_events.apply([new_event(logged, source="run-svc", subject="runs/run-1")])
    other = events_pb2.RunArtifactsLogged(run_id="run-2", digests=[plot, "not-a-digest"])
    await world.app.run_events.apply([new_event(other, source="run-svc", subject="runs/run-2")])

    assert sorted(d["_id"] for d in await world.documents("artifact_refs")) == sorted(
        [f"run-1:{plot}", f"run-1:{model}", f"run-2:{plot}"])
    assert await world.adapters.references.artifact_digests() == {plot, model}
    assert "run run-2: artifact not kept: digests: must be a lowercase hex sha256" in caplog.text
    assert set(manifests.touched) == {plot, model}  # touched before they were recorded

    deleted = events_pb2.RunDeleted(run_id="run-1")
    for _ in range(2):
        await world.app.run_events.apply([new_event(deleted, source="run-svc", subject="runs/run-1")])
    assert [d["_id"] for d in await world.documents("artifact_refs")] == [f"run-2:{plot}"]
    assert await world.adapters.references.artifact_digests() == {plot}


async def test_artifacts_already_collected_are_recorded_and_said_to_be_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, world, _ = await _world(tmp_path)
    gone = hashlib.sha256(b"collected").hexdigest()
    logged = events_pb2.RunArtifactsLogged(run_id="run-1", digests=[gone])
    await world.app.run_events.apply([new_event(logged, source="run-svc", subject="runs/run-1")])
    assert "run run-1: 1 artifact blob(s) are not stored" in caplog.text
    assert len(await world.documents("artifact_refs")) == 1


def _refusals(world: World) -> list[str]:
    return [e.reason for e in world.units.messages(events_pb2.VersionRefused)
            if isinstance(e, events_pb2.VersionRefused)]


async def test_an_owner_whose_role_was_taken_while_the_run_went_makes_no_version(tmp_path: Path) -> None:
    repos, versions, world, manifests = await _world(tmp_path)
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    world.users.roles["alice"] = frozenset({"production-engineer"})  # an admin changed her roles
    await _apply(world.app.run_events, _completed("run-1", _weights(manifests)))
    assert (await versions.get(RepoKind.MODEL, "mnist", 0))[1].number == 1  # the placeholder only
    assert _refusals(world) == ["'alice' holds no role that may write versions now "
                                "(data-scientist, ml-engineer, operator)"]
    assert world.users.asked == ["alice"]


async def test_an_owner_disabled_or_deleted_while_the_run_went_makes_no_version(tmp_path: Path) -> None:
    repos, versions, world, manifests = await _world(tmp_path)
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    world.users.roles["alice"] = None
    await _apply(world.app.run_events, _completed("run-1", _weights(manifests)))
    assert (await versions.get(RepoKind.MODEL, "mnist", 0))[1].number == 1
    assert _refusals(world) == [
        "the run's owner 'alice' is disabled or deleted now, so the run's outputs are not written"]


async def test_roles_given_since_submit_do_not_widen_what_the_run_may_write(tmp_path: Path) -> None:
    repos, versions, world, manifests = await _world(tmp_path)
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    world.users.roles["bob"] = frozenset({"operator", "data-scientist"})  # an operator after submit
    await _apply(world.app.run_events, _completed("run-bob", _weights(manifests), by=BOB))
    assert (await versions.get(RepoKind.MODEL, "mnist", 0))[1].number == 1
    assert _refusals(world) == [
        "model 'mnist' belongs to 'alice'; only its owner or an operator may write its versions"]


async def test_when_the_gateway_cannot_say_the_event_comes_again_and_then_makes_the_version(
        tmp_path: Path) -> None:
    repos, versions, world, manifests = await _world(tmp_path)
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    completed = _completed("run-1", _weights(manifests))
    world.users.unavailable = True
    with pytest.raises(Unavailable):
        await _apply(world.app.run_events, completed)
    assert (_versions_made(world), _refusals(world)) == ([("mnist", 1)], [])
    world.users.unavailable = False
    await _apply(world.app.run_events, completed)
    assert (await versions.get(RepoKind.MODEL, "mnist", 0))[1].produced_by_run == "run-1"


async def test_a_run_without_outputs_asks_nobody(tmp_path: Path) -> None:
    _, _, world, _ = await _world(tmp_path)
    await _apply(world.app.run_events, events_pb2.RunCompleted(run_id="run-1", actor=common_pb2.Actor(
        user="alice", roles=["data-scientist"])))
    assert world.users.asked == []
