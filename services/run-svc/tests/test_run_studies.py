"""Hyperparameter studies against fakes: submit checks, the driver's trials (names, commands, parallelism,
limits, goal, failures, metrics unavailable, early stopping), stop, the best trial's outputs, and a restart
in the middle of a decision."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from run_fakes import World, a_spec, fake_world
from shipyard_run.adapters.store import COLLECTIONS, StoredRuns
from shipyard_run.adapters.study_search import StudySearch
from shipyard_run.app.ports import RunFilter
from shipyard_run.app.studies import Studies
from shipyard_run.domain.clusters import Cluster, ClusterKind
from shipyard_run.domain.runs import Input, OutputTarget, Run, RunKind, RunStatus, TrialOf
from shipyard_run.domain.studies import Study, StudyStatus
from shipyard_run.domain.trials import ParameterValue, TrialHistory, TrialState
from shipyard_run.domain.tuning import TuningSpec

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from shipyard.kit.store.memory import MemoryDocumentStore
from shipyard.kit.store.sqlite import SQLiteDocumentStore
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER


class FakeSearch:
    """Suggests lr = 0.01·n and alternating optimizers, trial after trial (at most ``limit`` in all);
    early stopping stops the running trials numbered in ``early``; ``refused`` algorithms fail the check."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.early: list[int] = []
        self.refused: dict[str, str] = {}
        self.seeds: set[int] = set()

    def check(self, spec: TuningSpec) -> None:
        if spec.algorithm.name in self.refused:
            raise InvalidArgument("tuning.algorithm.algorithmName", self.refused[spec.algorithm.name])

    def suggest(self, spec: TuningSpec, history: Sequence[TrialHistory], count: int,
                seed: int) -> list[dict[str, ParameterValue]]:
        self.seeds.add(seed)
        done = len(history)
        if self.limit is not None:
            count = max(0, min(count, self.limit - done))
        values = next(p.space.values for p in spec.parameters if p.name == "optimizer")
        return [{"lr": round(0.01 * (done + i + 1), 4), "optimizer": values[(done + i) % len(values)]}
                for i in range(count)]

    def stop_early(self, spec: TuningSpec, history: Sequence[TrialHistory]) -> list[int]:
        return [h.number for h in history if h.number in self.early and h.state is TrialState.RUNNING]


def tuning(**changes: Any) -> bytes:
    """A product-form tuning file: maximize accuracy, 2 at a time, 4 in all."""
    body: dict[str, Any] = {
        "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
        "algorithm": {"algorithmName": "random"},
        "parallelTrialCount": 2, "maxTrialCount": 4,
        "parameters": [
            {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}},
            {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam"]}},
        ],
    }
    body.update(changes)
    return yaml.safe_dump(body).encode()


async def _world(search: FakeSearch | None = None, slots: int = 8) -> World:
    world = await fake_world(slots=slots, search=search or FakeSearch())
    world.repos.add("dataset", "digits", latest=3, digest="sha256:digits-latest")
    world.repos.add("model", "mnist")
    return world


def _studies(world: World) -> Studies:
    return world.service.studies


async def _submit(world: World, data: bytes | None = None, name: str = "tune", keep: bool = False,
                  **changes: Any) -> Run:
    spec = a_spec(name, inputs=(Input("dataset", "digits", "/mnt/data"),),
                  outputs=(OutputTarget("model", "mnist", "/mnt/model"),), **changes)
    return await world.runs.submit(ALICE, spec, tuning=data if data is not None else tuning(),
                                   keep_trial_outputs=keep)


async def _step(world: World) -> None:
    """The driver decides, the scheduler starts what it queued, and the driver looks again."""
    await _studies(world).tick()
    await world.scheduler.tick()
    await _studies(world).tick()


async def _trials(world: World, study: str = "tune") -> list[Run]:
    async with world.uow() as uow:
        return await uow.runs.of_study(study)


async def _study(world: World, name: str = "tune") -> Study:
    async with world.uow() as uow:
        found = await uow.studies.get(name)
    assert found is not None
    return found


def _running(world: World, trials: list[Run]) -> list[Run]:
    return [t for t in trials if t.status is RunStatus.RUNNING]


async def _finish_running(world: World, accuracy: dict[int, float | None], code: int = 0) -> None:
    """Each running trial reports its accuracy (None: nothing) and exits with ``code``."""
    for trial in _running(world, await _trials(world)):
        assert trial.trial is not None
        value = accuracy.get(trial.trial.number, 0.5)
        if value is not None:
            world.executor.log_metrics(trial.id, ("accuracy", value - 0.1, 1), ("accuracy", value, 2))
        world.executor.exit(trial.id, code)
    await world.scheduler.tick()
    await _step(world)


# ---- submit -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "field"), [
    (b"objective: [unclosed", "tuning"),
    (tuning(algorithm={"algorithmName": "simulated-annealing"}), "tuning.algorithm.algorithmName"),
    (tuning(parameters=[{"name": "lr", "parameterType": "double",
                         "feasibleSpace": {"min": "0.5", "max": "0.1"}}]),
     "tuning.parameters[0].feasibleSpace"),
    (tuning(parameters=[{"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {}}]),
     "tuning.parameters[0].feasibleSpace.list"),
    (tuning(metricsCollectorSpec={"collector": {"kind": "TensorFlowEvent"}}),  # no event reader here
     "tuning.metricsCollectorSpec.collector.kind"),
    (b"\xff\xfe not text", "tuning"),
])
async def test_a_bad_tuning_file_is_refused_naming_the_field_and_nothing_is_stored(data: bytes,
                                                                                    field: str) -> None:
    world = await _world()
    with pytest.raises(InvalidArgument) as refused:
        await _submit(world, data)
    assert refused.value.field is not None and refused.value.field.startswith(field), refused.value
    assert await world.stored_runs() == []
    assert world.uow.published == []
    async with world.uow() as uow:
        assert await uow.studies.active() == []


async def test_what_the_search_cannot_do_is_refused_by_it_naming_the_field() -> None:
    search = FakeSearch()
    search.refused["bayesianoptimization"] = "is not provided here"
    world = await _world(search)
    with pytest.raises(InvalidArgument) as refused:
        await _submit(world, tuning(algorithm={"algorithmName": "bayesianoptimization"}))
    assert refused.value.field == "tuning.algorithm.algorithmName"
    assert await world.stored_runs() == []


async def test_without_search_algorithms_a_study_is_refused() -> None:
    world = await fake_world()
    with pytest.raises(FailedPrecondition) as refused:
        await world.runs.submit(ALICE, a_spec("tune"), tuning=tuning())
    assert refused.value.field == "tuning"


async def test_a_study_name_leaves_room_for_its_trials_numbers_and_trials_cannot_be_submitted() -> None:
    world = await _world()
    with pytest.raises(InvalidArgument) as refused:
        await _submit(world, name="s" * 60)
    assert refused.value.field == "run.name"
    with pytest.raises(InvalidArgument) as kind:
        await world.runs.submit(ALICE, a_spec("t", kind=RunKind.TRIAL))
    assert kind.value.field == "run.kind"
    with pytest.raises(InvalidArgument) as keep:
        await world.runs.submit(ALICE, a_spec("plain"), keep_trial_outputs=True)
    assert keep.value.field == "keep_trial_outputs"


async def test_a_study_run_runs_at_once_and_never_goes_to_an_executor() -> None:
    world = await _world()
    run = await _submit(world)
    assert (run.status, run.tuning) == (RunStatus.RUNNING, True)
    study = await _study(world)
    assert (study.id, study.owner, study.status, study.next_trial) == (
        run.id, "alice", StudyStatus.CREATED, 0)
    assert study.spec["algorithm"] == {"algorithmName": "random"}
    (started,) = world.uow.messages(events_pb2.StudyStarted)
    assert (started.study, started.run_id, started.objective_metric, started.max_trial_count) == (
        "tune", run.id, "accuracy", 4)
    await world.scheduler.recover()
    await world.scheduler.tick()
    assert world.executor.submitted == []
    assert await world.status("tune") is RunStatus.RUNNING


# ---- trials -------------------------------------------------------------------------------------


async def test_trials_are_named_after_the_study_with_flags_appended_and_the_study_runs_settings() -> None:
    world = await _world()
    study_run = await _submit(world, hyperparameters={"epochs": "3"}, command="python train.py --fast")
    await _step(world)
    trials = await _trials(world)
    assert [t.name for t in trials] == ["tune-t001", "tune-t002"]  # parallelTrialCount
    first = trials[0]
    assert first.spec.kind is RunKind.TRIAL and first.study == "tune" and first.trial is not None
    assert first.trial.assignment == {"lr": "0.01", "optimizer": "sgd"}
    assert first.spec.command == "python train.py --fast --lr=0.01 --optimizer=sgd"
    assert first.spec.hyperparameters == {"epochs": "3", "lr": "0.01", "optimizer": "sgd"}
    assert first.spec.inputs == study_run.spec.inputs and first.spec.outputs == study_run.spec.outputs
    assert first.spec.environment == study_run.spec.environment
    assert [job.name for job in world.executor.submitted] == ["tune-t001", "tune-t002"]
    assert (await _study(world)).status is StudyStatus.RUNNING
    assert len(world.search.seeds) == 1  # type: ignore[union-attr]


async def test_a_categorical_value_cannot_inject_shell_into_a_trials_command() -> None:
    world = await _world()
    evil = "$(touch /tmp/pwned); rm -rf ~ `id`"
    await _submit(world, tuning(parameters=[
        {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": [evil, "adam"]}},
        {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}}]))
    await _step(world)
    command = (await _trials(world))[0].spec.command
    assert shlex.split(command) == ["python", "train.py", f"--optimizer={evil}", "--lr=0.01"]


async def test_at_most_parallel_trials_run_and_exactly_max_trial_count_start() -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    for _ in range(5):
        assert len([t for t in await _trials(world) if not t.status.final]) <= 2
        await _finish_running(world, {})
    trials = await _trials(world)
    assert [t.name for t in trials] == ["tune-t001", "tune-t002", "tune-t003", "tune-t004"]
    study = await _study(world)
    assert (study.status, study.reason, study.next_trial) == (StudyStatus.SUCCEEDED,
                                                              "ExperimentMaxTrialsReached", 4)


async def test_the_best_trials_outputs_become_the_study_runs_and_no_other_trials() -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    await _finish_running(world, {1: 0.7, 2: 0.9})
    await _finish_running(world, {3: 0.8, 4: 0.6})
    study = await _study(world)
    assert (study.status, study.best_trial) == (StudyStatus.SUCCEEDED, "tune-t002")
    trial_events = {e.name: e for e in world.uow.messages(events_pb2.RunCompleted) if e.name != "tune"}
    assert sorted(trial_events) == ["tune-t001", "tune-t002", "tune-t003", "tune-t004"]
    assert all(not e.outputs for e in trial_events.values())
    (completed,) = world.events(events_pb2.RunCompleted, "tune")
    best = await world.run("tune-t002")
    assert best.trial is not None
    assert best.trial.outputs == {"/mnt/model": f"sha256:staged-{best.id}-/mnt/model"}
    assert [(o.repo, o.manifest_digest) for o in completed.outputs] == [
        ("mnist", best.trial.outputs["/mnt/model"])]
    assert completed.metrics["accuracy"] == 0.9
    assert completed.params["lr"] == "0.02" and completed.params["optimizer"] == "adam"
    assert await world.status("tune") is RunStatus.COMPLETE
    (done,) = world.uow.messages(events_pb2.StudyCompleted)
    assert (done.status, done.reason, done.best_trial, done.best_objective, done.trials) == (
        "Succeeded", "ExperimentMaxTrialsReached", "tune-t002", 0.9, 4)
    assert dict(done.best_assignment) == {"lr": "0.02", "optimizer": "adam"}
    states = [e.state for e in world.uow.messages(events_pb2.TrialCompleted)]
    assert states == ["Succeeded"] * 4


async def test_kept_trial_outputs_become_versions_too() -> None:
    world = await _world()
    await _submit(world, keep=True)
    await _step(world)
    await _finish_running(world, {1: 0.7, 2: 0.9})
    trial_events = [e for e in world.uow.messages(events_pb2.RunCompleted) if e.name != "tune"]
    assert len(trial_events) == 2 and all(len(e.outputs) == 1 for e in trial_events)
    await _finish_running(world, {3: 0.5, 4: 0.6})
    (completed,) = world.events(events_pb2.RunCompleted, "tune")  # the study's own version too: the best's
    best = await world.run("tune-t002")
    assert [o.manifest_digest for o in completed.outputs] == [f"sha256:staged-{best.id}-/mnt/model"]


async def test_a_trial_reaching_the_goal_ends_the_study_and_kills_the_others() -> None:
    world = await _world()
    goal = {"type": "maximize", "objectiveMetricName": "accuracy", "goal": 0.95}
    await _submit(world, tuning(objective=goal))
    await _step(world)
    first, second = await _trials(world)
    world.executor.log_metrics(first.id, ("accuracy", 0.97, 1))
    world.executor.exit(first.id)
    await world.scheduler.tick()
    await _studies(world).tick()  # goal reached: the other trial is stopped
    assert world.executor.stopped == [second.id]
    await world.scheduler.tick()
    await _studies(world).tick()
    study = await _study(world)
    assert (study.status, study.reason, study.best_trial) == (StudyStatus.SUCCEEDED, "ExperimentGoalReached",
                                                              "tune-t001")
    state = await _studies(world).get("tune")
    assert [t.state for t in state.trials] == [TrialState.SUCCEEDED, TrialState.KILLED]
    assert study.next_trial == 2


async def test_max_failed_trials_fail_the_study_and_nothing_is_published() -> None:
    world = await _world()
    await _submit(world, tuning(maxFailedTrialCount=2))
    await _step(world)
    await _finish_running(world, {}, code=1)
    study = await _study(world)
    assert (study.status, study.reason) == (StudyStatus.FAILED, "ExperimentMaxFailedTrialsReached")
    assert await world.status("tune") is RunStatus.FAILED
    assert world.events(events_pb2.RunCompleted, "tune") == []
    (done,) = world.uow.messages(events_pb2.StudyCompleted)
    assert (done.status, done.best_trial) == ("Failed", "")


async def test_trials_without_the_objective_metric_are_metrics_unavailable_and_the_study_fails() -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    await _finish_running(world, {1: None, 2: None})
    await _finish_running(world, {3: None, 4: None})
    state = await _studies(world).get("tune")
    assert {t.state for t in state.trials} == {TrialState.METRICS_UNAVAILABLE}
    study = state.study
    assert (study.status, study.reason) == (StudyStatus.FAILED, "MetricsUnavailable")
    assert study.message == "no trial reported the objective metric accuracy"
    assert await world.status("tune") is RunStatus.FAILED


async def test_early_stopping_stops_the_trials_it_judges_as_early_stopped() -> None:
    search = FakeSearch()
    world = await _world(search)
    await _submit(world, tuning(earlyStopping={"algorithmName": "medianstop"}))
    await _step(world)
    first, _ = await _trials(world)
    search.early = [1]
    await _studies(world).tick()
    assert world.executor.stopped == [first.id]
    await world.scheduler.tick()
    await _step(world)
    state = await _studies(world).get("tune")
    assert state.trials[0].state is TrialState.EARLY_STOPPED
    assert [t.name for t in state.trials] == ["tune-t001", "tune-t002", "tune-t003"]  # its place taken
    (reported,) = world.uow.messages(events_pb2.TrialCompleted)
    assert (reported.name, reported.state) == ("tune-t001", "EarlyStopped")


async def test_the_search_running_out_ends_the_study() -> None:
    world = await _world(FakeSearch(limit=1))
    await _submit(world)
    await _step(world)
    await _finish_running(world, {1: 0.8})
    study = await _study(world)
    assert (study.status, study.reason, study.next_trial) == (StudyStatus.SUCCEEDED,
                                                              "ExperimentSuggestionEndReached", 1)


async def test_the_tick_that_finds_no_trial_left_to_run_completes_the_study() -> None:
    """Deciding the end with no trial left to stop completes the study in the same pass: the next tick can be
    a whole interval away, and nothing else wakes the driver then."""
    world = await _world()
    await _submit(world, tuning(maxTrialCount=2))
    await _step(world)
    for trial in _running(world, await _trials(world)):
        world.executor.log_metrics(trial.id, ("accuracy", 0.5, 1))
        world.executor.exit(trial.id, 0)
    await world.scheduler.tick()  # both trials end
    await _studies(world).tick()
    study = await _study(world)
    assert (study.status, study.reason) == (StudyStatus.SUCCEEDED, "ExperimentMaxTrialsReached")
    assert await world.status("tune") is RunStatus.COMPLETE


# ---- metrics collectors ---------------------------------------------------------------------------


async def test_a_stdout_collector_with_its_own_format_reads_the_trials_log() -> None:
    world = await _world()
    collector = {"collector": {"kind": "StdOut"},
                 "source": {"filter": {"metricsFormat": [r"([\w]+):\s*([\d.]+)"]}}}
    await _submit(world, tuning(maxTrialCount=2, metricsCollectorSpec=collector))
    await _step(world)
    first, second = await _trials(world)
    world.executor.logs[first.id] = b"epoch 1 accuracy: 0.5\nepoch 2 accuracy: 0.75\n"
    world.executor.logs[second.id] = b"accuracy=0.99 is not this format\n"
    for trial in (first, second):
        world.executor.exit(trial.id)
    await world.scheduler.tick()
    await _step(world)
    state = await _studies(world).get("tune")
    assert [(t.state, t.objective) for t in state.trials] == [(TrialState.SUCCEEDED, 0.75),
                                                               (TrialState.METRICS_UNAVAILABLE, None)]


async def test_a_file_collector_reads_the_trials_metrics_file_before_it_is_cleaned() -> None:
    world = await _world()
    collector = {"collector": {"kind": "File"},
                 "source": {"fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File"}}}
    await _submit(world, tuning(maxTrialCount=2, metricsCollectorSpec=collector))
    await _step(world)
    first, second = await _trials(world)
    metrics = b"accuracy=0.6\nloss=0.3\naccuracy=0.8\n"
    world.executor.run_files[first.id] = {"/var/log/katib/metrics.log": metrics}
    world.executor.log_metrics(first.id, ("accuracy", 0.95, 1))  # printed: not what the File collector reads
    for trial in (first, second):
        world.executor.exit(trial.id)
    await world.scheduler.tick()
    await _step(world)
    state = await _studies(world).get("tune")
    assert [(t.state, t.objective) for t in state.trials] == [(TrialState.SUCCEEDED, 0.8),
                                                               (TrialState.METRICS_UNAVAILABLE, None)]
    assert [p.value for p in await world.metric_points(first.id)] == [0.95, 0.6, 0.8]


@pytest.mark.parametrize("cluster", [
    Cluster("hpc", ClusterKind.SLURM, host="login", ssh_user="u", credential="k", work_dir="/w"),
    Cluster("hpc", ClusterKind.SLURM, ssh_user="u", credential="jwt", work_dir="/w",
            slurmrestd_url="http://slurm.example:6820"),
])
async def test_file_collectors_run_on_clusters_over_ssh_and_through_slurmrestd(cluster: Cluster) -> None:
    """(And on Kubernetes: the check no longer looks at the cluster; this fake world serves no Kubernetes.)"""
    world = await _world()
    await world.service.clusters.add(OPERATOR_CALLER, cluster)
    collector = {"collector": {"kind": "File"},
                 "source": {"fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File"}}}
    study = await _submit(world, tuning(metricsCollectorSpec=collector), cluster="hpc")
    assert study.tuning


@pytest.mark.parametrize(("collector", "path"), [
    ({"collector": {"kind": "File"},
      "source": {"fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File"}}},
     "/var/log/katib/metrics.log"),
    ({"collector": {"kind": "StdOut"}}, ""),
])
async def test_a_trials_job_names_the_path_its_study_reads_files_at(collector: dict[str, Any],
                                                                    path: str) -> None:
    """What executors that cannot reach a job's files (slurmrestd, Kubernetes) have the job send."""
    world = await _world()
    await _submit(world, tuning(maxTrialCount=2, metricsCollectorSpec=collector))
    await _step(world)
    trials = await _trials(world)
    assert [world.executor.jobs[trial.id].collector_path for trial in trials] == [path, path]


# ---- stop ---------------------------------------------------------------------------------------


async def test_only_the_owner_or_an_operator_stops_a_study() -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    with pytest.raises(PermissionDenied):
        await _studies(world).stop(BOB, "tune")
    with pytest.raises(PermissionDenied):
        await world.runs.stop(BOB, "tune")
    await _studies(world).stop(OPERATOR_CALLER, "tune")
    assert len(world.executor.stopped) == 2


async def test_stopping_a_study_kills_its_trials_and_commits_the_best_so_far() -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    first, second = await _trials(world)
    world.executor.log_metrics(first.id, ("accuracy", 0.8, 1))
    world.executor.exit(first.id)
    await world.scheduler.tick()
    await _studies(world).tick()  # a third trial takes its place
    await world.runs.stop(ALICE, "tune")  # the study's run: stops the study
    await world.scheduler.tick()
    await _studies(world).tick()
    state = await _studies(world).get("tune")
    assert (state.study.status, state.study.reason) == (StudyStatus.STOPPED, "Stopped")
    assert [t.state for t in state.trials] == [TrialState.SUCCEEDED, TrialState.KILLED, TrialState.KILLED]
    (completed,) = world.events(events_pb2.RunCompleted, "tune")
    assert first.trial is not None and completed.outputs[0].manifest_digest.endswith(f"{first.id}-/mnt/model")
    assert await world.status("tune") is RunStatus.COMPLETE
    assert second.id in world.executor.stopped


async def test_a_study_stopped_before_any_trial_succeeded_stops_its_run() -> None:
    world = await _world()
    await _submit(world)
    await _studies(world).tick()  # trials queued, not started
    await _studies(world).stop(ALICE, "tune")
    await _studies(world).tick()
    assert await world.status("tune") is RunStatus.STOPPED
    assert {t.status for t in await _trials(world)} == {RunStatus.STOPPED}
    assert world.events(events_pb2.RunStopped, "tune")


async def test_deleting_an_ended_studys_run_deletes_the_study() -> None:
    world = await _world()
    await _submit(world)
    await _studies(world).tick()
    await _studies(world).stop(ALICE, "tune")
    await _studies(world).tick()
    await world.runs.delete(ALICE, "tune")
    async with world.uow() as uow:
        assert await uow.studies.get("tune") is None
    assert (await _studies(world).list_page(None, 10, ""))[0] == []


async def test_deleting_an_ended_studys_run_deletes_every_trial_run_too() -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    trials = await _trials(world)
    world.executor.log_metrics(trials[0].id, ("accuracy", 0.8, 1))
    await _studies(world).stop(ALICE, "tune")
    await world.scheduler.tick()
    await _studies(world).tick()
    trials = await _trials(world)
    assert trials and all(t.status.final for t in trials)
    await world.runs.delete(ALICE, "tune")
    assert await _trials(world) == []
    async with world.uow() as uow:
        for trial in trials:
            assert await uow.runs.get(trial.name) is None
            assert await uow.metrics.series(trial.id) == []
    assert {t.id for t in trials} <= set(world.executor.removed)
    deleted = {e.name for e in world.events(events_pb2.RunDeleted)}
    assert deleted == {"tune", *(t.name for t in trials)}


async def test_an_active_studys_run_and_its_trials_cannot_be_deleted_until_it_ends() -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    first, _ = await _trials(world)
    with pytest.raises(FailedPrecondition, match="stop it"):
        await world.runs.delete(ALICE, "tune")
    world.executor.exit(first.id, 1)
    await world.scheduler.tick()
    with pytest.raises(FailedPrecondition, match=r"trial of study 'tune'.*once its study has ended"):
        await world.runs.delete(ALICE, first.name)  # ended, but its study goes on
    await _studies(world).stop(ALICE, "tune")
    await world.scheduler.tick()
    await _studies(world).tick()
    await world.runs.delete(ALICE, first.name)  # its study has ended: the trial alone may go
    assert first.name not in {t.name for t in await _trials(world)}
    assert await world.status("tune") is RunStatus.STOPPED


# ---- list ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_the_run_list_can_leave_trials_out_and_keeps_runs_stored_before_studies(
        store: str, tmp_path: Path) -> None:
    documents = MemoryDocumentStore() if store == "memory" else SQLiteDocumentStore(tmp_path / "store.db")
    await documents.open(COLLECTIONS)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    made = [Run(id=f"id{n:02d}", spec=a_spec(f"r{n:02d}"), owner="alice", create_time=when, sequence=n)
            for n in range(1, 13)]
    made[4] = replace(made[4], tuning=True)
    for n in (5, 6, 7, 9, 10):  # trials, among the newest and on the page boundary
        made[n] = replace(made[n], spec=a_spec(made[n].name, RunKind.TRIAL),
                          trial=TrialOf(study=made[4].name, number=n, assignment={}))
    async with documents.transaction() as txn:
        runs = StoredRuns(txn)
        for run in made:
            await runs.add(run)
        legacy = await txn.get("runs", "id01")
        assert legacy is not None
        del legacy["study"]  # a run stored before studies existed has no such field
        await txn.replace("runs", legacy, legacy["_rev"])
    shown: list[str] = []
    after: tuple[int, str] | None = None
    while True:
        async with documents.transaction() as txn:
            page = await StoredRuns(txn).list(RunFilter(exclude_trials=True), after, 3)
        shown += [run.name for run in page]
        if len(page) < 3:
            break
        after = (page[-1].sequence, page[-1].id)
    assert shown == ["r12", "r09", "r05", "r04", "r03", "r02", "r01"]
    async with documents.transaction() as txn:
        assert len(await StoredRuns(txn).list(RunFilter(), None, 100)) == 12
        assert await StoredRuns(txn).list(RunFilter(study="r05", exclude_trials=True), None, 100) == []
    await documents.close()


# ---- restart ------------------------------------------------------------------------------------


async def test_a_trial_whose_transaction_fails_is_not_half_made_and_a_restart_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    world = await _world()
    await _submit(world)
    real_add = StoredRuns.add
    calls = 0

    async def add_then_crash(self: StoredRuns, run: Run) -> Run:
        nonlocal calls
        calls += 1
        added = await real_add(self, run)
        if calls == 2:
            raise RuntimeError("run-svc killed mid-transaction")
        return added

    monkeypatch.setattr(StoredRuns, "add", add_then_crash)
    await _studies(world).tick()  # logged: the second trial's transaction failed
    monkeypatch.setattr(StoredRuns, "add", real_add)
    assert [t.name for t in await _trials(world)] == ["tune-t001"]
    assert (await _study(world)).next_trial == 1
    world.restarted()
    await _step(world)
    assert [t.name for t in await _trials(world)] == ["tune-t001", "tune-t002"]
    assert (await _study(world)).next_trial == 2
    for _ in range(3):
        await _finish_running(world, {})
    assert [t.name for t in await _trials(world)] == [f"tune-t00{n}" for n in range(1, 5)]
    assert (await _study(world)).status is StudyStatus.SUCCEEDED


@pytest.mark.parametrize("algorithm", ["random", "grid", "tpe", "bayesianoptimization"])
async def test_the_real_search_drives_a_study_to_its_end(algorithm: str) -> None:
    world = await fake_world(slots=8, search=StudySearch())
    world.repos.add("model", "mnist")
    lr = {"name": "lr", "parameterType": "double",
          "feasibleSpace": {"min": "0.01", "max": "0.05", "step": "0.01"}}
    optimizer = {"name": "optimizer", "parameterType": "categorical",
                 "feasibleSpace": {"list": ["sgd", "adam"]}}
    data = tuning(algorithm={"algorithmName": algorithm}, maxTrialCount=5, parameters=[lr, optimizer])
    await world.runs.submit(ALICE, a_spec("tune", outputs=(OutputTarget("model", "mnist"),)), tuning=data)
    await _step(world)
    for _ in range(5):
        await _finish_running(world, {n: 0.5 + n / 100 for n in range(1, 6)})
    state = await _studies(world).get("tune")
    assert state.study.status is StudyStatus.SUCCEEDED, state.study
    assert [t.number for t in state.trials] == [1, 2, 3, 4, 5]
    assignments = [tuple(sorted(t.assignment.items())) for t in state.trials]
    assert all(float(dict(a)["lr"]) in (0.01, 0.02, 0.03, 0.04, 0.05) for a in assignments)
    if algorithm == "grid":
        assert len(set(assignments)) == 5  # a grid never repeats a point


# ---- reading ------------------------------------------------------------------------------------


async def test_trials_sort_by_objective_or_a_metric_and_page() -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    await _finish_running(world, {1: 0.7, 2: 0.9})
    _, trials, token = await _studies(world).trials("tune", "objective", True, 1, "")
    assert [t.name for t in trials] == ["tune-t002"] and token
    _, rest, _ = await _studies(world).trials("tune", "accuracy", True, 10, token)
    assert [t.name for t in rest][:1] == ["tune-t001"]
    assert rest[0].metrics["accuracy"].min == pytest.approx(0.6)
    with pytest.raises(InvalidArgument) as refused:
        await _studies(world).trials("tune", "loss", False, 10, "")
    assert refused.value.field == "order_by"
    states, next_token = await _studies(world).list_page(None, 10, "")
    assert [s.study.name for s in states] == ["tune"] and next_token == ""
