"""Fakes of run-svc's ports other than the store (repo-svc's client, the executor, the clock), and the
test world: run-svc composed by its own ``compose`` on those fakes and its real store adapters over
the kit's in-memory store.

The executor fake runs nothing: ``submit`` marks the run's job RUNNING, and the test decides how it
ends (``exit``, ``vanish``, or ``stop``, which marks it exited as a SIGTERM would); like the local
executor, it tells ``on_exit`` when a job ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf.message import Message
from shipyard_run.adapters.store import COLLECTIONS, RunUnitOfWork
from shipyard_run.app.ports import Executor, Job, JobState, JobStatus
from shipyard_run.app.runs import Runs
from shipyard_run.app.scheduler import Scheduler
from shipyard_run.app.templates import Templates
from shipyard_run.bootstrap import Adapters, RunService, compose
from shipyard_run.domain.runs import MetricPoint, Run, RunKind, RunSpec, RunStatus
from shipyard_run.settings import RunSettings

from shipyard.kit.caller import Caller
from shipyard.kit.clients.repos import CodeSnapshot, RepoVersion
from shipyard.kit.errors import FailedPrecondition, NotFound, PermissionDenied
from shipyard.kit.store.port import Page
from shipyard.kit.store.unit_of_work import REQUESTS
from shipyard.kit.testing import RecordingUnitOfWorkFactory, memory_store

M = TypeVar("M", bound=Message)
SIGTERM_EXIT = 143  # what a process ended by SIGTERM leaves as its exit code


def digest_of(repo: str, number: int) -> str:
    """The fake manifest digest of a version."""
    return f"sha256:{repo}-v{number}"


class FakeRepoReader:
    """repo-svc as far as run-svc reads it: repos with numbered versions, some unversioned, each
    owned by someone (alice unless the test says otherwise)."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], dict[int, str]] = {}  # (kind, repo) → number → digest
        self.owners: dict[tuple[str, str], str] = {}
        self.unversioned: set[tuple[str, str]] = set()
        self.code: dict[str, list[tuple[str, str]]] = {}  # code repo → (commit, digest), oldest first
        self.calls: list[tuple[str, str, str, str, int]] = []  # (method, user, kind, repo, version)

    def add(self, repo_kind: str, repo: str, latest: int = 1, digest: str = "", owner: str = "alice") -> None:
        """A versioned repo with versions 1..latest; the latest has ``digest`` when given."""
        versions = {n: digest_of(repo, n) for n in range(1, latest + 1)}
        if digest and latest:
            versions[latest] = digest
        self.repos[repo_kind, repo] = versions
        self.owners[repo_kind, repo] = owner

    def add_unversioned(self, repo_kind: str, repo: str) -> None:
        """A repo that exists but keeps no versions (a run may not write it)."""
        self.repos[repo_kind, repo] = {}
        self.unversioned.add((repo_kind, repo))

    def add_code(self, repo: str, *commits: str) -> None:
        """A code repo with these full commit shas, the last the latest; commit i is stored as
        digest_of(repo, i) (from 1)."""
        self.code[repo] = [(sha, digest_of(repo, index + 1)) for index, sha in enumerate(commits)]

    def _versions(self, repo_kind: str, repo: str) -> dict[int, str]:
        if (repo_kind, repo) not in self.repos:
            raise NotFound(f"{repo_kind} {repo!r} not found")
        if (repo_kind, repo) in self.unversioned:
            raise FailedPrecondition(f"{repo_kind} {repo!r} is not versioned")
        return self.repos[repo_kind, repo]

    async def version(self, caller: Caller, repo_kind: str, repo: str, number: int) -> RepoVersion:
        self.calls.append(("version", caller.user, repo_kind, repo, number))
        versions = self._versions(repo_kind, repo)
        found = number or max(versions, default=0)
        if found not in versions:
            raise NotFound(f"{repo_kind} {repo}@{number or 'latest'} not found")
        return RepoVersion(found, versions[found], f"id-{repo_kind}-{repo}")

    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> CodeSnapshot:
        self.calls.append(("snapshot_code", caller.user, "code", repo, 0))
        if repo not in self.code:
            raise NotFound(f"code repo {repo!r} not found")
        for sha, digest in reversed(self.code[repo]):
            if not commit or sha.startswith(commit):
                return CodeSnapshot(sha, digest)
        raise NotFound(f"code repo {repo!r} has no commit {commit!r}")

    async def check_write(self, caller: Caller, repo_kind: str, repo: str) -> str:
        self.calls.append(("check_write", caller.user, repo_kind, repo, 0))
        self._versions(repo_kind, repo)
        owner = self.owners.get((repo_kind, repo), "alice")
        if caller.user != owner and not caller.has("operator"):
            raise PermissionDenied(f"{repo_kind} {repo!r} belongs to {owner!r}; only its owner or an "
                                   "operator may write its versions")
        return f"id-{repo_kind}-{repo}"


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
        self.submit_errors: dict[str, Exception] = {}  # run name → what submit raises
        self.on_submit: Hook | None = None
        self.on_status: Hook | None = None
        self.missing_isolation = ""  # why runs cannot be isolated ("": they are)
        self.on_exit: Callable[[], None] = lambda: None

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


class FakeClock:
    """A clock that moves one second forward on each reading."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class World:
    """run-svc as ``compose`` builds it, on the fakes and the in-memory store."""

    service: RunService
    uow: RecordingUnitOfWorkFactory[RunUnitOfWork]
    repos: FakeRepoReader
    executor: FakeExecutor
    clock: FakeClock
    settings: RunSettings

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
        self.service = compose(Adapters(self.uow, self.repos, self.executor, self.clock), self.settings)
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
        return [e.data for e in self.uow.published
                if isinstance(e.data, kind) and (run is None or e.subject == f"runs/{run}")]

    def event_names(self, run: str | None = None) -> list[str]:
        """The committed events' message names in order, e.g. ['RunSubmitted', 'RunStarted']."""
        return [m.DESCRIPTOR.name for m in self.events(Message, run)]


async def fake_world(gpus: int = 0, slots: int = 2, single_user: bool = False, api_server: str = "") -> World:
    """run-svc composed on fresh fakes: the use cases and the scheduler share the store, executor
    and clock, connected as in production."""
    uow = RecordingUnitOfWorkFactory(await memory_store(COLLECTIONS), RunUnitOfWork)
    repos, executor, clock = FakeRepoReader(), FakeExecutor(gpus), FakeClock()
    settings = RunSettings(local_run_slots=slots, single_user=single_user, public_grpc_addr=api_server)
    service = compose(Adapters(uow, repos, executor, clock), settings)
    return World(service, uow, repos, executor, clock, settings)


def a_spec(name: str, kind: RunKind = RunKind.TRAINING, **changes: Any) -> RunSpec:
    """A valid spec with no inputs or outputs; ``changes`` set other fields."""
    return RunSpec(**{"name": name, "kind": kind, "command": "python train.py", **changes})
