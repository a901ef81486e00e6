"""SQLite adapter of the document store: the embedded default, one file per service.

WAL with synchronous=NORMAL: a committed transaction survives a crash of the process
(kill -9); the last transactions before a power loss may not. The sqlite3 calls run on the
event loop: they take microseconds, far less than a hop to a worker thread would.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from shipyard.kit import errors
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

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# SQLite's primary result code for "database or disk is full" (its extended codes keep it in the low byte).
_SQLITE_FULL = 13


def _checked(name: str) -> str:
    """Identifiers are interpolated into SQL, so only plain names are allowed."""
    if not _NAME.match(name):
        raise ValueError(f"invalid collection or field name: {name!r}")
    return name


def _expr(field: str) -> str:
    return "id" if field == "_id" else f"json_extract(doc, '$.{_checked(field)}')"


def _param(value: Any) -> Any:
    # Compact, as json_extract renders objects and arrays; json.dumps' default spacing never matches.
    return json.dumps(value, separators=(",", ":")) if isinstance(value, dict | list) else value


class SQLiteTransaction(Transaction):
    """Operations on one connection inside BEGIN IMMEDIATE … COMMIT."""

    def __init__(self, db: sqlite3.Connection, collections: dict[str, Collection]) -> None:
        self._db = db
        self._collections = collections

    def _table(self, collection: str) -> str:
        if collection not in self._collections:
            raise ValueError(f"unknown collection: {collection!r}")
        return f'"{collection}"'

    async def get(self, collection: str, doc_id: str) -> Document | None:
        row = self._db.execute(f"SELECT doc, rev FROM {self._table(collection)} WHERE id = ?",
                               (doc_id,)).fetchone()
        return _load(row) if row else None

    async def find(self, collection: str, where: dict[str, Any] | None = None,
                   page: Page | None = None) -> list[Document]:
        page = page or Page()
        clauses, params = _where(where)
        order = _expr(page.order_by)
        if page.after is not None:
            op = "<" if page.descending else ">"
            clauses.append(f"({order} {op} ? OR ({order} = ? AND id {op} ?))")
            params += [page.after[0], page.after[0], page.after[1]]
        direction = "DESC" if page.descending else "ASC"
        sql = f"SELECT doc, rev FROM {self._table(collection)}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {order} {direction}, id {direction}"
        if page.limit is not None:
            sql += f" LIMIT {int(page.limit)}"
        return [_load(row) for row in self._db.execute(sql, params)]

    async def count(self, collection: str, where: dict[str, Any] | None = None) -> int:
        clauses, params = _where(where)
        sql = f"SELECT count(*) FROM {self._table(collection)}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        return int(self._db.execute(sql, params).fetchone()[0])

    async def insert(self, collection: str, doc: Document) -> Document:
        stored = {**doc, "_rev": 1}
        try:
            self._db.execute(f"INSERT INTO {self._table(collection)} (id, rev, doc) VALUES (?, 1, ?)",
                             (doc["_id"], _dump(stored)))
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(collection, self._violated(collection, exc)) from None
        return stored

    async def replace(self, collection: str, doc: Document, expected_rev: int) -> Document:
        stored = {**doc, "_rev": expected_rev + 1}
        try:
            cursor = self._db.execute(
                f"UPDATE {self._table(collection)} SET rev = ?, doc = ? WHERE id = ? AND rev = ?",
                (expected_rev + 1, _dump(stored), doc["_id"], expected_rev))
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(collection, self._violated(collection, exc)) from None
        if cursor.rowcount != 1:
            raise RevisionConflict(f"{collection}/{doc['_id']}: revision {expected_rev} is not current")
        return stored

    async def delete(self, collection: str, doc_id: str, expected_rev: int | None = None) -> bool:
        table = self._table(collection)
        if expected_rev is None:
            return self._db.execute(f"DELETE FROM {table} WHERE id = ?", (doc_id,)).rowcount == 1
        cursor = self._db.execute(f"DELETE FROM {table} WHERE id = ? AND rev = ?", (doc_id, expected_rev))
        if cursor.rowcount == 1:
            return True
        if await self.get(collection, doc_id) is None:
            return False
        raise RevisionConflict(f"{collection}/{doc_id}: revision {expected_rev} is not current")

    async def delete_many(self, collection: str, doc_ids: Sequence[str]) -> int:
        cursor = self._db.executemany(f"DELETE FROM {self._table(collection)} WHERE id = ?",
                                      [(i,) for i in doc_ids])
        return cursor.rowcount

    def _violated(self, collection: str, exc: sqlite3.IntegrityError) -> str:
        for unique in self._collections[collection].unique:
            # Quoted so that a field is not mistaken for another it is a prefix of (email, email_hash).
            if f"'ux_{collection}_{unique}'" in str(exc) or f"'$.{unique}'" in str(exc):
                return unique
        return "_id"


def _where(where: dict[str, Any] | None) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for field, value in (where or {}).items():
        if isinstance(value, Prefix):
            # substr() rather than LIKE: LIKE treats % and _ as wildcards and ignores case.
            clauses.append(f"substr({_expr(field)}, 1, ?) = ?")
            params += [len(value.value), value.value]
        elif isinstance(value, Contains):
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(doc, '$.{_checked(field)}') WHERE value = ?)")
            params.append(value.value)
        elif value is None:
            clauses.append(f"{_expr(field)} IS NULL")
        else:
            clauses.append(f"{_expr(field)} = ?")
            params.append(_param(value))
    return clauses, params


# SQLite's JSON functions refuse NaN and infinities (JSON has no such numbers), which documents may
# hold (MLflow's metrics may be NaN): they are kept as {"$float": "nan"} and read back as floats.
NON_FINITE = "$float"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {NON_FINITE: str(value)}
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _non_finite(obj: dict[str, Any]) -> Any:
    return float(obj[NON_FINITE]) if len(obj) == 1 and NON_FINITE in obj else obj


def _dump(doc: Document) -> str:
    fields = {k: v for k, v in doc.items() if k != "_rev"}
    try:
        return json.dumps(fields, separators=(",", ":"), allow_nan=False)
    except ValueError:  # rare: only a document with a NaN or infinity pays for the walk
        return json.dumps(_finite(fields), separators=(",", ":"))


def _load(row: tuple[str, int]) -> Document:
    text = row[0]
    doc: Document = (json.loads(text, object_hook=_non_finite) if f'"{NON_FINITE}"' in text
                     else json.loads(text))
    doc["_rev"] = row[1]
    return doc


class SQLiteDocumentStore(DocumentStore):
    """One SQLite database file; one table per collection (id, rev, doc JSON)."""

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path) if str(path) != ":memory:" else path
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._collections: dict[str, Collection] = {}

    async def open(self, collections: Sequence[Collection]) -> None:
        if isinstance(self._path, Path):
            self._path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self._path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        for collection in collections:
            self._create(collection)
            self._collections[collection.name] = collection

    def _create(self, collection: Collection) -> None:
        assert self._db is not None
        name = _checked(collection.name)
        self._db.execute(f'CREATE TABLE IF NOT EXISTS "{name}" '
                         "(id TEXT PRIMARY KEY, rev INTEGER NOT NULL, doc TEXT NOT NULL)")
        for field in collection.unique:
            self._db.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "ux_{name}_{_checked(field)}" '
                             f'ON "{name}" ({_expr(field)})')
        for field in collection.indexed:
            self._db.execute(f'CREATE INDEX IF NOT EXISTS "ix_{name}_{_checked(field)}" '
                             f'ON "{name}" ({_expr(field)}, id)')

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def ping(self) -> None:
        if self._db is None:
            raise RuntimeError("store is closed")
        self._db.execute("SELECT 1").fetchone()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self._db is None:
            raise RuntimeError("store is not open")
        async with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield SQLiteTransaction(self._db, self._collections)
                self._db.execute("COMMIT")
            except BaseException as exc:
                # SQLite may have rolled back already (a full disk does that).
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if _disk_full(exc):
                    raise errors.NoSpace(f"the store {self._path} (nothing was changed)") from exc
                raise


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database or disk is full"."""
    return (isinstance(exc, sqlite3.OperationalError)
            and (getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_FULL or "disk is full" in str(exc)))
