"""In-memory fakes of repo-svc's ports (ProjectRepository, RequestLog, UnitOfWork).

The fakes keep the adapters' contract: names are unique, revisions start at 1 and bump on
each save, stale writes raise Aborted, and a unit of work is all-or-nothing — its changes
and its events are kept only when the ``async with`` block exits without an error.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.protobuf.message import Message
from shipyard_repo.app.ports import (
    BlobUploader,
    CredentialRepository,
    ManifestStore,
    ProjectRepository,
    RepoFilter,
    RepoRepository,
    RequestLog,
    VersionRepository,
)
from shipyard_repo.app.projects import Projects
from shipyard_repo.app.repos import Repos
from shipyard_repo.app.versions import Versions
from shipyard_repo.domain.credentials import Credential
from shipyard_repo.domain.projects import Project
from shipyard_repo.domain.repos import Repo
from shipyard_repo.domain.sources import RepoKind
from shipyard_repo.domain.versions import Version

from shipyard.kit.caller import Caller
from shipyard.kit.errors import Aborted, AlreadyExists, NotFound
from shipyard.kit.manifest import Manifest, ManifestEntry

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


class FakeRepoRepository(RepoRepository):
    """Repos in a dict keyed by id, unique by (kind, name)."""

    def __init__(self) -> None:
        self.rows: dict[str, Repo] = {}

    async def get(self, kind: RepoKind, name: str) -> Repo | None:
        return next((r for r in self.rows.values() if (r.kind, r.name) == (kind, name)), None)

    async def get_by_id(self, repo_id: str) -> Repo | None:
        return self.rows.get(repo_id)

    async def add(self, repo: Repo) -> Repo:
        if repo.id in self.rows or await self.get(repo.kind, repo.name) is not None:
            raise AlreadyExists(f"a {repo.kind.value} named {repo.name!r} already exists")
        self.rows[repo.id] = replace(repo, revision=1)
        return self.rows[repo.id]

    async def save(self, repo: Repo) -> Repo:
        current = self.rows.get(repo.id)
        if current is None or current.revision != repo.revision:
            raise Aborted(f"{repo.label} changed meanwhile")
        holder = await self.get(repo.kind, repo.name)
        if holder is not None and holder.id != repo.id:
            raise AlreadyExists(f"a {repo.kind.value} named {repo.name!r} already exists")
        self.rows[repo.id] = replace(repo, revision=repo.revision + 1)
        return self.rows[repo.id]

    async def remove(self, repo: Repo) -> None:
        current = self.rows.get(repo.id)
        if current is not None and current.revision != repo.revision:
            raise Aborted(f"{repo.label} changed meanwhile")
        self.rows.pop(repo.id, None)

    async def list(self, where: RepoFilter, after: tuple[str, str] | None, limit: int) -> list[Repo]:
        found = [r for r in self.rows.values()
                 if (where.kind is None or r.kind is where.kind)
                 and (where.project is None or r.project == where.project)
                 and r.name.startswith(where.name_prefix) and (not where.tag or where.tag in r.tags)
                 and (where.status is None or r.status is where.status)]
        ordered = sorted(found, key=lambda r: (r.key, r.id))
        if after is not None:
            ordered = [r for r in ordered if (r.key, r.id) > after]
        return ordered[:limit]

    async def count_in_project(self, project: str) -> int:
        return sum(1 for r in self.rows.values() if r.project == project)


class FakeVersionRepository(VersionRepository):
    """Versions keyed by (repo id, number)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], Version] = {}

    async def get(self, repo_id: str, number: int) -> Version | None:
        return self.rows.get((repo_id, number))

    async def add(self, version: Version) -> Version:
        if (version.repo_id, version.number) in self.rows:
            raise Aborted(f"version {version.number} was created meanwhile; retry")
        self.rows[version.repo_id, version.number] = version
        return version

    async def save(self, version: Version) -> Version:
        self.rows[version.repo_id, version.number] = version
        return version

    async def remove(self, version: Version) -> None:
        self.rows.pop((version.repo_id, version.number), None)

    async def list(self, repo_id: str, before: int | None, limit: int) -> list[Version]:
        found = sorted((v for (r, n), v in self.rows.items()
                        if r == repo_id and (before is None or n < before)), key=lambda v: -v.number)
        return found[:limit]

    async def remove_all(self, repo_id: str) -> list[Version]:
        gone = [v for (r, _), v in self.rows.items() if r == repo_id]
        for version in gone:
            del self.rows[version.repo_id, version.number]
        return gone


class FakeManifests(ManifestStore):
    """Manifests and blobs "uploaded" by a test."""

    def __init__(self) -> None:
        self.manifests: dict[str, Manifest] = {}
        self.blobs: set[str] = set()
        self.syncs = 0
        self.touched: list[str] = []

    def upload(self, manifest: Manifest) -> str:
        """Store the manifest and every blob it names; its digest."""
        self.manifests[manifest.digest] = manifest
        self.blobs.update(manifest.blobs())
        self.blobs.add(manifest.digest)
        return manifest.digest

    async def read(self, digest: str) -> Manifest:
        if digest not in self.manifests:
            raise NotFound(f"manifest {digest} is not stored")
        return self.manifests[digest]

    async def missing(self, digests: list[str]) -> list[str]:
        return [d for d in digests if d not in self.blobs]

    async def touch(self, digests: list[str]) -> list[str]:
        self.touched.extend(d for d in digests if d in self.blobs)
        return await self.missing(digests)

    async def sync(self) -> None:
        self.syncs += 1


class FakeUploader(BlobUploader):
    """Stores a flat directory's files as a manifest in FakeManifests; remembers each call."""

    def __init__(self, manifests: FakeManifests) -> None:
        self.manifests = manifests
        self.calls: list[tuple[Path, bool]] = []

    async def store_tree(self, root: Path, remember: bool = False) -> Manifest:
        self.calls.append((root, remember))
        manifest = Manifest(
            tuple(
                ManifestEntry(p.name, p.stat().st_size, _sha256(p.path), 0o644)
                for p in sorted(os.scandir(root), key=lambda e: e.name)
            )
        )
        self.manifests.upload(manifest)
        return manifest


def _sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class FakeCredentialRepository(CredentialRepository):
    """Credentials and their sealed secrets keyed by (owner, name)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[Credential, str]] = {}

    async def get(self, owner: str, name: str) -> tuple[Credential, str] | None:
        return self.rows.get((owner, name))

    async def put(self, credential: Credential, sealed: str) -> Credential:
        self.rows[credential.owner, credential.name] = (credential, sealed)
        return credential

    async def list(self, owner: str) -> list[Credential]:
        return sorted((c for (o, _), (c, _) in self.rows.items() if o == owner), key=lambda c: c.name)

    async def remove(self, owner: str, name: str) -> bool:
        return self.rows.pop((owner, name), None) is not None


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

    def __init__(self, factory: FakeUnitOfWorkFactory) -> None:
        self.projects = factory.projects
        self.repos = factory.repos
        self.versions = factory.versions
        self.credentials = factory.credentials
        self.requests = factory.requests
        self.events: list[Emitted] = []

    def emit(self, data: Message, subject: str, project: str) -> None:
        self.events.append(Emitted(data, subject, project))


@dataclass
class FakeUnitOfWorkFactory:
    """Starts fake units of work; ``published`` holds the events of committed ones only."""

    projects: FakeProjectRepository = field(default_factory=FakeProjectRepository)
    repos: FakeRepoRepository = field(default_factory=FakeRepoRepository)
    versions: FakeVersionRepository = field(default_factory=FakeVersionRepository)
    credentials: FakeCredentialRepository = field(default_factory=FakeCredentialRepository)
    requests: FakeRequestLog = field(default_factory=FakeRequestLog)
    published: list[Emitted] = field(default_factory=list)
    commits: int = 0
    rollbacks: int = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeUnitOfWork]:
        tables: list[dict] = [self.projects.rows, self.repos.rows, self.versions.rows,  # type: ignore[type-arg]
                              self.credentials.rows, self.requests.made]
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


def fake_repos() -> tuple[Repos, Versions, FakeUnitOfWorkFactory, FakeManifests]:
    """The repo and version use cases wired to fresh fakes."""
    uow = FakeUnitOfWorkFactory()
    manifests = FakeManifests()
    clock = FakeClock()
    repos = Repos(uow=uow, clock=clock, ids=FakeIds("repo"))
    return repos, Versions(uow=uow, manifests=manifests, clock=clock), uow, manifests
