"""The ports run-svc's use cases depend on; adapters implement them, tests fake them."""

from __future__ import annotations

import abc
import builtins
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Protocol

from google.protobuf.message import Message

from shipyard.kit.caller import Caller
from shipyard_run.domain.runs import Run, RunKind, RunStatus, RunTemplate


@dataclass(frozen=True)
class RunFilter:
    """Which runs a list returns; empty fields do not filter."""

    project: str | None = None
    status: RunStatus | None = None
    kind: RunKind | None = None
    name_prefix: str = ""
    tag: str = ""


@dataclass(frozen=True)
class MetricPoint:
    """One value of one metric."""

    name: str
    value: float
    step: int
    time: datetime


class RunRepository(abc.ABC):
    """Runs in run-svc's store."""

    @abc.abstractmethod
    async def get(self, name: str) -> Run | None:
        """The run with that name."""

    @abc.abstractmethod
    async def by_id(self, run_id: str) -> Run | None:
        """The run with that id."""

    @abc.abstractmethod
    async def add(self, run: Run) -> Run:
        """Store a new run (revision 1); AlreadyExists when the name is taken."""

    @abc.abstractmethod
    async def save(self, run: Run) -> Run:
        """Store a change made on ``run.revision``; Aborted if someone changed it since."""

    @abc.abstractmethod
    async def remove(self, run: Run) -> None:
        """Delete the run as read at ``run.revision``; Aborted if it changed since."""

    @abc.abstractmethod
    async def list(self, where: RunFilter, after: tuple[int, str] | None, limit: int) -> list[Run]:
        """Runs newest first (by sequence) after the one with this (sequence, id)."""

    @abc.abstractmethod
    async def in_status(self, statuses: tuple[RunStatus, ...], limit: int) -> builtins.list[Run]:
        """Runs in any of these statuses, oldest first (the scheduler's queue)."""


class TemplateRepository(abc.ABC):
    """Run templates in run-svc's store."""

    @abc.abstractmethod
    async def get(self, name: str) -> RunTemplate | None:
        """The template with that name."""

    @abc.abstractmethod
    async def add(self, template: RunTemplate) -> RunTemplate:
        """Store a new template; AlreadyExists when the name is taken."""

    @abc.abstractmethod
    async def remove(self, template: RunTemplate) -> None:
        """Delete the template."""

    @abc.abstractmethod
    async def list(self) -> list[RunTemplate]:
        """Every template, by name."""


class MetricLog(abc.ABC):
    """Every metric point of every run."""

    @abc.abstractmethod
    async def append(self, run_id: str, points: list[MetricPoint]) -> None:
        """Add points to the run's series."""

    @abc.abstractmethod
    async def series(self, run_id: str) -> list[MetricPoint]:
        """The run's points in the order they were logged."""

    @abc.abstractmethod
    async def remove(self, run_id: str) -> None:
        """Forget the run's points."""


class RequestLog(Protocol):
    """Remembers which run a submit request made, for retried requests (the kit's
    ``StoredRequests`` is the adapter)."""

    async def resource_of(self, key: str) -> str | None:
        """The run name a request made, if it was seen."""

    async def remember(self, key: str, resource: str) -> None:
        """Record what the request made."""


class ConfigFiles(abc.ABC):
    """The configuration files uploaded with runs (kept apart: up to 1 MiB each)."""

    @abc.abstractmethod
    async def put(self, run_id: str, data: bytes) -> None:
        """Keep the run's file."""

    @abc.abstractmethod
    async def get(self, run_id: str) -> bytes:
        """The run's file (empty when it has none)."""

    @abc.abstractmethod
    async def remove(self, run_id: str) -> None:
        """Forget the run's file, if it has one."""


class UnitOfWork(Protocol):
    """One transaction over run-svc's repositories; emitted events are committed with it."""

    @property
    def runs(self) -> RunRepository:
        """Runs in this transaction."""

    @property
    def metrics(self) -> MetricLog:
        """Metric points in this transaction."""

    @property
    def requests(self) -> RequestLog:
        """Submit-request ids in this transaction."""

    @property
    def configs(self) -> ConfigFiles:
        """Configuration files (of runs and templates) in this transaction."""

    @property
    def templates(self) -> TemplateRepository:
        """Run templates in this transaction."""

    def emit(self, data: Message, subject: str, project: str) -> None:
        """Publish ``data`` as an event once the transaction commits."""


class UnitOfWorkFactory(Protocol):
    """Starts a unit of work: ``async with uow() as tx: ...``."""

    def __call__(self) -> AbstractAsyncContextManager[UnitOfWork]: ...


@dataclass(frozen=True)
class PinnedVersion:
    """A version as repo-svc knows it."""

    number: int
    manifest_digest: str
    repo_id: str = ""


@dataclass(frozen=True)
class PinnedCode:
    """A code repo at a commit, as repo-svc stored it."""

    commit: str  # the full sha
    manifest_digest: str


class RepoReader(abc.ABC):
    """Reads from repo-svc (by gRPC: it owns repos and versions)."""

    @abc.abstractmethod
    async def pin(self, caller: Caller, repo_kind: str, repo: str, version: int) -> PinnedVersion:
        """That version (0: the latest); NotFound or FailedPrecondition as repo-svc says."""

    @abc.abstractmethod
    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> PinnedCode:
        """The code repo's files at ``commit`` (empty: its latest), stored for the run."""

    @abc.abstractmethod
    async def check_write(self, caller: Caller, repo_kind: str, repo: str) -> str:
        """The repo's id, if it exists, is versioned and ``caller`` may write its next version
        (repo-svc decides); PermissionDenied, FailedPrecondition or NotFound naming it otherwise."""


class JobState(Enum):
    """Where an executor's job is."""

    NOT_STARTED = "not-started"  # nothing was started for the run (e.g. run-svc died while starting it)
    RUNNING = "running"
    EXITED = "exited"
    GONE = "gone"  # started once, now neither running nor did it leave an exit code
    NO_SPACE = "no-space"  # it ended on a full disk: its exit code (known or not) could not be recorded


@dataclass(frozen=True)
class JobStatus:
    """An executor's answer about one run's job."""

    state: JobState
    exit_code: int = 0
    detail: str = ""


@dataclass(frozen=True)
class JobInput:
    """A pinned input: its manifest, shown read-only at ``mount_path``."""

    mount_path: str
    manifest_digest: str


@dataclass(frozen=True)
class Job:
    """What an executor runs for a run (the run contract's inputs)."""

    run_id: str
    name: str
    command: str
    inputs: tuple[JobInput, ...] = ()
    output_paths: tuple[str, ...] = ()  # "" = the SHIPYARD_OUTPUT directory
    hyperparameters: dict[str, str] = field(default_factory=dict)
    config_file_name: str = ""
    config: bytes = b""
    gpus: tuple[int, ...] = ()
    code_manifest: str = ""  # the code checked out in the working directory
    api_token: str = ""  # the run's own API token (SHIPYARD_TOKEN), good while the run is active
    api_server: str = ""  # the gateway's gRPC address as runs reach it (SHIPYARD_SERVER)


class Executor(abc.ABC):
    """One kind of cluster: the local machine, Kubernetes, Slurm, LSF."""

    name: str

    @abc.abstractmethod
    def gpu_count(self) -> int:
        """GPUs this executor's group has."""

    @abc.abstractmethod
    def isolation_missing(self) -> str:
        """Why runs cannot be isolated from the platform and from each other here, in words an
        operator can act on; "" when every run is."""

    @abc.abstractmethod
    async def submit(self, job: Job) -> tuple[str, ...]:
        """Prepare the job's inputs and start it; notes for the user (e.g. how inputs are shown)."""

    @abc.abstractmethod
    async def status(self, run_id: str) -> JobStatus:
        """Where the run's job is now."""

    @abc.abstractmethod
    async def stop(self, run_id: str) -> None:
        """Ask the job to end (SIGTERM), then end it (SIGKILL) after a grace period."""

    @abc.abstractmethod
    async def read_logs(self, run_id: str, offset: int, max_bytes: int) -> bytes:
        """The job's output (stdout and stderr together) from ``offset``."""

    @abc.abstractmethod
    async def new_metrics(self, run_id: str) -> list[MetricPoint]:
        """Metric points logged since the last call (stdout ``name=value`` lines and the SDK's)."""

    @abc.abstractmethod
    async def stage_outputs(self, run_id: str) -> dict[str, str]:
        """Store the output directories in the blob store: mount path ("" for SHIPYARD_OUTPUT) →
        manifest digest."""

    @abc.abstractmethod
    async def start_tensorboard(self, run_id: str, run_name: str) -> str:
        """Serve the run's TensorBoard logs under /tensorboard/<run name>/; its address."""

    @abc.abstractmethod
    async def tensorboard_address(self, run_id: str) -> str | None:
        """Where the run's TensorBoard listens, or None when it does not run."""

    @abc.abstractmethod
    async def stop_tensorboard(self, run_id: str) -> None:
        """Stop the run's TensorBoard, if it runs."""

    @abc.abstractmethod
    async def remove(self, run_id: str) -> None:
        """Remove everything the run's job left (logs too), stopping its TensorBoard."""

    @abc.abstractmethod
    async def cleanup(self, run_id: str) -> None:
        """Remove what the job left behind except its logs."""
