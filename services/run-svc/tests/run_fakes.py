"""In-memory fakes of run-svc's ports (repositories, unit of work, repo-svc reader, executor, clock).

The fakes keep the adapters' contract: run names are unique, revisions start at 1 and bump on
each save, stale saves raise Aborted, and a unit of work is all-or-nothing — its changes and its
events are kept only when the ``async with`` block exits without an error.

The executor fake runs nothing: ``submit`` marks the run's job RUNNING, and the test decides how it
ends (``exit``, ``vanish``, or ``stop``, which marks it exited as a SIGTERM would).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from shipyard_run.app.ports import (
    ConfigFiles,
    Executor,
    Job,
    JobState,
    JobStatus,
    MetricLog,
    MetricPoint,
    PinnedCode,
    PinnedVersion,
    RepoReader,
    RequestLog,
    RunFilter,
    RunRepository,
    TemplateRepository,
)
from shipyard_run.app.runs import Runs
from shipyard_run.app.scheduler import Scheduler
from shipyard_run.domain.runs import Run, RunKind, RunSpec, RunStatus, RunTemplate

from shipyard.kit.caller import Caller
from shipyard.kit.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound, PermissionDenied

ALICE = Caller("alice", frozenset({"data-scientist"}))
BOB = Caller("bob", frozenset({"data-scientist"}))
OPERATOR = Caller("olga", frozenset({"operator"}))
SIGTERM_EXIT = 143  # what a process ended by SIGTERM leaves as its exit code


class FakeRunRepository(RunRepository):
    """Runs in a dict keyed by id, unique by name."""

    def __init__(self) -> None:
        self.rows: dict[str, Run] = {}

    async def get(self, name: str) -> Run | None:
        return next((r for r in self.rows.values() if r.name == name), None)

    async def by_id(self, run_id: str) -> Run | None:
        return self.rows.get(run_id)

    async def add(self, run: Run) -> Run:
        if run.id in self.rows or await self.get(run.name) is not None:
            raise AlreadyExists(f"a run named {run.name!r} exists already")
        self.rows[run.id] = replace(run, revision=1)
        return self.rows[run.id]

    async def save(self, run: Run) -> Run:
        current = self.rows.get(run.id)
        if current is None or current.revision != run.revision:
            raise Aborted(f"run {run.name!r} changed meanwhile; read it again")
        self.rows[run.id] = replace(run, revision=run.revision + 1)
        return self.rows[run.id]

    async def remove(self, run: Run) -> None:
        current = self.rows.get(run.id)
        if current is None or current.revision != run.revision:
            raise Aborted(f"run {run.name!r} changed meanwhile; read it again")
        del self.rows[run.id]

    async def list(self, where: RunFilter, after: tuple[int, str] | None, limit: int) -> builtins.list[Run]:
        found = [r for r in self.rows.values()
                 if (where.project is None or r.spec.project == where.project)
                 and (where.status is None or r.status is where.status)
                 and (where.kind is None or r.spec.kind is where.kind)
                 and r.name.startswith(where.name_prefix)
                 and (not where.tag or where.tag in r.spec.tags)]
        ordered = sorted(found, key=lambda r: (r.sequence, r.id), reverse=True)
        if after is not None:
            ordered = [r for r in ordered if (r.sequence, r.id) < after]
        return ordered[:limit]

    async def in_status(self, statuses: tuple[RunStatus, ...], limit: int) -> builtins.list[Run]:
        found = [r for r in self.rows.values() if r.status in statuses]
        return sorted(found, key=lambda r: (r.sequence, r.id))[:limit]


class FakeMetricLog(MetricLog):
    """Each run's points in a list (replaced, never mutated, so a rollback can restore it)."""

    def __init__(self) -> None:
        self.points: dict[str, list[MetricPoint]] = {}

    async def append(self, run_id: str, points: list[MetricPoint]) -> None:
        self.points[run_id] = [*self.points.get(run_id, []), *points]

    async def series(self, run_id: str) -> list[MetricPoint]:
        return list(self.points.get(run_id, []))

    async def remove(self, run_id: str) -> None:
        self.points.pop(run_id, None)


class FakeRequestLog(RequestLog):
    """Request keys and the run each one made."""

    def __init__(self) -> None:
        self.made: dict[str, str] = {}

    async def resource_of(self, key: str) -> str | None:
        return self.made.get(key)

    async def remember(self, key: str, resource: str) -> None:
        if key in self.made:
            raise AlreadyExists(f"request {key!r} is already recorded")
        self.made[key] = resource


class FakeConfigFiles(ConfigFiles):
    """Configuration files keyed by run id (one per run, as the store's unique _id makes it)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def put(self, run_id: str, data: bytes) -> None:
        if run_id in self.files:
            raise AlreadyExists(f"run {run_id} has a configuration file already")
        self.files[run_id] = data

    async def get(self, run_id: str) -> bytes:
        return self.files.get(run_id, b"")

    async def remove(self, run_id: str) -> None:
        self.files.pop(run_id, None)


class FakeTemplateRepository(TemplateRepository):
    """Templates keyed by name."""

    def __init__(self) -> None:
        self.rows: dict[str, RunTemplate] = {}

    async def get(self, name: str) -> RunTemplate | None:
        return self.rows.get(name)

    async def add(self, template: RunTemplate) -> RunTemplate:
        if template.name in self.rows:
            raise AlreadyExists(f"a template named {template.name!r} exists already")
        self.rows[template.name] = replace(template, revision=1)
        return self.rows[template.name]

    async def remove(self, template: RunTemplate) -> None:
        self.rows.pop(template.name, None)

    async def list(self) -> builtins.list[RunTemplate]:
        return [self.rows[name] for name in sorted(self.rows)]


@dataclass(frozen=True)
class Emitted:
    """One event a use case emitted: its data, subject and project."""

    data: Message
    subject: str
    project: str


class FakeUnitOfWork:
    """One transaction: the shared fake repositories plus the events emitted in it."""

    def __init__(self, factory: FakeUnitOfWorkFactory) -> None:
        self.runs = factory.runs
        self.metrics = factory.metrics
        self.requests = factory.requests
        self.configs = factory.configs
        self.templates = factory.templates
        self.events: list[Emitted] = []

    def emit(self, data: Message, subject: str, project: str) -> None:
        self.events.append(Emitted(data, subject, project))


@dataclass
class FakeUnitOfWorkFactory:
    """Starts fake units of work; ``published`` holds the events of committed ones only."""

    runs: FakeRunRepository = field(default_factory=FakeRunRepository)
    metrics: FakeMetricLog = field(default_factory=FakeMetricLog)
    requests: FakeRequestLog = field(default_factory=FakeRequestLog)
    configs: FakeConfigFiles = field(default_factory=FakeConfigFiles)
    templates: FakeTemplateRepository = field(default_factory=FakeTemplateRepository)
    published: list[Emitted] = field(default_factory=list)
    commits: int = 0
    rollbacks: int = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeUnitOfWork]:
        tables: list[dict[str, Any]] = [self.runs.rows, self.metrics.points, self.requests.made,
                                        self.configs.files, self.templates.rows]
        saved = [dict(table) for table in tables]
        uow = FakeUnitOfWork(self)
        try:
            yield uow
        except BaseException:
            for table, before in zip(tables, saved, strict=True):
                table.clear()
                table.update(before)
            self.rollbacks += 1
            raise
        self.published.extend(uow.events)
        self.commits += 1

    def events(self, kind: type[Message] | None = None, run: str | None = None) -> list[Message]:
        """The committed events' data, of one message type and/or one run name."""
        return [e.data for e in self.published
                if (kind is None or isinstance(e.data, kind))
                and (run is None or e.subject == f"runs/{run}")]

    def event_names(self, run: str | None = None) -> list[str]:
        """The committed events' message names in order, e.g. ['RunSubmitted', 'RunStarted']."""
        return [m.DESCRIPTOR.name for m in self.events(run=run)]


def digest_of(repo: str, number: int) -> str:
    """The fake manifest digest of a version."""
    return f"sha256:{repo}-v{number}"


class FakeRepoReader(RepoReader):
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

    async def pin(self, caller: Caller, repo_kind: str, repo: str, version: int) -> PinnedVersion:
        self.calls.append(("pin", caller.user, repo_kind, repo, version))
        versions = self._versions(repo_kind, repo)
        number = version or max(versions, default=0)
        if number not in versions:
            raise NotFound(f"{repo_kind} {repo}@{version or 'latest'} not found")
        return PinnedVersion(number, versions[number], f"id-{repo_kind}-{repo}")

    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> PinnedCode:
        self.calls.append(("snapshot_code", caller.user, "code", repo, 0))
        if repo not in self.code:
            raise NotFound(f"code repo {repo!r} not found")
        for sha, digest in reversed(self.code[repo]):
            if not commit or sha.startswith(commit):
                return PinnedCode(sha, digest)
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

    # What the test does to the jobs.

    def exit(self, run_id: str, code: int = 0) -> None:
        """The job's command ended with ``code``."""
        self.states[run_id] = JobStatus(JobState.EXITED, code)

    def vanish(self, run_id: str, detail: str = "the machine restarted") -> None:
        """The job is no longer running and left no exit code."""
        self.states[run_id] = JobStatus(JobState.GONE, detail=detail)

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
    """The run use cases and the scheduler, wired to one set of fakes."""

    runs: Runs
    scheduler: Scheduler
    uow: FakeUnitOfWorkFactory
    repos: FakeRepoReader
    executor: FakeExecutor
    clock: FakeClock

    async def run(self, name: str) -> Run:
        """The stored run (fails the test when there is none)."""
        found = await self.uow.runs.get(name)
        assert found is not None, f"no run {name!r} stored"
        return found

    async def status(self, name: str) -> RunStatus:
        """The stored run's status."""
        return (await self.run(name)).status


def fake_world(gpus: int = 0, slots: int = 2) -> World:
    """Fresh fakes; the use cases and the scheduler share the store, executor and clock."""
    uow = FakeUnitOfWorkFactory()
    repos = FakeRepoReader()
    executor = FakeExecutor(gpus)
    clock = FakeClock()
    scheduler = Scheduler(uow, executor, slots=slots, clock=clock)
    runs = Runs(uow, repos, executor, wake=scheduler.wake, clock=clock)
    return World(runs, scheduler, uow, repos, executor, clock)


def a_spec(name: str, kind: RunKind = RunKind.TRAINING, **changes: Any) -> RunSpec:
    """A valid spec with no inputs or outputs; ``changes`` set other fields."""
    return RunSpec(**{"name": name, "kind": kind, "command": "python train.py", **changes})
