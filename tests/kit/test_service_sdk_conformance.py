"""One conformance suite for the service SDK's store parts: the generic repository, the unit of
work (with its outbox and domain events) and the request log.

It runs against SQLite, the in-memory store the services' unit tests use, and MongoDB when
``SHIPYARD_TEST_MONGODB_URL`` is set — so a fake that behaves unlike the real stores fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.kit.errors import Aborted, AlreadyExists
from shipyard.kit.outbox import OUTBOX
from shipyard.kit.store.documents import DocumentRepository
from shipyard.kit.store.mongo import MongoDocumentStore
from shipyard.kit.store.port import Collection, Document, DocumentStore, Page, Prefix, Transaction
from shipyard.kit.store.sqlite import SQLiteDocumentStore
from shipyard.kit.store.unit_of_work import REQUESTS, Emitted, StoredRequests, StoreUnitOfWork, untranslated
from shipyard.kit.testing import MemoryDocumentStore, RecordingUnitOfWorkFactory
from tests.kit.test_document_store_conformance import MONGODB_SKIPPED, MONGODB_URL

BOATS = Collection("boats", unique=("name",), indexed=("harbour",))


@dataclass(frozen=True)
class Boat:
    id: str
    name: str
    harbour: str
    revision: int = 0


@dataclass(frozen=True)
class BoatLaunched:
    """A domain event: no protobuf in it."""

    boat: Boat


def translate(event: object) -> Emitted:
    """The test service's translation module: its one domain event."""
    if not isinstance(event, BoatLaunched):
        return untranslated(event)
    message = events_pb2.ProjectCreated(project=projects_pb2.Project(name=event.boat.name))
    return Emitted(message, subject=event.boat.name, project=event.boat.harbour)


class Boats(DocumentRepository[Boat]):
    collection = BOATS
    noun = "boat"

    def to_document(self, item: Boat) -> Document:
        return {"_id": item.id, "name": item.name, "harbour": item.harbour}

    def from_document(self, doc: Document) -> Boat:
        return Boat(doc["_id"], doc["name"], doc["harbour"], doc["_rev"])


class Yard(StoreUnitOfWork):
    def __init__(self, txn: Transaction) -> None:
        super().__init__(txn, "shipyard/test", translate)
        self.boats = Boats(txn)
        self.requests = StoredRequests(txn)


class Rollback(Exception):
    """Raised in a unit of work to undo it."""


@pytest.fixture(params=[
    pytest.param("sqlite", id="sqlite"),
    pytest.param("memory", id="memory"),
    pytest.param("mongodb", id="mongodb",
                 marks=pytest.mark.skipif(MONGODB_URL is None, reason=MONGODB_SKIPPED)),
])
async def uow(request: pytest.FixtureRequest,
              tmp_path: Path) -> AsyncIterator[RecordingUnitOfWorkFactory[Yard]]:
    store: DocumentStore
    if request.param == "sqlite":
        store = SQLiteDocumentStore(tmp_path / "store.db")
    elif request.param == "memory":
        store = MemoryDocumentStore()
    else:
        assert MONGODB_URL is not None
        store = MongoDocumentStore(MONGODB_URL, f"shipyard_test_{uuid.uuid4().hex[:16]}")
    await store.open([BOATS, REQUESTS, OUTBOX])
    try:
        yield RecordingUnitOfWorkFactory(store, Yard)
    finally:
        await store.close()


async def _add(uow: RecordingUnitOfWorkFactory[Yard], *boats: Boat) -> list[Boat]:
    async with uow() as tx:
        return [await tx.boats.add(boat) for boat in boats]


async def test_add_starts_at_revision_one_and_reads_back(uow: RecordingUnitOfWorkFactory[Yard]) -> None:
    [added] = await _add(uow, Boat("b1", "ark", "north"))
    assert added.revision == 1
    async with uow() as tx:
        assert await tx.boats.by_id("b1") == added
        assert await tx.boats.find_one(name="ark") == added
        assert await tx.boats.find_one(name="nope") is None


async def test_a_taken_name_is_already_exists_naming_the_aggregate(
        uow: RecordingUnitOfWorkFactory[Yard]) -> None:
    await _add(uow, Boat("b1", "ark", "north"))
    with pytest.raises(AlreadyExists, match="a boat named 'ark' exists already"):
        await _add(uow, Boat("b2", "ark", "south"))


async def test_save_bumps_the_revision_and_a_stale_save_is_aborted(
        uow: RecordingUnitOfWorkFactory[Yard]) -> None:
    [boat] = await _add(uow, Boat("b1", "ark", "north"))
    async with uow() as tx:
        saved = await tx.boats.save(replace(boat, harbour="south"))
    assert saved.revision == 2
    with pytest.raises(Aborted, match="boat 'ark' changed meanwhile"):
        async with uow() as tx:
            await tx.boats.save(replace(boat, harbour="east"))
    async with uow() as tx:
        assert (await tx.boats.by_id("b1")) == saved


async def test_remove_on_a_stale_revision_is_aborted(uow: RecordingUnitOfWorkFactory[Yard]) -> None:
    [boat] = await _add(uow, Boat("b1", "ark", "north"))
    async with uow() as tx:
        await tx.boats.save(boat)
    with pytest.raises(Aborted):
        async with uow() as tx:
            await tx.boats.remove(boat)
    async with uow() as tx:
        current = await tx.boats.by_id("b1")
        assert current is not None
        await tx.boats.remove(current)
        assert await tx.boats.by_id("b1") is None


async def test_find_filters_and_pages(uow: RecordingUnitOfWorkFactory[Yard]) -> None:
    await _add(uow, *(Boat(f"b{i}", f"ark-{i}", "north" if i % 2 else "south") for i in range(6)))
    async with uow() as tx:
        north = await tx.boats.find({"harbour": "north"}, Page(order_by="name"))
        assert [b.name for b in north] == ["ark-1", "ark-3", "ark-5"]
        second = await tx.boats.find({"name": Prefix("ark-")}, Page(order_by="name", after=("ark-2", "b2"),
                                                                     limit=2))
        assert [b.name for b in second] == ["ark-3", "ark-4"]
        assert await tx.boats.count({"harbour": "south"}) == 3


async def test_a_unit_of_work_is_all_or_nothing_with_its_events(
        uow: RecordingUnitOfWorkFactory[Yard]) -> None:
    with pytest.raises(Rollback):
        async with uow() as tx:
            boat = await tx.boats.add(Boat("b1", "ark", "north"))
            tx.record(BoatLaunched(boat))
            raise Rollback
    async with uow() as tx:
        assert await tx.boats.by_id("b1") is None
        boat = await tx.boats.add(Boat("b1", "ark", "north"))
        tx.record(BoatLaunched(boat))
    assert (uow.commits, uow.rollbacks) == (1, 1)
    assert [(e.data, e.subject, e.project) for e in uow.published] == [
        (events_pb2.ProjectCreated(project=projects_pb2.Project(name="ark")), "ark", "north")]
    async with uow() as tx:
        staged = await tx.txn.find(OUTBOX.name)
    assert len(staged) == 1  # the committed event waits in the outbox for the relay


async def test_a_domain_event_without_a_translation_is_refused(uow: RecordingUnitOfWorkFactory[Yard]) -> None:
    with pytest.raises(TypeError):
        async with uow() as tx:
            tx.record(object())
    assert uow.published == []


async def test_the_request_log_remembers_once(uow: RecordingUnitOfWorkFactory[Yard]) -> None:
    async with uow() as tx:
        assert await tx.requests.resource_of("req-1") is None
        await tx.requests.remember("req-1", "ark")
    async with uow() as tx:
        assert await tx.requests.resource_of("req-1") == "ark"
    with pytest.raises(AlreadyExists, match="req-1"):
        async with uow() as tx:
            await tx.requests.remember("req-1", "other")
