"""The unit of work every service builds on: one store transaction whose emitted events are
committed with it (the transactional outbox), and the record of create-request ids."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from google.protobuf.message import Message

from shipyard.kit.events import Event, new_event
from shipyard.kit.outbox import OutboxRelay, add_to_outbox
from shipyard.kit.store.port import Collection, DocumentStore, Transaction
from shipyard.kit.telemetry import current_traceparent

REQUESTS = Collection("requests")
"""Where :class:`StoredRequests` keeps request ids; add it to the service's collections."""


class StoreUnitOfWork:
    """A transaction of the store; events emitted in it go to its outbox. Services subclass it
    and add their repositories over ``txn``."""

    def __init__(self, txn: Transaction, source: str) -> None:
        self.txn = txn
        self.source = source
        self.events: list[Event] = []

    def emit(self, data: Message, subject: str, project: str) -> None:
        """Publish ``data`` as an event once the transaction commits."""
        self.events.append(new_event(data, source=self.source, subject=subject, project=project,
                                     traceparent=current_traceparent()))


U = TypeVar("U", bound=StoreUnitOfWork)


class StoreUnitOfWorkFactory(Generic[U]):
    """Starts units of work (``build(txn)``) on the store; wakes the relay after a commit with events."""

    def __init__(
        self, store: DocumentStore, relay: OutboxRelay | None, build: Callable[[Transaction], U]
    ) -> None:
        self._store = store
        self._relay = relay
        self._build = build

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[U]:
        async with self._store.transaction() as txn:
            uow = self._build(txn)
            yield uow
            await add_to_outbox(txn, uow.events)
        if uow.events and self._relay is not None:
            self._relay.notify()


class StoredRequests:
    """Create-request ids and what each made (a retried create returns the first result)."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def resource_of(self, key: str) -> str | None:
        """What request ``key`` made, if it was seen."""
        doc = await self._txn.get(REQUESTS.name, key)
        return str(doc["resource"]) if doc else None

    async def remember(self, key: str, resource: str) -> None:
        """Record what request ``key`` made."""
        await self._txn.insert(REQUESTS.name, {"_id": key, "resource": resource})
