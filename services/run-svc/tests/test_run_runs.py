"""The run use cases against fakes: submit pins inputs and queues, stop, list pages, logs."""

from __future__ import annotations

import base64

import pytest
from run_fakes import World, a_spec, fake_world
from shipyard_run.app.ports import RunFilter
from shipyard_run.domain.runs import Environment, Input, OutputTarget, RunKind, RunStatus

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER, digest_of


async def _world(gpus: int = 0) -> World:
    world = await fake_world(gpus=gpus)
    world.repos.add("dataset", "digits", latest=3, digest="sha256:digits-latest")
    world.repos.add("featureset", "feats", latest=2)
    world.repos.add("model", "mnist")
    world.repos.add_unversioned("model", "plain")
    return world


async def _assert_nothing_queued(world: World) -> None:
    assert await world.stored_runs() == []
    assert await world.config_files() == {}
    assert await world.requests() == {}
    assert world.uow.published == []


async def test_submit_pins_each_input_and_emits_one_run_submitted() -> None:
    world = await _world()
    spec = a_spec(
        "train-1", project="vision", hyperparameters={"lr": "0.1"},
        inputs=(Input("dataset", "digits", "/mnt/data"), Input("dataset", "digits", "/mnt/old", version=1),
                Input("featureset", "feats", "/data/feats")),
        outputs=(OutputTarget("model", "mnist"),),
    )
    run = await world.runs.submit(ALICE, spec)

    assert (run.status, run.owner, run.revision) == (RunStatus.QUEUED, "alice", 1)
    assert [(i.version, i.manifest_digest) for i in run.spec.inputs] == [
        (3, "sha256:digits-latest"), (1, digest_of("digits", 1)), (2, digest_of("feats", 2))]
    assert await world.run("train-1") == run
    assert world.repos.calls == [
        ("version", "alice", "dataset", "digits", 0), ("version", "alice", "dataset", "digits", 1),
        ("version", "alice", "featureset", "feats", 0), ("check_write", "alice", "model", "mnist", 0),
        ("resolve_image", "alice", "image", "", 0)]

    (emitted,) = world.uow.published
    assert (emitted.subject, emitted.project) == ("runs/train-1", "vision")
    event = emitted.data
    assert isinstance(event, events_pb2.RunSubmitted)
    assert (event.run_id, event.name, event.kind, event.command, event.cluster) == (
        run.id, "train-1", "training", "python train.py", "local")
    assert [(v.repo_kind, v.repo, v.version, v.mount_path, v.repo_id) for v in event.inputs] == [
        ("dataset", "digits", 3, "/mnt/data", "id-dataset-digits"),
        ("dataset", "digits", 1, "/mnt/old", "id-dataset-digits"),
        ("featureset", "feats", 2, "/data/feats", "id-featureset-feats")]
    assert [(v.repo_kind, v.repo, v.mount_path) for v in event.outputs] == [("model", "mnist", "")]
    assert event.gpus == 0
    assert dict(event.hyperparameters) == {"lr": "0.1"}
    assert (event.actor.user, list(event.actor.roles)) == ("alice", ["data-scientist"])


async def test_submit_pins_the_code_repo_to_a_full_commit() -> None:
    world = await _world()
    world.repos.add_code("trainer", "a" * 40, "b" * 40)
    latest = await world.runs.submit(ALICE, a_spec("latest", code="trainer"))
    assert (latest.spec.commit, latest.spec.code_manifest) == ("b" * 40, digest_of("trainer", 2))
    older = await world.runs.submit(ALICE, a_spec("older", code="trainer", commit="aaaa"))
    assert (older.spec.commit, older.spec.code_manifest) == ("a" * 40, digest_of("trainer", 1))
    event = world.events(events_pb2.RunSubmitted, run="older")[0]
    assert isinstance(event, events_pb2.RunSubmitted)
    assert (event.code.repo, event.code.commit) == ("trainer", "a" * 40)
    plain = await world.runs.submit(ALICE, a_spec("plain"))
    assert (plain.spec.commit, plain.spec.code_manifest) == ("", "")
    assert [c for c in world.repos.calls if c[0] == "snapshot_code"] == [
        ("snapshot_code", "alice", "code", "trainer", 0)] * 2


async def test_an_unknown_code_repo_or_commit_queues_nothing() -> None:
    world = await _world()
    world.repos.add_code("trainer", "a" * 40)
    with pytest.raises(NotFound, match="code 'ghost' not found"):
        await world.runs.submit(ALICE, a_spec("t", code="ghost"))
    # repo-svc cannot check the commit out of its clone: a failed precondition, as it says.
    with pytest.raises(FailedPrecondition, match=r"code 'trainer' at ffff: .*no commit 'ffff'"):
        await world.runs.submit(ALICE, a_spec("t", code="trainer", commit="ffff"))
    await _assert_nothing_queued(world)


async def test_an_unknown_input_repo_queues_nothing_and_names_the_input() -> None:
    world = await _world()
    spec = a_spec("t", inputs=(Input("dataset", "digits", "/mnt/a"), Input("dataset", "nope", "/mnt/b")))
    with pytest.raises(NotFound) as caught:
        await world.runs.submit(ALICE, spec)
    assert caught.value.message == "run.inputs[1]: dataset 'nope' not found"
    await _assert_nothing_queued(world)


async def test_a_missing_input_version_queues_nothing() -> None:
    world = await _world()
    with pytest.raises(NotFound, match=r"^run\.inputs\[0\]: dataset 'digits' has no version 9$"):
        await world.runs.submit(ALICE, a_spec("t", inputs=(Input("dataset", "digits", "/mnt/a", version=9),)))
    await _assert_nothing_queued(world)


async def test_an_unversioned_output_repo_queues_nothing() -> None:
    world = await _world()
    with pytest.raises(FailedPrecondition, match="'plain' is not versioned"):
        await world.runs.submit(ALICE, a_spec("t", outputs=(OutputTarget("model", "plain"),)))
    await _assert_nothing_queued(world)


async def test_an_unknown_output_repo_queues_nothing() -> None:
    world = await _world()
    with pytest.raises(NotFound, match="model 'ghost' not found"):
        await world.runs.submit(ALICE, a_spec("t", outputs=(OutputTarget("model", "ghost"),)))
    await _assert_nothing_queued(world)


async def test_more_gpus_than_the_executor_has_queues_nothing() -> None:
    world = await _world(gpus=2)
    assert (await world.runs.submit(ALICE, a_spec("fits", gpus=2))).spec.gpus == 2
    world.uow.published.clear()
    async with world.uow() as uow:
        for stored in await uow.runs.find():
            await uow.runs.remove(stored)
    with pytest.raises(FailedPrecondition) as caught:
        await world.runs.submit(ALICE, a_spec("big", gpus=3, inputs=(Input("dataset", "digits", "/mnt/a"),)))
    assert caught.value.message == "run.gpus: 3 GPUs asked for, but the fake executor has 2"
    assert [c for c in world.repos.calls if c[3] == "digits"] == []  # refused before asking repo-svc
    await _assert_nothing_queued(world)


async def test_an_invalid_spec_queues_nothing() -> None:
    world = await _world()
    with pytest.raises(InvalidArgument) as caught:
        await world.runs.submit(ALICE, a_spec("t", command=" "))
    assert caught.value.field == "run.command"
    with pytest.raises(InvalidArgument) as too_big:
        await world.runs.submit(ALICE, a_spec("t"), config=b"x" * ((1 << 20) + 1))
    assert too_big.value.field == "config_file"
    await _assert_nothing_queued(world)
    assert world.repos.calls == []


async def test_a_taken_name_is_refused() -> None:
    world = await _world()
    first = await world.runs.submit(ALICE, a_spec("same"))
    with pytest.raises(AlreadyExists, match="a run named 'same' exists already"):
        await world.runs.submit(BOB, a_spec("same", command="python other.py"))
    assert list(await world.stored_runs()) == [first]
    assert world.event_names() == ["RunSubmitted"]


async def test_a_retried_request_returns_the_same_run_without_a_second_event() -> None:
    world = await _world()
    first = await world.runs.submit(ALICE, a_spec("r1"), request_id="req-1")
    again = await world.runs.submit(ALICE, a_spec("r1"), request_id="req-1")
    assert again == first
    assert len(await world.stored_runs()) == 1
    assert world.event_names() == ["RunSubmitted"]
    # The same id from another user is another request.
    other = await world.runs.submit(BOB, a_spec("r2"), request_id="req-1")
    assert (other.name, other.owner) == ("r2", "bob")
    assert await world.requests() == {"alice:run:req-1": "r1", "bob:run:req-1": "r2"}
    assert world.event_names() == ["RunSubmitted", "RunSubmitted"]


async def test_the_config_is_stored_with_a_default_file_name() -> None:
    world = await _world()
    run = await world.runs.submit(ALICE, a_spec("c"), config=b"lr: 0.1\n")
    assert run.spec.config_file_name == "config"
    assert (await world.config_files()) == {run.id: b"lr: 0.1\n"}
    named = await world.runs.submit(ALICE, a_spec("n", config_file_name="params.yaml"), config=b"{}")
    assert named.spec.config_file_name == "params.yaml"
    assert (await world.config_files())[named.id] == b"{}"
    bare = await world.runs.submit(ALICE, a_spec("b"))
    assert bare.spec.config_file_name == ""
    assert bare.id not in (await world.config_files())


async def test_submit_wakes_the_scheduler() -> None:
    world = await _world()
    assert not world.scheduler._wake.is_set()
    await world.runs.submit(ALICE, a_spec("w"))
    assert world.scheduler._wake.is_set()


async def test_stopping_a_queued_run_stops_it_at_once() -> None:
    world = await _world()
    run = await world.runs.submit(ALICE, a_spec("q", project="p"))
    stopped = await world.runs.stop(ALICE, "q")
    assert (stopped.status, stopped.status_reason, stopped.revision) == (
        RunStatus.STOPPED, "stopped before it started", 2)
    assert stopped.end_time is not None and stopped.end_time > run.create_time
    assert await world.run("q") == stopped
    assert world.executor.stopped == []
    assert world.event_names() == ["RunSubmitted", "RunStopped"]
    event = world.uow.published[-1]
    assert isinstance(event.data, events_pb2.RunStopped)
    assert (event.data.run_id, event.data.actor.user, event.subject, event.project) == (
        run.id, "alice", "runs/q", "p")
    await world.scheduler.tick()  # nothing to start: it never runs
    assert world.executor.submitted == []


async def test_stopping_a_run_waiting_for_gpus_stops_it_at_once() -> None:
    world = await _world(gpus=1)
    await world.runs.submit(ALICE, a_spec("holder", gpus=1))
    await world.runs.submit(ALICE, a_spec("waiter", gpus=1))
    await world.scheduler.tick()
    assert await world.status("waiter") is RunStatus.WAITING_FOR_GPUS
    assert (await world.runs.stop(ALICE, "waiter")).status is RunStatus.STOPPED
    assert world.event_names("waiter") == ["RunSubmitted", "RunStopped"]


async def test_only_the_owner_or_an_operator_may_stop_a_run() -> None:
    world = await _world()
    await world.runs.submit(ALICE, a_spec("mine"))
    with pytest.raises(PermissionDenied, match="run 'mine' belongs to 'alice'"):
        await world.runs.stop(BOB, "mine")
    assert await world.status("mine") is RunStatus.QUEUED
    assert world.event_names() == ["RunSubmitted"]
    stopped = await world.runs.stop(OPERATOR_CALLER, "mine")
    assert stopped.status is RunStatus.STOPPED
    stop_event = world.events(events_pb2.RunStopped)[0]
    assert isinstance(stop_event, events_pb2.RunStopped)
    assert (stop_event.actor.user, list(stop_event.actor.roles)) == ("olga", ["operator"])


async def test_stopping_a_running_run_asks_the_executor() -> None:
    world = await _world()
    run = await world.runs.submit(ALICE, a_spec("busy"))
    await world.scheduler.tick()
    assert await world.status("busy") is RunStatus.RUNNING
    world.scheduler._wake.clear()
    stopping = await world.runs.stop(ALICE, "busy")
    assert stopping.status is RunStatus.STOPPING
    assert world.executor.stopped == [run.id]
    assert world.scheduler._wake.is_set()
    assert world.event_names() == ["RunSubmitted", "RunStarted"]  # RunStopped once it has ended


async def test_stopping_an_ended_or_unknown_run_is_refused() -> None:
    world = await _world()
    await world.runs.submit(ALICE, a_spec("done"))
    await world.runs.stop(ALICE, "done")
    with pytest.raises(FailedPrecondition, match=r"run 'done' has already ended \(stopped\)"):
        await world.runs.stop(ALICE, "done")
    with pytest.raises(NotFound, match="no run named 'ghost'"):
        await world.runs.stop(ALICE, "ghost")
    assert world.event_names() == ["RunSubmitted", "RunStopped"]


async def test_get_finds_a_run_by_name() -> None:
    world = await _world()
    run = await world.runs.submit(ALICE, a_spec("g"))
    assert await world.runs.get("g") == run
    with pytest.raises(NotFound, match="no run named 'h'"):
        await world.runs.get("h")


async def _submit_many(world: World) -> None:
    await world.runs.submit(ALICE, a_spec("a-1", project="p1", tags=("x",)))
    await world.runs.submit(ALICE, a_spec("a-2", project="p2", kind=RunKind.PREPROCESSING))
    await world.runs.submit(ALICE, a_spec("b-3", project="p1", tags=("x", "y")))
    await world.runs.submit(ALICE, a_spec("a-4", project="p1", kind=RunKind.EVALUATION))
    await world.runs.submit(ALICE, a_spec("b-5", project="p2"))


async def test_list_pages_go_newest_first_with_working_tokens() -> None:
    world = await _world()
    await _submit_many(world)
    seen: list[list[str]] = []
    token = ""
    while True:
        page, token = await world.runs.list_page(RunFilter(), 2, token)
        seen.append([r.name for r in page])
        if not token:
            break
    assert seen == [["b-5", "a-4"], ["b-3", "a-2"], ["a-1"]]
    everything, last = await world.runs.list_page(RunFilter(), 0, "")
    assert ([r.name for r in everything], last) == (["b-5", "a-4", "b-3", "a-2", "a-1"], "")
    exact, end = await world.runs.list_page(RunFilter(), 5, "")
    assert (len(exact), end) == (5, "")


@pytest.mark.parametrize(
    ("where", "names"),
    [
        (RunFilter(project="p1"), ["a-4", "b-3", "a-1"]),
        (RunFilter(kind=RunKind.TRAINING), ["b-5", "b-3", "a-1"]),
        (RunFilter(name_prefix="a-"), ["a-4", "a-2", "a-1"]),
        (RunFilter(tag="x"), ["b-3", "a-1"]),
        (RunFilter(project="p1", tag="y"), ["b-3"]),
        (RunFilter(status=RunStatus.STOPPED), ["a-2"]),
        (RunFilter(status=RunStatus.QUEUED, project="p2"), ["b-5"]),
    ],
)
async def test_list_filters(where: RunFilter, names: list[str]) -> None:
    world = await _world()
    await _submit_many(world)
    await world.runs.stop(ALICE, "a-2")
    page, token = await world.runs.list_page(where, 10, "")
    assert ([r.name for r in page], token) == (names, "")


async def test_a_filtered_list_pages_too() -> None:
    world = await _world()
    await _submit_many(world)
    first, token = await world.runs.list_page(RunFilter(project="p1"), 2, "")
    second, end = await world.runs.list_page(RunFilter(project="p1"), 2, token)
    assert ([r.name for r in first], [r.name for r in second], end) == (["a-4", "b-3"], ["a-1"], "")


@pytest.mark.parametrize(
    "token",
    ["not a token", "!!!", base64.urlsafe_b64encode(b"repos\x1f1\x1fabc").decode(),
     base64.urlsafe_b64encode(b"runs\x1fmany\x1fabc").decode(), base64.urlsafe_b64encode(b"runs").decode(),
     base64.urlsafe_b64encode(b"\xff\xfe").decode()],
)
async def test_a_bad_page_token_is_invalid(token: str) -> None:
    world = await _world()
    with pytest.raises(InvalidArgument) as caught:
        await world.runs.list_page(RunFilter(), 10, token)
    assert caught.value.field == "page_token"


async def test_a_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        await (await _world()).runs.list_page(RunFilter(), -1, "")
    assert caught.value.field == "page_size"


async def test_read_logs_says_finished_once_an_ended_run_is_read_to_the_end() -> None:
    world = await _world()
    run = await world.runs.submit(ALICE, a_spec("l"))
    await world.scheduler.tick()
    world.executor.logs[run.id] = b"epoch 1\nepoch 2\n"
    assert await world.runs.read_logs("l", 0, 8) == (b"epoch 1\n", 8, False)
    assert await world.runs.read_logs("l", 8, 0) == (b"epoch 2\n", 16, False)
    assert await world.runs.read_logs("l", 16, 0) == (b"", 16, False)  # running: more may come
    world.executor.exit(run.id, 0)
    await world.scheduler.tick()
    assert await world.status("l") is RunStatus.COMPLETE
    assert await world.runs.read_logs("l", 8, 100) == (b"epoch 2\n", 16, False)
    assert await world.runs.read_logs("l", 16, 100) == (b"", 16, True)


async def test_read_logs_checks_its_arguments() -> None:
    world = await _world()
    await world.runs.submit(ALICE, a_spec("l"))
    with pytest.raises(InvalidArgument) as offset:
        await world.runs.read_logs("l", -1, 10)
    assert offset.value.field == "offset"
    with pytest.raises(InvalidArgument, match=r"^offset: must be at most") as huge:
        await world.runs.read_logs("l", 2**62, 10)  # past what a file offset holds
    assert huge.value.field == "offset"
    assert await world.runs.read_logs("l", 1 << 40, 10) == (b"", 1 << 40, False)  # the bound itself: EOF
    with pytest.raises(InvalidArgument) as size:
        await world.runs.read_logs("l", 0, -1)
    assert size.value.field == "max_bytes"
    with pytest.raises(NotFound):
        await world.runs.read_logs("nope", 0, 10)


async def test_metrics_returns_every_point_logged() -> None:
    world = await _world()
    run = await world.runs.submit(ALICE, a_spec("m"))
    await world.scheduler.tick()
    world.executor.log_metrics(run.id, ("loss", 1.0, 1), ("loss", 0.5, 2))
    await world.scheduler.tick()
    world.executor.log_metrics(run.id, ("loss", 0.25, 3))
    await world.scheduler.tick()
    assert [(p.name, p.value, p.step) for p in await world.runs.metrics("m")] == [
        ("loss", 1.0, 1), ("loss", 0.5, 2), ("loss", 0.25, 3)]
    with pytest.raises(NotFound):
        await world.runs.metrics("other")


async def test_deleting_an_ended_run_forgets_it_and_emits_run_deleted() -> None:
    world = await _world()
    run = await world.runs.submit(ALICE, a_spec("old", config_file_name="c.yaml"), b"x: 1\n")
    await world.scheduler.tick()
    world.executor.log_metrics(run.id, ("loss", 0.5, 1))
    world.executor.exit(run.id, 0)
    await world.scheduler.tick()
    assert await world.status("old") is RunStatus.COMPLETE
    await world.runs.delete(ALICE, "old")
    assert await world.stored_runs() == [] and await world.config_files() == {}
    assert await world.metric_points(run.id) == []
    assert world.executor.removed == [run.id]
    assert world.event_names("old")[-1] == "RunDeleted"
    with pytest.raises(NotFound):
        await world.runs.get("old")


async def test_a_run_still_going_or_someone_elses_is_not_deleted() -> None:
    world = await _world()
    await world.runs.submit(ALICE, a_spec("busy"))
    with pytest.raises(FailedPrecondition, match="'busy' is queued: stop it, then delete it"):
        await world.runs.delete(ALICE, "busy")
    await world.runs.stop(ALICE, "busy")
    with pytest.raises(PermissionDenied, match="belongs to 'alice'"):
        await world.runs.delete(BOB, "busy")
    await world.runs.delete(OPERATOR_CALLER, "busy")
    assert await world.stored_runs() == []


async def test_submit_pins_the_image_a_run_names() -> None:
    world = await _world()
    image = world.repos.add_image("xgb", requirements=("xgboost==2.1.*",),
                                  url="registry.example.org/team/xgb:1")
    run = await world.runs.submit(ALICE, a_spec("t2", image="xgb"))

    assert run.spec.environment == Environment("xgb", image.url, "", ("xgboost==2.1.*",), image.digest)
    (emitted,) = world.uow.published
    assert (emitted.data.image, emitted.data.image_url, emitted.data.environment_digest) == (
        "xgb", "registry.example.org/team/xgb:1", image.digest)


async def test_a_framework_and_version_pick_its_standard_image() -> None:
    world = await _world()
    for version in ("1.4", "1.5"):
        world.repos.add_image(f"sklearn-{version}", (f"scikit-learn=={version}.*",), framework="sklearn",
                              framework_version=version)

    pinned = await world.runs.submit(ALICE, a_spec("t1", framework="sklearn", framework_version="1.4"))
    newest = await world.runs.submit(ALICE, a_spec("t2", framework="sklearn"))
    default = await world.runs.submit(ALICE, a_spec("t3"))

    assert [r.spec.environment.image for r in (pinned, newest, default) if r.spec.environment] == [
        "sklearn-1.4", "sklearn-1.5", "python"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"image": "nope"}, "run.image: image 'nope' not found"),
     ({"framework": "tensorflow", "framework_version": "9"}, "run.framework: no standard image of framework "
                                                            "'tensorflow' 9")],
)
async def test_an_unknown_image_is_refused_and_nothing_is_queued(fields: dict[str, str],
                                                                 message: str) -> None:
    world = await _world()
    with pytest.raises(NotFound) as refused:
        await world.runs.submit(ALICE, a_spec("t", **fields))

    assert refused.value.message == message
    await _assert_nothing_queued(world)
