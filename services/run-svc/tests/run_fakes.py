"""The executor fake, and the test world: run-svc composed by its own ``compose`` on it, the kit's
FakeRepoClient and TickingClock, and its real store adapters over the kit's in-memory store.

The executor fake runs nothing: ``submit`` marks the run's job RUNNING, and the test decides how it
ends (``exit``, ``vanish``, or ``stop``, which marks it exited as a SIGTERM would); like the local
executor, it tells ``on_exit`` when a job ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf.message import Message
from shipyard_run.adapters.store import COLLECTIONS, RunUnitOfWork
from shipyard_run.app.ports import Executor, Job, JobEnvironment, JobState, JobStatus, TrialSearch
from shipyard_run.app.runs import Runs
from shipyard_run.app.scheduler import Scheduler
from shipyard_run.app.templates import Templates
from shipyard_run.bootstrap import Adapters, RunService, compose
from shipyard_run.domain.clusters import Cluster, ClusterKind
from shipyard_run.domain.runs import MetricPoint, Run, RunKind, RunSpec, RunStatus
from shipyard_run.settings import RunSettings

from shipyard.kit.store.port import Page
from shipyard.kit.store.unit_of_work import REQUESTS
from shipyard.kit.testing import FakeRepoClient, RecordingUnitOfWorkFactory, TickingClock, memory_store

M = TypeVar("M", bound=Message)
T = TypeVar("T")
SIGTERM_EXIT = 143  # what a process ended by SIGTERM leaves as its exit code


Hook = Callable[[str], Awaitable[None]]


class FakeExecutor(Executor):
    """Runs nothing; remembers every call and reports what the test sets.

    ``submit`` records the job and marks it RUNNING (or raises what ``submit_errors`` holds for the
    run's name); ``exit``/``vanish`` end a job; ``stop`` records and marks a started job exited
    with SIGTERM_EXIT. ``on_submit``/``on_status`` run once, before the next such call, so a test
    can make something happen at that moment (a stop arriving, a last metric written).
    """

    name = "fake"

    def __init__(self, gpus: int = 0) -> None:
        self.boards: dict[str, str] = {}
        self.removed: list[str] = []
        self.gpus = gpus
        self.submitted: list[Job] = []
        self.jobs: dict[str, Job] = {}  # run id → its job
        self.states: dict[str, JobStatus] = {}
        self.stopped: list[str] = []
        self.cleaned: list[str] = []
        self.pending_metrics: dict[str, list[MetricPoint]] = {}
        self.staged: dict[str, dict[str, str]] = {}  # run id → what stage_outputs answers
        self.stage_error: Exception | None = None
        self.logs: dict[str, bytes] = {}
        self.run_files: dict[str, dict[str, bytes]] = {}  # run id → its working directory's files, by path
        self.submit_errors: dict[str, Exception] = {}  # run name → what submit raises
        self.on_submit: Hook | None = None
        self.on_status: Hook | None = None
        self.missing_isolation = ""  # why runs cannot be isolated ("": they are)
        self.on_exit: Callable[[], None] = lambda: None
        # Environments: those built (by digest), those whose build the test holds until it sets the
        # event, and what a build raises (by image).
        self.environments: set[str] = set()
        self.builds: list[str] = []
        self.build_gate: asyncio.Event | None = None
        self.build_errors: dict[str, Exception] = {}
        self.environment_logs: dict[str, bytes] = {}  # digest → what its build printed

    # What the test does to the jobs.

    def exit(self, run_id: str, code: int = 0) -> None:
        """The job's command ended with ``code``."""
        self.states[run_id] = JobStatus(JobState.EXITED, code)
        self.on_exit()

    def vanish(self, run_id: str, detail: str = "the machine restarted") -> None:
        """The job is no longer running and left no exit code."""
        self.states[run_id] = JobStatus(JobState.GONE, detail=detail)
        self.on_exit()

    def start(self, run_id: str) -> None:
        """A job that runs without this executor having been asked (started by an earlier run-svc)."""
        self.states[run_id] = JobStatus(JobState.RUNNING)

    def log_metrics(self, run_id: str, *points: tuple[str, float, int]) -> None:
        """Queue (name, value, step) points for the next ``new_metrics``."""
        when = datetime(2026, 1, 1, tzinfo=UTC)
        self.pending_metrics.setdefault(run_id, []).extend(
            MetricPoint(name, value, step, when + timedelta(seconds=step)) for name, value, step in points)

    def submitted_names(self) -> list[str]:
        """The names of the runs submitted, in order."""
        return [job.name for job in self.submitted]

    # The port.

    def gpu_count(self) -> int:
        return self.gpus

    def isolation_missing(self) -> str:
        return self.missing_isolation

    async def environment_ready(self, environment: JobEnvironment) -> bool:
        return environment.digest in self.environments or not environment.requirements

    async def build_environment(self, environment: JobEnvironment) -> None:
        self.builds.append(environment.image)
        if self.build_gate is not None:
            await self.build_gate.wait()
        if environment.image in self.build_errors:
            raise self.build_errors[environment.image]
        self.environments.add(environment.digest)

    async def read_environment_log(self, digest: str, offset: int, max_bytes: int) -> bytes:
        return self.environment_logs.get(digest, b"")[offset:offset + max_bytes]

    async def submit(self, job: Job) -> tuple[str, ...]:
        if self.on_submit is not None:
            hook, self.on_submit = self.on_submit, None
            await hook(job.run_id)
        if job.name in self.submit_errors:
            raise self.submit_errors[job.name]
        self.submitted.append(job)
        self.jobs[job.run_id] = job
        self.states[job.run_id] = JobStatus(JobState.RUNNING)
        return (f"ran by the fake executor as {job.run_id}",)

    async def status(self, run_id: str) -> JobStatus:
        if self.on_status is not None:
            hook, self.on_status = self.on_status, None
            await hook(run_id)
        return self.states.get(run_id, JobStatus(JobState.NOT_STARTED))

    async def stop(self, run_id: str) -> None:
        self.stopped.append(run_id)
        if self.states.get(run_id, JobStatus(JobState.NOT_STARTED)).state is JobState.RUNNING:
            self.states[run_id] = JobStatus(JobState.EXITED, SIGTERM_EXIT)
            self.on_exit()

    async def read_logs(self, run_id: str, offset: int, max_bytes: int) -> bytes:
        return self.logs.get(run_id, b"")[offset:offset + max_bytes]

    async def new_metrics(self, run_id: str) -> list[MetricPoint]:
        return self.pending_metrics.pop(run_id, [])

    async def read_run_files(self, run_id: str, path: str, max_bytes: int) -> dict[str, bytes] | None:
        files = self.run_files.get(run_id, {})
        return {name: data for name, data in files.items() if name == path or name.startswith(path + "/")}

    async def stage_outputs(self, run_id: str) -> dict[str, str]:
        if self.stage_error is not None:
            raise self.stage_error
        if run_id in self.staged:
            return dict(self.staged[run_id])
        return {path: f"sha256:staged-{run_id}-{path or 'output'}" for path in self.jobs[run_id].output_paths}

    async def cleanup(self, run_id: str) -> None:
        self.cleaned.append(run_id)

    async def remove(self, run_id: str) -> None:
        self.removed.append(run_id)

    async def start_tensorboard(self, run_id: str, run_name: str) -> str:
        self.boards[run_id] = f"127.0.0.1:{6000 + len(self.boards)}"
        return self.boards[run_id]

    async def tensorboard_address(self, run_id: str) -> str | None:
        return self.boards.get(run_id)

    async def stop_tensorboard(self, run_id: str) -> None:
        self.boards.pop(run_id, None)


class FakeCodeFiles:
    """Code snapshots' files by manifest digest, as the test wrote them (``add``)."""

    def __init__(self) -> None:
        self.snapshots: dict[str, dict[str, str]] = {}

    def add(self, manifest_digest: str, files: dict[str, str]) -> None:
        """The snapshot ``manifest_digest`` holds ``files`` (path → text)."""
        self.snapshots[manifest_digest] = dict(files)

    async def text_files(self, manifest_digest: str) -> dict[str, str]:
        return dict(self.snapshots.get(manifest_digest, {}))


class FakeClusterExecutors:
    """Opens a FakeExecutor per Slurm cluster (its GPUs the cluster's); other kinds are not served."""

    def __init__(self) -> None:
        self.opened: dict[str, FakeExecutor] = {}
        self.logins: set[tuple[str, str]] = set()  # (cluster, user) who signed in
        self.records: list[Cluster] = []  # each record an executor was opened from, in order

    def unsupported(self, cluster: Cluster) -> str:
        return "" if cluster.kind is ClusterKind.SLURM else f"no {cluster.kind.value} executor here"

    async def missing_login(self, cluster: Cluster, user: str) -> str:
        if cluster.login_required and (cluster.name, user) not in self.logins:
            return f"{user} has not signed in to {cluster.name}"
        return ""

    def open(self, cluster: Cluster) -> Executor:
        self.records.append(cluster)
        executor = self.opened.get(cluster.name)
        if executor is None:  # kept across a restart of run-svc, as a real cluster keeps its jobs
            executor = self.opened[cluster.name] = FakeExecutor(cluster.gpus)
            executor.name = f"slurm:{cluster.name}"
        return executor


@dataclass
class World:
    """run-svc as ``compose`` builds it, on the fakes and the in-memory store."""

    service: RunService
    uow: RecordingUnitOfWorkFactory[RunUnitOfWork]
    repos: FakeRepoClient
    executor: FakeExecutor
    clock: TickingClock
    settings: RunSettings
    files: FakeCodeFiles
    clusters: FakeClusterExecutors
    search: TrialSearch | None = None

    @property
    def runs(self) -> Runs:
        """The run use cases."""
        return self.service.runs

    @property
    def templates(self) -> Templates:
        """The template and clone use cases."""
        return self.service.templates

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler (its loop is not running: tests call ``tick`` and ``recover``)."""
        return self.service.scheduler

    def restarted(self) -> RunService:
        """run-svc composed again over the same store, executor and clock (a restart)."""
        adapters = Adapters(self.uow, self.repos, self.executor, self.files, self.clock,
                            clusters=self.clusters, search=self.search)
        self.service = compose(adapters, self.settings)
        return self.service

    async def run(self, name: str) -> Run:
        """The stored run (fails the test when there is none)."""
        async with self.uow() as uow:
            found = await uow.runs.get(name)
        assert found is not None, f"no run {name!r} stored"
        return found

    async def status(self, name: str) -> RunStatus:
        """The stored run's status."""
        return (await self.run(name)).status

    async def stored_runs(self) -> list[Run]:
        """Every stored run, in submission order."""
        async with self.uow() as uow:
            return await uow.runs.find(page=Page(order_by="sequence"))

    async def config_files(self) -> dict[str, bytes]:
        """Every stored configuration file, by the id of its run or template."""
        async with self.uow() as uow:
            return {file.id: file.data for file in await uow.configs.find()}

    async def requests(self) -> dict[str, str]:
        """Every recorded request key and the run it made."""
        async with self.uow() as uow:
            return {doc["_id"]: doc["resource"] for doc in await uow.txn.find(REQUESTS.name)}

    async def metric_points(self, run_id: str) -> list[MetricPoint]:
        """The run's stored metric points."""
        async with self.uow() as uow:
            return await uow.metrics.series(run_id)

    def events(self, kind: type[M], run: str | None = None) -> list[M]:
        """The committed events' data of one message type, of one run name when given."""
        return self.uow.messages(kind, _subject(run))

    def event_names(self, run: str | None = None) -> list[str]:
        """The committed events' message names in order, e.g. ['RunSubmitted', 'RunStarted']."""
        return self.uow.message_names(_subject(run))


def _subject(run: str | None) -> str | None:
    return f"runs/{run}" if run is not None else None


async def fake_world(gpus: int = 0, slots: int = 2, single_user: bool = False, api_server: str = "",
                     search: TrialSearch | None = None) -> World:
    """run-svc composed on fresh fakes: the use cases and the scheduler share the store, executor
    and clock, connected as in production (``search``: the studies' search algorithms, if any)."""
    uow = RecordingUnitOfWorkFactory(await memory_store(COLLECTIONS), RunUnitOfWork)
    repos, executor, clock = FakeRepoClient(), FakeExecutor(gpus), TickingClock()
    settings = RunSettings(local_run_slots=slots, single_user=single_user, public_grpc_addr=api_server)
    files, clusters = FakeCodeFiles(), FakeClusterExecutors()
    adapters = Adapters(uow, repos, executor, files, clock, clusters=clusters, search=search)
    service = compose(adapters, settings)
    return World(service, uow, repos, executor, clock, settings, files, clusters, search)


def a_spec(name: str, kind: RunKind = RunKind.TRAINING, **changes: Any) -> RunSpec:
    """A valid spec with no inputs or outputs; ``changes`` set other fields."""
    return RunSpec(**{"name": name, "kind": kind, "command": "python train.py", **changes})


def wait_for(condition: Callable[[], T], timeout: float, what: str) -> T:
    """What ``condition`` gives once it holds; fails after ``timeout`` seconds (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found
