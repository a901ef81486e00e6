"""Hyperparameter studies: a run submitted with a tuning file, and the trials it starts.

The study's record keeps only what its runs cannot tell: its spec, its status and reason (Katib's), how many
trials it started, and how it is to end once its last trials have stopped. Each trial is a run (kind trial);
its state is derived from the run (``trial_state``), so a restarted run-svc reads it back as it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

from shipyard.kit.errors import FailedPrecondition, InvalidArgument
from shipyard_run.domain.runs import MetricPoint, Run, RunStatus, TrialEnd
from shipyard_run.domain.trials import ParameterValue, TrialHistory, TrialState
from shipyard_run.domain.tuning import TuningSpec

# Katib's experiment reasons, and ours.
GOAL_REACHED = "ExperimentGoalReached"
MAX_TRIALS_REACHED = "ExperimentMaxTrialsReached"
SUGGESTION_END_REACHED = "ExperimentSuggestionEndReached"
MAX_FAILED_TRIALS_REACHED = "ExperimentMaxFailedTrialsReached"
METRICS_UNAVAILABLE = "MetricsUnavailable"  # no trial reported the objective metric
NO_TRIAL_SUCCEEDED = "NoTrialSucceeded"
STOPPED = "Stopped"
RESTARTING = "ExperimentRestarting"  # Katib's reason while a resumed experiment starts its new trials
RESUMABLE_POLICIES = ("LongRunning", "FromVolume")  # Katib's resumePolicy values that allow a restart
LIMITS = ("parallel_trial_count", "max_trial_count", "max_failed_trial_count")  # what UpdateStudy changes
TRIAL_NUMBER_SUFFIX = len("-t000")  # what a trial's name adds to its study's


class StudyStatus(Enum):
    """Katib's experiment conditions, and Stopped (a user stopped it)."""

    CREATED = "Created"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"

    @property
    def final(self) -> bool:
        """Whether the study has ended."""
        return self in (StudyStatus.SUCCEEDED, StudyStatus.FAILED, StudyStatus.STOPPED)


@dataclass(frozen=True)
class StudyEnd:
    """How a study is to end, decided while some of its trials still stop."""

    status: StudyStatus
    reason: str
    message: str


@dataclass(frozen=True)
class MetricSummary:
    """A watched metric's values in one trial."""

    min: float
    max: float
    latest: float


@dataclass(frozen=True)
class TrialView:
    """A trial as users see it: its run, its state, and its watched metrics."""

    run: Run
    number: int
    state: TrialState
    assignment: dict[str, str]
    metrics: dict[str, MetricSummary]
    objective: float | None

    @property
    def name(self) -> str:
        """The trial's (and its run's) name."""
        return self.run.name


@dataclass(frozen=True)
class Study:
    """A hyperparameter study: the run ``run_id`` (named ``name``) and the tuning file it was submitted with.

    ``tuning`` is the file as given (read again by the driver); ``spec`` is it normalized, as Katib writes
    an Experiment's spec. ``next_trial`` is the number of trials started: each trial's run is added in the
    transaction that increments it, so no trial is started twice nor forgotten.
    """

    id: str  # the study run's id
    name: str
    owner: str
    project: str
    tuning: str
    spec: dict[str, Any]
    seed: int
    create_time: datetime
    keep_trial_outputs: bool = False
    status: StudyStatus = StudyStatus.CREATED
    reason: str = ""
    message: str = ""
    next_trial: int = 0
    ending: StudyEnd | None = None
    best_trial: str = ""  # the optimal trial when it ended ("": none succeeded)
    completion_time: datetime | None = None
    revision: int = 0

    @property
    def active(self) -> bool:
        """Whether its driver still has work: starting trials, or ending."""
        return not self.status.final

    def started_trial(self) -> Study:
        """One more trial started (the study is then Running)."""
        return replace(self, next_trial=self.next_trial + 1, status=StudyStatus.RUNNING,
                       reason="ExperimentRunning", message="Experiment is running")

    def to_end(self, end: StudyEnd) -> Study:
        """To end as ``end`` once its trials have stopped (a first decision stands)."""
        return self if self.ending is not None else replace(self, ending=end)

    @property
    def limits(self) -> StudyLimits:
        """Its trial counts as its stored spec holds them (the tuning file's, or as UpdateStudy set them)."""
        return StudyLimits(self.spec["parallelTrialCount"], self.spec.get("maxTrialCount"),
                           self.spec.get("maxFailedTrialCount"))

    def with_limits(self, limits: StudyLimits) -> Study:
        """Its spec with these trial counts (the driver reads them from the spec at each decision)."""
        spec = {key: value for key, value in self.spec.items() if key not in ("maxTrialCount",
                                                                               "maxFailedTrialCount")}
        spec["parallelTrialCount"] = limits.parallel
        if limits.most is not None:
            spec["maxTrialCount"] = limits.most
        if limits.failed is not None:
            spec["maxFailedTrialCount"] = limits.failed
        return replace(self, spec=spec)

    def resumed(self, by: str) -> Study:
        """Back to Running after it Succeeded (maxTrialCount raised): its driver starts the trials the new
        limit allows and decides its end again."""
        return replace(self, status=StudyStatus.RUNNING, reason=RESTARTING,
                       message=f"Experiment is restarted: maxTrialCount raised to {self.limits.most} by {by}",
                       ending=None, completion_time=None)

    def ended(self, now: datetime, best_trial: str) -> Study:
        """Ended as decided, ``best_trial`` its optimal trial ("" when none)."""
        assert self.ending is not None
        end = self.ending
        return replace(self, status=end.status, reason=end.reason, message=end.message, best_trial=best_trial,
                       completion_time=now)


@dataclass(frozen=True)
class StudyLimits:
    """A study's trial counts (Katib's only editable fields): ``most`` None is no limit on trials, ``failed``
    None lets failed trials never fail the study."""

    parallel: int
    most: int | None
    failed: int | None


def check_fields(fields: Iterable[str]) -> None:
    """InvalidArgument unless ``fields`` are some of the limits UpdateStudy changes (and at least one)."""
    named = set(fields)
    if unknown := sorted(named - set(LIMITS)):
        raise InvalidArgument("update_mask", f"{', '.join(unknown)} cannot be changed: only "
                                             f"{', '.join(LIMITS)} may be (Katib's editable fields)")
    if not named:
        raise InvalidArgument("update_mask", f"names no field: give at least one of {', '.join(LIMITS)}")


def changed_limits(study: Study, changes: Mapping[str, int]) -> StudyLimits:
    """The study's limits with ``changes`` (UpdateStudy's fields → values) applied and checked: Katib's rules
    for a spec (parallel and failed at most maxTrialCount), and maxTrialCount above the trials started so
    far (Katib's webhook: greater than ``status.trials``)."""
    check_fields(changes)
    old = study.limits
    limits = StudyLimits(changes.get("parallel_trial_count", old.parallel),
                         changes.get("max_trial_count", old.most),
                         changes.get("max_failed_trial_count", old.failed))
    if limits.parallel <= 0:
        raise InvalidArgument("parallel_trial_count", f"must be greater than 0, not {limits.parallel}")
    if "max_trial_count" in changes and (limits.most or 0) <= study.next_trial:
        raise InvalidArgument("max_trial_count", f"must be greater than the {study.next_trial} trials "
                                                 f"started so far, not {limits.most}")
    if limits.failed is not None and limits.failed < 0:
        raise InvalidArgument("max_failed_trial_count", f"must not be less than 0, not {limits.failed}")
    if limits.most is not None and limits.parallel > limits.most:
        raise InvalidArgument("parallel_trial_count", f"{limits.parallel} must not exceed maxTrialCount "
                                                      f"({limits.most})")
    if limits.most is not None and limits.failed is not None and limits.failed > limits.most:
        raise InvalidArgument("max_failed_trial_count", f"{limits.failed} must not exceed maxTrialCount "
                                                        f"({limits.most})")
    return limits


def check_may_update(study: Study, resume_policy: str, changes: Mapping[str, int]) -> bool:
    """Whether the update resumes the study (it Succeeded); FailedPrecondition when the study cannot take
    it. As Katib: a running study takes any of the limits; an ended one only when it Succeeded by reaching
    maxTrialCount with resumePolicy LongRunning or FromVolume, and only by raising maxTrialCount."""
    if study.ending is not None and not study.status.final:
        raise FailedPrecondition(f"study {study.name!r} is ending ({study.ending.reason}): its limits no "
                                 "longer change anything")
    if not study.status.final:
        return False
    what = f"study {study.name!r} has ended ({study.status.value}, {study.reason})"
    if study.status is not StudyStatus.SUCCEEDED:
        raise FailedPrecondition(f"{what}: only a study that succeeded by reaching maxTrialCount resumes")
    if study.reason != MAX_TRIALS_REACHED:
        raise FailedPrecondition(f"{what}: only a study that ended by reaching maxTrialCount resumes, not "
                                 "one whose goal was reached or whose search space is exhausted")
    if resume_policy not in RESUMABLE_POLICIES:
        raise FailedPrecondition(f"{what}: its resumePolicy is {resume_policy}; only a study with "
                                 f"resumePolicy {' or '.join(RESUMABLE_POLICIES)} resumes")
    if "max_trial_count" not in changes:
        raise FailedPrecondition(f"{what}: raise max_trial_count to resume it")
    return True


def resumed_run(run: Run, by: str, trials: int) -> Run:
    """The study's run back to running when its study resumes: it completed with the best trial then; it
    completes again when the study ends again (a note says why it runs again)."""
    note = f"study resumed by {by}: maxTrialCount raised to {trials}"
    return replace(run, status=RunStatus.RUNNING, status_reason="", end_time=None, exit_code=0,
                   notes=(*run.notes, note))


def trial_state(run: Run, objective: float | None) -> TrialState:
    """A trial's Katib state, from its run's status and whether it reported the objective metric."""
    match run.status:
        case RunStatus.QUEUED | RunStatus.WAITING_FOR_GPUS | RunStatus.STARTING:
            return TrialState.CREATED
        case RunStatus.RUNNING | RunStatus.STOPPING:
            return TrialState.RUNNING
        case RunStatus.COMPLETE:
            return TrialState.SUCCEEDED if objective is not None else TrialState.METRICS_UNAVAILABLE
        case RunStatus.STOPPED:
            early = run.trial is not None and run.trial.stopped_by_study is TrialEnd.EARLY_STOPPED
            return TrialState.EARLY_STOPPED if early else TrialState.KILLED
    return TrialState.FAILED


def observations(points: Sequence[MetricPoint], watched: Sequence[str]) -> list[tuple[str, float]]:
    """The (metric, value) pairs of the watched metrics, in report order (finite values only)."""
    names = set(watched)
    return [(p.name, p.value) for p in points if p.name in names and math.isfinite(p.value)]


def trial_view(run: Run, spec: TuningSpec, reported: Sequence[tuple[str, float]]) -> TrialView:
    """The trial ``run`` with the watched metrics it ``reported`` (in report order)."""
    assert run.trial is not None
    series: dict[str, list[float]] = {}
    for name, value in reported:
        series.setdefault(name, []).append(value)
    metrics = {name: MetricSummary(min(values), max(values), values[-1]) for name, values in series.items()}
    objective = spec.objective_value(reported)
    return TrialView(run, run.trial.number, trial_state(run, objective), dict(run.trial.assignment), metrics,
                     objective)


def typed_assignment(spec: TuningSpec, assignment: Mapping[str, str]) -> dict[str, ParameterValue]:
    """An assignment as the search reads it: int and double parameters as numbers, the others as text."""
    typed: dict[str, ParameterValue] = {}
    for name, text in assignment.items():
        kind = spec.parameter(name).type if any(p.name == name for p in spec.parameters) else "categorical"
        typed[name] = int(float(text)) if kind == "int" else float(text) if kind == "double" else text
    return typed


def history_of(spec: TuningSpec, trial: TrialView, reported: Sequence[tuple[str, float]]) -> TrialHistory:
    """The trial as the search reads it: the objective's values so far as intermediate values."""
    steps = tuple((step, value) for step, (_, value) in
                  enumerate(r for r in reported if r[0] == spec.objective.metric))
    return TrialHistory(trial.number, typed_assignment(spec, trial.assignment), trial.state, trial.objective,
                        steps)


def best_of(spec: TuningSpec, trials: Sequence[TrialView]) -> TrialView | None:
    """The optimal trial: the succeeded one with the best objective (the earliest among equals)."""
    succeeded = [t for t in trials if t.state is TrialState.SUCCEEDED and t.objective is not None]
    if not succeeded:
        return None
    sign = 1.0 if spec.objective.type == "minimize" else -1.0
    return min(succeeded, key=lambda t: (sign * (t.objective or 0.0), t.number))


@dataclass(frozen=True)
class TrialCounts:
    """Trials per state."""

    counts: dict[TrialState, int] = field(default_factory=dict)

    @classmethod
    def of(cls, trials: Sequence[TrialView]) -> TrialCounts:
        counts: dict[TrialState, int] = {}
        for trial in trials:
            counts[trial.state] = counts.get(trial.state, 0) + 1
        return cls(counts)

    def __getitem__(self, state: TrialState) -> int:
        return self.counts.get(state, 0)

    @property
    def active(self) -> int:
        """Trials created or running."""
        return self[TrialState.CREATED] + self[TrialState.RUNNING]

    @property
    def failed(self) -> int:
        """Trials that count against maxFailedTrialCount (Katib: failed and metrics unavailable)."""
        return self[TrialState.FAILED] + self[TrialState.METRICS_UNAVAILABLE]


def end_by_failures(spec: TuningSpec, counts: TrialCounts) -> StudyEnd | None:
    """Failed when maxFailedTrialCount trials failed (Katib's rule: at least that many, and at least one)."""
    most = spec.max_failed_trial_count
    if most is None or counts.failed == 0 or counts.failed < most:
        return None
    return StudyEnd(StudyStatus.FAILED, MAX_FAILED_TRIALS_REACHED,
                    f"{counts.failed} trials failed or reported no {spec.objective.metric} "
                    f"(maxFailedTrialCount {most})")


def end_by_goal(spec: TuningSpec, best: TrialView | None) -> StudyEnd | None:
    """Succeeded when a succeeded trial reached the objective's goal."""
    if best is None or best.objective is None or not spec.goal_reached(best.objective):
        return None
    return StudyEnd(StudyStatus.SUCCEEDED, GOAL_REACHED,
                    f"trial {best.name} reached the goal: {spec.objective.metric} {best.objective:g}")


def end_when_done(spec: TuningSpec, counts: TrialCounts, exhausted: bool) -> StudyEnd:
    """How a study whose trials are all done ends: Succeeded when one succeeded, Failed saying why not."""
    reason = SUGGESTION_END_REACHED if exhausted else MAX_TRIALS_REACHED
    if counts[TrialState.SUCCEEDED]:
        what = "the search space is exhausted" if exhausted else "maxTrialCount trials ran"
        return StudyEnd(StudyStatus.SUCCEEDED, reason, f"Experiment has succeeded: {what}")
    ended = sum(counts.counts.values())
    if ended and counts[TrialState.METRICS_UNAVAILABLE] == ended:
        return StudyEnd(StudyStatus.FAILED, METRICS_UNAVAILABLE,
                        f"no trial reported the objective metric {spec.objective.metric}")
    return StudyEnd(StudyStatus.FAILED, NO_TRIAL_SUCCEEDED,
                    f"no trial succeeded ({counts.failed} failed or reported no {spec.objective.metric})")


def stopped_end(by: str) -> StudyEnd:
    """How a study a user stopped ends (its best trial so far still gives the outputs)."""
    return StudyEnd(StudyStatus.STOPPED, STOPPED, f"Experiment was stopped by {by}")
