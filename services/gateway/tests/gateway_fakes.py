"""Fakes of the gateway's ports other than the store, clocks and ids (the kit's TickingClock, FixedSeconds
and SequentialIds serve for those): run-svc's verdict on runs' tokens, what webhooks need (secret box,
stream, deliveries, sender, messages, a sleep that does not wait), and the test world: the gateway
composed by its own ``compose`` on those fakes and its real store adapters over the kit's in-memory
store."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeAlias

from shipyard_gateway.adapters.backends import Backends
from shipyard_gateway.adapters.store import COLLECTIONS, SOURCE, GatewayUnitOfWork
from shipyard_gateway.app.identity import Identity, RunGrant
from shipyard_gateway.bootstrap import BACKENDS, Adapters, Gateway, compose
from shipyard_gateway.domain.identity import TokenRecord, User
from shipyard_gateway.domain.webhooks import Webhook
from shipyard_gateway.entrypoints.api import PublicApi
from shipyard_gateway.settings import GatewaySettings

from shipyard.kit.assertions import CallerAssertions, new_key
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.bus import EventBus
from shipyard.kit.errors import Unauthenticated
from shipyard.kit.store.port import Collection, Document
from shipyard.kit.testing import (
    FixedSeconds,
    RecordingUnitOfWorkFactory,
    SequentialIds,
    TickingClock,
    memory_store,
)

GatewayUnits: TypeAlias = RecordingUnitOfWorkFactory[GatewayUnitOfWork]


async def gateway_units() -> GatewayUnits:
    """The gateway's real units of work over a fresh in-memory store."""
    return RecordingUnitOfWorkFactory(await memory_store(COLLECTIONS), GatewayUnitOfWork)


def token_ids() -> SequentialIds:
    """Deterministic token ids: tok0001, tok0002, … (no '.', like real ids)."""
    return SequentialIds("tok")


@dataclass
class FakeRunTokens:
    """run-svc as the gateway sees it: the active runs' tokens (none unless the test adds some)."""

    active: dict[str, RunGrant] = field(default_factory=dict)
    asked: int = 0

    async def verify(self, token: str) -> RunGrant:
        self.asked += 1
        if token not in self.active:
            raise Unauthenticated("the run 'train' has ended: its token no longer works")
        return self.active[token]


@dataclass
class World:
    """The gateway as ``compose`` builds it, on the fakes and the in-memory store. Its channels to
    the services lead nowhere and its bus is never started: these tests call neither."""

    gateway: Gateway
    adapters: Adapters
    uow: GatewayUnits

    @property
    def identity(self) -> Identity:
        """The identity use cases."""
        return self.gateway.identity

    @property
    def api(self) -> PublicApi:
        """The public API (authentication, the role policy, the routes)."""
        return self.gateway.api

    @property
    def transactions(self) -> int:
        """Units of work started so far (committed or rolled back)."""
        return self.uow.commits + self.uow.rollbacks

    async def users(self) -> dict[str, User]:
        """Every stored user (the deleted ones too), by name."""
        async with self.uow() as tx:
            return {u.name: u for u in await tx.users.every()}

    async def tokens(self) -> dict[str, TokenRecord]:
        """Every stored token record, by id."""
        async with self.uow() as tx:
            return {t.id: t for t in await tx.tokens.of_user(None)}

    async def documents(self, collection: Collection) -> list[Document]:
        """The documents of ``collection`` as stored."""
        async with self.uow() as tx:
            return await tx.txn.find(collection.name)

    async def close(self) -> None:
        """Close the channels to the services."""
        await self.adapters.backends.close()


async def gateway_world(settings: GatewaySettings | None = None, uow: GatewayUnits | None = None,
                        clock: Callable[[], datetime] | None = None, ids: Callable[[], str] | None = None,
                        ticks: Callable[[], float] | None = None,
                        run_tokens: FakeRunTokens | None = None) -> World:
    """The gateway composed on fakes (fresh unless given: ``uow`` shared makes another replica)."""
    uow = uow if uow is not None else await gateway_units()
    backends = Backends.connect(dict.fromkeys(BACKENDS, "127.0.0.1:1"))
    # Never opened: no test here serves blobs.
    blobs = LocalBlobStore(Path(tempfile.gettempdir()) / "shipyard-gateway-unit-tests")
    adapters = Adapters(uow, backends, EventBus("nats://127.0.0.1:1", source=SOURCE), FakeStream(), blobs,
                        FakeBox(), FakeSender(), run_tokens or FakeRunTokens(),
                        CallerAssertions(new_key(), "gateway"), clock=clock or TickingClock(),
                        ids=ids or token_ids(), ticks=ticks or FixedSeconds())
    return World(compose(adapters, settings or GatewaySettings()), adapters, uow)


class FakeBox:
    """A reversible stand-in for the Fernet box (sealed text never equals the secret)."""

    def seal(self, secret: str) -> str:
        return "sealed:" + secret[::-1]

    def open(self, sealed: str) -> str:
        return sealed.removeprefix("sealed:")[::-1]

    def fingerprint(self, secret: str) -> str:
        return f"fingerprint:{len(secret)}"


@dataclass
class FakeStream:
    """An event stream whose newest sequence the test sets, and each webhook's consumer of it:
    the messages the test queued for the webhook, then the end."""

    last: int = 0
    queued: dict[str, list[FakeMessage]] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)

    async def last_sequence(self) -> int:
        return self.last

    async def messages(self, webhook_id: str, resume_after: Callable[[], Awaitable[int | None]]
                       ) -> AsyncGenerator[FakeMessage, None]:
        for message in self.queued.pop(webhook_id, []):
            yield message

    async def forget(self, webhook_id: str) -> None:
        self.forgotten.append(webhook_id)


@dataclass
class FakeDeliveries:
    """Records which webhooks were started and stopped."""

    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def start(self, webhook: Webhook) -> None:
        self.started.append(webhook.id)

    async def stop(self, webhook_id: str) -> None:
        self.stopped.append(webhook_id)


@dataclass
class FakeMessage:
    """A stream message that records what was done with it."""

    headers: dict[str, str]
    data: bytes
    sequence: int
    acked: bool = False
    kept_alive: int = 0

    async def ack(self) -> None:
        self.acked = True

    async def in_progress(self) -> None:
        self.kept_alive += 1


@dataclass
class FakeSender:
    """Answers from a script of results (None = accepted), then accepts; keeps every request."""

    script: list[str | None] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> str | None:
        self.requests.append((url, dict(headers), body))
        return self.script.pop(0) if self.script else None


@dataclass
class NoWait:
    """A sleep that returns at once and remembers how long it was asked to wait."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
