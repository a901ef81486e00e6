"""The identity directory in the kit's document store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from shipyard.kit.errors import AlreadyExists
from shipyard.kit.store.port import Collection, DocumentStore, DuplicateKey, Page, Transaction
from shipyard_gateway.app.ports import Directory
from shipyard_gateway.domain.identity import API, TokenRecord, User

USERS = Collection("users")
TOKENS = Collection("tokens", indexed=("user",))
DIRECTORY_COLLECTIONS = (USERS, TOKENS)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _user(doc: dict[str, Any]) -> User:
    return User(doc["_id"], frozenset(doc["roles"]), datetime.fromisoformat(doc["create_time"]),
                doc.get("display_name", ""), doc.get("disabled", False), doc.get("deleted", False))


def _user_doc(user: User) -> dict[str, Any]:
    return {"_id": user.name, "roles": sorted(user.roles), "create_time": user.create_time.isoformat(),
            "display_name": user.display_name, "disabled": user.disabled, "deleted": user.deleted}


def _token(doc: dict[str, Any]) -> TokenRecord:
    # Tokens stored before kinds and lifetimes existed are API tokens that never expire.
    return TokenRecord(doc["_id"], doc["user"], doc["secret_hash"],
                       datetime.fromisoformat(doc["create_time"]), doc.get("description", ""),
                       doc.get("kind", API), _time(doc.get("expire_time")), _time(doc.get("last_use_time")))


def _token_doc(token: TokenRecord) -> dict[str, Any]:
    return {"_id": token.id, "user": token.user, "secret_hash": token.secret_hash,
            "create_time": token.create_time.isoformat(), "description": token.description,
            "kind": token.kind,
            "expire_time": token.expire_time.isoformat() if token.expire_time else None,
            "last_use_time": token.last_use_time.isoformat() if token.last_use_time else None}


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
            await self._txn.insert(USERS.name, _user_doc(user))
        except DuplicateKey:
            raise AlreadyExists(f"a user named {user.name!r} already exists") from None

    async def save_user(self, user: User) -> None:
        doc = await self._txn.get(USERS.name, user.name)
        assert doc is not None, f"save_user of an unknown user {user.name!r}"
        await self._txn.replace(USERS.name, _user_doc(user), doc["_rev"])

    async def token(self, token_id: str) -> TokenRecord | None:
        doc = await self._txn.get(TOKENS.name, token_id)
        return _token(doc) if doc else None

    async def tokens(self, user: str | None) -> list[TokenRecord]:
        where = {"user": user} if user is not None else None
        return [_token(d) for d in await self._txn.find(TOKENS.name, where, page=Page())]

    async def add_token(self, token: TokenRecord) -> None:
        await self._txn.insert(TOKENS.name, _token_doc(token))

    async def save_token(self, token: TokenRecord) -> None:
        doc = await self._txn.get(TOKENS.name, token.id)
        if doc is not None:
            await self._txn.replace(TOKENS.name, _token_doc(token), doc["_rev"])

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
