"""The run: what a user asked to execute, and where it is in its lifecycle.

A run is submitted (queued), waits for GPUs when it needs more than are free, starts, runs, and
ends complete, failed or stopped. Its inputs are pinned versions shown read-only at mount paths;
its outputs are repos whose next version is what the run left in its output directories.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from shipyard.kit.errors import FailedPrecondition, InvalidArgument
from shipyard.kit.rules import check_abs_path, check_name, check_text, refuse_under

COMMAND_MAX = 10_000
DESCRIPTION_MAX = 4000
TAGS_MAX = 32
HYPERPARAMETERS_MAX = 256
HYPERPARAMETER_VALUE_MAX = 4096
CONFIG_MAX = 1 << 20
GPUS_MAX = 64
WORKERS_MAX = 1024
PRIORITY_MAX = 100
# Where a run may not see inputs and outputs: the system's own directories (and /tmp, the run's own
# scratch space). Anything else goes: training code written for such platforms reads /titanic, /mnist,
# /mnt/data, /opt/ml/input/data/train …
SYSTEM_PATHS = ("/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                "/libx32", "/boot", "/run", "/var", "/tmp")
BUILDING = "building environment"  # a starting run's reason while its environment is built
# Variables the run contract sets; a hyperparameter may not shadow them.
RESERVED_PREFIX = "SHIPYARD_"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
REPO_KINDS = ("dataset", "featureset", "model")


class RunKind(Enum):
    """What a run is for, which decides what its outputs may be."""

    TRAINING = "training"
    PREPROCESSING = "preprocessing"
    EVALUATION = "evaluation"
    TRIAL = "trial"  # a hyperparameter study's trial: started by its study, never submitted


OUTPUT_KINDS: dict[RunKind, tuple[str, ...]] = {
    RunKind.TRAINING: ("model",),
    RunKind.PREPROCESSING: ("dataset", "featureset"),
    RunKind.EVALUATION: ("dataset",),
    RunKind.TRIAL: REPO_KINDS,  # its study's outputs, whatever the study's kind
}


class Distribution(Enum):
    """GPU distribution across a cluster's nodes (the product's "Distributed workloads")."""

    NONE = "none"  # one node with the run's GPUs
    AUTOMATIC = "automatic"  # the run's GPUs in all, placed as the cluster's scheduler sees fit
    MANUAL = "manual"  # a master and ``workers`` workers, each on its node with the run's GPUs

    @property
    def distributed(self) -> bool:
        """Whether the run spreads over nodes."""
        return self is not Distribution.NONE


class RunStatus(Enum):
    """The statuses the console's Status column shows."""

    QUEUED = "queued"
    WAITING_FOR_GPUS = "waiting-for-gpus"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ERROR = "error"  # the platform could not run it; FAILED is the command's own failure

    @property
    def final(self) -> bool:
        """Whether the run has ended for good."""
        return self in (RunStatus.COMPLETE, RunStatus.FAILED, RunStatus.STOPPED, RunStatus.ERROR)


@dataclass(frozen=True)
class Input:
    """A version the run reads at ``mount_path``; version 0 until pinned at submit."""

    repo_kind: str
    repo: str
    mount_path: str
    version: int = 0
    manifest_digest: str = ""  # set when pinned
    repo_id: str = ""  # set when pinned: lineage follows the repo through renames

    @property
    def label(self) -> str:
        """``digits@2`` (``digits`` before it is pinned)."""
        return f"{self.repo}@{self.version}" if self.version else self.repo


@dataclass(frozen=True)
class OutputTarget:
    """A repo whose next version the run writes; ``mount_path`` "" = the SHIPYARD_OUTPUT directory."""

    repo_kind: str
    repo: str
    mount_path: str = ""
    repo_id: str = ""  # set at submit: the repo the owner was allowed to write, whatever its name later


@dataclass(frozen=True)
class Environment:
    """What the run executes in, pinned at submit from the image catalog: the image at ``url`` on a
    cluster; on the local executor, the Python environment of ``python`` and ``requirements``, which
    ``digest`` identifies."""

    image: str
    url: str = ""
    python: str = ""
    requirements: tuple[str, ...] = ()
    digest: str = ""
    framework: str = ""
    framework_version: str = ""


@dataclass(frozen=True)
class RunSpec:
    """What the user asks for."""

    name: str
    kind: RunKind
    command: str
    project: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    framework: str = "custom"
    framework_version: str = ""
    image: str = ""
    inputs: tuple[Input, ...] = ()
    outputs: tuple[OutputTarget, ...] = ()
    hyperparameters: dict[str, str] = field(default_factory=dict)
    config_file_name: str = ""
    gpus: int = 0
    start_with_available: bool = False
    cluster: str = ""
    code: str = ""  # a code repo, checked out in the working directory
    commit: str = ""  # its commit; pinned at submit
    code_manifest: str = ""  # the files at that commit (set when pinned)
    priority: int = 0  # queued runs start by priority (higher first), then in submission order
    environment: Environment | None = None  # pinned at submit (None: submitted before images existed)
    time_limit: str = ""  # a cluster job's wall-clock limit, in Slurm's forms (see ``time_limit_seconds``)
    account: str = ""  # the cluster account a job is charged to
    distribution: Distribution = Distribution.NONE  # GPU distribution, on a cluster
    workers: int = 0  # manual distribution: workers beside the master, each with ``gpus`` GPUs

    @property
    def nodes(self) -> int:
        """Nodes a manually distributed run asks for (the master and its workers); 1 otherwise."""
        return self.workers + 1 if self.distribution is Distribution.MANUAL else 1

    @property
    def total_gpus(self) -> int:
        """GPUs the run asks for in all."""
        return self.gpus * self.nodes

    def checked(self, config_size: int = 0) -> RunSpec:
        """This spec, or InvalidArgument naming the first bad field."""
        check_name("run.name", self.name)
        if self.kind is RunKind.TRIAL:
            raise InvalidArgument("run.kind", "trials are started by their study: submit the study's run "
                                              "with a tuning file instead")
        if self.project:
            check_name("run.project", self.project)
        if self.code:
            check_name("run.code", self.code)
        check_text("run.commit", self.commit, 64, multiline=False)
        if not self.command.strip():
            raise InvalidArgument("run.command",
                                  "must not be empty: the start-up command, e.g. 'python train.py'")
        check_text("run.command", self.command, COMMAND_MAX)
        check_text("run.description", self.description, DESCRIPTION_MAX)
        _check_tags(self.tags)
        _check_hyperparameters(self.hyperparameters)
        if not -PRIORITY_MAX <= self.priority <= PRIORITY_MAX:
            raise InvalidArgument("run.priority", f"must be between {-PRIORITY_MAX} and {PRIORITY_MAX} "
                                                  f"(got {self.priority})")
        if not 0 <= self.gpus <= GPUS_MAX:
            raise InvalidArgument("run.gpus", f"must be between 0 and {GPUS_MAX} (got {self.gpus})")
        if config_size > CONFIG_MAX:
            raise InvalidArgument("config_file",
                                  f"must be at most {CONFIG_MAX >> 10} KiB (got {config_size:,} bytes)")
        if self.config_file_name:
            check_name("run.config_file_name", self.config_file_name)
        if self.image:
            check_name("run.image", self.image)
        _check_mounts(self.kind, self.inputs, self.outputs)
        if self.time_limit:
            time_limit_seconds(self.time_limit)
        if self.account:
            check_name("run.account", self.account)
        _check_distribution(self.distribution, self.workers)
        return self


_TIME_LIMIT = re.compile(r"(?:(?P<days>\d{1,4})-)?(?P<a>\d{1,6})(?::(?P<b>\d{1,2}))?(?::(?P<c>\d{1,2}))?")


def time_limit_seconds(text: str) -> int:
    """Seconds in a wall-clock limit written as Slurm's ``--time`` takes it: MM, MM:SS, HH:MM:SS,
    D-HH, D-HH:MM or D-HH:MM:SS; InvalidArgument on ``run.time_limit`` naming the forms otherwise."""
    match = _TIME_LIMIT.fullmatch(text)
    forms = "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 90, 2:00:00, 1-12)"
    if match is None:
        raise InvalidArgument("run.time_limit", f"{text[:40]!r} is not a time limit: use {forms}")
    days, a, b, c = (match[name] for name in ("days", "a", "b", "c"))
    if days is not None:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = int(a), int(b or 0), int(c or 0)
        total = ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
        parts_ok = hours < 24 and minutes < 60 and seconds < 60
    elif c is not None:  # HH:MM:SS
        total, parts_ok = (int(a) * 60 + int(b)) * 60 + int(c), int(b) < 60 and int(c) < 60
    elif b is not None:  # MM:SS
        total, parts_ok = int(a) * 60 + int(b), int(b) < 60
    else:  # MM
        total, parts_ok = int(a) * 60, True
    if not parts_ok or total == 0:
        raise InvalidArgument("run.time_limit", f"{text!r} is not a time limit: use {forms}, "
                                                "more than zero, minutes and seconds under 60")
    return total


def _check_distribution(distribution: Distribution, workers: int) -> None:
    if not 0 <= workers <= WORKERS_MAX:
        raise InvalidArgument("run.workers", f"must be between 0 and {WORKERS_MAX} (got {workers})")
    if distribution is Distribution.MANUAL and workers == 0:
        raise InvalidArgument("run.workers", "manual distribution needs the number of workers beside the "
                                             "master (--workers N)")
    if distribution is not Distribution.MANUAL and workers:
        raise InvalidArgument("run.workers", "workers are for manual distribution (--distributed manual)")


def _check_tags(tags: tuple[str, ...]) -> None:
    if len(tags) > TAGS_MAX:
        raise InvalidArgument("run.tags", f"at most {TAGS_MAX} tags (got {len(tags)})")
    for index, tag in enumerate(tags):
        check_name(f"run.tags[{index}]", tag)


def _check_hyperparameters(hyperparameters: dict[str, str]) -> None:
    if len(hyperparameters) > HYPERPARAMETERS_MAX:
        raise InvalidArgument("run.hyperparameters",
                              f"at most {HYPERPARAMETERS_MAX} (got {len(hyperparameters)})")
    for key, value in hyperparameters.items():
        field_name = f"run.hyperparameters[{key!r}]"
        if not _ENV_NAME.fullmatch(key):
            raise InvalidArgument(field_name, "the key must be a valid environment variable name "
                                              "(letters, digits and '_', not starting with a digit)")
        if key.upper().startswith(RESERVED_PREFIX):
            raise InvalidArgument(field_name, f"keys starting with {RESERVED_PREFIX} are the platform's")
        check_text(field_name, value, HYPERPARAMETER_VALUE_MAX, multiline=False)


def check_mount_path(field_name: str, path: str) -> str:
    """An absolute path other than '/' and outside the system's directories (SYSTEM_PATHS)."""
    check_abs_path(field_name, path)
    refuse_under(field_name, path, SYSTEM_PATHS)
    return path


def _check_mounts(kind: RunKind, inputs: tuple[Input, ...], outputs: tuple[OutputTarget, ...]) -> None:
    seen: dict[str, str] = {}

    def claim(field_name: str, path: str) -> None:
        check_mount_path(field_name, path)
        for other, owner in seen.items():
            if path == other or path.startswith(other + "/") or other.startswith(path + "/"):
                raise InvalidArgument(field_name, f"{path} overlaps {owner}'s mount path {other}")
        seen[path] = field_name

    for index, item in enumerate(inputs):
        field_name = f"run.inputs[{index}]"
        _check_repo(field_name, item.repo_kind, item.repo, REPO_KINDS)
        if item.version < 0:
            raise InvalidArgument(f"{field_name}.version", "must not be negative")
        claim(f"{field_name}.mount_path", item.mount_path)
    for index, target in enumerate(outputs):
        field_name = f"run.outputs[{index}]"
        _check_repo(field_name, target.repo_kind, target.repo, OUTPUT_KINDS[kind])
        if target.mount_path:
            claim(f"{field_name}.mount_path", target.mount_path)
    unnamed = [t for t in outputs if not t.mount_path]
    if len(unnamed) > 1:
        raise InvalidArgument("run.outputs",
                              "only one output may use SHIPYARD_OUTPUT; give the others mount paths")


def _check_repo(field_name: str, repo_kind: str, repo: str, kinds: tuple[str, ...]) -> None:
    if repo_kind not in kinds:
        raise InvalidArgument(f"{field_name}.repo_kind",
                              f"must be {' or '.join(kinds)} here (got {repo_kind!r})")
    check_name(f"{field_name}.repo", repo)


class TrialEnd(Enum):
    """Why a study's driver stopped one of its trials (kept on the trial: it decides the trial's state)."""

    EARLY_STOPPED = "EarlyStopped"  # the early-stopping rule judged it
    KILLED = "Killed"  # the study ended (goal reached, too many failures, stopped)


@dataclass(frozen=True)
class TrialOf:
    """What makes a run a trial of a hyperparameter study."""

    study: str  # the study's name (its run's)
    number: int  # 1, 2, … in the order the study started them
    assignment: dict[str, str]  # parameter name → value, as given to the trial
    keep_outputs: bool = False  # its outputs become versions (else only the study's best trial's do)
    stopped_by_study: TrialEnd | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # staged outputs kept here when not made versions
    reported: bool = False  # its TrialCompleted was emitted
    # What its files held (the File and TensorFlowEvent collectors): the only metrics the study reads then.
    collected: tuple[tuple[str, float], ...] = ()
    # How many observations each of those files held at the last read (domain.file_metrics): what was logged.
    file_counts: dict[str, int] = field(default_factory=dict)


def trial_name(study: str, number: int) -> str:
    """A trial's (and its run's) name: ``<study>-t<number>``, the number zero-padded to 3 digits."""
    return f"{study}-t{number:03d}"


@dataclass(frozen=True)
class Run:
    """A submitted run and where it is."""

    id: str
    spec: RunSpec
    owner: str
    create_time: datetime
    sequence: int  # submission order: queues drain by it
    # The owner's roles at submit: the outputs are written with them (repo-svc checks them again).
    owner_roles: tuple[str, ...] = ()
    status: RunStatus = RunStatus.QUEUED
    status_reason: str = ""
    exit_code: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    gpu_ids: tuple[int, ...] = ()  # the GPUs it was given
    # The sha256 of its API token's secret (domain.run_tokens), set at each start; "" when it has
    # none (never started, or stored before runs had tokens). The token works only while active.
    token_hash: str = ""
    # What it logged through MLflow's API: params (beside the hyperparameters given at submit) and
    # key-value tags (beside ``spec.tags``); how many artifact files it has.
    params: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    # The step and time (ms since the epoch) of each metric's latest value in ``metrics``.
    metric_marks: dict[str, tuple[int, int]] = field(default_factory=dict)
    artifact_count: int = 0
    external: bool = False  # started outside the platform (MLflow's start_run): never executed here
    tuning: bool = False  # a hyperparameter study: its trials run, it never does itself
    trial: TrialOf | None = None  # set on a study's trials
    revision: int = 0

    @property
    def study(self) -> str:
        """The study this run is a trial of ("" when it is none)."""
        return self.trial.study if self.trial is not None else ""

    @property
    def name(self) -> str:
        """The run's unique name."""
        return self.spec.name

    def waiting_for_gpus(self, reason: str) -> Run:
        """Queued behind GPUs that are in use."""
        return replace(self, status=RunStatus.WAITING_FOR_GPUS, status_reason=reason)

    def starting(self, gpu_ids: tuple[int, ...] = (), token_hash: str = "") -> Run:
        """Taken by the scheduler, with these GPUs and a new API token (its hash): inputs are
        being prepared."""
        return replace(self, status=RunStatus.STARTING, status_reason="", gpu_ids=gpu_ids,
                       token_hash=token_hash)

    def building_environment(self, image: str) -> Run:
        """Starting, its environment being built first (the image's first use on this executor)."""
        return replace(self, status_reason=f"{BUILDING} {image} (first use)")

    @property
    def building(self) -> bool:
        """Whether it is starting and waiting for its environment (no process of its own yet)."""
        return self.status is RunStatus.STARTING and self.status_reason.startswith(BUILDING)

    @property
    def active(self) -> bool:
        """Whether its process may be running (starting, running or stopping): its token works."""
        return self.status in (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.STOPPING)

    def running(self, now: datetime, notes: tuple[str, ...] = ()) -> Run:
        """The user's process is running (still stopping, if a stop came while it started)."""
        status = RunStatus.STOPPING if self.status is RunStatus.STOPPING else RunStatus.RUNNING
        return replace(self, status=status, status_reason="", start_time=now, notes=notes)

    def requeued(self, reason: str) -> Run:
        """Back in the queue: it was being started when run-svc stopped."""
        return replace(self, status=RunStatus.QUEUED, status_reason=reason)

    def stopping(self) -> Run:
        """Asked to stop; the process gets SIGTERM, then SIGKILL."""
        if self.status.final:
            raise FailedPrecondition(f"run {self.name!r} has already ended ({self.status.value})")
        return replace(self, status=RunStatus.STOPPING)

    def ended(self, status: RunStatus, now: datetime, reason: str = "", exit_code: int = 0) -> Run:
        """Complete, failed or stopped, for good."""
        assert status.final
        return replace(self, status=status, end_time=now, status_reason=reason, exit_code=exit_code)

    def output_not_kept(self, repo_kind: str, repo: str, reason: str) -> Run:
        """Told that an output got no version (repo-svc refused it as it was committed): a note, and the
        status reason beside the status, which stays — the run's code did complete, and what it
        logged is kept. The same refusal told again changes nothing."""
        note = f"output {repo_kind} {repo!r} was not kept: {reason}"
        if note in self.notes:
            return self
        status_reason = f"{self.status_reason}; {note}" if self.status_reason else note
        return replace(self, notes=(*self.notes, note), status_reason=status_reason)

    def with_points(self, points: Sequence[MetricPoint]) -> Run:
        """Each metric's latest value updated as MLflow decides which is latest: the highest step,
        then the latest time, then the highest value — not the last one logged (MLflow's log_model
        logs a run's metrics again, with their own steps and times)."""
        metrics, marks = dict(self.metrics), dict(self.metric_marks)
        millis = {when: int(when.timestamp() * 1000) for when in {p.time for p in points}}
        for point in points:
            mark = (point.step, millis[point.time])
            known = marks.get(point.name)
            if known is None or (mark, point.value) >= (known, metrics[point.name]):
                metrics[point.name], marks[point.name] = point.value, mark
        return replace(self, metrics=metrics, metric_marks=marks)

    def logged(self, params: dict[str, str], labels: dict[str, str], points: Sequence[MetricPoint]) -> Run:
        """With what one tracking call logged (checked by ``domain.tracking``)."""
        return replace(self, params={**self.params, **params},
                       labels={**self.labels, **labels}).with_points(points)


@dataclass(frozen=True)
class MetricPoint:
    """One value of one metric, as a run logged it."""

    name: str
    value: float
    step: int
    time: datetime


@dataclass(frozen=True)
class RunTemplate:
    """A run's settings under a name; its inputs and code follow their latest versions."""

    id: str
    name: str
    owner: str
    create_time: datetime
    spec: RunSpec
    description: str = ""
    revision: int = 0


def unpinned(spec: RunSpec) -> RunSpec:
    """The settings without the pins made at submit: inputs at their latest versions, code at its
    latest commit, the image as the catalog has it then."""
    return replace(spec, inputs=tuple(replace(i, version=0, manifest_digest="") for i in spec.inputs),
                   outputs=tuple(replace(o, repo_id="") for o in spec.outputs), commit="", code_manifest="",
                   environment=None)


def cloned(spec: RunSpec, name: str, hyperparameters: dict[str, str]) -> RunSpec:
    """The same settings (same pinned inputs and commit) under ``name``, hyperparameters changed."""
    return replace(spec, name=name, hyperparameters={**spec.hyperparameters, **hyperparameters})
