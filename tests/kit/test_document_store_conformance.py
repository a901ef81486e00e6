"""One conformance suite for every document store adapter.

The ``store``/``open_store`` fixtures run each test against SQLite (a file under tmp_path),
the in-memory store the services' unit tests use (so the shared fake cannot drift from the real
stores) and, when ``SHIPYARD_TEST_MONGODB_URL`` is set, against MongoDB: a fresh database per test,
dropped afterwards. Point it at a replica set (a single-node ``--replSet`` will do): a
standalone server has no transactions, so the rollback tests fail there, saying so.
"""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from shipyard.kit.store.factory import open_document_store
from shipyard.kit.store.memory import MemoryDocumentStore
from shipyard.kit.store.mongo import MongoDocumentStore, MongoTransaction
from shipyard.kit.store.port import (
    Collection,
    Contains,
    Document,
    DocumentStore,
    DuplicateKey,
    Page,
    Prefix,
    RevisionConflict,
    StoreError,
    Transaction,
)
from shipyard.kit.store.sqlite import SQLiteDocumentStore

MONGODB_URL = os.environ.get("SHIPYARD_TEST_MONGODB_URL") or None
MONGODB_SKIPPED = "SHIPYARD_TEST_MONGODB_URL is not set: MongoDB conformance not run"

# Two unique fields, one a prefix of the other, so a store must name the right one.
ITEMS = Collection("items", unique=("email", "email_hash"), indexed=("group", "rank"))
COUNTERS = Collection("counters")
COLLECTIONS = (ITEMS, COUNTERS)

OpenStore = Callable[[], Awaitable[DocumentStore]]


class Boom(Exception):
    """Raised inside a transaction block to make it roll back."""


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(params=[
    pytest.param("sqlite", id="sqlite"),
    pytest.param("memory", id="memory"),
    pytest.param("mongodb", id="mongodb",
                 marks=pytest.mark.skipif(MONGODB_URL is None, reason=MONGODB_SKIPPED)),
])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens a new store on this test's database each call (so a test can reopen it)."""
    database = f"shipyard_test_{uuid.uuid4().hex[:16]}"
    opened: list[DocumentStore] = []
    memory = MemoryDocumentStore()  # reopened, it still holds what was written (as a file does)

    def new_store() -> DocumentStore:
        if request.param == "sqlite":
            return SQLiteDocumentStore(tmp_path / "store.db")
        if request.param == "memory":
            return memory
        assert MONGODB_URL is not None
        return MongoDocumentStore(MONGODB_URL, database)

    async def open_() -> DocumentStore:
        store = new_store()
        await store.open(COLLECTIONS)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()
    if request.param == "mongodb":
        await _drop_mongodb_database(database)


async def _drop_mongodb_database(database: str) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(MONGODB_URL)
    try:
        await client.drop_database(database)
    finally:
        await client.close()


@pytest.fixture
async def store(open_store: OpenStore) -> DocumentStore:
    return await open_store()


# --- helpers: one transaction per call ---------------------------------------------------


async def _insert(store: DocumentStore, collection: str, *docs: Document) -> list[Document]:
    async with store.transaction() as txn:
        return [await txn.insert(collection, doc) for doc in docs]


async def _get(store: DocumentStore, collection: str, doc_id: str) -> Document | None:
    async with store.transaction() as txn:
        return await txn.get(collection, doc_id)


async def _find(store: DocumentStore, collection: str, where: dict[str, Any] | None = None,
                page: Page | None = None) -> list[Document]:
    async with store.transaction() as txn:
        return await txn.find(collection, where, page)


async def _count(store: DocumentStore, collection: str, where: dict[str, Any] | None = None) -> int:
    async with store.transaction() as txn:
        return await txn.count(collection, where)


async def _ids(store: DocumentStore, collection: str, where: dict[str, Any] | None = None,
               page: Page | None = None) -> list[str]:
    return [doc["_id"] for doc in await _find(store, collection, where, page)]


def _require_atomic_transactions(store: DocumentStore) -> None:
    if isinstance(store, MongoDocumentStore) and not store.supports_transactions:
        pytest.fail("SHIPYARD_TEST_MONGODB_URL is a standalone MongoDB server, which has no "
                    "transactions: point it at a replica set")


def _typed(value: Any) -> Any:
    """The value with every scalar paired with its type: True == 1 and 2.0 == 2 otherwise."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value), value)


# --- round trip and revisions ------------------------------------------------------------

ROUND_TRIP: Document = {
    "_id": "doc-1",
    "name": "Ünïcødé ✓ 漢字 🚢",
    "count": 42,
    "big": 2**53 + 1,
    "negative": -7,
    "ratio": 0.125,
    "whole_float": 2.0,
    "yes": True,
    "no": False,
    "nothing": None,
    "tags": ["a", 1, 2.5, False, None, {"k": "v"}, []],
    "nested": {"deep": {"list": [[1, 2], {"x": "ÿ"}], "empty": {}}},
}


async def test_insert_then_get_round_trips_json_values(store: DocumentStore) -> None:
    doc = dict(ROUND_TRIP)
    [inserted] = await _insert(store, "items", doc)
    got = await _get(store, "items", "doc-1")
    expected = {**ROUND_TRIP, "_rev": 1}
    assert got is not None and type(got) is dict
    assert _typed(got) == _typed(expected)
    assert _typed(inserted) == _typed(expected)
    assert _typed(await _find(store, "items", {"_id": "doc-1"})) == [_typed(expected)]
    assert doc == ROUND_TRIP  # the caller's dict is left alone
    assert await _get(store, "items", "missing") is None


async def test_nan_and_infinities_round_trip(store: DocumentStore) -> None:
    """MLflow logs NaN and infinite metrics: every store keeps them (SQLite's JSON has no such numbers)."""
    doc = {"_id": "n", "metrics": {"loss": math.nan, "up": math.inf, "down": -math.inf, "ok": 0.5},
           "points": [["loss", math.nan, 1]]}
    await _insert(store, "items", doc)
    got = await _get(store, "items", "n")
    assert got is not None
    assert math.isnan(got["metrics"]["loss"]) and math.isnan(got["points"][0][1])
    assert (got["metrics"]["up"], got["metrics"]["down"], got["metrics"]["ok"]) == (math.inf, -math.inf, 0.5)


async def test_revision_starts_at_one_and_bumps_on_each_replace(store: DocumentStore) -> None:
    [inserted] = await _insert(store, "items", {"_id": "r", "v": 0})
    assert inserted["_rev"] == 1
    async with store.transaction() as txn:
        second = await txn.replace("items", {**inserted, "v": 1}, expected_rev=1)
    assert second == {"_id": "r", "v": 1, "_rev": 2}
    assert await _get(store, "items", "r") == second
    async with store.transaction() as txn:
        third = await txn.replace("items", {"_id": "r", "v": 2}, expected_rev=2)
    assert third["_rev"] == 3
    assert await _get(store, "items", "r") == {"_id": "r", "v": 2, "_rev": 3}


# --- unique keys -------------------------------------------------------------------------


async def test_duplicate_id_raises_duplicate_key_on_id(store: DocumentStore) -> None:
    await _insert(store, "items", {"_id": "a", "email": "a@x"})
    with pytest.raises(DuplicateKey) as caught:
        await _insert(store, "items", {"_id": "a", "email": "other@x"})
    assert (caught.value.collection, caught.value.field) == ("items", "_id")
    assert await _get(store, "items", "a") == {"_id": "a", "email": "a@x", "_rev": 1}


@pytest.mark.parametrize("field", ["email", "email_hash"])
async def test_duplicate_unique_field_names_that_field(store: DocumentStore, field: str) -> None:
    first = {"_id": "a", "email": "a@x", "email_hash": "h-a"}
    await _insert(store, "items", first)
    with pytest.raises(DuplicateKey) as caught:
        await _insert(store, "items", {"_id": "b", "email": "b@x", "email_hash": "h-b", field: first[field]})
    assert (caught.value.collection, caught.value.field) == ("items", field)
    assert await _ids(store, "items") == ["a"]


async def test_unique_fields_may_be_missing_or_null_on_many_documents(store: DocumentStore) -> None:
    await _insert(store, "items", {"_id": "a"}, {"_id": "b"},
                  {"_id": "c", "email": None, "email_hash": None}, {"_id": "d", "email": None})
    assert await _count(store, "items") == 4


async def test_replace_that_breaks_a_unique_field_raises_and_changes_nothing(store: DocumentStore) -> None:
    await _insert(store, "items", {"_id": "a", "email": "a@x"}, {"_id": "b", "email": "b@x"})
    with pytest.raises(DuplicateKey) as caught:
        async with store.transaction() as txn:
            await txn.replace("items", {"_id": "b", "email": "a@x"}, expected_rev=1)
    assert caught.value.field == "email"
    assert await _get(store, "items", "b") == {"_id": "b", "email": "b@x", "_rev": 1}


# --- optimistic concurrency --------------------------------------------------------------


async def test_replace_with_stale_revision_conflicts_and_changes_nothing(store: DocumentStore) -> None:
    [doc] = await _insert(store, "items", {"_id": "s", "v": 0})
    async with store.transaction() as txn:
        await txn.replace("items", {**doc, "v": 1}, expected_rev=1)
    with pytest.raises(RevisionConflict):
        async with store.transaction() as txn:
            await txn.replace("items", {**doc, "v": "stale"}, expected_rev=1)
    assert await _get(store, "items", "s") == {"_id": "s", "v": 1, "_rev": 2}
    with pytest.raises(RevisionConflict):
        async with store.transaction() as txn:
            await txn.replace("items", {"_id": "never-inserted", "v": 1}, expected_rev=1)
    assert await _get(store, "items", "never-inserted") is None


async def test_delete_with_and_without_expected_revision(store: DocumentStore) -> None:
    await _insert(store, "items", {"_id": "x"}, {"_id": "y"})
    async with store.transaction() as txn:
        assert await txn.delete("items", "absent") is False
        assert await txn.delete("items", "absent", expected_rev=1) is False
    with pytest.raises(RevisionConflict):
        async with store.transaction() as txn:
            await txn.delete("items", "x", expected_rev=2)
    assert await _get(store, "items", "x") is not None
    async with store.transaction() as txn:
        assert await txn.delete("items", "x", expected_rev=1) is True
        assert await txn.delete("items", "y") is True
        assert await txn.delete("items", "y") is False
    assert await _count(store, "items") == 0


async def test_delete_many_deletes_the_ids_that_exist(store: DocumentStore) -> None:
    await _insert(store, "items", *({"_id": f"d{i}"} for i in range(5)))
    async with store.transaction() as txn:
        assert await txn.delete_many("items", ["d1", "d3", "missing"]) == 2
        assert await txn.delete_many("items", []) == 0
    assert await _ids(store, "items") == ["d0", "d2", "d4"]


async def test_concurrent_increments_with_retry_reach_the_right_total(store: DocumentStore) -> None:
    await _insert(store, "counters", {"_id": "hits", "n": 0})

    async def increment() -> None:
        for _attempt in range(500):
            try:
                async with store.transaction() as txn:
                    doc = await txn.get("counters", "hits")
                    assert doc is not None
                    # Yield between the read and the write so that the increments interleave.
                    await asyncio.sleep(0)
                    await txn.replace("counters", {**doc, "n": doc["n"] + 1}, doc["_rev"])
                return
            except RevisionConflict:
                continue
        pytest.fail("an increment kept conflicting")

    await asyncio.gather(*(increment() for _ in range(50)))
    assert await _get(store, "counters", "hits") == {"_id": "hits", "n": 50, "_rev": 51}


# --- queries -----------------------------------------------------------------------------

FILTERED: list[Document] = [
    {"_id": "a", "group": "red", "active": True, "label": "ça", "owner": {"kind": "user", "id": "u1"}},
    {"_id": "b", "group": "red", "active": False, "note": None},
    {"_id": "c", "group": "blue", "active": True, "owner": {"kind": "user", "id": "u2"}},
    {"_id": "d", "group": "blue", "note": "x"},
]


@pytest.mark.parametrize(("where", "expected"), [
    (None, ["a", "b", "c", "d"]),
    ({"group": "red"}, ["a", "b"]),
    ({"group": "green"}, []),
    ({"label": "ça"}, ["a"]),
    ({"active": True}, ["a", "c"]),
    ({"active": False}, ["b"]),
    ({"active": None}, ["d"]),
    ({"note": None}, ["a", "b", "c"]),
    ({"group": "blue", "active": True}, ["c"]),
    ({"owner": {"kind": "user", "id": "u1"}}, ["a"]),
    ({"_id": "c"}, ["c"]),
], ids=lambda value: repr(value))
async def test_find_and_count_filter_on_equality(store: DocumentStore, where: dict[str, Any] | None,
                                                 expected: list[str]) -> None:
    await _insert(store, "items", *reversed(FILTERED))
    assert await _ids(store, "items", where) == expected
    assert await _count(store, "items", where) == len(expected)


NAMED: list[Document] = [
    {"_id": "1", "name": "digits", "tags": ["vision", "small"]},
    {"_id": "2", "name": "digits-v2", "tags": ["vision"]},
    {"_id": "3", "name": "dig%_it", "tags": []},
    {"_id": "4", "name": "Digits", "tags": ["small"]},
    {"_id": "5", "name": "audio"},
]


@pytest.mark.parametrize(("where", "expected"), [
    ({"name": Prefix("dig")}, ["1", "2", "3"]),
    ({"name": Prefix("digits")}, ["1", "2"]),
    ({"name": Prefix("dig%")}, ["3"]),
    ({"name": Prefix("di_")}, []),
    ({"name": Prefix("D")}, ["4"]),
    ({"name": Prefix("")}, ["1", "2", "3", "4", "5"]),
    ({"tags": Contains("vision")}, ["1", "2"]),
    ({"tags": Contains("small")}, ["1", "4"]),
    ({"tags": Contains("none")}, []),
    ({"name": Prefix("dig"), "tags": Contains("small")}, ["1"]),
], ids=lambda value: repr(value))
async def test_find_and_count_filter_on_prefix_and_contains(store: DocumentStore, where: dict[str, Any],
                                                            expected: list[str]) -> None:
    await _insert(store, "items", *NAMED)
    assert await _ids(store, "items", where) == expected
    assert await _count(store, "items", where) == len(expected)


ORDERED: list[Document] = [
    {"_id": "e", "rank": 2, "group": "red"},
    {"_id": "a", "rank": 10, "group": "blue"},
    {"_id": "d", "rank": 1, "group": "red"},
    {"_id": "b", "rank": 2, "group": "green"},
    {"_id": "f", "rank": 1, "group": "blue"},
    {"_id": "c", "rank": 2, "group": "red"},
]


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("order_by", ["rank", "group", "_id"])
async def test_find_orders_by_a_field_then_id(store: DocumentStore, order_by: str, descending: bool) -> None:
    await _insert(store, "items", *ORDERED)
    expected = [d["_id"] for d in sorted(ORDERED, key=lambda d: (d[order_by], d["_id"]), reverse=descending)]
    assert await _ids(store, "items", page=Page(order_by=order_by, descending=descending)) == expected
    assert await _ids(store, "items", page=Page(order_by=order_by, descending=descending,
                                                limit=3)) == expected[:3]
    assert await _ids(store, "items", page=Page(order_by=order_by, limit=0)) == []


def _many(n: int) -> list[Document]:
    """n documents with many ties on rank, inserted in an order unrelated to the expected one."""
    docs = [{"_id": f"doc-{i:03d}", "rank": (i * 37) % 11, "group": "red" if i % 2 else "blue"}
            for i in range(n)]
    return [docs[(i * 7919) % n] for i in range(n)]


@pytest.mark.parametrize("where", [None, {"group": "red"}], ids=["all", "filtered"])
@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
async def test_keyset_pages_return_every_document_once_in_order(
        store: DocumentStore, descending: bool, where: dict[str, Any] | None) -> None:
    docs = _many(250)
    await _insert(store, "items", *docs)
    matching = [d for d in docs if where is None or d["group"] == where["group"]]
    expected = [d["_id"] for d in sorted(matching, key=lambda d: (d["rank"], d["_id"]), reverse=descending)]

    pages: list[list[Document]] = []
    after = None
    for _ in range(len(docs)):
        page = await _find(store, "items", where,
                           Page(order_by="rank", descending=descending, after=after, limit=40))
        if not page:
            break
        pages.append(page)
        after = (page[-1]["rank"], page[-1]["_id"])

    assert [d["_id"] for page in pages for d in page] == expected
    assert [len(page) for page in pages[:-1]] == [40] * (len(pages) - 1)
    assert await _count(store, "items", where) == len(expected)


# --- transactions ------------------------------------------------------------------------


async def test_a_transaction_that_raises_writes_nothing(store: DocumentStore) -> None:
    _require_atomic_transactions(store)
    await _insert(store, "items", {"_id": "keep", "email": "k@x", "v": 0}, {"_id": "gone", "v": 0})
    with pytest.raises(Boom):
        async with store.transaction() as txn:
            await txn.insert("items", {"_id": "new", "email": "n@x"})
            await txn.replace("items", {"_id": "keep", "email": "k@x", "v": 1}, expected_rev=1)
            assert await txn.delete("items", "gone") is True
            await txn.insert("counters", {"_id": "c", "n": 1})
            assert await txn.get("items", "new") is not None  # it reads its own writes
            raise Boom
    assert await _get(store, "items", "keep") == {"_id": "keep", "email": "k@x", "v": 0, "_rev": 1}
    assert await _ids(store, "items") == ["gone", "keep"]
    assert await _count(store, "counters") == 0
    # The store is still usable, and the rolled-back unique value is free again.
    await _insert(store, "items", {"_id": "new", "email": "n@x"})
    assert await _count(store, "items") == 3


async def test_a_store_error_rolls_back_the_writes_before_it(store: DocumentStore) -> None:
    _require_atomic_transactions(store)
    await _insert(store, "items", {"_id": "a", "email": "a@x"})
    with pytest.raises(DuplicateKey):
        async with store.transaction() as txn:
            await txn.insert("items", {"_id": "fresh"})
            await txn.insert("items", {"_id": "b", "email": "a@x"})
    assert await _ids(store, "items") == ["a"]


async def test_committed_writes_survive_reopening_the_store(open_store: OpenStore) -> None:
    store = await open_store()
    async with store.transaction() as txn:
        doc = await txn.insert("items", {"_id": "p", "email": "p@x", "v": 1})
        await txn.replace("items", {**doc, "v": 2}, expected_rev=1)
        await txn.insert("counters", {"_id": "c", "n": 7})
    await store.close()
    with pytest.raises(RuntimeError):
        async with store.transaction():
            pass

    reopened = await open_store()
    assert await _get(reopened, "items", "p") == {"_id": "p", "email": "p@x", "v": 2, "_rev": 2}
    assert await _get(reopened, "counters", "c") == {"_id": "c", "n": 7, "_rev": 1}
    with pytest.raises(DuplicateKey):  # the unique index is still there
        await _insert(reopened, "items", {"_id": "q", "email": "p@x"})


async def test_ping_answers_while_open_and_raises_once_closed(store: DocumentStore) -> None:
    await store.ping()
    await store.close()
    with pytest.raises(RuntimeError):
        await store.ping()


UNKNOWN_COLLECTION: dict[str, Callable[[Transaction], Awaitable[object]]] = {
    "get": lambda txn: txn.get("nope", "x"),
    "find": lambda txn: txn.find("nope"),
    "count": lambda txn: txn.count("nope"),
    "insert": lambda txn: txn.insert("nope", {"_id": "x"}),
    "replace": lambda txn: txn.replace("nope", {"_id": "x"}, 1),
    "delete": lambda txn: txn.delete("nope", "x"),
    "delete_many": lambda txn: txn.delete_many("nope", ["x"]),
}


@pytest.mark.parametrize("operation", UNKNOWN_COLLECTION)
async def test_unknown_collection_raises_value_error(store: DocumentStore, operation: str) -> None:
    with pytest.raises(ValueError, match="unknown collection"):
        async with store.transaction() as txn:
            await UNKNOWN_COLLECTION[operation](txn)


# --- factory -----------------------------------------------------------------------------


async def test_factory_opens_a_sqlite_file(tmp_path: Path) -> None:
    store = open_document_store(f"sqlite://{tmp_path}/data/repo.db")
    assert isinstance(store, SQLiteDocumentStore)
    await store.open(COLLECTIONS)
    try:
        await _insert(store, "items", {"_id": "a"})
    finally:
        await store.close()
    assert (tmp_path / "data" / "repo.db").is_file()


async def test_factory_opens_sqlite_in_memory() -> None:
    store = open_document_store("sqlite:///:memory:")
    assert isinstance(store, SQLiteDocumentStore)
    await store.open(COLLECTIONS)
    try:
        await _insert(store, "items", {"_id": "a"})
        assert await _count(store, "items") == 1
    finally:
        await store.close()


@pytest.mark.parametrize(("url", "database"), [
    ("mongodb://localhost:27017/db", "db"),
    ("mongodb://user:p%40ss@h1:27017,h2:27017/shipyard_repo?replicaSet=rs0&authSource=admin",
     "shipyard_repo"),
    ("mongodb+srv://user:pw@cluster0.example.net/runs?retryWrites=true", "runs"),
])
async def test_factory_makes_a_mongodb_store_without_connecting(url: str, database: str) -> None:
    store = open_document_store(url)
    assert isinstance(store, MongoDocumentStore)
    assert store.database == database
    with pytest.raises(RuntimeError, match="not open"):
        await store.ping()
    with pytest.raises(RuntimeError, match="not open"):
        async with store.transaction():
            pass
    await store.close()


def test_mongodb_store_is_constructed_without_connecting() -> None:
    store = MongoDocumentStore("mongodb://localhost:27017", "db")
    assert store.database == "db"
    assert store.supports_transactions is False


@pytest.mark.parametrize(("url", "problem"), [
    ("", "has no scheme"),
    ("/var/lib/shipyard/repo.db", "has no scheme"),
    ("postgres://localhost/db", "scheme 'postgres' is not supported"),
    ("sqlite://relative/repo.db", "names a host"),
    ("sqlite://", "names no database file"),
    ("sqlite:///", "names no database file"),
    ("sqlite:///var/lib/shipyard/", "names no database file"),
    ("sqlite:///var/lib/repo.db?mode=ro", "takes no options"),
    ("mongodb://localhost:27017", "names no database"),
    ("mongodb://localhost:27017/", "names no database"),
    ("mongodb://localhost:27017/?replicaSet=rs0", "names no database"),
    ("mongodb+srv://cluster0.example.net", "names no database"),
    ("mongodb:///db", "names no host"),
    ("mongodb://user:pw@/db", "names no host"),
    ("mongodb://localhost/bad.name", "not a valid database name"),
    ("mongodb://localhost/" + "x" * 64, "not a valid database name"),
])
def test_factory_rejects_bad_urls_saying_why(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        open_document_store(url)


def test_factory_errors_never_show_the_password() -> None:
    with pytest.raises(ValueError) as caught:
        open_document_store("mongodb://admin:s3cret@db.internal:27017")
    assert "s3cret" not in str(caught.value)
    assert "***@db.internal:27017" in str(caught.value)


# --- MongoDB error mapping, without a server ---------------------------------------------


class _RefusingCollection:
    """Stands in for a PyMongo collection whose writes meet a unique index."""

    def __init__(self, error: DuplicateKeyError) -> None:
        self._error = error

    async def insert_one(self, doc: Document, session: object = None) -> None:
        raise self._error


E11000 = "E11000 duplicate key error collection: db.items index: {index} dup key: {{ {field}: \"v\" }}"


@pytest.mark.parametrize(("details", "field"), [
    ({"keyPattern": {"email_hash": 1}, "keyValue": {"email_hash": "v"}}, "email_hash"),
    ({"errmsg": E11000.format(index="ux_email_hash", field="email_hash")}, "email_hash"),
    ({"errmsg": E11000.format(index="ux_email", field="email")}, "email"),
    ({"keyPattern": {"_id": 1}}, "_id"),
    ({"errmsg": E11000.format(index="_id_", field="_id")}, "_id"),
])
async def test_mongodb_duplicate_key_names_the_field_and_dooms_the_transaction(
        details: dict[str, Any], field: str) -> None:
    error = DuplicateKeyError(details.get("errmsg", "E11000 duplicate key error"), 11000, details)
    db: Any = {"items": _RefusingCollection(error)}
    txn = MongoTransaction(db, {"items": ITEMS}, session=None)
    with pytest.raises(DuplicateKey) as caught:
        await txn.insert("items", {"_id": "a", field: "v"})
    assert (caught.value.collection, caught.value.field) == ("items", field)
    # MongoDB aborts a transaction on a server error, so the block may not carry on.
    with pytest.raises(StoreError, match="aborted"):
        await txn.get("items", "a")
