"""The generic repository: aggregates of one kind kept as documents of one collection.

A service's repository subclasses :class:`DocumentRepository`, names its collection and noun, and
writes the codec (``to_document`` / ``from_document``) and its own queries; get/add/save/remove/
find, optimistic revisions and the store-error → domain-error mapping are written here once.
"""

from __future__ import annotations

import abc
import builtins
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from shipyard.kit.errors import Aborted, AlreadyExists
from shipyard.kit.store.port import Collection, Document, DuplicateKey, Page, RevisionConflict, Transaction


class Stored(Protocol):
    """What an aggregate kept in a store has: its id and the revision it was read at (0: new)."""

    @property
    def id(self) -> str: ...

    @property
    def revision(self) -> int: ...


T = TypeVar("T", bound=Stored)


class DocumentRepository(abc.ABC, Generic[T]):
    """Aggregates of type ``T`` in ``collection``, within one transaction.

    ``noun`` is what the aggregate is called in messages ("run", "test inference"); ``label``
    says which one ("run 'mnist-1'"). A write that finds a unique field taken raises AlreadyExists
    naming it; a write on a revision that is no longer current raises Aborted ("read it again").
    """

    collection: ClassVar[Collection]
    noun: ClassVar[str]

    def __init__(self, txn: Transaction) -> None:
        self.txn = txn

    @abc.abstractmethod
    def to_document(self, item: T) -> Document:
        """The document for ``item`` (its ``_id`` included; ``_rev`` is the store's)."""

    @abc.abstractmethod
    def from_document(self, doc: Document) -> T:
        """The aggregate a stored document holds (its revision is ``doc["_rev"]``)."""

    def label(self, item: T) -> str:
        """Which aggregate, in a message: its noun and name."""
        return f"{self.noun} {getattr(item, 'name', item.id)!r}"

    def taken(self, item: T, field: str) -> AlreadyExists:
        """The error for a write refused because ``field``'s value is taken by another aggregate."""
        if field in ("_id", "name"):
            return AlreadyExists(f"a {self.noun} named {getattr(item, 'name', item.id)!r} exists already")
        return AlreadyExists(f"{self.label(item)}: another {self.noun} has that {field} already")

    def changed(self, item: T) -> Aborted:
        """The error for a write on a revision that is no longer current."""
        return Aborted(f"{self.label(item)} changed meanwhile; read it again and retry")

    async def by_id(self, doc_id: str) -> T | None:
        """The aggregate with that id, or None."""
        doc = await self.txn.get(self.collection.name, doc_id)
        return self.from_document(doc) if doc is not None else None

    async def find_one(self, **where: Any) -> T | None:
        """The first aggregate whose fields equal ``where`` (e.g. ``name="x"``), or None."""
        docs = await self.txn.find(self.collection.name, where, Page(limit=1))
        return self.from_document(docs[0]) if docs else None

    async def find(self, where: dict[str, Any] | None = None, page: Page | None = None) -> builtins.list[T]:
        """Aggregates matching ``where`` in ``page`` order (the store's filters and keyset paging)."""
        return [self.from_document(d) for d in await self.txn.find(self.collection.name, where, page)]

    async def count(self, where: dict[str, Any] | None = None) -> int:
        """How many aggregates match ``where``."""
        return await self.txn.count(self.collection.name, where)

    async def add(self, item: T) -> T:
        """Store a new aggregate (revision 1); AlreadyExists when its id or a unique field is taken."""
        try:
            return self.from_document(await self.txn.insert(self.collection.name, self.to_document(item)))
        except DuplicateKey as exc:
            raise self.taken(item, exc.field) from None

    async def save(self, item: T) -> T:
        """Store a change made on ``item.revision``; Aborted when someone changed it since."""
        try:
            doc = await self.txn.replace(self.collection.name, self.to_document(item), item.revision)
        except RevisionConflict:
            raise self.changed(item) from None
        except DuplicateKey as exc:
            raise self.taken(item, exc.field) from None
        return self.from_document(doc)

    async def remove(self, item: T) -> None:
        """Delete the aggregate as read at ``item.revision``; Aborted when it changed since."""
        try:
            await self.txn.delete(self.collection.name, item.id, item.revision)
        except RevisionConflict:
            raise self.changed(item) from None
