"""Ports of the gateway's use cases."""

from __future__ import annotations

import abc
import builtins
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from shipyard_gateway.domain.identity import TokenRecord, User
from shipyard_gateway.domain.webhooks import DeadLetter, Webhook


class Directory(abc.ABC):
    """Users and their tokens."""

    @abc.abstractmethod
    async def user(self, name: str) -> User | None:
        """The user with that name."""

    @abc.abstractmethod
    async def users(self) -> list[User]:
        """Every user, by name."""

    @abc.abstractmethod
    async def count_users(self) -> int:
        """How many users exist."""

    @abc.abstractmethod
    async def add_user(self, user: User) -> None:
        """Store a new user; AlreadyExists if the name is taken."""

    @abc.abstractmethod
    async def save_user(self, user: User) -> None:
        """Replace an existing user's record (roles, disabled, deleted)."""

    @abc.abstractmethod
    async def token(self, token_id: str) -> TokenRecord | None:
        """The token record with that id."""

    @abc.abstractmethod
    async def tokens(self, user: str | None) -> builtins.list[TokenRecord]:
        """The user's token records (everyone's for None)."""

    @abc.abstractmethod
    async def add_token(self, token: TokenRecord) -> None:
        """Store a token record."""

    @abc.abstractmethod
    async def save_token(self, token: TokenRecord) -> None:
        """Replace a stored token record (its last use); nothing if it was removed meanwhile."""

    @abc.abstractmethod
    async def remove_token(self, token_id: str) -> bool:
        """Delete a token record; whether it existed."""


class DirectoryFactory(Protocol):
    """Starts a transaction over the directory."""

    def __call__(self) -> AbstractAsyncContextManager[Directory]: ...


class WebhookStore(abc.ABC):
    """Webhooks (unique per owner and name), their sealed secrets and their dead letters."""

    @abc.abstractmethod
    async def get(self, webhook_id: str) -> Webhook | None:
        """The webhook with that id."""

    @abc.abstractmethod
    async def find(self, owner: str, name: str) -> Webhook | None:
        """The owner's webhook of that name."""

    @abc.abstractmethod
    async def list(self, owner: str | None) -> builtins.list[Webhook]:
        """The owner's webhooks (everyone's for None), by name."""

    @abc.abstractmethod
    async def add(self, webhook: Webhook, sealed_secret: str) -> None:
        """Store a new webhook; AlreadyExists if its owner has one of that name."""

    @abc.abstractmethod
    async def sealed_secret(self, webhook_id: str) -> str | None:
        """The webhook's secret as the SecretBox sealed it."""

    @abc.abstractmethod
    async def save(self, webhook: Webhook) -> bool:
        """Replace a webhook's record (its delivery progress); False if it was deleted."""

    @abc.abstractmethod
    async def remove(self, webhook_id: str) -> bool:
        """Delete a webhook and its dead letters; whether it existed."""

    @abc.abstractmethod
    async def add_dead_letter(self, letter: DeadLetter) -> None:
        """Keep an event that was given up (once per webhook and sequence)."""

    @abc.abstractmethod
    async def dead_letters(self, webhook_id: str, after_sequence: int,
                           limit: int) -> builtins.list[DeadLetter]:
        """The webhook's dead letters after a stream sequence, oldest first."""


class WebhookStoreFactory(Protocol):
    """Starts a transaction over the webhook store."""

    def __call__(self) -> AbstractAsyncContextManager[WebhookStore]: ...


class SecretBox(Protocol):
    """Encrypts secrets at rest (the kit's FernetSecretBox)."""

    def seal(self, secret: str) -> str:
        """The secret, encrypted, as text to store."""

    def open(self, sealed: str) -> str:
        """The secret back; ValueError when the key cannot open it."""


class EventStream(Protocol):
    """The event stream as webhooks need it."""

    async def last_sequence(self) -> int:
        """The sequence of the newest event in the stream (0 when empty); Unavailable if unreachable."""


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
