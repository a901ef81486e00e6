"""Shared test doubles for the services' unit tests: the in-memory store the real store adapters run
on, a unit-of-work factory that records what committed, and a fixed clock.

The document store conformance suite runs against :class:`MemoryDocumentStore` as against SQLite and
MongoDB, so a test double that behaves unlike the real stores fails a test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from shipyard.kit.caller import OPERATOR, Caller
from shipyard.kit.outbox import OUTBOX
from shipyard.kit.store.memory import MemoryDocumentStore
from shipyard.kit.store.port import Collection, DocumentStore, Transaction
from shipyard.kit.store.unit_of_work import Emitted, StoreUnitOfWork, StoreUnitOfWorkFactory

__all__ = ["ALICE", "BOB", "OPERATOR_CALLER", "Emitted", "FixedClock", "MemoryDocumentStore",
           "RecordingUnitOfWorkFactory", "memory_store"]

ALICE = Caller("alice", frozenset({"data-scientist"}))
BOB = Caller("bob", frozenset({"data-scientist"}))
OPERATOR_CALLER = Caller("olga", frozenset({OPERATOR}))

U = TypeVar("U", bound=StoreUnitOfWork)


async def memory_store(collections: Sequence[Collection]) -> MemoryDocumentStore:
    """An open in-memory store with ``collections`` (and the outbox)."""
    store = MemoryDocumentStore()
    await store.open([*collections, OUTBOX])
    return store


class RecordingUnitOfWorkFactory(StoreUnitOfWorkFactory[U]):
    """A service's real unit of work on a store, recording what happened to each one: ``published``
    holds the events of committed units only, in order; ``commits`` and ``rollbacks`` count them."""

    def __init__(self, store: DocumentStore, build: Callable[[Transaction], U]) -> None:
        super().__init__(store, None, build)
        self.store = store
        self.published: list[Emitted] = []
        self.commits = 0
        self.rollbacks = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[U]:
        try:
            async with super().__call__() as uow:
                yield uow
        except BaseException:
            self.rollbacks += 1
            raise
        self.commits += 1
        self.published.extend(uow.emitted)


@dataclass
class FixedClock:
    """A clock that stands still until a test moves it (``advance``)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move the clock on; the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now
