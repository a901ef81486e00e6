"""The identity directory in the kit's document store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from shipyard.kit.errors import AlreadyExists
from shipyard.kit.store.port import Collection, DocumentStore, DuplicateKey, Page, Transaction
from shipyard_gateway.app.ports import Directory
from shipyard_gateway.domain.identity import TokenRecord, User

USERS = Collection("users")
TOKENS = Collection("tokens", indexed=("user",))
DIRECTORY_COLLECTIONS = (USERS, TOKENS)


def _user(doc: dict[str, Any]) -> User:
    return User(doc["_id"], frozenset(doc["roles"]), datetime.fromisoformat(doc["create_time"]),
                doc.get("display_name", ""))


class StoredDirectory(Directory):
    """Users keyed by name; tokens keyed by their public id."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def user(self, name: str) -> User | None:
        doc = await self._txn.get(USERS.name, name)
        return _user(doc) if doc else None

    async def users(self) -> list[User]:
        return [_user(d) for d in await self._txn.find(USERS.name, page=Page())]

    async def count_users(self) -> int:
        return await self._txn.count(USERS.name)

    async def add_user(self, user: User) -> None:
        try:
            await self._txn.insert(USERS.name, {"_id": user.name, "roles": sorted(user.roles),
                                                "create_time": user.create_time.isoformat(),
                                                "display_name": user.display_name})
        except DuplicateKey:
            raise AlreadyExists(f"a user named {user.name!r} already exists") from None

    async def token(self, token_id: str) -> TokenRecord | None:
        doc = await self._txn.get(TOKENS.name, token_id)
        if doc is None:
            return None
        return TokenRecord(doc["_id"], doc["user"], doc["secret_hash"],
                           datetime.fromisoformat(doc["create_time"]), doc.get("description", ""))

    async def add_token(self, token: TokenRecord) -> None:
        await self._txn.insert(TOKENS.name, {"_id": token.id, "user": token.user,
                                             "secret_hash": token.secret_hash,
                                             "create_time": token.create_time.isoformat(),
                                             "description": token.description})

    async def remove_token(self, token_id: str) -> bool:
        return await self._txn.delete(TOKENS.name, token_id)


class StoredDirectoryFactory:
    """One directory transaction per use."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[StoredDirectory]:
        async with self._store.transaction() as txn:
            yield StoredDirectory(txn)
