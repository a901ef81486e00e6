"""repo-svc built for a test as production builds it (``bootstrap.compose``): its real units of work
on the kit's in-memory store (or a store the test opened), its real ledger of uploads and blob
references on that store, and fakes of the ports that reach outside (manifests, the tree uploader,
sources, the clock)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from cryptography.fernet import Fernet
from repo_fakes import FakeManifests, FakeUploader, FakeUsers
from shipyard_repo.adapters.store import COLLECTIONS, RepoUnitOfWork, StoredBlobReferences, StoredUploads
from shipyard_repo.adapters.tree import HostDirectories
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.app.ports import SourceFetcher
from shipyard_repo.bootstrap import Adapters, Composed, compose
from shipyard_repo.domain.sources import Source
from shipyard_repo.settings import RepoSettings

from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.secrets import FernetSecretBox
from shipyard.kit.store.port import Document, DocumentStore
from shipyard.kit.testing import RecordingUnitOfWorkFactory, SequentialIds, TickingClock, memory_store

Units: TypeAlias = RecordingUnitOfWorkFactory[RepoUnitOfWork]
T = TypeVar("T")


class NoSources(SourceFetcher):
    """Reaches no source: a test that fetches hands in a fetcher of its own."""

    async def fetch(self, source: Source, into: Path, secret: str | None, username: str = "") -> str:
        raise FetchFailed(f"{source.KIND}: no source is reachable in this test")


@dataclass(frozen=True)
class World:
    """repo-svc composed on test adapters, and what the tests look at: the events its committed
    units of work published (``units.published``) and what its store holds."""

    app: Composed
    adapters: Adapters
    units: Units
    store: DocumentStore

    @property
    def manifests(self) -> FakeManifests:
        """The fake manifests the world runs on (unless the test handed in others)."""
        assert isinstance(self.adapters.manifests, FakeManifests)
        return self.adapters.manifests

    @property
    def users(self) -> FakeUsers:
        """The fake directory of users the world runs on (unless the test handed in another)."""
        assert isinstance(self.adapters.users, FakeUsers)
        return self.adapters.users

    @property
    def uploader(self) -> FakeUploader:
        """The fake tree uploader the world runs on (unless the test handed in another)."""
        assert isinstance(self.adapters.uploader, FakeUploader)
        return self.adapters.uploader

    async def documents(self, collection: str) -> list[Document]:
        """What the store holds in ``collection``, by id."""
        async with self.store.transaction() as txn:
            return await txn.find(collection)

    async def read(self, look: Callable[[RepoUnitOfWork], Awaitable[T]]) -> T:
        """What ``look`` finds through the repositories, in a transaction of the test's own (it is
        not one of the units of work that ``units`` counts)."""
        async with self.store.transaction() as txn:
            return await look(RepoUnitOfWork(txn))

    async def write(self, change: Callable[[RepoUnitOfWork], Awaitable[Any]]) -> None:
        """Make ``change`` through the repositories, behind the use cases' back (not counted either)."""
        async with self.store.transaction() as txn:
            await change(RepoUnitOfWork(txn))


def settings(tmp_path: Path, **values: Any) -> RepoSettings:
    """repo-svc's settings with its data directory under ``tmp_path``."""
    return RepoSettings(data_dir=tmp_path / "data", **values)


async def repo_world(tmp_path: Path, configured: RepoSettings | None = None,
                     store: DocumentStore | None = None, **adapters: Any) -> World:
    """repo-svc on fresh test adapters (any of them replaced by ``adapters``), wired by the
    production composition root; on a fresh in-memory store unless ``store`` is given (open)."""
    store = store or await memory_store(COLLECTIONS)
    units: Units = RecordingUnitOfWorkFactory(store, RepoUnitOfWork)
    manifests = FakeManifests()
    built = Adapters(
        units=units, blobs=LocalBlobStore(tmp_path / "blobs", durable=False), manifests=manifests,
        references=StoredBlobReferences(store), uploads=StoredUploads(store),
        box=FernetSecretBox(Fernet.generate_key()), uploader=FakeUploader(manifests),
        directories=HostDirectories(), fetcher=NoSources(), users=FakeUsers(), clock=TickingClock(),
        ids=SequentialIds("prj-"))
    built = dataclasses.replace(built, **adapters)
    return World(compose(built, configured or settings(tmp_path)), built, units, store)
