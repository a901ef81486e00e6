"""Ports of the gateway's use cases."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Protocol

from shipyard.kit.store.unit_of_work import Emitter, UnitOfWorkFactory
from shipyard_gateway.domain.identity import TokenRecord, User
from shipyard_gateway.domain.webhooks import DeadLetter, Webhook


class UserRepository(Protocol):
    """Users, keyed by name."""

    async def by_id(self, doc_id: str) -> User | None:
        """The user with that name."""

    async def every(self) -> list[User]:
        """Every user (the deleted ones too), by name."""

    async def count(self) -> int:
        """How many users exist."""

    async def add(self, user: User) -> User:
        """Store a new user; AlreadyExists if the name is taken."""

    async def save(self, user: User) -> User:
        """Store a change made on ``user.revision``; Aborted if someone changed it since."""


class TokenRepository(Protocol):
    """Token records (API tokens and console sessions), keyed by their public id."""

    async def by_id(self, doc_id: str) -> TokenRecord | None:
        """The token record with that id."""

    async def of_user(self, user: str | None) -> list[TokenRecord]:
        """The user's token records (everyone's for None)."""

    async def add(self, token: TokenRecord) -> TokenRecord:
        """Store a new token record."""

    async def save(self, token: TokenRecord) -> TokenRecord:
        """Store a change (its last use) made on ``token.revision``; Aborted if it changed since."""

    async def remove(self, token: TokenRecord) -> None:
        """Delete the token record as read; Aborted if it changed since."""


class WebhookRepository(Protocol):
    """Webhooks (unique per owner and name), keyed by id, each with its sealed secret."""

    async def by_id(self, doc_id: str) -> Webhook | None:
        """The webhook with that id."""

    async def named(self, owner: str, name: str) -> Webhook | None:
        """The owner's webhook of that name."""

    async def of_owner(self, owner: str | None) -> list[Webhook]:
        """The owner's webhooks (everyone's for None), by owner and name."""

    async def add(self, webhook: Webhook) -> Webhook:
        """Store a new webhook; AlreadyExists if its owner has one of that name."""

    async def save(self, webhook: Webhook) -> Webhook:
        """Store a change (its delivery progress) made on ``webhook.revision``; Aborted if it
        changed since."""

    async def remove(self, webhook: Webhook) -> None:
        """Delete the webhook as read; Aborted if it changed since."""


class DeadLetterRepository(Protocol):
    """The events each webhook gave up on."""

    async def keep(self, letter: DeadLetter) -> None:
        """Keep an event that was given up (once per webhook and sequence)."""

    async def after(self, webhook_id: str, after_sequence: int, limit: int) -> list[DeadLetter]:
        """The webhook's dead letters after a stream sequence, oldest first."""

    async def forget(self, webhook_id: str) -> None:
        """Delete the webhook's dead letters."""


class UnitOfWork(Emitter, Protocol):
    """One transaction over the gateway's repositories (the gateway records no domain events)."""

    @property
    def users(self) -> UserRepository:
        """Users in this transaction."""

    @property
    def tokens(self) -> TokenRepository:
        """Token records in this transaction."""

    @property
    def webhooks(self) -> WebhookRepository:
        """Webhooks in this transaction."""

    @property
    def dead_letters(self) -> DeadLetterRepository:
        """Webhooks' dead letters in this transaction."""


Units = UnitOfWorkFactory[UnitOfWork]
"""Starts the gateway's units of work: ``async with uow() as tx: ...``."""


class EventStream(Protocol):
    """The event stream as webhooks need it."""

    async def last_sequence(self) -> int:
        """The sequence of the newest event in the stream (0 when empty); Unavailable if unreachable."""


class WebhookFeed(EventStream, Protocol):
    """Each webhook's own durable consumer of the event stream (JetStreamEvents)."""

    def messages(self, webhook_id: str,
                 resume_after: Callable[[], Awaitable[int | None]]) -> AsyncGenerator[StreamMessage, None]:
        """The webhook's events, one at a time, forever; they end once ``resume_after`` (asked
        where a new consumer starts) says None: the webhook is gone."""

    async def forget(self, webhook_id: str) -> None:
        """Delete the webhook's consumer (nothing if it is gone already)."""


class Deliveries(Protocol):
    """What sends each webhook's events (one task per webhook, in the background)."""

    def start(self, webhook: Webhook) -> None:
        """Begin sending the webhook's events (nothing if already sending)."""

    async def stop(self, webhook_id: str) -> None:
        """Stop sending and forget the webhook's position in the stream."""


class StreamMessage(Protocol):
    """One event of the stream, held until acknowledged."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The CloudEvents binary-mode headers."""

    @property
    def data(self) -> bytes:
        """The protobuf body."""

    @property
    def sequence(self) -> int:
        """The stream sequence."""

    async def ack(self) -> None:
        """Done with it: the next event may come."""

    async def in_progress(self) -> None:
        """Still working on it: do not redeliver it yet."""


class Sender(Protocol):
    """POSTs a webhook request."""

    async def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> str | None:
        """None when the receiver accepted it (2xx); otherwise what went wrong, e.g. "HTTP 503"."""


class RolesOf(Protocol):
    """A user's current roles."""

    async def __call__(self, user: str) -> frozenset[str] | None:
        """The user's roles; None if there is no such user (any more)."""
