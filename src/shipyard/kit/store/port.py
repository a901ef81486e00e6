"""The document store port.

Each service keeps its aggregates as JSON documents in collections of its own store. A
document is a dict with ``_id`` (string) and ``_rev`` (revision, bumped on every write by
the store). Writes happen inside a transaction; a write that states the revision it read
fails with RevisionConflict when another writer got there first (optimistic concurrency).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

Document = dict[str, Any]


class StoreError(Exception):
    """Base of the store's own errors."""


class DuplicateKey(StoreError):
    """An insert or replace would break a unique key; ``field`` names it."""

    def __init__(self, collection: str, field: str) -> None:
        super().__init__(f"{collection}: duplicate {field}")
        self.collection = collection
        self.field = field


class RevisionConflict(StoreError):
    """The document changed (or vanished) since the caller read it."""


class DocumentNotFound(StoreError):
    """No document with that id."""


@dataclass(frozen=True)
class Collection:
    """A collection and the document fields it indexes (top-level fields only)."""

    name: str
    unique: Sequence[str] = field(default_factory=tuple)
    indexed: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Prefix:
    """A ``where`` condition: the string field starts with ``value`` (case-sensitive)."""

    value: str


@dataclass(frozen=True)
class Contains:
    """A ``where`` condition: the array field holds ``value``."""

    value: str | int


@dataclass(frozen=True)
class Page:
    """Keyset pagination: documents ordered by ``order_by`` (then ``_id``), after a cursor."""

    order_by: str = "_id"
    descending: bool = False
    after: tuple[Any, str] | None = None  # (order_by value, _id) of the last document seen
    limit: int | None = None


class Transaction(abc.ABC):
    """Reads and writes that commit together or not at all."""

    @abc.abstractmethod
    async def get(self, collection: str, doc_id: str) -> Document | None:
        """The document with that id, or None."""

    @abc.abstractmethod
    async def find(self, collection: str, where: dict[str, Any] | None = None,
                   page: Page | None = None) -> list[Document]:
        """Documents matching ``where``, in page order.

        Each ``where`` item is a top-level field and a value it must equal, or a Prefix
        or Contains condition.
        """

    @abc.abstractmethod
    async def count(self, collection: str, where: dict[str, Any] | None = None) -> int:
        """How many documents match ``where``."""

    @abc.abstractmethod
    async def insert(self, collection: str, doc: Document) -> Document:
        """Insert a new document (``_rev`` becomes 1); DuplicateKey on a taken id or unique field."""

    @abc.abstractmethod
    async def replace(self, collection: str, doc: Document, expected_rev: int) -> Document:
        """Replace the document with ``doc['_id']`` if its revision is ``expected_rev``.

        Returns it with the new revision; RevisionConflict otherwise.
        """

    @abc.abstractmethod
    async def delete(self, collection: str, doc_id: str, expected_rev: int | None = None) -> bool:
        """Delete; False when absent. RevisionConflict when ``expected_rev`` is given and differs."""

    @abc.abstractmethod
    async def delete_many(self, collection: str, doc_ids: Sequence[str]) -> int:
        """Delete those ids that exist; how many were deleted."""


class DocumentStore(abc.ABC):
    """One service's database."""

    @abc.abstractmethod
    async def open(self, collections: Sequence[Collection]) -> None:
        """Connect and create the collections and their indexes if missing."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection."""

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction that commits when the block exits normally and rolls back otherwise."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
