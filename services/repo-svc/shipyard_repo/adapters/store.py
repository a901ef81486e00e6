"""Repositories and the unit of work over the kit's document store (SQLite or MongoDB)."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import datetime
from typing import Any, get_args

from shipyard.kit.blob.port import BlobNotFound, BlobStore
from shipyard.kit.errors import Aborted, AlreadyExists, InvalidArgument, NotFound
from shipyard.kit.manifest import Manifest
from shipyard.kit.outbox import OutboxRelay
from shipyard.kit.store.port import (
    Collection,
    Contains,
    Document,
    DocumentStore,
    DuplicateKey,
    Page,
    Prefix,
    RevisionConflict,
    Transaction,
)
from shipyard.kit.store.unit_of_work import REQUESTS, StoredRequests, StoreUnitOfWork, StoreUnitOfWorkFactory
from shipyard_repo.app.ports import (
    BlobReferences,
    CredentialRepository,
    ManifestStore,
    PendingUpload,
    ProjectRepository,
    RepoFilter,
    RepoRepository,
    UploadLedger,
    VersionRepository,
)
from shipyard_repo.domain.credentials import Credential, CredentialType
from shipyard_repo.domain.projects import Project
from shipyard_repo.domain.repos import Repo, RepoStatus, repo_key
from shipyard_repo.domain.sources import RepoKind, Source, Versioning
from shipyard_repo.domain.versions import Version, version_id

PROJECTS = Collection("projects", unique=("name",))
REPOS = Collection("repos", unique=("key",), indexed=("project", "status"))
VERSIONS = Collection("versions", indexed=("repo_id", "number"))
CREDENTIALS = Collection("credentials", indexed=("owner",))
UPLOADS = Collection("uploads", indexed=("user",))
COLLECTIONS = (PROJECTS, REQUESTS, REPOS, VERSIONS, CREDENTIALS, UPLOADS)
# Code snapshots are remembered as create requests "code:<repo id>:<commit>" -> manifest digest.
CODE_SNAPSHOTS = "code:"
_BATCH = 1000
SOURCE = "shipyard/repo-svc"
# Stored sources name their class; the fields are the dataclass's.
SOURCE_CLASSES: dict[str, type[Any]] = {cls.__name__: cls for cls in get_args(Source)}


def _to_doc(project: Project) -> Document:
    doc = asdict(project)
    doc["_id"] = doc.pop("id")
    doc.pop("revision")
    doc["create_time"] = project.create_time.isoformat()
    doc["update_time"] = project.update_time.isoformat()
    return doc


def _from_doc(doc: Document) -> Project:
    fields: dict[str, Any] = {k: v for k, v in doc.items() if not k.startswith("_")}
    fields["create_time"] = datetime.fromisoformat(fields["create_time"])
    fields["update_time"] = datetime.fromisoformat(fields["update_time"])
    return Project(id=doc["_id"], revision=doc["_rev"], **fields)


class StoredProjects(ProjectRepository):
    """Projects in the ``projects`` collection, unique by name."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def get(self, name: str) -> Project | None:
        docs = await self._txn.find(PROJECTS.name, {"name": name}, Page(limit=1))
        return _from_doc(docs[0]) if docs else None

    async def get_by_id(self, project_id: str) -> Project | None:
        doc = await self._txn.get(PROJECTS.name, project_id)
        return _from_doc(doc) if doc else None

    async def add(self, project: Project) -> Project:
        try:
            return _from_doc(await self._txn.insert(PROJECTS.name, _to_doc(project)))
        except DuplicateKey:
            raise AlreadyExists(f"a project named {project.name!r} already exists") from None

    async def save(self, project: Project) -> Project:
        try:
            return _from_doc(await self._txn.replace(PROJECTS.name, _to_doc(project), project.revision))
        except RevisionConflict:
            raise Aborted(f"project {project.name!r} changed meanwhile; read it again and retry") from None
        except DuplicateKey:
            raise AlreadyExists(f"a project named {project.name!r} already exists") from None

    async def remove(self, project: Project) -> None:
        try:
            await self._txn.delete(PROJECTS.name, project.id, project.revision)
        except RevisionConflict:
            raise Aborted(f"project {project.name!r} changed meanwhile; read it again and retry") from None

    async def list(self, after: tuple[str, str] | None, limit: int) -> list[Project]:
        page = Page(order_by="name", after=after, limit=limit)
        return [_from_doc(d) for d in await self._txn.find(PROJECTS.name, page=page)]


class RepoUnitOfWork(StoreUnitOfWork):
    """A transaction over repo-svc's collections."""

    def __init__(self, txn: Transaction) -> None:
        super().__init__(txn, SOURCE)
        self.projects = StoredProjects(txn)
        self.repos = StoredRepos(txn)
        self.versions = StoredVersions(txn)
        self.credentials = StoredCredentials(txn)
        self.requests = StoredRequests(txn)


def unit_of_work_factory(
    store: DocumentStore, relay: OutboxRelay | None
) -> StoreUnitOfWorkFactory[RepoUnitOfWork]:
    """repo-svc's units of work on ``store``."""
    return StoreUnitOfWorkFactory(store, relay, RepoUnitOfWork)


def _repo_doc(repo: Repo) -> Document:
    return {
        "_id": repo.id, "key": repo.key, "kind": repo.kind.value, "name": repo.name, "owner": repo.owner,
        "project": repo.project, "description": repo.description, "tags": list(repo.tags),
        "versioning": repo.versioning.value, "source_kind": type(repo.source).__name__,
        "source": asdict(repo.source), "status": repo.status.value, "status_reason": repo.status_reason,
        "latest_version": repo.latest_version, "create_time": repo.create_time.isoformat(),
        "update_time": repo.update_time.isoformat(),
    }


def _repo_from(doc: Document) -> Repo:
    source_class: Any = SOURCE_CLASSES[doc["source_kind"]]
    return Repo(
        id=doc["_id"], kind=RepoKind(doc["kind"]), name=doc["name"], owner=doc["owner"],
        create_time=datetime.fromisoformat(doc["create_time"]),
        update_time=datetime.fromisoformat(doc["update_time"]),
        versioning=Versioning(doc["versioning"]), source=source_class(**doc["source"]),
        project=doc["project"], description=doc["description"], tags=tuple(doc["tags"]),
        status=RepoStatus(doc["status"]), status_reason=doc["status_reason"],
        latest_version=doc["latest_version"], revision=doc["_rev"])


class StoredRepos(RepoRepository):
    """Repos in the ``repos`` collection, unique by kind/name."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def get(self, kind: RepoKind, name: str) -> Repo | None:
        docs = await self._txn.find(REPOS.name, {"key": repo_key(kind, name)}, Page(limit=1))
        return _repo_from(docs[0]) if docs else None

    async def get_by_id(self, repo_id: str) -> Repo | None:
        doc = await self._txn.get(REPOS.name, repo_id)
        return _repo_from(doc) if doc else None

    async def add(self, repo: Repo) -> Repo:
        try:
            return _repo_from(await self._txn.insert(REPOS.name, _repo_doc(repo)))
        except DuplicateKey:
            raise AlreadyExists(f"a {repo.kind.value} named {repo.name!r} already exists") from None

    async def save(self, repo: Repo) -> Repo:
        try:
            return _repo_from(await self._txn.replace(REPOS.name, _repo_doc(repo), repo.revision))
        except RevisionConflict:
            raise Aborted(f"{repo.label} changed meanwhile; read it again and retry") from None
        except DuplicateKey:
            raise AlreadyExists(f"a {repo.kind.value} named {repo.name!r} already exists") from None

    async def remove(self, repo: Repo) -> None:
        try:
            await self._txn.delete(REPOS.name, repo.id, repo.revision)
        except RevisionConflict:
            raise Aborted(f"{repo.label} changed meanwhile; read it again and retry") from None

    async def list(self, where: RepoFilter, after: tuple[str, str] | None, limit: int) -> list[Repo]:
        match: dict[str, Any] = {}
        if where.kind is not None:
            match["key"] = Prefix(f"{where.kind.value}/{where.name_prefix}")
        elif where.name_prefix:
            match["name"] = Prefix(where.name_prefix)
        if where.project is not None:
            match["project"] = where.project
        if where.tag:
            match["tags"] = Contains(where.tag)
        if where.status is not None:
            match["status"] = where.status.value
        page = Page(order_by="key", after=after, limit=limit)
        return [_repo_from(d) for d in await self._txn.find(REPOS.name, match, page)]

    async def count_in_project(self, project: str) -> int:
        return await self._txn.count(REPOS.name, {"project": project})


def _version_doc(version: Version) -> Document:
    doc = asdict(version)
    doc["_id"] = version.id
    doc["create_time"] = version.create_time.isoformat()
    doc["used_by_runs"] = list(version.used_by_runs)
    return doc


def _version_from(doc: Document) -> Version:
    fields: dict[str, Any] = {k: v for k, v in doc.items() if not k.startswith("_")}
    fields["create_time"] = datetime.fromisoformat(fields["create_time"])
    fields["used_by_runs"] = tuple(fields["used_by_runs"])
    return Version(**fields)


class StoredVersions(VersionRepository):
    """Versions in the ``versions`` collection; the id is repo id + number, so a number is taken once."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def get(self, repo_id: str, number: int) -> Version | None:
        doc = await self._txn.get(VERSIONS.name, version_id(repo_id, number))
        return _version_from(doc) if doc else None

    async def add(self, version: Version) -> Version:
        try:
            return _version_from(await self._txn.insert(VERSIONS.name, _version_doc(version)))
        except DuplicateKey:
            raise Aborted(f"version {version.number} was created meanwhile; retry") from None

    async def save(self, version: Version) -> Version:
        current = await self._txn.get(VERSIONS.name, version.id)
        if current is None:
            raise Aborted(f"version {version.number} was deleted meanwhile")
        return _version_from(await self._txn.replace(VERSIONS.name, _version_doc(version), current["_rev"]))

    async def remove(self, version: Version) -> None:
        await self._txn.delete(VERSIONS.name, version.id)

    async def list(self, repo_id: str, before: int | None, limit: int) -> list[Version]:
        after = None if before is None else (before, version_id(repo_id, before))
        page = Page(order_by="number", descending=True, after=after, limit=limit)
        return [_version_from(d) for d in await self._txn.find(VERSIONS.name, {"repo_id": repo_id}, page)]

    async def remove_all(self, repo_id: str) -> builtins.list[Version]:
        versions = [_version_from(d) for d in await self._txn.find(VERSIONS.name, {"repo_id": repo_id})]
        await self._txn.delete_many(VERSIONS.name, [v.id for v in versions])
        return versions


class BlobManifests(ManifestStore):
    """Manifests read from the blob store, where the client uploaded them like any file."""

    def __init__(self, blobs: BlobStore, most_bytes: int = 256 << 20) -> None:
        self._blobs = blobs
        self._most = most_bytes

    async def read(self, digest: str) -> Manifest:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in self._blobs.get(digest):
                size += len(chunk)
                if size > self._most:
                    raise InvalidArgument("manifest_digest", f"the manifest is over {self._most >> 20} MiB")
                chunks.append(chunk)
        except BlobNotFound:
            raise NotFound(f"manifest {digest} is not stored") from None
        try:
            return Manifest.decode(b"".join(chunks))
        except ValueError as exc:
            raise InvalidArgument("manifest_digest",
                                  f"blob {digest} is not a valid manifest: {exc}") from None

    async def missing(self, digests: list[str]) -> list[str]:
        return await self._blobs.missing(digests)

    async def sync(self) -> None:
        await self._blobs.sync()

    async def touch(self, digests: list[str]) -> list[str]:
        return await self._blobs.touch(digests)


class StoredBlobReferences(BlobReferences):
    """The manifests named in repo-svc's store: each version's, and each code snapshot's whose
    code repo still exists (a deleted code repo's snapshots are garbage)."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    async def manifest_digests(self) -> set[str]:
        found = {str(doc["manifest_digest"]) async for doc in _every(self._store, VERSIONS.name, {})}
        repos: dict[str, bool] = {}
        async for doc in _every(self._store, REQUESTS.name, {"_id": Prefix(CODE_SNAPSHOTS)}):
            repo_id = str(doc["_id"]).split(":")[1]
            if repo_id not in repos:
                async with self._store.transaction() as txn:
                    repos[repo_id] = await txn.get(REPOS.name, repo_id) is not None
            if repos[repo_id]:
                found.add(str(doc["resource"]))
        return found


async def _every(store: DocumentStore, collection: str, where: dict[str, Any]) -> AsyncIterator[Document]:
    """Every matching document, a page (one short transaction) at a time."""
    after: tuple[Any, str] | None = None
    while True:
        async with store.transaction() as txn:
            docs = await txn.find(collection, where, Page(after=after, limit=_BATCH))
        for doc in docs:
            yield doc
        if len(docs) < _BATCH:
            return
        after = (docs[-1]["_id"], docs[-1]["_id"])


class StoredUploads(UploadLedger):
    """Pending uploads in the ``uploads`` collection, one document per user and blob."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    async def pending(self, user: str, since: float) -> builtins.list[PendingUpload]:
        async with self._store.transaction() as txn:
            docs = await txn.find(UPLOADS.name, {"user": user})
        return [u for u in map(_upload_from, docs) if u.time >= since]

    async def record(self, upload: PendingUpload) -> None:
        doc: Document = {"_id": f"{upload.user}:{upload.digest}", "user": upload.user,
                         "digest": upload.digest, "size": upload.size, "time": upload.time}
        async with self._store.transaction() as txn:
            current = await txn.get(UPLOADS.name, doc["_id"])
            if current is None:
                await txn.insert(UPLOADS.name, doc)
            else:
                await txn.replace(UPLOADS.name, doc, current["_rev"])

    async def settle(self, user: str, digests: builtins.list[str]) -> None:
        async with self._store.transaction() as txn:
            await txn.delete_many(UPLOADS.name, [f"{user}:{digest}" for digest in digests])

    async def forget_before(self, time: float) -> int:
        old = [doc["_id"] async for doc in _every(self._store, UPLOADS.name, {}) if float(doc["time"]) < time]
        async with self._store.transaction() as txn:
            return await txn.delete_many(UPLOADS.name, old)


def _upload_from(doc: Document) -> PendingUpload:
    return PendingUpload(str(doc["user"]), str(doc["digest"]), int(doc["size"]), float(doc["time"]))


class StoredCredentials(CredentialRepository):
    """Credentials keyed by owner/name; the secret only as sealed text."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def get(self, owner: str, name: str) -> tuple[Credential, str] | None:
        doc = await self._txn.get(CREDENTIALS.name, f"{owner}/{name}")
        return (_credential_from(doc), str(doc["sealed"])) if doc else None

    async def put(self, credential: Credential, sealed: str) -> Credential:
        doc: Document = {
            "_id": f"{credential.owner}/{credential.name}", "name": credential.name,
            "type": credential.type.value, "host": credential.host, "username": credential.username,
            "owner": credential.owner, "fingerprint": credential.fingerprint, "sealed": sealed,
            "create_time": credential.create_time.isoformat(),
            "update_time": credential.update_time.isoformat(),
        }
        current = await self._txn.get(CREDENTIALS.name, doc["_id"])
        if current is None:
            await self._txn.insert(CREDENTIALS.name, doc)
        else:
            await self._txn.replace(CREDENTIALS.name, doc, current["_rev"])
        return credential

    async def list(self, owner: str) -> builtins.list[Credential]:
        docs = await self._txn.find(CREDENTIALS.name, {"owner": owner}, Page(order_by="name"))
        return [_credential_from(d) for d in docs]

    async def remove(self, owner: str, name: str) -> bool:
        return await self._txn.delete(CREDENTIALS.name, f"{owner}/{name}")


def _credential_from(doc: Document) -> Credential:
    return Credential(name=doc["name"], type=CredentialType(doc["type"]), host=doc["host"],
                      username=doc["username"], owner=doc["owner"], fingerprint=doc["fingerprint"],
                      create_time=datetime.fromisoformat(doc["create_time"]),
                      update_time=datetime.fromisoformat(doc["update_time"]))
