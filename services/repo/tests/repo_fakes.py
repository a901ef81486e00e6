"""In-memory fakes of repo-svc's ports (ProjectRepository, RequestLog, UnitOfWork).

The fakes keep the adapters' contract: names are unique, revisions start at 1 and bump on
each save, stale writes raise Aborted, and a unit of work is all-or-nothing — its changes
and its events are kept only when the ``async with`` block exits without an error.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message
from shipyard_repo.app.ports import ProjectRepository, RequestLog
from shipyard_repo.app.projects import Projects
from shipyard_repo.domain.projects import Project

from shipyard.kit.caller import Caller
from shipyard.kit.errors import Aborted, AlreadyExists

ALICE = Caller("alice", frozenset({"data-scientist"}))
BOB = Caller("bob", frozenset({"data-scientist"}))
PRODUCTION = Caller("pat", frozenset({"production-engineer"}))
OPERATOR = Caller("olga", frozenset({"operator"}))


class FakeProjectRepository(ProjectRepository):
    """Projects in a dict keyed by id, unique by name."""

    def __init__(self) -> None:
        self.rows: dict[str, Project] = {}

    async def get(self, name: str) -> Project | None:
        return next((p for p in self.rows.values() if p.name == name), None)

    async def get_by_id(self, project_id: str) -> Project | None:
        return self.rows.get(project_id)

    async def add(self, project: Project) -> Project:
        if project.id in self.rows or await self.get(project.name) is not None:
            raise AlreadyExists(f"a project named {project.name!r} already exists")
        stored = replace(project, revision=1)
        self.rows[stored.id] = stored
        return stored

    async def save(self, project: Project) -> Project:
        current = self.rows.get(project.id)
        if current is None or current.revision != project.revision:
            raise Aborted(f"project {project.name!r} changed meanwhile")
        holder = await self.get(project.name)
        if holder is not None and holder.id != project.id:
            raise AlreadyExists(f"a project named {project.name!r} already exists")
        stored = replace(project, revision=project.revision + 1)
        self.rows[stored.id] = stored
        return stored

    async def remove(self, project: Project) -> None:
        current = self.rows.get(project.id)
        if current is None:
            return
        if current.revision != project.revision:
            raise Aborted(f"project {project.name!r} changed meanwhile")
        del self.rows[project.id]

    async def list(self, after: tuple[str, str] | None, limit: int) -> list[Project]:
        ordered = sorted(self.rows.values(), key=lambda p: (p.name, p.id))
        if after is not None:
            ordered = [p for p in ordered if (p.name, p.id) > after]
        return ordered[:limit]


class FakeRequestLog(RequestLog):
    """Request keys and the resource each one made."""

    def __init__(self) -> None:
        self.made: dict[str, str] = {}

    async def resource_of(self, key: str) -> str | None:
        return self.made.get(key)

    async def remember(self, key: str, resource_id: str) -> None:
        if key in self.made:
            raise AlreadyExists(f"request {key!r} is already recorded")
        self.made[key] = resource_id


@dataclass(frozen=True)
class Emitted:
    """One event a use case emitted: its data, subject and project."""

    data: Message
    subject: str
    project: str


class FakeUnitOfWork:
    """One transaction: the shared fake repositories plus the events emitted in it."""

    def __init__(self, projects: FakeProjectRepository, requests: FakeRequestLog) -> None:
        self.projects = projects
        self.requests = requests
        self.events: list[Emitted] = []

    def emit(self, data: Message, subject: str, project: str) -> None:
        self.events.append(Emitted(data, subject, project))


@dataclass
class FakeUnitOfWorkFactory:
    """Starts fake units of work; ``published`` holds the events of committed ones only."""

    projects: FakeProjectRepository = field(default_factory=FakeProjectRepository)
    requests: FakeRequestLog = field(default_factory=FakeRequestLog)
    published: list[Emitted] = field(default_factory=list)
    commits: int = 0
    rollbacks: int = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeUnitOfWork]:
        saved_projects, saved_requests = dict(self.projects.rows), dict(self.requests.made)
        uow = FakeUnitOfWork(self.projects, self.requests)
        try:
            yield uow
        except BaseException:
            self.projects.rows.clear()
            self.projects.rows.update(saved_projects)
            self.requests.made.clear()
            self.requests.made.update(saved_requests)
            self.rollbacks += 1
            raise
        self.published.extend(uow.events)
        self.commits += 1


class FakeClock:
    """A clock that moves one second forward on each reading."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class FakeIds:
    """Deterministic, increasing ids: prj-0001, prj-0002, …"""

    def __init__(self, prefix: str = "prj") -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter):04d}"


def fake_projects() -> tuple[Projects, FakeUnitOfWorkFactory]:
    """The project use cases wired to fresh fakes, with a deterministic clock and ids."""
    uow = FakeUnitOfWorkFactory()
    return Projects(uow=uow, clock=FakeClock(), ids=FakeIds()), uow
