"""Tracking (what MLflow's API asks of runs), against fakes: runs started outside the platform, params,
tags and metrics in one series with a run's stdout metrics, who may write, the search, artifacts,
logged models and model versions registered from them."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from run_fakes import World, a_spec, fake_world
from shipyard_run.app.tracking import ArtifactOwner, TrackedData, Tracking
from shipyard_run.domain.runs import OutputTarget, RunStatus
from shipyard_run.domain.tracking import LoggedModelStatus, LoggedValue, TrackedStatus

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.blob.checkout import EMPTY_MANIFEST
from shipyard.kit.caller import Caller
from shipyard.kit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.manifest import Manifest
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER

DIGEST = "a" * 64
OTHER = "b" * 64


class FakeManifests:
    """Keeps manifests in memory and tells the fake repo client they are stored."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.stored: dict[str, Manifest] = {}

    async def put_manifest(self, manifest: Manifest) -> str:
        self.stored[manifest.digest] = manifest
        size = sum(e.size for e in manifest.entries)
        self.world.repos.add_manifest(manifest.digest, len(manifest.entries), size)
        return manifest.digest


async def _world() -> tuple[World, Tracking, FakeManifests]:
    world = await fake_world()
    manifests = FakeManifests(world)
    return world, replace(world.service.tracking, manifests=manifests), manifests


async def test_an_external_run_runs_until_its_client_ends_it_and_the_scheduler_leaves_it_alone() -> None:
    world, tracking, _ = await _world()
    run = await tracking.create_run(ALICE, "laptop fit", "vision", {"team": "cv"}, 0)
    assert (run.external, run.status, run.spec.project, run.labels) == (True, RunStatus.RUNNING, "vision",
                                                                           {"team": "cv"})
    assert run.name.startswith("laptop-fit-")  # not a valid name as given: a suffix makes it one
    await world.scheduler.tick()
    assert world.executor.submitted == [] and (await world.run(run.name)).status is RunStatus.RUNNING

    ended = await tracking.update_run(ALICE, run.id, TrackedStatus.FINISHED, 0)
    assert ended.status is RunStatus.COMPLETE
    assert world.event_names(run.name) == ["RunSubmitted", "RunStarted", "RunCompleted"]


async def test_a_name_is_kept_when_free_and_suffixed_when_taken() -> None:
    _, tracking, _ = await _world()
    first = await tracking.create_run(ALICE, "fit", "", {}, 0)
    second = await tracking.create_run(ALICE, "fit", "", {}, 0)
    assert first.name == "fit" and second.name.startswith("fit-") and second.name != "fit"


async def test_mlflow_and_stdout_metrics_are_one_series_per_name() -> None:
    world, tracking, _ = await _world()
    await world.runs.submit(ALICE, a_spec("train"))
    await world.scheduler.tick()
    run = await world.run("train")
    world.executor.log_metrics(run.id, ("loss", 0.9, 1))
    await world.scheduler.tick()
    data = TrackedData((LoggedValue("loss", 0.5, 2), LoggedValue("gap", math.nan)),
                       {"lr": "0.1"}, {"team": "cv"})
    await tracking.log(ALICE, run.id, data)

    series = [(p.name, p.step, p.value) for p in await world.metric_points(run.id)]
    assert series[:2] == [("loss", 1, 0.9), ("loss", 2, 0.5)] and series[2][0] == "gap"
    stored = await world.run("train")
    assert stored.metrics["loss"] == 0.5 and math.isnan(stored.metrics["gap"])
    assert (stored.params, stored.labels) == ({"lr": "0.1"}, {"team": "cv"})
    assert len(world.events(events_pb2.RunMetricsLogged, "train")) == 2
    assert [(p.step, p.value) for p in await tracking.history(run.id, "loss")] == [(1, 0.9), (2, 0.5)]


async def test_points_logged_again_for_a_logged_model_are_not_doubled() -> None:
    world, tracking, _ = await _world()
    run = await tracking.create_run(ALICE, "fit", "", {}, 0)
    first = (LoggedValue("loss", 0.5, 0, 1_000), LoggedValue("loss", 0.3, 1, 2_000))
    await tracking.log(ALICE, run.id, TrackedData(first))
    # What MLflow's log_model sends: the step's points again, linked to the model; and a new one.
    again = (LoggedValue("loss", 0.5, 0, 1_000, "m-1"), LoggedValue("loss", 0.4, 0, 3_000, "m-1"))
    await tracking.log(ALICE, run.id, TrackedData(again))
    history = [(p.step, p.value) for p in await tracking.history(run.id, "loss")]
    assert history == [(0, 0.5), (1, 0.3), (0, 0.4)]
    assert (await world.run("fit")).metrics["loss"] == 0.3  # the highest step's


async def test_bad_input_writes_nothing() -> None:
    world, tracking, _ = await _world()
    run = await tracking.create_run(ALICE, "fit", "", {}, 0)
    await tracking.log(ALICE, run.id, TrackedData(params={"lr": "0.1"}))
    with pytest.raises(InvalidArgument, match="cannot change"):
        await tracking.log(ALICE, run.id, TrackedData((LoggedValue("loss", 1.0),), {"lr": "0.2"}))
    with pytest.raises(InvalidArgument, match=r"'\.\.' segment"):
        await tracking.log(ALICE, run.id, TrackedData((LoggedValue("../loss", 1.0),)))
    with pytest.raises(InvalidArgument, match="at most 1000"):
        await tracking.log(ALICE, run.id, TrackedData(tuple(LoggedValue(f"m{i}", 1.0) for i in range(1001))))
    with pytest.raises(NotFound):
        await tracking.log(ALICE, "0" * 32, TrackedData(params={"x": "1"}))
    assert await world.metric_points(run.id) == []
    assert (await world.run("fit")).params == {"lr": "0.1"}


async def test_only_the_owner_an_operator_or_the_runs_own_token_write_and_a_token_only_its_run() -> None:
    world, tracking, _ = await _world()
    alices = await tracking.create_run(ALICE, "alices", "", {}, 0)
    other = await tracking.create_run(ALICE, "other", "", {}, 0)
    tagged = TrackedData(tags={"k": "v"})
    with pytest.raises(PermissionDenied, match="belongs to 'alice'"):
        await tracking.log(BOB, alices.id, tagged)
    own_token = Caller("alice", ALICE.roles, run_id=alices.id)
    await tracking.log(own_token, alices.id, tagged)
    with pytest.raises(PermissionDenied, match="its own run"):
        await tracking.log(own_token, other.id, tagged)
    with pytest.raises(PermissionDenied, match="cannot start runs"):
        await tracking.create_run(own_token, "more", "", {}, 0)
    await tracking.log(OPERATOR_CALLER, other.id, tagged)
    assert (await world.run("other")).labels == {"k": "v"}


async def test_search_filters_orders_and_pages_with_mlflows_syntax() -> None:
    _, tracking, _ = await _world()
    for n in range(5):
        run = await tracking.create_run(ALICE, f"r{n}", "vision", {}, 0)
        await tracking.log(ALICE, run.id, TrackedData((LoggedValue("acc", n / 10),), {"n": str(n)}))
    await tracking.create_run(ALICE, "elsewhere", "other", {}, 0)

    first, token = await tracking.search(["vision"], "metrics.acc >= 0.1", ["metrics.acc DESC"], 2, "")
    second, last = await tracking.search(["vision"], "metrics.acc >= 0.1", ["metrics.acc DESC"], 2, token)
    assert [r.name for r in first + second] == ["r4", "r3", "r2", "r1"] and last == ""
    assert [r.name for r in (await tracking.search(["vision"], "params.n = '0'", [], 0, ""))[0]] == ["r0"]
    with pytest.raises(InvalidArgument, match="filter"):
        await tracking.search(["vision"], "metrics.acc > 'x'", [], 0, "")
    with pytest.raises(InvalidArgument, match="page_token"):
        await tracking.search(["vision"], "", [], 0, "not-a-token")


async def test_artifacts_are_listed_by_directory_and_never_leave_their_run() -> None:
    world, tracking, _ = await _world()
    run = await tracking.create_run(ALICE, "fit", "", {}, 0)
    owner = ArtifactOwner(run.id)
    await tracking.record_artifacts(ALICE, owner, [("plots/loss.png", DIGEST, 10), ("notes.txt", OTHER, 3)])
    listed = await tracking.list_artifacts(owner, "", recursive=False)
    assert [(e.path, e.is_dir) for e in listed] == [("notes.txt", False), ("plots", True)]
    plots = await tracking.list_artifacts(owner, "plots", recursive=False)
    assert [e.path for e in plots] == ["plots/loss.png"]
    assert (await tracking.artifact(owner, "notes.txt")).digest == OTHER
    assert (await world.run("fit")).artifact_count == 2
    assert world.events(events_pb2.RunArtifactsLogged, "fit")[0].digests == [DIGEST, OTHER]

    for bad in ("../other/x", "/etc/passwd", "a/../../b"):
        with pytest.raises(InvalidArgument):
            await tracking.record_artifacts(ALICE, owner, [(bad, DIGEST, 1)])
    with pytest.raises(PermissionDenied):
        await tracking.record_artifacts(BOB, owner, [("planted.txt", DIGEST, 1)])
    with pytest.raises(NotFound, match="no artifact"):
        await tracking.artifact(owner, "planted.txt")


async def test_a_logged_models_files_are_its_own_and_go_with_its_run() -> None:
    world, tracking, _ = await _world()
    run = await tracking.create_run(ALICE, "fit", "", {}, 0)
    model = await tracking.create_model(ALICE, run.id, "model", {}, {"C": "1"}, "sklearn")
    await tracking.record_artifacts(ALICE, ArtifactOwner(model_id=model.id), [("MLmodel", DIGEST, 5)])
    assert await tracking.list_artifacts(ArtifactOwner(run.id), "", recursive=True) == []
    ready = await tracking.update_model(ALICE, model.id, status=LoggedModelStatus.READY)
    assert ready.status is LoggedModelStatus.READY
    assert [m.id for m in await tracking.search_models([""], "", "model")] == [model.id]

    await tracking.update_run(ALICE, run.id, TrackedStatus.FINISHED, 0)
    await world.runs.delete(ALICE, "fit")
    with pytest.raises(NotFound):
        await tracking.model(model.id)


async def test_a_model_version_is_registered_from_a_runs_artifacts_as_produced_by_it() -> None:
    world, tracking, manifests = await _world()
    world.repos.add("model", "churn", latest=0)
    run = await tracking.create_run(ALICE, "fit", "", {}, 0)
    await tracking.log(ALICE, run.id, TrackedData((LoggedValue("acc", 0.9),), {"C": "1"}))
    await tracking.record_artifacts(ALICE, ArtifactOwner(run.id), [("model/MLmodel", DIGEST, 5),
                                                                  ("model/model.pkl", OTHER, 7),
                                                                  ("notes.txt", OTHER, 3)])
    version = await tracking.register(ALICE, ArtifactOwner(run.id), "model", "churn", "", "req-1")
    assert version.produced_by_run == run.id and version.file_count == 2
    [manifest] = manifests.stored.values()
    assert [(e.path, e.size) for e in manifest.entries] == [("MLmodel", 5), ("model.pkl", 7)]

    with pytest.raises(FailedPrecondition, match="no artifacts under 'nothing'"):
        await tracking.register(ALICE, ArtifactOwner(run.id), "nothing", "churn", "", "")
    with pytest.raises(PermissionDenied):
        await tracking.register(BOB, ArtifactOwner(run.id), "model", "churn", "", "")


async def test_a_model_output_left_empty_takes_the_one_model_the_run_logged() -> None:
    world, tracking, manifests = await _world()
    world.service.scheduler.manifests = manifests
    world.repos.add("model", "churn")
    await world.runs.submit(ALICE, a_spec("train", outputs=(OutputTarget("model", "churn"),)))
    await world.scheduler.tick()
    run = await world.run("train")
    model = await tracking.create_model(ALICE, run.id, "model", {}, {}, "sklearn")
    await tracking.record_artifacts(ALICE, ArtifactOwner(model_id=model.id), [("MLmodel", DIGEST, 5)])
    await tracking.update_model(ALICE, model.id, status=LoggedModelStatus.READY)
    world.executor.staged[run.id] = {"": EMPTY_MANIFEST}
    world.executor.exit(run.id)
    await world.scheduler.tick()

    [completed] = world.events(events_pb2.RunCompleted, "train")
    [manifest] = manifests.stored.values()
    assert completed.outputs[0].manifest_digest == manifest.digest
    assert [(e.path, e.sha256) for e in manifest.entries] == [("MLmodel", DIGEST)]


async def test_an_output_the_run_filled_itself_is_left_as_it_is() -> None:
    world, tracking, manifests = await _world()
    world.service.scheduler.manifests = manifests
    world.repos.add("model", "churn")
    await world.runs.submit(ALICE, a_spec("train", outputs=(OutputTarget("model", "churn"),)))
    await world.scheduler.tick()
    run = await world.run("train")
    model = await tracking.create_model(ALICE, run.id, "model", {}, {}, "sklearn")
    await tracking.record_artifacts(ALICE, ArtifactOwner(model_id=model.id), [("MLmodel", DIGEST, 5)])
    await tracking.update_model(ALICE, model.id, status=LoggedModelStatus.READY)
    world.executor.staged[run.id] = {"": "f" * 64}
    world.executor.exit(run.id)
    await world.scheduler.tick()
    [completed] = world.events(events_pb2.RunCompleted, "train")
    assert completed.outputs[0].manifest_digest == "f" * 64 and manifests.stored == {}


async def test_the_schedulers_queue_never_reads_external_runs_but_reads_runs_stored_before_them() -> None:
    world, tracking, _ = await _world()
    for n in range(3):
        await tracking.create_run(ALICE, f"laptop-{n}", "", {}, 0)
    await world.runs.submit(ALICE, a_spec("old"))
    old_id = (await world.run("old")).id
    async with world.uow() as uow:  # stored before runs had `external`
        doc = await uow.txn.get("runs", old_id)
        assert doc is not None
        before = {k: v for k, v in doc.items() if k not in ("external", "_rev")}
        await uow.txn.replace("runs", before, doc["_rev"])
    await world.runs.submit(ALICE, a_spec("new"))
    async with world.uow() as uow:
        queued = await uow.runs.in_status((RunStatus.QUEUED, RunStatus.RUNNING), 100)
    assert [run.name for run in queued] == ["old", "new"]
