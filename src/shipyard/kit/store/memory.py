"""An in-memory document store: the shared fake that services' unit tests run their real store
adapters on.

It keeps the port's contract as SQLite and MongoDB do (the document store conformance suite runs
against all three): documents are JSON (what goes in comes out as JSON would give it back), ``_rev``
starts at 1 and bumps on every write, unique fields refuse a second document with the same value
(nulls never collide), and a transaction's writes are undone when its block raises.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

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

Table = dict[str, Document]


def _copy(doc: Document) -> Document:
    # A JSON round trip, as the real stores make: tuples come back as lists, and a value that JSON
    # cannot hold fails here as it would there.
    copied: Document = json.loads(json.dumps(doc))
    return copied


def _matches(doc: Document, where: dict[str, Any] | None) -> bool:
    for field, wanted in (where or {}).items():
        value = doc.get(field)
        if isinstance(wanted, Prefix):
            if not (isinstance(value, str) and value.startswith(wanted.value)):
                return False
        elif isinstance(wanted, Contains):
            if not (isinstance(value, list) and wanted.value in value):
                return False
        elif value != wanted:
            return False
    return True


def _sort_key(doc: Document, field: str) -> tuple[Any, ...]:
    value = doc.get(field)
    # Nulls first, as SQLite orders them; then numbers before strings, as both real stores do.
    if value is None:
        return (0, 0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value, "")
    return (2, 0, str(value))


class MemoryTransaction(Transaction):
    """Reads and writes on the store's tables, journalled so that a failed block can be undone."""

    def __init__(self, tables: dict[str, Table], collections: dict[str, Collection]) -> None:
        self._tables = tables
        self._collections = collections
        self.journal: list[tuple[str, str, Document | None]] = []

    def _table(self, collection: str) -> Table:
        if collection not in self._tables:
            raise ValueError(f"unknown collection: {collection!r}")
        return self._tables[collection]

    def _write(self, collection: str, doc_id: str, doc: Document | None) -> None:
        table = self._table(collection)
        self.journal.append((collection, doc_id, table.get(doc_id)))
        if doc is None:
            table.pop(doc_id, None)
        else:
            table[doc_id] = doc

    def undo(self) -> None:
        """Put back every document this transaction changed."""
        for collection, doc_id, before in reversed(self.journal):
            if before is None:
                self._tables[collection].pop(doc_id, None)
            else:
                self._tables[collection][doc_id] = before
        self.journal.clear()

    def _check_unique(self, collection: str, doc: Document) -> None:
        for field in self._collections[collection].unique:
            value = doc.get(field)
            if value is None:
                continue
            for other in self._table(collection).values():
                if other["_id"] != doc["_id"] and other.get(field) == value:
                    raise DuplicateKey(collection, field)

    async def get(self, collection: str, doc_id: str) -> Document | None:
        doc = self._table(collection).get(doc_id)
        return _copy(doc) if doc is not None else None

    async def find(self, collection: str, where: dict[str, Any] | None = None,
                   page: Page | None = None) -> list[Document]:
        page = page or Page()
        found = [d for d in self._table(collection).values() if _matches(d, where)]
        found.sort(key=lambda d: (_sort_key(d, page.order_by), d["_id"]), reverse=page.descending)
        if page.after is not None:
            cursor = (_sort_key({"v": page.after[0]}, "v"), page.after[1])
            found = [d for d in found
                     if ((_sort_key(d, page.order_by), d["_id"]) < cursor if page.descending
                         else (_sort_key(d, page.order_by), d["_id"]) > cursor)]
        if page.limit is not None:
            found = found[: page.limit]
        return [_copy(d) for d in found]

    async def count(self, collection: str, where: dict[str, Any] | None = None) -> int:
        return sum(1 for d in self._table(collection).values() if _matches(d, where))

    async def insert(self, collection: str, doc: Document) -> Document:
        stored = _copy({**doc, "_rev": 1})
        if stored["_id"] in self._table(collection):
            raise DuplicateKey(collection, "_id")
        self._check_unique(collection, stored)
        self._write(collection, stored["_id"], stored)
        return _copy(stored)

    async def replace(self, collection: str, doc: Document, expected_rev: int) -> Document:
        current = self._table(collection).get(doc["_id"])
        if current is None or current["_rev"] != expected_rev:
            raise RevisionConflict(f"{collection}/{doc['_id']}: revision {expected_rev} is not current")
        stored = _copy({**doc, "_rev": expected_rev + 1})
        self._check_unique(collection, stored)
        self._write(collection, stored["_id"], stored)
        return _copy(stored)

    async def delete(self, collection: str, doc_id: str, expected_rev: int | None = None) -> bool:
        current = self._table(collection).get(doc_id)
        if current is None:
            return False
        if expected_rev is not None and current["_rev"] != expected_rev:
            raise RevisionConflict(f"{collection}/{doc_id}: revision {expected_rev} is not current")
        self._write(collection, doc_id, None)
        return True

    async def delete_many(self, collection: str, doc_ids: Sequence[str]) -> int:
        return sum([await self.delete(collection, doc_id) for doc_id in dict.fromkeys(doc_ids)])


class MemoryDocumentStore(DocumentStore):
    """Collections of documents in dicts; one transaction at a time, as SQLite runs them."""

    def __init__(self) -> None:
        self._tables: dict[str, Table] = {}
        self._collections: dict[str, Collection] = {}
        self._lock = asyncio.Lock()
        self._open = False

    async def open(self, collections: Sequence[Collection]) -> None:
        for collection in collections:
            self._collections[collection.name] = collection
            self._tables.setdefault(collection.name, {})
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def ping(self) -> None:
        if not self._open:
            raise RuntimeError("store is closed")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if not self._open:
            raise RuntimeError("store is not open")
        async with self._lock:
            txn = MemoryTransaction(self._tables, self._collections)
            try:
                yield txn
            except BaseException:
                txn.undo()
                raise

    def documents(self, collection: str) -> list[Document]:
        """Every document of ``collection`` (copies), for tests to look at what was stored."""
        return [_copy(d) for d in self._tables.get(collection, {}).values()]
