"""The scheduler against fakes: slots and GPUs, the end of a run, metrics, recovery, events once."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable

from run_fakes import SIGTERM_EXIT, World, a_spec, fake_world
from shipyard_run.app.ports import EnvironmentFailed
from shipyard_run.domain.runs import Input, OutputTarget, Run, RunKind, RunSpec, RunStatus

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.testing import ALICE, digest_of


async def _submit(world: World, *specs: RunSpec) -> list[Run]:
    return [await world.runs.submit(ALICE, spec) for spec in specs]


async def _statuses(world: World, *names: str) -> list[RunStatus]:
    return [await world.status(name) for name in names]


def _once_each(world: World, name: str) -> None:
    """No event of the run was emitted twice."""
    counts = Counter(world.event_names(name))
    assert all(count == 1 for kind, count in counts.items() if kind != "RunMetricsLogged"), counts


async def test_a_higher_priority_starts_first_then_submission_order() -> None:
    world = await fake_world(slots=1)
    await _submit(world, a_spec("low-1"), a_spec("low-2"), a_spec("urgent", priority=5),
                  a_spec("background", priority=-1))
    started: list[str] = []
    for _ in range(4):
        await world.scheduler.tick()
        started = world.executor.submitted_names()
        world.executor.exit(world.executor.submitted[-1].run_id, 0)
    assert started == ["urgent", "low-1", "low-2", "background"]


async def test_queued_runs_start_in_submission_order_up_to_the_slots() -> None:
    world = await fake_world(slots=2)
    a, b, c = await _submit(world, a_spec("a"), a_spec("b"), a_spec("c"))
    await world.scheduler.tick()
    assert await _statuses(world, "a", "b", "c") == [RunStatus.RUNNING, RunStatus.RUNNING, RunStatus.QUEUED]
    assert world.executor.submitted_names() == ["a", "b"]
    started = await world.run("a")
    assert (started.start_time is not None, started.notes) == (True, (f"ran by the fake executor as {a.id}",))
    await world.scheduler.tick()  # no slot is free: nothing more starts
    assert world.executor.submitted_names() == ["a", "b"]

    world.executor.exit(b.id, 0)
    await world.scheduler.tick()
    assert await _statuses(world, "a", "b", "c") == [RunStatus.RUNNING, RunStatus.COMPLETE, RunStatus.RUNNING]
    assert world.executor.submitted_names() == ["a", "b", "c"]
    assert world.executor.submitted[2].run_id == c.id
    assert [e.name for e in world.events(events_pb2.RunStarted)] == ["a", "b", "c"]


async def test_the_job_carries_the_run_contract() -> None:
    world = await fake_world(gpus=1)
    world.repos.add("dataset", "digits", latest=2, digest="sha256:d2")
    world.repos.add("model", "mnist")
    world.repos.add("model", "small")
    world.repos.add_code("trainer", "c" * 40)
    spec = a_spec("j", code="trainer", inputs=(Input("dataset", "digits", "/mnt/data"),),
                  outputs=(OutputTarget("model", "mnist"), OutputTarget("model", "small", "/model/small")),
                  hyperparameters={"lr": "0.1"}, config_file_name="c.yaml", gpus=1)
    await world.runs.submit(ALICE, a_spec("other"), config=b"not this one")
    run = await world.runs.submit(ALICE, spec, config=b"epochs: 3\n")
    await world.runs.stop(ALICE, "other")
    await world.scheduler.tick()
    (job,) = world.executor.submitted
    assert (job.run_id, job.name, job.command) == (run.id, "j", "python train.py")
    assert [(i.mount_path, i.manifest_digest) for i in job.inputs] == [("/mnt/data", "sha256:d2")]
    assert job.output_paths == ("", "/model/small")
    assert (job.hyperparameters, job.config_file_name, job.config, job.gpus) == (
        {"lr": "0.1"}, "c.yaml", b"epochs: 3\n", (0,))
    assert job.code_manifest == digest_of("trainer", 1)


async def test_a_gpu_run_waits_while_cpu_runs_behind_it_start() -> None:
    world = await fake_world(gpus=2, slots=4)
    g1, _, _ = await _submit(world, a_spec("g1", gpus=2), a_spec("g2", gpus=2), a_spec("cpu"))
    await world.scheduler.tick()
    assert await _statuses(world, "g1", "g2", "cpu") == [
        RunStatus.RUNNING, RunStatus.WAITING_FOR_GPUS, RunStatus.RUNNING]
    assert (await world.run("g1")).gpu_ids == (0, 1)
    assert (await world.run("g2")).status_reason == "2 GPUs asked for, 0 free"
    waiting_revision = (await world.run("g2")).revision
    await world.scheduler.tick()  # still waiting: not saved again
    assert (await world.run("g2")).revision == waiting_revision

    world.executor.exit(g1.id, 0)
    await world.scheduler.tick()
    g2 = await world.run("g2")
    assert (g2.status, g2.gpu_ids, g2.status_reason) == (RunStatus.RUNNING, (0, 1), "")
    assert world.executor.submitted[-1].gpus == (0, 1)


async def test_start_with_available_starts_with_the_free_gpus() -> None:
    world = await fake_world(gpus=4, slots=4)
    await _submit(world, a_spec("big", gpus=3), a_spec("flex", gpus=2, start_with_available=True),
                  a_spec("strict", gpus=2))
    await world.scheduler.tick()
    flex = await world.run("flex")
    assert (flex.status, flex.gpu_ids) == (RunStatus.RUNNING, (3,))
    assert [job.gpus for job in world.executor.submitted] == [(0, 1, 2), (3,)]
    assert await world.status("strict") is RunStatus.WAITING_FOR_GPUS


async def test_start_with_available_still_waits_when_no_gpu_is_free() -> None:
    world = await fake_world(gpus=1, slots=4)
    await _submit(world, a_spec("one", gpus=1), a_spec("flex", gpus=1, start_with_available=True))
    await world.scheduler.tick()
    assert await _statuses(world, "one", "flex") == [RunStatus.RUNNING, RunStatus.WAITING_FOR_GPUS]


async def test_gpu_ids_are_never_given_twice() -> None:
    world = await fake_world(gpus=4, slots=8)
    _, b, _, _ = await _submit(world, a_spec("a", gpus=1), a_spec("b", gpus=2), a_spec("c", gpus=1),
                            a_spec("d", gpus=2))
    await world.scheduler.tick()
    assert [(await world.run(n)).gpu_ids for n in "abc"] == [(0,), (1, 2), (3,)]
    assert await world.status("d") is RunStatus.WAITING_FOR_GPUS

    world.executor.exit(b.id, 0)
    await world.scheduler.tick()
    assert (await world.run("d")).gpu_ids == (1, 2)
    live = [g for run in await world.stored_runs() if run.status is RunStatus.RUNNING for g in run.gpu_ids]
    assert sorted(live) == [0, 1, 2, 3]


async def test_a_job_that_exits_0_completes_with_its_staged_outputs() -> None:
    world = await fake_world()
    world.repos.add("model", "mnist")
    world.repos.add("model", "small")
    outputs = (OutputTarget("model", "mnist"), OutputTarget("model", "small", "/model/s"))
    (run,) = await _submit(world, a_spec("ok", project="vision", outputs=outputs))
    await world.scheduler.tick()
    world.executor.staged[run.id] = {"": "sha256:main", "/model/s": "sha256:small"}
    world.executor.log_metrics(run.id, ("acc", 0.9, 1))
    world.executor.exit(run.id, 0)
    await world.scheduler.tick()

    done = await world.run("ok")
    assert (done.status, done.exit_code, done.status_reason, done.metrics) == (
        RunStatus.COMPLETE, 0, "", {"acc": 0.9})
    assert done.end_time is not None and done.start_time is not None and done.end_time > done.start_time
    assert world.executor.cleaned == [run.id]
    (completed,) = world.events(events_pb2.RunCompleted)
    assert isinstance(completed, events_pb2.RunCompleted)
    assert [(o.repo_kind, o.repo, o.mount_path, o.manifest_digest) for o in completed.outputs] == [
        ("model", "mnist", "", "sha256:main"), ("model", "small", "/model/s", "sha256:small")]
    assert (completed.run_id, completed.project, dict(completed.metrics), completed.actor.user) == (
        run.id, "vision", {"acc": 0.9}, "alice")

    await world.scheduler.tick()
    await world.scheduler.tick()
    assert world.event_names("ok") == ["RunSubmitted", "RunStarted", "RunMetricsLogged", "RunCompleted"]
    assert world.executor.cleaned == [run.id]


async def test_a_job_that_exits_non_zero_fails_with_the_end_of_its_log() -> None:
    world = await fake_world()
    (run,) = await _submit(world, a_spec("bad", kind=RunKind.PREPROCESSING))
    await world.scheduler.tick()
    log = b"x" * 5000 + b"Traceback: boom\n"
    world.executor.logs[run.id] = log
    world.executor.exit(run.id, 3)
    await world.scheduler.tick()

    failed = await world.run("bad")
    assert (failed.status, failed.exit_code, failed.status_reason) == (
        RunStatus.FAILED, 3, "the command exited with code 3")
    (event,) = world.events(events_pb2.RunFailed)
    assert isinstance(event, events_pb2.RunFailed)
    assert (event.reason, event.exit_code, event.kind) == (
        "the command exited with code 3", 3, "preprocessing")
    assert event.last_log_lines == log[-4096:].decode()
    assert event.last_log_lines.endswith("Traceback: boom\n")
    assert world.executor.cleaned == [run.id]
    _once_each(world, "bad")


async def test_a_vanished_job_fails_with_a_clear_reason() -> None:
    world = await fake_world()
    (run,) = await _submit(world, a_spec("lost"))
    await world.scheduler.tick()
    world.executor.vanish(run.id, "killed with its wrapper")
    await world.scheduler.tick()
    lost = await world.run("lost")
    assert (lost.status, lost.status_reason, lost.exit_code) == (
        RunStatus.ERROR, "the run's process disappeared: killed with its wrapper", 0)
    assert world.event_names("lost") == ["RunSubmitted", "RunStarted", "RunFailed"]


async def test_outputs_that_cannot_be_stored_fail_the_run() -> None:
    world = await fake_world()
    (run,) = await _submit(world, a_spec("full"))
    await world.scheduler.tick()
    world.executor.stage_error = OSError("disk full")
    world.executor.exit(run.id, 0)
    await world.scheduler.tick()
    full = await world.run("full")
    assert (full.status, full.status_reason) == (
        RunStatus.ERROR, "its outputs could not be stored: disk full")
    assert world.event_names("full") == ["RunSubmitted", "RunStarted", "RunFailed"]


async def test_a_stop_while_running_ends_stopped() -> None:
    world = await fake_world()
    (run,) = await _submit(world, a_spec("halt", project="p"))
    await world.scheduler.tick()
    await world.runs.stop(ALICE, "halt")
    assert await world.status("halt") is RunStatus.STOPPING
    await world.scheduler.tick()
    halted = await world.run("halt")
    assert (halted.status, halted.status_reason, halted.exit_code) == (
        RunStatus.STOPPED, "stopped", SIGTERM_EXIT)
    assert world.event_names("halt") == ["RunSubmitted", "RunStarted", "RunStopped"]
    stopped = world.uow.published[-1]
    assert isinstance(stopped.data, events_pb2.RunStopped)
    assert (stopped.data.run_id, stopped.project) == (run.id, "p")
    assert world.executor.cleaned == [run.id]


async def test_a_stop_while_starting_stops_the_job_once_it_has_started() -> None:
    world = await fake_world()
    (run,) = await _submit(world, a_spec("early"))

    async def stop_now(run_id: str) -> None:
        assert await world.status("early") is RunStatus.STARTING
        await world.runs.stop(ALICE, "early")

    world.executor.on_submit = stop_now
    await world.scheduler.tick()
    early = await world.run("early")
    assert (early.status, early.start_time is not None) == (RunStatus.STOPPING, True)
    assert world.executor.stopped == [run.id, run.id]  # asked by stop, again once the job existed
    await world.scheduler.tick()
    assert await world.status("early") is RunStatus.STOPPED
    assert world.event_names("early") == ["RunSubmitted", "RunStarted", "RunStopped"]


async def test_metric_points_are_saved_with_the_last_values_and_one_event_per_batch() -> None:
    world = await fake_world()
    (run,) = await _submit(world, a_spec("m"))
    await world.scheduler.tick()
    world.executor.log_metrics(run.id, ("loss", 1.0, 1), ("acc", 0.5, 1), ("loss", 0.5, 2))
    await world.scheduler.tick()
    assert (await world.run("m")).metrics == {"loss": 0.5, "acc": 0.5}
    await world.scheduler.tick()  # no new points: no event
    world.executor.log_metrics(run.id, ("acc", 0.75, 2))
    await world.scheduler.tick()

    assert (await world.run("m")).metrics == {"loss": 0.5, "acc": 0.75}
    assert [(p.name, p.value, p.step) for p in await world.metric_points(run.id)] == [
        ("loss", 1.0, 1), ("acc", 0.5, 1), ("loss", 0.5, 2), ("acc", 0.75, 2)]
    batches = world.events(events_pb2.RunMetricsLogged)
    assert [[(v.name, v.value, v.step) for v in b.values] for b in batches
            ] == [[("loss", 1.0, 1), ("acc", 0.5, 1), ("loss", 0.5, 2)], [("acc", 0.75, 2)]]
    assert world.event_names("m") == [
        "RunSubmitted", "RunStarted", "RunMetricsLogged", "RunMetricsLogged"]


async def test_recover_queues_again_a_run_whose_job_never_started() -> None:
    world = await fake_world()
    (run,) = await _submit(world, a_spec("half"))
    async with world.uow() as uow:  # run-svc died here, before the executor started it
        await uow.runs.save(run.starting())
    await world.scheduler.recover()
    half = await world.run("half")
    assert (half.status, half.status_reason) == (RunStatus.QUEUED, "run-svc restarted while starting it")
    assert world.executor.submitted == []
    await world.scheduler.tick()
    assert await world.status("half") is RunStatus.RUNNING
    assert world.executor.submitted_names() == ["half"]
    assert world.event_names("half") == ["RunSubmitted", "RunStarted"]


async def test_recover_leaves_running_runs_to_be_watched() -> None:
    world = await fake_world(slots=4)
    alive, exited, gone = await _submit(world, a_spec("alive"), a_spec("exited"), a_spec("gone"))
    await world.scheduler.tick()
    published = len(world.uow.published)
    # A new scheduler (run-svc restarted) over the same store and jobs.
    world.executor.exit(exited.id, 0)
    world.executor.vanish(gone.id)
    restarted = world.restarted().scheduler
    await restarted.recover()
    assert await _statuses(world, "alive", "exited", "gone") == [RunStatus.RUNNING] * 3
    assert len(world.uow.published) == published
    await restarted.tick()
    assert await _statuses(world, "alive", "exited", "gone") == [
        RunStatus.RUNNING, RunStatus.COMPLETE, RunStatus.ERROR]
    assert world.executor.submitted_names() == ["alive", "exited", "gone"]  # nothing started twice
    assert alive.id not in world.executor.cleaned


async def test_a_run_the_executor_cannot_start_fails_and_the_next_one_starts() -> None:
    world = await fake_world(slots=2)
    await _submit(world, a_spec("broken"), a_spec("next"))
    world.executor.submit_errors["broken"] = RuntimeError("no such image")
    await world.scheduler.tick()
    broken = await world.run("broken")
    assert (broken.status, broken.status_reason, broken.exit_code) == (
        RunStatus.ERROR, "could not start: no such image", 0)
    assert await world.status("next") is RunStatus.RUNNING
    assert world.executor.submitted_names() == ["next"]
    assert world.event_names("broken") == ["RunSubmitted", "RunFailed"]
    (failed,) = world.events(events_pb2.RunFailed)
    assert failed.reason == "could not start: no such image"
    await world.scheduler.tick()
    assert world.event_names("broken") == ["RunSubmitted", "RunFailed"]


async def test_a_failed_start_frees_its_slot_for_the_next_tick() -> None:
    world = await fake_world(slots=1)
    await _submit(world, a_spec("broken"), a_spec("next"))
    world.executor.submit_errors["broken"] = OSError("cannot lay out the workspace")
    await world.scheduler.tick()
    assert await _statuses(world, "broken", "next") == [RunStatus.ERROR, RunStatus.QUEUED]
    await world.scheduler.tick()
    assert await world.status("next") is RunStatus.RUNNING


async def test_each_event_is_emitted_exactly_once_over_many_ticks() -> None:
    world = await fake_world(gpus=1, slots=2)
    world.repos.add("model", "out")
    runs = await _submit(world, a_spec("ok", outputs=(OutputTarget("model", "out"),)), a_spec("gpu", gpus=1),
                         a_spec("fail"), a_spec("halt"), a_spec("gpu2", gpus=1))
    ids = {run.name: run.id for run in runs}
    world.executor.submit_errors["fail"] = OSError("cannot lay out the workspace")
    for tick in range(12):
        await world.scheduler.tick()
        if tick == 1:
            world.executor.log_metrics(ids["ok"], ("loss", 0.1, 1))
            world.executor.exit(ids["gpu"], 0)
        if tick == 3:
            world.executor.exit(ids["ok"], 0)
        if tick == 5 and await world.status("halt") is RunStatus.RUNNING:
            await world.runs.stop(ALICE, "halt")
        if tick == 7:
            world.executor.exit(ids["gpu2"], 1)
    assert await _statuses(world, "ok", "gpu", "fail", "halt", "gpu2") == [
        RunStatus.COMPLETE, RunStatus.COMPLETE, RunStatus.ERROR, RunStatus.STOPPED, RunStatus.FAILED]
    assert world.event_names("ok") == ["RunSubmitted", "RunStarted", "RunMetricsLogged", "RunCompleted"]
    assert world.event_names("gpu") == ["RunSubmitted", "RunStarted", "RunCompleted"]
    assert world.event_names("fail") == ["RunSubmitted", "RunFailed"]
    assert world.event_names("halt") == ["RunSubmitted", "RunStarted", "RunStopped"]
    assert world.event_names("gpu2") == ["RunSubmitted", "RunStarted", "RunFailed"]
    assert sorted(world.executor.cleaned) == sorted(ids[n] for n in ("ok", "gpu", "halt", "gpu2"))
    assert world.uow.rollbacks == 0


# Bugs found while writing these tests: each shows what should happen and fails today.


async def test_recover_reattaches_a_starting_run_whose_job_is_running() -> None:
    world = await fake_world()
    (run,) = await _submit(world, a_spec("crashed"))
    async with world.uow() as uow:
        await uow.runs.save(run.starting())
    world.executor.start(run.id)  # run-svc died after the executor started the job, before saving it
    world.executor.log_metrics(run.id, ("loss", 0.5, 1))
    await world.scheduler.recover()
    await world.scheduler.tick()
    crashed = await world.run("crashed")
    assert (crashed.status, crashed.metrics) == (RunStatus.RUNNING, {"loss": 0.5})
    assert world.event_names("crashed") == ["RunSubmitted", "RunStarted", "RunMetricsLogged"]


async def test_recover_does_not_give_away_the_gpus_of_a_starting_runs_job() -> None:
    world = await fake_world(gpus=1, slots=4)
    first, _ = await _submit(world, a_spec("first", gpus=1), a_spec("second", gpus=1))
    async with world.uow() as uow:
        await uow.runs.save(first.starting((0,)))
    world.executor.start(first.id)  # its job holds GPU 0; run-svc died before saving RUNNING
    await world.scheduler.recover()
    await world.scheduler.tick()
    assert await world.status("second") is RunStatus.WAITING_FOR_GPUS
    assert world.executor.submitted == []


async def test_a_stop_during_the_watch_still_ends_stopped() -> None:
    world = await fake_world()
    await _submit(world, a_spec("race"))
    await world.scheduler.tick()

    async def stop_now(run_id: str) -> None:
        await world.runs.stop(ALICE, "race")  # SIGTERM: the fake job exits with 143

    world.executor.on_status = stop_now
    await world.scheduler.tick()
    race = await world.run("race")
    assert (race.status, race.exit_code) == (RunStatus.STOPPED, SIGTERM_EXIT)
    assert world.event_names("race") == ["RunSubmitted", "RunStarted", "RunStopped"]


async def test_the_last_metrics_before_exit_are_kept() -> None:
    world = await fake_world()
    await _submit(world, a_spec("last"))
    await world.scheduler.tick()

    async def print_and_exit(run_id: str) -> None:
        world.executor.log_metrics(run_id, ("accuracy", 0.97, 1))  # the script's last line…
        world.executor.exit(run_id, 0)  # …then it exits

    world.executor.on_status = print_and_exit
    await world.scheduler.tick()
    await world.scheduler.tick()
    last = await world.run("last")
    assert (last.status, last.metrics) == (RunStatus.COMPLETE, {"accuracy": 0.97})


async def _until(world: World, name: str, status: RunStatus) -> None:
    """Wait (10 s at most) until the run has ``status``."""
    async with asyncio.timeout(10):
        while await world.status(name) is not status:  # noqa: ASYNC110 - the store has no change feed
            await asyncio.sleep(0.01)


async def test_a_job_that_exits_wakes_the_scheduler_as_in_production() -> None:
    """``compose`` connects the executor's exit to the scheduler: with its next tick an hour away,
    only that wake can end the run."""
    world = await fake_world()
    world.scheduler.interval = 3600.0
    loop = asyncio.create_task(world.scheduler.run_forever())
    try:
        run = await world.runs.submit(ALICE, a_spec("quick"))  # the submit wakes it: the run starts
        await _until(world, "quick", RunStatus.RUNNING)
        world.executor.exit(run.id, 0)
        await _until(world, "quick", RunStatus.COMPLETE)
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    assert world.event_names("quick") == ["RunSubmitted", "RunStarted", "RunCompleted"]


async def _wait_until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Let the scheduler's background builds run until ``condition`` holds (a deadline of 5 s)."""
    async with asyncio.timeout(5):
        while not await condition():  # noqa: ASYNC110 - the builds are tasks on this loop: yield to them
            await asyncio.sleep(0)


async def test_a_first_use_builds_the_environment_while_other_runs_start() -> None:
    world = await fake_world(slots=2)
    world.repos.add_image("sklearn-1.5", ("scikit-learn==1.5.*",), framework="sklearn",
                          framework_version="1.5")
    world.executor.build_gate = asyncio.Event()
    await _submit(world, a_spec("first", framework="sklearn"), a_spec("plain"))

    await world.scheduler.tick()
    first = await world.run("first")
    assert (first.status, first.status_reason) == (RunStatus.STARTING,
                                                   "building environment sklearn-1.5 (first use)")
    assert await world.status("plain") is RunStatus.RUNNING  # the build holds no one else up
    assert world.executor.submitted_names() == ["plain"]

    world.executor.build_gate.set()

    async def started() -> bool:
        return await world.status("first") is RunStatus.RUNNING
    await _wait_until(started)
    assert (await world.run("first")).status_reason == ""
    assert world.executor.builds == ["sklearn-1.5"]
    assert world.executor.submitted[-1].environment is not None
    assert world.executor.submitted[-1].environment.requirements == ("scikit-learn==1.5.*",)

    # The next run of that image starts at once: no second build.
    await world.runs.submit(ALICE, a_spec("second", framework="sklearn"))
    world.executor.exit(world.executor.jobs[(await world.run("plain")).id].run_id, 0)
    await world.scheduler.tick()
    assert await world.status("second") is RunStatus.RUNNING
    assert world.executor.builds == ["sklearn-1.5"]


async def test_an_environment_that_cannot_be_built_ends_the_run_with_why() -> None:
    world = await fake_world()
    world.repos.add_image("broken", ("nosuchpackage==1",))
    world.executor.build_errors["broken"] = EnvironmentFailed(
        "No solution found: nosuchpackage==1 was not found")
    await _submit(world, a_spec("r", image="broken"))
    await world.scheduler.tick()

    async def ended() -> bool:
        return (await world.status("r")).final
    await _wait_until(ended)
    run = await world.run("r")
    assert (run.status, run.status_reason) == (
        RunStatus.ERROR, "its environment broken could not be built: No solution found: nosuchpackage==1 was "
                         "not found")
    assert world.executor.submitted_names() == []
    assert [e.name for e in world.events(events_pb2.RunFailed)] == ["r"]


async def test_a_run_stopped_while_its_environment_builds_ends_at_once_and_never_starts() -> None:
    world = await fake_world()
    world.repos.add_image("slow", ("pandas",))
    world.executor.build_gate = asyncio.Event()
    await _submit(world, a_spec("r", image="slow"))
    await world.scheduler.tick()
    assert (await world.run("r")).building

    stopped = await world.runs.stop(ALICE, "r")
    assert (stopped.status, stopped.status_reason) == (RunStatus.STOPPED, "stopped before it started")
    world.executor.build_gate.set()
    await _wait_until(lambda: _no_builds(world))
    assert world.executor.submitted_names() == []
    assert await world.status("r") is RunStatus.STOPPED
    _once_each(world, "r")


async def _no_builds(world: World) -> bool:
    return not world.scheduler._builds


async def test_a_restart_during_a_build_queues_the_run_again() -> None:
    world = await fake_world()
    world.repos.add_image("slow", ("pandas",))
    world.executor.build_gate = asyncio.Event()
    await _submit(world, a_spec("r", image="slow"))
    await world.scheduler.tick()
    assert (await world.run("r")).building

    await world.restarted().scheduler.recover()
    run = await world.run("r")
    assert (run.status, run.status_reason) == (RunStatus.QUEUED, "run-svc restarted while starting it")
