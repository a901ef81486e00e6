"""Shared test doubles for the services' unit tests: the stores the real store adapters run on (in
memory; SQLite in a file), a unit-of-work factory that records what committed, clocks (fixed,
ticking, in seconds), deterministic ids and a fake of repo-svc's client (:mod:`.repos`).

The document store conformance suite runs against :class:`MemoryDocumentStore` as against SQLite and
MongoDB, so a test double that behaves unlike the real stores fails a test.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message

from shipyard.kit.caller import OPERATOR, Caller
from shipyard.kit.inbox import INBOX
from shipyard.kit.outbox import OUTBOX
from shipyard.kit.store.memory import MemoryDocumentStore
from shipyard.kit.store.port import Collection, DocumentStore, Transaction
from shipyard.kit.store.sqlite import SQLiteDocumentStore
from shipyard.kit.store.unit_of_work import Emitted, StoreUnitOfWork, StoreUnitOfWorkFactory
from shipyard.kit.testing.repos import FakeRepoClient, digest_of

__all__ = ["ALICE", "BOB", "OPERATOR_CALLER", "Emitted", "FakeRepoClient", "FixedClock", "FixedSeconds",
           "MemoryDocumentStore", "RecordingUnitOfWorkFactory", "SequentialIds", "TickingClock", "digest_of",
           "memory_store", "sqlite_store"]

START = datetime(2026, 1, 1, tzinfo=UTC)
"""When the test clocks start unless told otherwise."""

ALICE = Caller("alice", frozenset({"data-scientist"}))
BOB = Caller("bob", frozenset({"data-scientist"}))
OPERATOR_CALLER = Caller("olga", frozenset({OPERATOR}))

U = TypeVar("U", bound=StoreUnitOfWork)
M = TypeVar("M", bound=Message)


async def memory_store(collections: Sequence[Collection]) -> MemoryDocumentStore:
    """An open in-memory store with ``collections`` (and the outbox)."""
    store = MemoryDocumentStore()
    await store.open([*collections, OUTBOX])
    return store


@asynccontextmanager
async def sqlite_store(path: Path, collections: Sequence[Collection]) -> AsyncIterator[SQLiteDocumentStore]:
    """An open SQLite store in the file ``path`` with ``collections`` (and the outbox and inbox, as a
    service opens them), closed when the block ends."""
    store = SQLiteDocumentStore(path)
    await store.open(list({c.name: c for c in [*collections, OUTBOX, INBOX]}.values()))
    try:
        yield store
    finally:
        await store.close()


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

    def messages(self, kind: type[M], subject: str | None = None) -> list[M]:
        """The committed events' data of one message type (``Message``: all), about ``subject``
        when given, in order."""
        return [e.data for e in self.published
                if isinstance(e.data, kind) and (subject is None or e.subject == subject)]

    def message_names(self, subject: str | None = None) -> list[str]:
        """The committed events' message names in order, e.g. ['RunSubmitted', 'RunStarted']."""
        return [m.DESCRIPTOR.name for m in self.messages(Message, subject)]


@dataclass
class FixedClock:
    """A clock that stands still until a test moves it (``advance``)."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move the clock on; the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class FixedSeconds:
    """A clock in seconds (the shape of ``time.monotonic`` or ``time.time``) that stands still until
    the test moves its ``now``."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class TickingClock:
    """A clock that moves ``step`` forward on each reading (so each time a use case records differs
    from the last); the test may move it further (``advance``)."""

    now: datetime = START
    step: timedelta = timedelta(seconds=1)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move the clock on without reading it; the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now


class SequentialIds:
    """Deterministic, increasing ids: ``prefix`` then a counter of ``digits`` digits (id-0001, …)."""

    def __init__(self, prefix: str = "id-", digits: int = 4) -> None:
        self._prefix = prefix
        self._digits = digits
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):0{self._digits}d}"
