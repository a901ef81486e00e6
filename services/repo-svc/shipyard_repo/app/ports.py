"""The ports repo-svc's use cases depend on; adapters implement them, tests fake them."""

from __future__ import annotations

import abc
import builtins
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shipyard.kit.manifest import Manifest
from shipyard.kit.store.unit_of_work import Emitter, RequestLog, UnitOfWorkFactory
from shipyard_repo.domain.credentials import Credential
from shipyard_repo.domain.images import Image
from shipyard_repo.domain.paths import Directory
from shipyard_repo.domain.projects import Project
from shipyard_repo.domain.repos import Repo, RepoStatus
from shipyard_repo.domain.sources import RepoKind, Source
from shipyard_repo.domain.versions import Version


class ProjectRepository(Protocol):
    """Projects in repo-svc's store."""

    async def get(self, name: str) -> Project | None:
        """The project with that name."""

    async def by_id(self, doc_id: str) -> Project | None:
        """The project with that id (names change, ids do not)."""

    async def add(self, item: Project) -> Project:
        """Store a new project (revision 1); AlreadyExists when the name is taken."""

    async def save(self, item: Project) -> Project:
        """Store a change made on ``item.revision``; Aborted if someone changed it since."""

    async def remove(self, item: Project) -> None:
        """Delete the project as read at ``item.revision``; Aborted if it changed since."""

    async def list(self, after: tuple[str, str] | None, limit: int) -> builtins.list[Project]:
        """Projects in name order after the one with this (name, id)."""


@dataclass(frozen=True)
class RepoFilter:
    """Which repos a list returns; empty fields do not filter."""

    kind: RepoKind | None = None
    project: str | None = None  # "" = repos of no project
    name_prefix: str = ""
    tag: str = ""
    status: RepoStatus | None = None


class RepoRepository(Protocol):
    """Repos in repo-svc's store, unique by (kind, name)."""

    async def get(self, kind: RepoKind, name: str) -> Repo | None:
        """The repo of that kind and name."""

    async def by_id(self, doc_id: str) -> Repo | None:
        """The repo with that id."""

    async def add(self, item: Repo) -> Repo:
        """Store a new repo (revision 1); AlreadyExists when the name is taken for its kind."""

    async def save(self, item: Repo) -> Repo:
        """Store a change made on ``item.revision``; Aborted if someone changed it since."""

    async def remove(self, item: Repo) -> None:
        """Delete the repo as read at ``item.revision``; Aborted if it changed since."""

    async def list(self, where: RepoFilter, after: tuple[str, str] | None, limit: int) -> builtins.list[Repo]:
        """Repos matching ``where`` in (kind/name) order after the one with this (key, id)."""


class VersionRepository(Protocol):
    """Versions in repo-svc's store; (repo, number) is unique."""

    async def get(self, repo_id: str, number: int) -> Version | None:
        """That version of the repo."""

    async def add(self, item: Version) -> Version:
        """Store a new version; Aborted when that number exists already (a concurrent writer)."""

    async def save(self, item: Version) -> Version:
        """Store a change of a version's mutable bookkeeping (the runs that used it) made on
        ``item.revision``; Aborted if someone changed it since."""

    async def remove(self, item: Version) -> None:
        """Delete the version as read."""

    async def list(self, repo_id: str, before: int | None, limit: int) -> builtins.list[Version]:
        """The repo's versions, newest first, numbered below ``before`` when given."""

    async def remove_all(self, repo_id: str) -> builtins.list[Version]:
        """Delete every version of the repo; the ones deleted."""


class ManifestStore(abc.ABC):
    """Manifests and file contents in the blob store (outside any transaction: immutable)."""

    @abc.abstractmethod
    async def read(self, digest: str) -> Manifest:
        """The manifest stored as blob ``digest``; NotFound or InvalidArgument when absent or malformed."""

    @abc.abstractmethod
    async def missing(self, digests: list[str]) -> list[str]:
        """Those of ``digests`` the blob store lacks."""

    @abc.abstractmethod
    async def sync(self) -> None:
        """Make the stored blobs durable (once, before a version naming them is committed)."""

    @abc.abstractmethod
    async def touch(self, digests: list[str]) -> list[str]:
        """Mark the stored ones of ``digests`` as just used (the garbage collector leaves them for
        its grace period); those the blob store lacks."""


class BlobReferences(abc.ABC):
    """Every manifest and blob repo-svc's records name: what the garbage collector must keep."""

    @abc.abstractmethod
    async def manifest_digests(self) -> set[str]:
        """The manifests of every version and of every code snapshot of a code repo that exists."""

    @abc.abstractmethod
    async def artifact_digests(self) -> set[str]:
        """The blobs runs stored as artifacts (files, not manifests), of every run not deleted."""


class RunArtifactRepository(Protocol):
    """Which blobs each run stored as artifacts (MLflow's log_artifact, log_model): a set per run."""

    async def record(self, run_id: str, digests: builtins.list[str]) -> int:
        """Add ``digests`` to the run's set (those there already stay once); how many were new."""

    async def forget(self, run_id: str) -> int:
        """Drop the run's set (the run was deleted); how many digests it held."""


@dataclass(frozen=True)
class PendingUpload:
    """A blob a user uploaded that no version of theirs has named yet."""

    user: str
    digest: str
    size: int
    time: float  # epoch seconds


class UploadLedger(abc.ABC):
    """Blobs users uploaded and have not yet named in a version (their pending uploads)."""

    @abc.abstractmethod
    async def pending(self, user: str, since: float) -> builtins.list[PendingUpload]:
        """The user's uploads recorded at or after ``since``."""

    @abc.abstractmethod
    async def record(self, upload: PendingUpload) -> None:
        """Record an upload (again: its time and size are updated)."""

    @abc.abstractmethod
    async def settle(self, user: str, digests: builtins.list[str]) -> None:
        """The user named these blobs in a version: they are no longer pending."""

    @abc.abstractmethod
    async def forget_before(self, time: float) -> int:
        """Drop the uploads recorded before ``time`` (collected, or named by now); how many."""


class CredentialRepository(Protocol):
    """Credentials in repo-svc's store, unique per (owner, name); the secret is sealed."""

    async def get(self, owner: str, name: str) -> tuple[Credential, str] | None:
        """The credential and its sealed secret."""

    async def put(self, credential: Credential, sealed: str) -> Credential:
        """Create or replace the credential."""

    async def list(self, owner: str) -> builtins.list[Credential]:
        """The owner's credentials in name order."""

    async def forget(self, owner: str, name: str) -> bool:
        """Delete it; whether it existed."""


class ImageRepository(Protocol):
    """Users' images in repo-svc's store, unique by name (the standard ones are the domain's table)."""

    async def get(self, name: str) -> Image | None:
        """The user's image of that name."""

    async def add(self, item: Image) -> Image:
        """Store a new image (revision 1); AlreadyExists when the name is taken."""

    async def save(self, item: Image) -> Image:
        """Store a change made on ``item.revision`` (a build's outcome); Aborted if it changed since."""

    async def remove(self, item: Image) -> None:
        """Delete the image as read at ``item.revision``; Aborted if it changed since."""

    async def list(self, framework: str = "") -> builtins.list[Image]:
        """Users' images in name order, of one framework when given."""


class SourceFetcher(abc.ABC):
    """Copies a downloaded source's content into a local directory (git clone, HTTP GET, S3 …)."""

    @abc.abstractmethod
    async def fetch(self, source: Source, into: Path, secret: str | None,
                    username: str = "") -> str:
        """Write the source's files under ``into``; the git commit checked out ("" for other
        sources). FetchFailed with a reason when it cannot."""


class BlobUploader(abc.ABC):
    """Puts a local directory's files and its manifest into the blob store."""

    @abc.abstractmethod
    async def store_tree(self, root: Path, remember: bool = False) -> Manifest:
        """Store every file under ``root`` and the manifest; the manifest. ``remember``: keep the
        files' hashes, so that storing the same directory again reads only what changed.

        Raises ValueError naming the entry for what cannot be stored (a link out of the tree, a
        file that changed while it was read), OSError for what cannot be read."""


class Directories(abc.ABC):
    """The directories of the host repo-svc runs on."""

    @abc.abstractmethod
    async def look_up(self, path: str) -> Directory | None:
        """The directory at ``path`` (links resolved); None when there is no directory there."""


class UserDirectory(Protocol):
    """Who the platform's users are now (the gateway owns them; kit.clients.users asks it): asked as a
    run's outputs are committed."""

    async def roles_now(self, user: str) -> frozenset[str] | None:
        """``user``'s roles now; None when there is no such user, or they are disabled or deleted.
        Raises (Unavailable) when it cannot say."""


class UnitOfWork(Emitter, Protocol):
    """One transaction over repo-svc's repositories; events recorded in it are committed with it."""

    @property
    def projects(self) -> ProjectRepository:
        """Projects in this transaction."""

    @property
    def repos(self) -> RepoRepository:
        """Repos in this transaction."""

    @property
    def versions(self) -> VersionRepository:
        """Versions in this transaction."""

    @property
    def credentials(self) -> CredentialRepository:
        """Credentials in this transaction."""

    @property
    def images(self) -> ImageRepository:
        """Users' images in this transaction."""

    @property
    def requests(self) -> RequestLog:
        """Create requests in this transaction."""

    @property
    def artifacts(self) -> RunArtifactRepository:
        """Runs' artifact blobs in this transaction."""


Units = UnitOfWorkFactory[UnitOfWork]
"""Starts repo-svc's units of work: ``async with uow() as tx: ...``."""
