"""The unit of work every service builds on: one store transaction whose emitted events are
committed with it (the transactional outbox), and the record of create-request ids.

Use cases record domain events (dataclasses of the service's domain) with ``record``; the service's
one translation module turns each into the protobuf event of the contracts (an :class:`Emitted`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf.message import Message

from shipyard.kit.errors import AlreadyExists
from shipyard.kit.events import Event, new_event
from shipyard.kit.outbox import OutboxRelay, add_to_outbox
from shipyard.kit.store.port import Collection, DocumentStore, DuplicateKey, Transaction
from shipyard.kit.telemetry import current_traceparent

REQUESTS = Collection("requests")
"""Where :class:`StoredRequests` keeps request ids; add it to the service's collections."""


@dataclass(frozen=True)
class Emitted:
    """An event as a unit of work emits it: the contract's message, its subject and its project."""

    data: Message
    subject: str
    project: str = ""


# A service's domain event → the event it publishes (the service's one translation module).
Translation = Callable[[Any], Emitted]


class RequestLog(Protocol):
    """Remembers what each create request made, so a retried request returns the first result
    (:class:`StoredRequests` is the adapter)."""

    async def resource_of(self, key: str) -> str | None:
        """What request ``key`` made, if it was seen."""

    async def remember(self, key: str, resource: str) -> None:
        """Record what request ``key`` made."""


class Emitter(Protocol):
    """What every service's unit of work offers its use cases besides its repositories."""

    def record(self, event: Any) -> None:
        """Publish the domain event ``event`` once the transaction commits."""


def untranslated(event: Any) -> Emitted:
    """The translation of a service that records no domain events."""
    raise TypeError(f"no translation for {type(event).__name__}")


class StoreUnitOfWork:
    """A transaction of the store; events recorded in it go to its outbox when it commits.
    Services subclass it and add their repositories over ``txn``."""

    def __init__(self, txn: Transaction, source: str, translate: Translation = untranslated) -> None:
        self.txn = txn
        self.source = source
        self.translate = translate
        self.emitted: list[Emitted] = []
        self.events: list[Event] = []

    def record(self, event: Any) -> None:
        """Publish the domain event ``event`` (translated) once the transaction commits."""
        emitted = self.translate(event)
        self.emit(emitted.data, emitted.subject, emitted.project)

    def emit(self, data: Message, subject: str, project: str) -> None:
        """Publish ``data`` as an event once the transaction commits."""
        self.emitted.append(Emitted(data, subject, project))
        self.events.append(new_event(data, source=self.source, subject=subject, project=project,
                                     traceparent=current_traceparent()))


U = TypeVar("U", bound=StoreUnitOfWork)
U_co = TypeVar("U_co", covariant=True)


class UnitOfWorkFactory(Protocol[U_co]):
    """Starts a unit of work: ``async with uow() as tx: ...`` commits when the block ends normally."""

    def __call__(self) -> AbstractAsyncContextManager[U_co]: ...


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
        """Record what request ``key`` made; AlreadyExists when it was recorded before."""
        try:
            await self._txn.insert(REQUESTS.name, {"_id": key, "resource": resource})
        except DuplicateKey:
            raise AlreadyExists(f"request {key!r} is already recorded") from None
