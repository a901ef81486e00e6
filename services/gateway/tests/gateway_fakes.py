"""In-memory fake of the gateway's Directory port, with all-or-nothing transactions."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shipyard_gateway.app.identity import Identity
from shipyard_gateway.app.ports import Directory
from shipyard_gateway.domain.identity import TokenRecord, User

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

    async def token(self, token_id: str) -> TokenRecord | None:
        return self.token_rows.get(token_id)

    async def add_token(self, token: TokenRecord) -> None:
        if token.id in self.token_rows:
            raise AlreadyExists(f"token {token.id!r} exists")
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
