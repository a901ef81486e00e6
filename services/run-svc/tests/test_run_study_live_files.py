"""A study's File and TensorFlowEvent collectors while the trial runs, against fakes: its files read again
periodically, only what is new logged (never twice, across a restart too), what a rewritten file gives,
and early stopping (medianstop) on the values read from a trial's file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from run_fakes import World, a_spec, fake_world
from shipyard_run.adapters.local import files_stamp
from shipyard_run.adapters.study_search import StudySearch
from shipyard_run.app.ports import TrialSearch
from shipyard_run.domain.file_metrics import read_again
from shipyard_run.domain.runs import Input, OutputTarget, Run, RunStatus
from shipyard_run.domain.trials import TrialState

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.testing import ALICE

PATH = "/var/log/katib/metrics.log"
FILE_COLLECTOR = {"collector": {"kind": "File"}, "source": {"fileSystemPath": {"path": PATH, "kind": "File"}}}


def _tuning(**changes: Any) -> bytes:
    body: dict[str, Any] = {
        "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
        "algorithm": {"algorithmName": "random"}, "parallelTrialCount": 1, "maxTrialCount": 1,
        "parameters": [{"name": "lr", "parameterType": "double",
                        "feasibleSpace": {"min": "0.01", "max": "0.1"}}],
        "metricsCollectorSpec": FILE_COLLECTOR,
    }
    body.update(changes)
    return yaml.safe_dump(body).encode()


async def _world(search: TrialSearch | None = None) -> World:
    world = await fake_world(slots=8, search=search or StudySearch())
    world.repos.add("dataset", "digits", latest=3, digest="sha256:digits-latest")
    world.repos.add("model", "mnist")
    world.scheduler.trial_files_every = 0.0  # every tick: the test decides when a read happens
    return world


async def _started(world: World, data: bytes) -> list[Run]:
    spec = a_spec("tune", inputs=(Input("dataset", "digits", "/mnt/data"),),
                  outputs=(OutputTarget("model", "mnist", "/mnt/model"),))
    await world.runs.submit(ALICE, spec, tuning=data)
    await world.service.studies.tick()
    await world.scheduler.tick()  # starts the trials
    async with world.uow() as uow:
        return await uow.runs.of_study("tune")


def _write(world: World, trial: Run, text: str) -> None:
    world.executor.run_files[trial.id] = {PATH: text.encode()}


async def _logged(world: World, trial: Run) -> list[float]:
    return [point.value for point in await world.metric_points(trial.id)]


def _events(world: World, trial: Run) -> list[float]:
    return [point.value for event in world.events(events_pb2.RunMetricsLogged, trial.name)
            for point in event.values]


async def test_a_running_trials_file_is_read_again_and_only_its_new_lines_are_logged_once() -> None:
    world = await _world()
    (trial,) = await _started(world, _tuning())
    _write(world, trial, "accuracy=0.5\nloss=0.9\naccuracy=0.6\naccura")  # the last line is being written
    await world.scheduler.tick()
    assert await _logged(world, trial) == [0.5, 0.6]
    await world.scheduler.tick()  # nothing new: nothing logged
    _write(world, trial, "accuracy=0.5\nloss=0.9\naccuracy=0.6\naccuracy=0.7\n")
    await world.scheduler.tick()
    assert await _logged(world, trial) == [0.5, 0.6, 0.7]
    assert [(t.state, t.objective) for t in (await world.service.studies.get("tune")).trials] == [
        (TrialState.RUNNING, 0.7)]
    world.service = world.restarted()  # what was logged is counted on the run, not in run-svc
    world.scheduler.trial_files_every = 0.0
    _write(world, trial, "accuracy=0.5\nloss=0.9\naccuracy=0.6\naccuracy=0.7\naccuracy=0.8")
    await world.scheduler.tick()
    assert await _logged(world, trial) == [0.5, 0.6, 0.7]
    world.executor.exit(trial.id)
    await world.scheduler.tick()  # the read at exit takes the rest, a last line without its end included
    assert await _logged(world, trial) == _events(world, trial) == [0.5, 0.6, 0.7, 0.8]
    assert [p.step for p in await world.metric_points(trial.id)] == [1, 2, 3, 4]
    assert (await world.run(trial.name)).metrics == {"accuracy": 0.8}
    await world.service.studies.tick()
    state = await world.service.studies.get("tune")
    assert [(t.state, t.objective) for t in state.trials] == [(TrialState.SUCCEEDED, 0.8)]


async def test_a_rewritten_file_logs_what_differs_and_its_final_value_is_the_objective() -> None:
    world = await _world()
    (trial,) = await _started(world, _tuning(objective={"type": "maximize", "objectiveMetricName": "accuracy",
                                                        "metricStrategies": [{"name": "accuracy",
                                                                              "value": "latest"}]}))
    _write(world, trial, "accuracy=0.5\naccuracy=0.6\n")
    await world.scheduler.tick()
    _write(world, trial, "")  # truncated to be written again: nothing lost meanwhile
    await world.scheduler.tick()
    assert (await world.service.studies.get("tune")).trials[0].objective == 0.6
    _write(world, trial, "accuracy=0.5\naccuracy=0.6\naccuracy=0.65\n")  # written again, one more line
    await world.scheduler.tick()
    assert await _logged(world, trial) == [0.5, 0.6, 0.65]
    _write(world, trial, "accuracy=0.5\naccuracy=0.4\n")  # rewritten with other values
    await world.scheduler.tick()
    assert await _logged(world, trial) == [0.5, 0.6, 0.65, 0.4]
    world.executor.exit(trial.id)
    await world.scheduler.tick()
    await world.service.studies.tick()
    (view,) = (await world.service.studies.get("tune")).trials
    assert (view.state, view.objective) == (TrialState.SUCCEEDED, 0.4)  # the file's final value, once
    assert (await world.run(trial.name)).metrics == {"accuracy": 0.4}


async def test_a_file_cut_back_to_its_beginning_counts_as_it_was_left_at_exit() -> None:
    world = await _world()
    (trial,) = await _started(world, _tuning())
    _write(world, trial, "accuracy=0.5\naccuracy=0.9\n")
    await world.scheduler.tick()
    _write(world, trial, "accuracy=0.5\n")
    world.executor.exit(trial.id)
    await world.scheduler.tick()
    await world.service.studies.tick()
    (view,) = (await world.service.studies.get("tune")).trials
    assert view.objective == 0.5  # what the file holds: 0.9 was taken back
    assert await _logged(world, trial) == [0.5, 0.9]  # the log keeps what was read, nothing twice


async def test_a_trial_whose_file_stays_behind_is_early_stopped_by_medianstop() -> None:
    world = await _world()
    trials = await _started(world, _tuning(parallelTrialCount=4, maxTrialCount=4, earlyStopping={
        "algorithmName": "medianstop", "algorithmSettings": [{"name": "min_trials_required", "value": "3"},
                                                            {"name": "start_step", "value": "2"}]}))
    assert len(trials) == 4
    *good, slow = trials
    for trial in good:
        _write(world, trial, "accuracy=0.8\naccuracy=0.85\naccuracy=0.9\n")
        world.executor.exit(trial.id)
    _write(world, slow, "accuracy=0.1\n")
    await world.scheduler.tick()
    await world.service.studies.tick()
    assert world.executor.stopped == []  # one report: before start_step
    _write(world, slow, "accuracy=0.1\naccuracy=0.2\n")
    await world.scheduler.tick()  # read while it runs: the driver sees its second report
    await world.service.studies.tick()
    assert world.executor.stopped == [slow.id]
    await world.scheduler.tick()
    await world.service.studies.tick()
    states = [t.state for t in (await world.service.studies.get("tune")).trials]
    assert states == [TrialState.SUCCEEDED] * 3 + [TrialState.EARLY_STOPPED]
    assert (await world.run(slow.name)).status is RunStatus.STOPPED


def test_each_file_is_compared_with_what_it_held_and_the_kept_values_are_the_latest() -> None:
    first = read_again((), {}, {"/b": [("a", 1.0), ("a", 2.0)], "/a": [("c", 1.0)]}, False, 2)
    assert (first.collected, first.counts) == ((("a", 1.0), ("a", 2.0)), {"/a": 1, "/b": 2})
    assert first.new == (("c", 1.0), ("a", 1.0), ("a", 2.0))
    # /a grew, /b was not read this time (kept as it was), the oldest kept values no longer known agree.
    again = read_again(first.collected, first.counts, {"/a": [("c", 1.0), ("c", 2.0)]}, False, 2)
    assert (again.new, again.counts) == ((("c", 2.0),), {"/a": 2, "/b": 2})
    assert again.collected == (("a", 1.0), ("a", 2.0))
    grown = read_again(again.collected, again.counts, {"/b": [("a", 1.0), ("a", 2.0), ("a", 3.0)]}, True, 2)
    assert (grown.new, grown.collected) == ((("a", 3.0),), (("a", 2.0), ("a", 3.0)))


async def test_files_the_executor_says_are_unchanged_are_not_read_again_until_the_exit() -> None:
    world = await _world()
    (trial,) = await _started(world, _tuning())
    stamp, reads = ["one"], []
    read = world.executor.read_run_files

    async def stamped(run_id: str, path: str) -> str | None:
        return stamp[0]

    async def counted(run_id: str, path: str, max_bytes: int) -> dict[str, bytes] | None:
        reads.append(run_id)
        return await read(run_id, path, max_bytes)

    world.executor.run_files_stamp = stamped  # type: ignore[method-assign]
    world.executor.read_run_files = counted  # type: ignore[method-assign]
    _write(world, trial, "accuracy=0.5\n")
    await world.scheduler.tick()
    await world.scheduler.tick()
    assert len(reads) == 1
    stamp[0] = "two"
    await world.scheduler.tick()
    assert len(reads) == 2
    world.executor.exit(trial.id)
    await world.scheduler.tick()  # the exit's read always reads
    assert len(reads) == 3
    assert await _logged(world, trial) == [0.5]


def test_the_local_stamp_changes_with_the_files_and_follows_no_link(tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "log").mkdir(parents=True)
    (code / "log" / "metrics.log").write_text("accuracy=0.5\n")
    first = files_stamp(code, "/log")
    assert files_stamp(code, "/log") == first
    with (code / "log" / "metrics.log").open("a") as metrics:
        metrics.write("accuracy=0.6\n")
    assert files_stamp(code, "/log") != first
    (code / "linked").symlink_to(tmp_path)
    assert files_stamp(code, "/linked/code") == files_stamp(code, "/linked/elsewhere")
