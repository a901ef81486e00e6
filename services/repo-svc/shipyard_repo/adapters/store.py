"""repo-svc's repositories and unit of work over the kit's document store (SQLite or MongoDB).

Projects, repos, versions, credentials, pending uploads and users' images are aggregates: each is a
``DocumentRepository`` (its codec and its own queries). Manifests live in the blob store, and the
code snapshots are create requests (``code:<repo id>:<commit>`` → manifest digest); reading every
manifest they name (the garbage collector's mark) is plain transaction code, as is the set of blobs
each run stored as artifacts (one document per run and blob).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, get_args

from shipyard.kit.blob.port import BlobNotFound, BlobStore
from shipyard.kit.errors import Aborted, AlreadyExists, InvalidArgument, NotFound
from shipyard.kit.manifest import Manifest
from shipyard.kit.outbox import OutboxRelay
from shipyard.kit.store.documents import DocumentRepository
from shipyard.kit.store.port import Collection, Contains, Document, DocumentStore, Page, Prefix, Transaction
from shipyard.kit.store.unit_of_work import REQUESTS, StoredRequests, StoreUnitOfWork, StoreUnitOfWorkFactory
from shipyard_repo.app.events import translate
from shipyard_repo.app.ports import (
    BlobReferences,
    ManifestStore,
    PendingUpload,
    RepoFilter,
    RunArtifactRepository,
    UploadLedger,
)
from shipyard_repo.domain.credentials import Credential, CredentialType
from shipyard_repo.domain.images import Image, ImageSource, ImageStatus
from shipyard_repo.domain.projects import Project
from shipyard_repo.domain.repos import Repo, RepoStatus, repo_key
from shipyard_repo.domain.sources import RepoKind, Source, Versioning
from shipyard_repo.domain.versions import Version, version_id
from shipyard_repo.settings import SERVICE

PROJECTS = Collection("projects", unique=("name",))
REPOS = Collection("repos", unique=("key",), indexed=("project", "status"))
VERSIONS = Collection("versions", indexed=("repo_id", "number"))
CREDENTIALS = Collection("credentials", indexed=("owner",))
UPLOADS = Collection("uploads", indexed=("user",))
IMAGES = Collection("images", indexed=("framework",))
# One document per run and artifact blob ("<run id>:<digest>"): a run's set grows by inserts, never
# by rewriting a document that grows with it.
ARTIFACT_REFS = Collection("artifact_refs", indexed=("run_id",))
COLLECTIONS = (PROJECTS, REQUESTS, REPOS, VERSIONS, CREDENTIALS, UPLOADS, IMAGES, ARTIFACT_REFS)
# Code snapshots are remembered as create requests "code:<repo id>:<commit>" -> manifest digest.
CODE_SNAPSHOTS = "code:"
_BATCH = 1000
SOURCE = f"shipyard/{SERVICE}"
# Stored sources name their class; the fields are the dataclass's.
SOURCE_CLASSES: dict[str, type[Any]] = {cls.__name__: cls for cls in get_args(Source)}


class StoredProjects(DocumentRepository[Project]):
    """Projects in the ``projects`` collection, unique by name."""

    collection = PROJECTS
    noun = "project"

    def to_document(self, item: Project) -> Document:
        doc = asdict(item)
        doc["_id"] = doc.pop("id")
        doc.pop("revision")
        doc["create_time"] = item.create_time.isoformat()
        doc["update_time"] = item.update_time.isoformat()
        return doc

    def from_document(self, doc: Document) -> Project:
        fields: dict[str, Any] = {k: v for k, v in doc.items() if not k.startswith("_")}
        fields["create_time"] = datetime.fromisoformat(fields["create_time"])
        fields["update_time"] = datetime.fromisoformat(fields["update_time"])
        return Project(id=doc["_id"], revision=doc["_rev"], **fields)

    def taken(self, item: Project, field: str) -> AlreadyExists:
        return AlreadyExists(f"a project named {item.name!r} already exists")

    async def get(self, name: str) -> Project | None:
        """The project with that name."""
        return await self.find_one(name=name)

    async def list(self, after: tuple[str, str] | None, limit: int) -> builtins.list[Project]:
        """Projects in name order after the one with this (name, id)."""
        return await self.find(page=Page(order_by="name", after=after, limit=limit))


class StoredRepos(DocumentRepository[Repo]):
    """Repos in the ``repos`` collection, unique by kind/name (their ``key``)."""

    collection = REPOS
    noun = "repo"

    def to_document(self, item: Repo) -> Document:
        return {
            "_id": item.id, "key": item.key, "kind": item.kind.value, "name": item.name, "owner": item.owner,
            "project": item.project, "description": item.description, "tags": list(item.tags),
            "versioning": item.versioning.value, "source_kind": type(item.source).__name__,
            "source": asdict(item.source), "status": item.status.value, "status_reason": item.status_reason,
            "latest_version": item.latest_version, "create_time": item.create_time.isoformat(),
            "update_time": item.update_time.isoformat(), "labels": _pairs(item.labels),
            "aliases": _pairs(item.aliases),
        }

    def from_document(self, doc: Document) -> Repo:
        source_class: Any = SOURCE_CLASSES[doc["source_kind"]]
        return Repo(
            id=doc["_id"], kind=RepoKind(doc["kind"]), name=doc["name"], owner=doc["owner"],
            create_time=datetime.fromisoformat(doc["create_time"]),
            update_time=datetime.fromisoformat(doc["update_time"]),
            versioning=Versioning(doc["versioning"]), source=source_class(**doc["source"]),
            project=doc["project"], description=doc["description"], tags=tuple(doc["tags"]),
            status=RepoStatus(doc["status"]), status_reason=doc["status_reason"],
            latest_version=doc["latest_version"], revision=doc["_rev"],
            labels=dict(doc.get("labels", [])), aliases=dict(doc.get("aliases", [])))

    def label(self, item: Repo) -> str:
        return item.label

    def taken(self, item: Repo, field: str) -> AlreadyExists:
        return AlreadyExists(f"a {item.kind.value} named {item.name!r} already exists")

    async def get(self, kind: RepoKind, name: str) -> Repo | None:
        """The repo of that kind and name."""
        return await self.find_one(key=repo_key(kind, name))

    async def list(self, where: RepoFilter, after: tuple[str, str] | None, limit: int) -> builtins.list[Repo]:
        """Repos matching ``where`` in (kind/name) order after the one with this (key, id)."""
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
        return await self.find(match, Page(order_by="key", after=after, limit=limit))


class StoredVersions(DocumentRepository[Version]):
    """Versions in the ``versions`` collection; the id is repo id + number, so a number is taken once."""

    collection = VERSIONS
    noun = "version"

    def to_document(self, item: Version) -> Document:
        doc = asdict(item)
        doc.pop("revision")
        doc["_id"] = item.id
        doc["create_time"] = item.create_time.isoformat()
        doc["used_by_runs"] = list(item.used_by_runs)
        doc["labels"] = _pairs(item.labels)
        return doc

    def from_document(self, doc: Document) -> Version:
        fields: dict[str, Any] = {k: v for k, v in doc.items() if not k.startswith("_")}
        fields["create_time"] = datetime.fromisoformat(fields["create_time"])
        fields["used_by_runs"] = tuple(fields["used_by_runs"])
        fields.setdefault("run_names", {})  # versions stored before run names were kept
        fields["labels"] = dict(fields.get("labels", []))  # none on versions stored before labels
        return Version(**fields, revision=doc["_rev"])

    def label(self, item: Version) -> str:
        return f"version {item.number}"

    async def add(self, item: Version) -> Version:
        """Store a new version; Aborted when that number exists already (a concurrent writer)."""
        try:
            return await super().add(item)
        except AlreadyExists:
            raise Aborted(f"version {item.number} was created meanwhile; retry") from None

    async def get(self, repo_id: str, number: int) -> Version | None:
        """That version of the repo."""
        return await self.by_id(version_id(repo_id, number))

    async def list(self, repo_id: str, before: int | None, limit: int) -> builtins.list[Version]:
        """The repo's versions, newest first, numbered below ``before`` when given."""
        after = None if before is None else (before, version_id(repo_id, before))
        page = Page(order_by="number", descending=True, after=after, limit=limit)
        return await self.find({"repo_id": repo_id}, page)

    async def remove_all(self, repo_id: str) -> builtins.list[Version]:
        """Delete every version of the repo; the ones deleted."""
        versions = await self.find({"repo_id": repo_id})
        await self.txn.delete_many(VERSIONS.name, [v.id for v in versions])
        return versions


def _pairs(mapping: dict[str, Any]) -> list[list[Any]]:
    """A map with users' keys as [key, value] pairs in key order: a key may hold '.' or begin with
    '$', which MongoDB reads as a path or an operator in a field name."""
    return [[key, mapping[key]] for key in sorted(mapping)]


@dataclass(frozen=True)
class SealedCredential:
    """A credential as stored: with its sealed secret, keyed by owner/name."""

    credential: Credential
    sealed: str
    revision: int = 0

    @property
    def id(self) -> str:
        """Unique per owner and name."""
        return f"{self.credential.owner}/{self.credential.name}"


class StoredCredentials(DocumentRepository[SealedCredential]):
    """Credentials keyed by owner/name; the secret only as sealed text."""

    collection = CREDENTIALS
    noun = "credential"

    def to_document(self, item: SealedCredential) -> Document:
        credential = item.credential
        return {
            "_id": item.id, "name": credential.name, "type": credential.type.value, "host": credential.host,
            "username": credential.username, "owner": credential.owner,
            "fingerprint": credential.fingerprint, "sealed": item.sealed,
            "create_time": credential.create_time.isoformat(),
            "update_time": credential.update_time.isoformat(),
        }

    def from_document(self, doc: Document) -> SealedCredential:
        credential = Credential(
            name=doc["name"], type=CredentialType(doc["type"]), host=doc["host"], username=doc["username"],
            owner=doc["owner"], fingerprint=doc["fingerprint"],
            create_time=datetime.fromisoformat(doc["create_time"]),
            update_time=datetime.fromisoformat(doc["update_time"]))
        return SealedCredential(credential, str(doc["sealed"]), doc["_rev"])

    def label(self, item: SealedCredential) -> str:
        return f"credential {item.credential.name!r}"

    async def get(self, owner: str, name: str) -> tuple[Credential, str] | None:
        """The credential and its sealed secret."""
        found = await self.by_id(f"{owner}/{name}")
        return (found.credential, found.sealed) if found else None

    async def put(self, credential: Credential, sealed: str) -> Credential:
        """Create or replace the credential."""
        new = SealedCredential(credential, sealed)
        current = await self.by_id(new.id)
        if current is None:
            await self.add(new)
        else:
            await self.save(replace(new, revision=current.revision))
        return credential

    async def list(self, owner: str) -> builtins.list[Credential]:
        """The owner's credentials in name order."""
        return [found.credential for found in await self.find({"owner": owner}, Page(order_by="name"))]

    async def forget(self, owner: str, name: str) -> bool:
        """Delete it; whether it existed."""
        found = await self.by_id(f"{owner}/{name}")
        if found is not None:
            await self.remove(found)
        return found is not None


class StoredImages(DocumentRepository[Image]):
    """Users' images in the ``images`` collection, keyed by name (standard ones are not stored)."""

    collection = IMAGES
    noun = "image"

    def to_document(self, item: Image) -> Document:
        doc = asdict(item)
        doc.pop("revision")
        doc["_id"] = item.name
        doc["requirements"] = list(item.requirements)
        doc["source"] = item.source.value
        doc["status"] = item.status.value
        doc["create_time"] = item.create_time.isoformat() if item.create_time else ""
        return doc

    def from_document(self, doc: Document) -> Image:
        fields: dict[str, Any] = {k: v for k, v in doc.items() if not k.startswith("_")}
        fields["requirements"] = tuple(fields["requirements"])
        fields["source"] = ImageSource(fields["source"])
        fields["status"] = ImageStatus(fields["status"])
        created = fields["create_time"]
        fields["create_time"] = datetime.fromisoformat(created) if created else None
        return Image(**fields, revision=doc["_rev"])

    def taken(self, item: Image, field: str) -> AlreadyExists:
        return AlreadyExists(f"an image named {item.name!r} exists already")

    async def get(self, name: str) -> Image | None:
        """The user's image of that name."""
        return await self.by_id(name)

    async def list(self, framework: str = "") -> builtins.list[Image]:
        """Users' images in name order, of one framework when given."""
        return await self.find({"framework": framework} if framework else None, Page(order_by="_id"))


class StoredRunArtifacts(RunArtifactRepository):
    """Runs' artifact blobs in the ``artifact_refs`` collection, one document per run and blob."""

    def __init__(self, txn: Transaction) -> None:
        self.txn = txn

    async def record(self, run_id: str, digests: builtins.list[str]) -> int:
        new = 0
        for digest in dict.fromkeys(digests):
            doc_id = f"{run_id}:{digest}"
            if await self.txn.get(ARTIFACT_REFS.name, doc_id) is None:
                await self.txn.insert(ARTIFACT_REFS.name, {"_id": doc_id, "run_id": run_id, "digest": digest})
                new += 1
        return new

    async def forget(self, run_id: str) -> int:
        docs = await self.txn.find(ARTIFACT_REFS.name, {"run_id": run_id})
        return await self.txn.delete_many(ARTIFACT_REFS.name, [str(doc["_id"]) for doc in docs])


class RepoUnitOfWork(StoreUnitOfWork):
    """A transaction over repo-svc's collections; its domain events are translated by
    ``shipyard_repo.app.events``."""

    def __init__(self, txn: Transaction) -> None:
        super().__init__(txn, SOURCE, translate)
        self.projects = StoredProjects(txn)
        self.repos = StoredRepos(txn)
        self.versions = StoredVersions(txn)
        self.credentials = StoredCredentials(txn)
        self.images = StoredImages(txn)
        self.requests = StoredRequests(txn)
        self.artifacts = StoredRunArtifacts(txn)


def unit_of_work_factory(
    store: DocumentStore, relay: OutboxRelay | None
) -> StoreUnitOfWorkFactory[RepoUnitOfWork]:
    """repo-svc's units of work on ``store``."""
    return StoreUnitOfWorkFactory(store, relay, RepoUnitOfWork)


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
    code repo still exists (a deleted code repo's snapshots are garbage); and runs' artifact blobs."""

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

    async def artifact_digests(self) -> set[str]:
        return {str(doc["digest"]) async for doc in _every(self._store, ARTIFACT_REFS.name, {})}


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


@dataclass(frozen=True)
class RecordedUpload:
    """A pending upload as stored: one document per user and blob."""

    upload: PendingUpload
    revision: int = 0

    @property
    def id(self) -> str:
        """Unique per user and blob."""
        return f"{self.upload.user}:{self.upload.digest}"


class UploadDocuments(DocumentRepository[RecordedUpload]):
    """Pending uploads in the ``uploads`` collection."""

    collection = UPLOADS
    noun = "upload"

    def to_document(self, item: RecordedUpload) -> Document:
        upload = item.upload
        return {"_id": item.id, "user": upload.user, "digest": upload.digest, "size": upload.size,
                "time": upload.time}

    def from_document(self, doc: Document) -> RecordedUpload:
        upload = PendingUpload(str(doc["user"]), str(doc["digest"]), int(doc["size"]), float(doc["time"]))
        return RecordedUpload(upload, doc["_rev"])

    def label(self, item: RecordedUpload) -> str:
        return f"upload {item.upload.digest} of {item.upload.user}"


class StoredUploads(UploadLedger):
    """The upload ledger on the store: each call its own short transaction (outside any unit of
    work: the gateway reserves before it reads an upload's body)."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    async def pending(self, user: str, since: float) -> builtins.list[PendingUpload]:
        async with self._store.transaction() as txn:
            found = await UploadDocuments(txn).find({"user": user})
        return [u.upload for u in found if u.upload.time >= since]

    async def record(self, upload: PendingUpload) -> None:
        new = RecordedUpload(upload)
        async with self._store.transaction() as txn:
            uploads = UploadDocuments(txn)
            current = await uploads.by_id(new.id)
            if current is None:
                await uploads.add(new)
            else:
                await uploads.save(replace(new, revision=current.revision))

    async def settle(self, user: str, digests: builtins.list[str]) -> None:
        async with self._store.transaction() as txn:
            await txn.delete_many(UPLOADS.name, [f"{user}:{digest}" for digest in digests])

    async def forget_before(self, time: float) -> int:
        old = [doc["_id"] async for doc in _every(self._store, UPLOADS.name, {}) if float(doc["time"]) < time]
        async with self._store.transaction() as txn:
            return await txn.delete_many(UPLOADS.name, old)
