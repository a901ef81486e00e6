"""Changing a study's limits while it runs, and resuming a Succeeded one (Katib's resumePolicy), against
fakes: who may, what may change and to what, how the driver honours the new limits at once, the study run
and its versions at a resumed study's second end, and limits that survive a restart."""

from __future__ import annotations

import json
from typing import Any

import pytest
from run_fakes import World
from shipyard_run.app.study_messages import study_to_proto
from shipyard_run.domain.runs import RunStatus
from shipyard_run.domain.studies import StudyStatus
from test_run_studies import _finish_running, _step, _studies, _study, _submit, _trials, _world, tuning

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER


async def _active(world: World) -> int:
    return len([t for t in await _trials(world) if not t.status.final])


async def _succeeded(world: World, policy: str = "LongRunning", **changes: Any) -> World:
    """A study of 2 trials, 2 at a time, that Succeeded by reaching maxTrialCount (t002 its best)."""
    await _submit(world, tuning(maxTrialCount=2, resumePolicy=policy, **changes))
    await _step(world)
    await _finish_running(world, {1: 0.7, 2: 0.8})
    study = await _study(world)
    assert (study.status, study.reason, study.best_trial) == (
        StudyStatus.SUCCEEDED, "ExperimentMaxTrialsReached", "tune-t002")
    return world


async def test_more_parallel_trials_start_at_once_and_the_stored_spec_shows_the_new_limits() -> None:
    world = await _world()
    await _submit(world, tuning(maxTrialCount=8))
    await _step(world)
    assert await _active(world) == 2
    state = await _studies(world).update(ALICE, "tune", {"parallel_trial_count": 4, "max_trial_count": 6,
                                                          "max_failed_trial_count": 1})
    assert state.study.spec["parallelTrialCount"] == 4 and state.study.spec["maxTrialCount"] == 6
    await _step(world)
    assert await _active(world) == 4
    shown = study_to_proto(await _studies(world).get("tune"))
    assert (shown.parallel_trial_count, shown.max_trial_count, shown.max_failed_trial_count) == (4, 6, 1)
    assert json.loads(shown.spec_json)["maxFailedTrialCount"] == 1
    (updated,) = world.uow.messages(events_pb2.StudyUpdated)
    assert (list(updated.changed_fields), updated.max_trial_count, updated.resumed, updated.actor.user) == (
        ["parallel_trial_count", "max_trial_count", "max_failed_trial_count"], 6, False, "alice")
    for _ in range(3):
        await _finish_running(world, {})
    assert [t.name for t in await _trials(world)] == [f"tune-t00{n}" for n in range(1, 7)]
    assert (await _study(world)).status is StudyStatus.SUCCEEDED


async def test_fewer_parallel_trials_let_the_running_ones_finish_and_start_none_until_below() -> None:
    world = await _world()
    await _submit(world, tuning(maxTrialCount=6))
    await _step(world)
    await _studies(world).update(ALICE, "tune", {"parallel_trial_count": 1})
    await _step(world)
    assert await _active(world) == 2 and world.executor.stopped == []
    await _finish_running(world, {})
    assert await _active(world) == 1
    assert len(await _trials(world)) == 3


async def test_a_lower_max_trial_count_ends_the_study_sooner_but_not_below_the_trials_started() -> None:
    world = await _world()
    await _submit(world, tuning(maxTrialCount=8))
    await _step(world)
    with pytest.raises(InvalidArgument) as refused:
        await _studies(world).update(ALICE, "tune", {"max_trial_count": 2})
    assert refused.value.field == "max_trial_count" and "2 trials started" in refused.value.problem
    await _studies(world).update(ALICE, "tune", {"max_trial_count": 3})
    for _ in range(3):
        await _finish_running(world, {})
    assert len(await _trials(world)) == 3
    assert (await _study(world)).reason == "ExperimentMaxTrialsReached"


@pytest.mark.parametrize(("changes", "field"), [
    ({"objective": 1}, "update_mask"),
    ({"name": 1, "max_trial_count": 9}, "update_mask"),
    ({}, "update_mask"),
    ({"parallel_trial_count": 0}, "parallel_trial_count"),
    ({"parallel_trial_count": 5}, "parallel_trial_count"),  # more than maxTrialCount (4)
    ({"max_failed_trial_count": -1}, "max_failed_trial_count"),
    ({"max_failed_trial_count": 5}, "max_failed_trial_count"),
    ({"max_trial_count": 0}, "max_trial_count"),
])
async def test_bad_limits_are_refused_naming_the_field_and_nothing_changes(changes: dict[str, int],
                                                                          field: str) -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    before = await _study(world)
    with pytest.raises(InvalidArgument) as refused:
        await _studies(world).update(ALICE, "tune", changes)
    assert refused.value.field == field
    if "objective" in changes:
        assert "objective" in refused.value.problem
    assert (await _study(world)).spec == before.spec
    assert world.uow.messages(events_pb2.StudyUpdated) == []


async def test_only_the_owner_or_an_operator_changes_a_studys_limits() -> None:
    world = await _world()
    await _submit(world)
    await _step(world)
    with pytest.raises(PermissionDenied):
        await _studies(world).update(BOB, "tune", {"parallel_trial_count": 1})
    assert (await _study(world)).spec["parallelTrialCount"] == 2
    state = await _studies(world).update(OPERATOR_CALLER, "tune", {"parallel_trial_count": 1})
    assert state.spec.parallel_trial_count == 1


@pytest.mark.parametrize("policy", ["LongRunning", "FromVolume"])
async def test_raising_max_trials_resumes_a_succeeded_study_and_a_better_trial_makes_a_new_version(
        policy: str) -> None:
    world = await _succeeded(await _world(), policy)
    (first,) = world.events(events_pb2.RunCompleted, "tune")
    assert len(first.outputs) == 1
    state = await _studies(world).update(ALICE, "tune", {"max_trial_count": 4})
    assert (state.study.status, state.study.reason) == (StudyStatus.RUNNING, "ExperimentRestarting")
    run = await world.run("tune")
    assert run.status is RunStatus.RUNNING and run.end_time is None
    assert run.notes[-1] == "study resumed by alice: maxTrialCount raised to 4"
    (updated,) = world.uow.messages(events_pb2.StudyUpdated)
    assert updated.resumed and updated.max_trial_count == 4
    await _step(world)
    assert [t.name for t in await _trials(world)] == [f"tune-t00{n}" for n in range(1, 5)]
    await _finish_running(world, {3: 0.95, 4: 0.6})
    study = await _study(world)
    assert (study.status, study.reason, study.best_trial, study.next_trial) == (
        StudyStatus.SUCCEEDED, "ExperimentMaxTrialsReached", "tune-t003", 4)
    assert await world.status("tune") is RunStatus.COMPLETE
    # The study run completes again with the new best's metrics; its first version stays its own.
    first_again, second = world.events(events_pb2.RunCompleted, "tune")
    assert first_again == first and second.outputs == [] and second.metrics["accuracy"] == 0.95
    best = await world.run("tune-t003")
    assert best.trial is not None
    made = [e for e in world.events(events_pb2.RunCompleted, "tune-t003") if e.outputs]
    assert [o.manifest_digest for o in made[0].outputs] == [best.trial.outputs["/mnt/model"]]
    completed = world.uow.messages(events_pb2.StudyCompleted)
    assert [(c.best_trial, c.trials) for c in completed] == [("tune-t002", 2), ("tune-t003", 4)]


async def test_a_resumed_study_whose_best_trial_stays_makes_no_new_version() -> None:
    world = await _succeeded(await _world())
    await _studies(world).update(OPERATOR_CALLER, "tune", {"max_trial_count": 3, "parallel_trial_count": 1})
    await _step(world)
    await _finish_running(world, {3: 0.5})
    assert (await _study(world)).best_trial == "tune-t002"
    assert [len(e.outputs) for e in world.events(events_pb2.RunCompleted, "tune")] == [1, 0]
    assert [e for e in world.uow.messages(events_pb2.RunCompleted) if e.name != "tune" and e.outputs] == []


async def test_a_never_study_does_not_resume() -> None:
    world = await _succeeded(await _world(), policy="Never")
    with pytest.raises(FailedPrecondition) as refused:
        await _studies(world).update(ALICE, "tune", {"max_trial_count": 4})
    assert "resumePolicy is Never" in str(refused.value)
    assert (await _study(world)).status is StudyStatus.SUCCEEDED
    assert await world.status("tune") is RunStatus.COMPLETE


async def test_the_default_resume_policy_is_never() -> None:
    world = await _world()
    await _submit(world, tuning(maxTrialCount=2))
    await _step(world)
    await _finish_running(world, {})
    with pytest.raises(FailedPrecondition, match="resumePolicy is Never"):
        await _studies(world).update(ALICE, "tune", {"max_trial_count": 4})


async def test_a_resumable_study_resumes_only_by_raising_max_trials() -> None:
    world = await _succeeded(await _world())
    with pytest.raises(FailedPrecondition, match="raise max_trial_count"):
        await _studies(world).update(ALICE, "tune", {"parallel_trial_count": 1})
    with pytest.raises(InvalidArgument) as refused:
        await _studies(world).update(ALICE, "tune", {"max_trial_count": 2})
    assert refused.value.field == "max_trial_count"
    assert (await _study(world)).status is StudyStatus.SUCCEEDED


async def test_a_study_that_reached_its_goal_failed_or_was_stopped_does_not_resume() -> None:
    goal = {"type": "maximize", "objectiveMetricName": "accuracy", "goal": 0.75}
    world = await _world()
    await _submit(world, tuning(resumePolicy="LongRunning", objective=goal))
    await _step(world)
    await _finish_running(world, {1: 0.8, 2: 0.5})
    assert (await _study(world)).reason == "ExperimentGoalReached"
    with pytest.raises(FailedPrecondition, match="goal was reached"):
        await _studies(world).update(ALICE, "tune", {"max_trial_count": 8})

    failed = await _world()
    await _submit(failed, tuning(resumePolicy="LongRunning", maxTrialCount=2))
    await _step(failed)
    await _finish_running(failed, {}, code=1)
    assert (await _study(failed)).status is StudyStatus.FAILED
    with pytest.raises(FailedPrecondition, match="only a study that succeeded"):
        await _studies(failed).update(ALICE, "tune", {"max_trial_count": 4})

    stopped = await _world()
    await _submit(stopped, tuning(resumePolicy="LongRunning"))
    await _step(stopped)
    await _studies(stopped).stop(ALICE, "tune")
    await _step(stopped)
    assert (await _study(stopped)).status is StudyStatus.STOPPED
    with pytest.raises(FailedPrecondition, match="only a study that succeeded"):
        await _studies(stopped).update(ALICE, "tune", {"max_trial_count": 8})


async def test_another_user_cannot_resume_a_study() -> None:
    world = await _succeeded(await _world())
    with pytest.raises(PermissionDenied):
        await _studies(world).update(BOB, "tune", {"max_trial_count": 4})
    assert (await _study(world)).status is StudyStatus.SUCCEEDED


async def test_new_limits_and_a_resume_survive_a_restart() -> None:
    world = await _succeeded(await _world())
    await _studies(world).update(ALICE, "tune", {"max_trial_count": 4, "parallel_trial_count": 1})
    world.restarted()
    await _step(world)
    assert await _active(world) == 1
    for _ in range(2):
        await _finish_running(world, {})
    assert len(await _trials(world)) == 4
    study = await _study(world)
    assert (study.status, study.next_trial, study.spec["maxTrialCount"]) == (StudyStatus.SUCCEEDED, 4, 4)
