"""Ports of the gateway's use cases."""

from __future__ import annotations

import abc
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from shipyard_gateway.domain.identity import TokenRecord, User


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
    async def token(self, token_id: str) -> TokenRecord | None:
        """The token record with that id."""

    @abc.abstractmethod
    async def add_token(self, token: TokenRecord) -> None:
        """Store a token record."""

    @abc.abstractmethod
    async def remove_token(self, token_id: str) -> bool:
        """Delete a token record; whether it existed."""


class DirectoryFactory(Protocol):
    """Starts a transaction over the directory."""

    def __call__(self) -> AbstractAsyncContextManager[Directory]: ...
