"""In-memory fakes of the gateway's ports: the directory (all-or-nothing transactions) and
what webhooks need (store, secret box, stream, sender, messages, a sleep that does not wait)."""

from __future__ import annotations

import builtins
import itertools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shipyard_gateway.app.identity import Identity
from shipyard_gateway.app.ports import Directory, WebhookStore
from shipyard_gateway.domain.identity import TokenRecord, User
from shipyard_gateway.domain.webhooks import DeadLetter, Webhook

from shipyard.kit.errors import AlreadyExists


class FakeDirectory(Directory):
    """Users by name and token records by id."""

    def __init__(self) -> None:
        self.user_rows: dict[str, User] = {}
        self.token_rows: dict[str, TokenRecord] = {}

    async def user(self, name: str) -> User | None:
        return self.user_rows.get(name)

    async def users(self) -> list[User]:
        return [self.user_rows[n] for n in sorted(self.user_rows)]

    async def count_users(self) -> int:
        return len(self.user_rows)

    async def add_user(self, user: User) -> None:
        if user.name in self.user_rows:
            raise AlreadyExists(f"a user named {user.name!r} already exists")
        self.user_rows[user.name] = user

    async def save_user(self, user: User) -> None:
        assert user.name in self.user_rows
        self.user_rows[user.name] = user

    async def token(self, token_id: str) -> TokenRecord | None:
        return self.token_rows.get(token_id)

    async def tokens(self, user: str | None) -> list[TokenRecord]:
        return [t for t in self.token_rows.values() if user is None or t.user == user]

    async def add_token(self, token: TokenRecord) -> None:
        if token.id in self.token_rows:
            raise AlreadyExists(f"token {token.id!r} exists")
        self.token_rows[token.id] = token

    async def save_token(self, token: TokenRecord) -> None:
        if token.id in self.token_rows:
            self.token_rows[token.id] = token

    async def remove_token(self, token_id: str) -> bool:
        return self.token_rows.pop(token_id, None) is not None


@dataclass
class FakeDirectoryFactory:
    """Starts fake directory transactions and counts them (to see the token cache work)."""

    directory: FakeDirectory = field(default_factory=FakeDirectory)
    opened: int = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeDirectory]:
        self.opened += 1
        users, tokens = dict(self.directory.user_rows), dict(self.directory.token_rows)
        try:
            yield self.directory
        except BaseException:
            self.directory.user_rows, self.directory.token_rows = users, tokens
            raise


class FakeClock:
    """A clock that moves one second forward on each reading."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class FakeIds:
    """Deterministic token ids: tok0001, tok0002, … (no '.', like real ids)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"tok{next(self._counter):04d}"


def fake_identity() -> tuple[Identity, FakeDirectoryFactory]:
    """The identity use cases over a fresh fake directory."""
    directory = FakeDirectoryFactory()
    return Identity(directory=directory, clock=FakeClock(), ids=FakeIds()), directory


class FakeWebhookStore(WebhookStore):
    """Webhooks by id with their sealed secrets, and dead letters."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[Webhook, str]] = {}
        self.letters: list[DeadLetter] = []

    async def get(self, webhook_id: str) -> Webhook | None:
        row = self.rows.get(webhook_id)
        return row[0] if row else None

    async def find(self, owner: str, name: str) -> Webhook | None:
        return next((w for w, _ in self.rows.values() if (w.owner, w.name) == (owner, name)), None)

    async def list(self, owner: str | None) -> list[Webhook]:
        found = [w for w, _ in self.rows.values() if owner is None or w.owner == owner]
        return sorted(found, key=lambda w: (w.owner, w.name))

    async def add(self, webhook: Webhook, sealed_secret: str) -> None:
        if await self.find(webhook.owner, webhook.name) is not None:
            raise AlreadyExists(f"you already have a webhook named {webhook.name!r}")
        self.rows[webhook.id] = (webhook, sealed_secret)

    async def sealed_secret(self, webhook_id: str) -> str | None:
        row = self.rows.get(webhook_id)
        return row[1] if row else None

    async def save(self, webhook: Webhook) -> bool:
        if webhook.id not in self.rows:
            return False
        self.rows[webhook.id] = (webhook, self.rows[webhook.id][1])
        return True

    async def remove(self, webhook_id: str) -> bool:
        self.letters = [d for d in self.letters if d.webhook_id != webhook_id]
        return self.rows.pop(webhook_id, None) is not None

    async def add_dead_letter(self, letter: DeadLetter) -> None:
        if not any((d.webhook_id, d.sequence) == (letter.webhook_id, letter.sequence) for d in self.letters):
            self.letters.append(letter)

    async def dead_letters(self, webhook_id: str, after_sequence: int,
                           limit: int) -> builtins.list[DeadLetter]:
        mine = sorted((d for d in self.letters if d.webhook_id == webhook_id and d.sequence > after_sequence),
                      key=lambda d: d.sequence)
        return mine[:limit]


@dataclass
class FakeWebhookStoreFactory:
    """Starts fake webhook-store transactions (all share one store)."""

    store: FakeWebhookStore = field(default_factory=FakeWebhookStore)

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeWebhookStore]:
        yield self.store


class FakeBox:
    """A reversible stand-in for the Fernet box (sealed text never equals the secret)."""

    def seal(self, secret: str) -> str:
        return "sealed:" + secret[::-1]

    def open(self, sealed: str) -> str:
        return sealed.removeprefix("sealed:")[::-1]


@dataclass
class FakeStream:
    """An event stream whose newest sequence the test sets."""

    last: int = 0

    async def last_sequence(self) -> int:
        return self.last


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
