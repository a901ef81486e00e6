"""MongoDB adapter of the document store (production), on PyMongo's asyncio API.

Each port collection is a MongoDB collection of the service's database. A document's ``_id``
(a string) is MongoDB's ``_id``; ``_rev`` is an ordinary field. Documents come back as plain
dicts, exactly as the SQLite adapter returns them.

Indexes: a unique field gets a unique index ``ux_<field>`` that skips documents where the
field is null or missing (as SQLite's unique indexes do), plus the plain index used by
indexed fields, ``ix_<field>`` on ``(field, _id)``, which serves lookups and keyset pages
(MongoDB does not use a partial index for a query that does not repeat its filter).

Transactions need a replica set (a single-node one will do) or a sharded cluster. On a
standalone server there are none: the store still works, but the operations of a
``transaction()`` block apply one by one and are not rolled back when it raises, so a
change and the outbox event announcing it can be half-written. Production MongoDB must
therefore be a replica set; the store logs a warning the first time it runs a block on a
standalone server.

Two behaviours differ from SQLite:

* A write that meets a concurrent transaction's uncommitted write (MongoDB's WriteConflict)
  raises RevisionConflict, so the usual "read again and retry" applies.
* A server error inside a transaction (a duplicate key, a write conflict) aborts the whole
  transaction on MongoDB. The store raises the port error, and any later operation in the
  same block, or leaving the block normally, raises StoreError: catch DuplicateKey outside
  the transaction, not inside it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid, DuplicateKeyError, OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

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

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INDEX_IN_MESSAGE = re.compile(r"index: (\S+) dup key")
_WRITE_CONFLICT = 112
_NAMESPACE_EXISTS = 48
_COMMIT_ATTEMPTS = 3
# The BSON types JSON values map to; null is left out so that any number of documents may
# lack a unique field, as in SQLite where NULLs never collide.
_UNIQUE_WHEN = ["string", "number", "bool", "object", "array"]


def _checked(name: str) -> str:
    """Same names as the SQLite adapter accepts, so a service behaves alike on both."""
    if not _NAME.match(name):
        raise ValueError(f"invalid collection or field name: {name!r}")
    return name


def _unique_index(field: str) -> str:
    return f"ux_{field}"


def _plain_index(field: str) -> str:
    return f"ix_{field}"


def _id_is(doc_id: Any) -> dict[str, Any]:
    # $eq keeps a caller's value from being read as a query operator.
    return {"_id": {"$eq": doc_id}}


def _where(where: dict[str, Any] | None) -> dict[str, Any]:
    """Conditions on top-level fields; ``{"$eq": None}`` matches null and missing alike."""
    return {_checked(field): _condition(value) for field, value in (where or {}).items()}


def _condition(value: Any) -> dict[str, Any]:
    if isinstance(value, Prefix):
        # An anchored, escaped regex on a plain prefix can use the field's index.
        return {"$regex": "^" + re.escape(value.value)}
    if isinstance(value, Contains):
        return {"$elemMatch": {"$eq": value.value}}
    return {"$eq": value}


def _after(page: Page) -> dict[str, Any] | None:
    """Documents past the cursor in (order_by, _id) order."""
    if page.after is None:
        return None
    op = "$lt" if page.descending else "$gt"
    value, doc_id = page.after
    if page.order_by == "_id":
        return {"_id": {op: value}}
    field = _checked(page.order_by)
    return {"$or": [{field: {op: value}}, {field: {"$eq": value}, "_id": {op: doc_id}}]}


def _query(where: dict[str, Any] | None, page: Page) -> dict[str, Any]:
    match, after = _where(where), _after(page)
    if after is None:
        return match
    return {"$and": [match, after]} if match else after


def _sort(page: Page) -> list[tuple[str, int]]:
    direction = DESCENDING if page.descending else ASCENDING
    if page.order_by == "_id":
        return [("_id", direction)]
    return [(_checked(page.order_by), direction), ("_id", direction)]


def _violated(collection: Collection, exc: DuplicateKeyError) -> str:
    """The field whose unique index refused the write, from the server's error details."""
    details = exc.details or {}
    key_pattern = details.get("keyPattern")
    if isinstance(key_pattern, dict) and key_pattern:
        return str(next(iter(key_pattern)))
    found = _INDEX_IN_MESSAGE.search(str(details.get("errmsg", exc)))
    if found:
        for field in collection.unique:
            if found.group(1) == _unique_index(field):
                return field
    return "_id"


class MongoTransaction(Transaction):
    """Operations on one database, inside a client session's transaction when there is one."""

    def __init__(self, db: AsyncDatabase[Document], collections: dict[str, Collection],
                 session: AsyncClientSession | None) -> None:
        self._db = db
        self._collections = collections
        self._session = session
        self._failure: str | None = None

    def check_usable(self) -> None:
        """Raise StoreError when an earlier server error has aborted this transaction."""
        if self._failure is not None:
            raise StoreError(f"transaction aborted by an earlier error ({self._failure}); "
                             "start a new transaction")

    @asynccontextmanager
    async def _on(self, collection: str) -> AsyncIterator[AsyncCollection[Document]]:
        """The collection, with server errors translated to the port's."""
        self.check_usable()
        if collection not in self._collections:
            raise ValueError(f"unknown collection: {collection!r}")
        try:
            yield self._db[collection]
        except DuplicateKeyError as exc:
            field = _violated(self._collections[collection], exc)
            self._failure = f"{collection}: duplicate {field}"
            raise DuplicateKey(collection, field) from None
        except OperationFailure as exc:
            self._failure = f"{collection}: {exc.code}"
            if exc.code == _WRITE_CONFLICT:
                raise RevisionConflict(f"{collection}: a concurrent transaction wrote it first") from None
            raise

    async def get(self, collection: str, doc_id: str) -> Document | None:
        async with self._on(collection) as coll:
            return await coll.find_one(_id_is(doc_id), session=self._session)

    async def find(self, collection: str, where: dict[str, Any] | None = None,
                   page: Page | None = None) -> list[Document]:
        page = page or Page()
        if page.limit == 0:
            return []  # MongoDB reads a limit of 0 as "no limit"
        query, sort, limit = _query(where, page), _sort(page), max(page.limit or 0, 0)
        async with self._on(collection) as coll:
            cursor = coll.find(query, sort=sort, limit=limit, session=self._session)
            return await cursor.to_list()

    async def count(self, collection: str, where: dict[str, Any] | None = None) -> int:
        async with self._on(collection) as coll:
            return await coll.count_documents(_where(where), session=self._session)

    async def insert(self, collection: str, doc: Document) -> Document:
        # _id first and required: without one PyMongo would invent an ObjectId.
        stored = {"_id": doc["_id"], **doc, "_rev": 1}
        async with self._on(collection) as coll:
            await coll.insert_one(stored, session=self._session)
        return stored

    async def replace(self, collection: str, doc: Document, expected_rev: int) -> Document:
        stored = {"_id": doc["_id"], **doc, "_rev": expected_rev + 1}
        current = {**_id_is(doc["_id"]), "_rev": {"$eq": expected_rev}}
        async with self._on(collection) as coll:
            result = await coll.replace_one(current, stored, session=self._session)
        if result.matched_count != 1:
            raise RevisionConflict(f"{collection}/{doc['_id']}: revision {expected_rev} is not current")
        return stored

    async def delete(self, collection: str, doc_id: str, expected_rev: int | None = None) -> bool:
        query = _id_is(doc_id)
        if expected_rev is not None:
            query["_rev"] = {"$eq": expected_rev}
        async with self._on(collection) as coll:
            if (await coll.delete_one(query, session=self._session)).deleted_count == 1:
                return True
            if expected_rev is None:
                return False
            exists = await coll.find_one(_id_is(doc_id), {"_id": 1}, session=self._session)
        if exists is None:
            return False
        raise RevisionConflict(f"{collection}/{doc_id}: revision {expected_rev} is not current")

    async def delete_many(self, collection: str, doc_ids: Sequence[str]) -> int:
        async with self._on(collection) as coll:
            result = await coll.delete_many({"_id": {"$in": list(doc_ids)}}, session=self._session)
        return result.deleted_count


class MongoDocumentStore(DocumentStore):
    """One MongoDB database; the client connects on ``open()``, not on construction."""

    def __init__(self, url: str, database: str) -> None:
        self._url = url
        self._database = database
        self._client: AsyncMongoClient[Document] | None = None
        self._db: AsyncDatabase[Document] | None = None
        self._collections: dict[str, Collection] = {}
        self._transactions = False
        self._warned = False

    @property
    def database(self) -> str:
        """The name of the store's database."""
        return self._database

    @property
    def supports_transactions(self) -> bool:
        """Whether the server (replica set or mongos) runs real transactions; known once open."""
        return self._transactions

    async def open(self, collections: Sequence[Collection]) -> None:
        client: AsyncMongoClient[Document] = AsyncMongoClient(self._url, document_class=dict)
        try:
            hello = await client.admin.command("hello")
            db = client[self._database]
            for collection in collections:
                await self._create(db, collection)
        except BaseException:
            await client.close()
            raise
        self._client, self._db = client, db
        self._transactions = "setName" in hello or hello.get("msg") == "isdbgrid"
        self._collections.update({c.name: c for c in collections})

    async def _create(self, db: AsyncDatabase[Document], collection: Collection) -> None:
        name = _checked(collection.name)
        try:
            # Explicitly: older servers cannot create a collection inside a transaction.
            await db.create_collection(name)
        except CollectionInvalid:
            pass
        except OperationFailure as exc:
            if exc.code != _NAMESPACE_EXISTS:  # another process created it meanwhile
                raise
        coll = db[name]
        for field in collection.unique:
            if field != "_id":
                await coll.create_index([(_checked(field), ASCENDING)], name=_unique_index(field),
                                        unique=True,
                                        partialFilterExpression={field: {"$type": _UNIQUE_WHEN}})
        for field in dict.fromkeys([*collection.unique, *collection.indexed]):
            if field != "_id":
                await coll.create_index([(_checked(field), ASCENDING), ("_id", ASCENDING)],
                                        name=_plain_index(field))

    async def close(self) -> None:
        if self._client is not None:
            client, self._client, self._db = self._client, None, None
            await client.close()

    async def ping(self) -> None:
        await self._opened()[1].command("ping")

    def _opened(self) -> tuple[AsyncMongoClient[Document], AsyncDatabase[Document]]:
        if self._client is None or self._db is None:
            raise RuntimeError("store is not open")
        return self._client, self._db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        client, db = self._opened()
        if not self._transactions:
            self._warn_standalone()
            txn = MongoTransaction(db, self._collections, None)
            yield txn
            txn.check_usable()
            return
        async with client.start_session() as session:
            await session.start_transaction(read_concern=ReadConcern("snapshot"),
                                            write_concern=WriteConcern("majority"))
            txn = MongoTransaction(db, self._collections, session)
            try:
                yield txn
                txn.check_usable()
            except BaseException:
                await session.abort_transaction()
                raise
            await _commit(session)

    def _warn_standalone(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning("MongoDB database %r is on a standalone server, which has no transactions: "
                        "the writes of a transaction block are neither atomic nor rolled back. "
                        "Run MongoDB as a replica set in production.", self._database)


async def _commit(session: AsyncClientSession) -> None:
    """Commit, retrying while the server cannot say whether the commit happened (it is idempotent)."""
    for attempt in range(1, _COMMIT_ATTEMPTS + 1):
        try:
            await session.commit_transaction()
            return
        except PyMongoError as exc:
            if attempt == _COMMIT_ATTEMPTS or not exc.has_error_label("UnknownTransactionCommitResult"):
                raise
