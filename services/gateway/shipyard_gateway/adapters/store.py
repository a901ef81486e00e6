"""The gateway's store: the identity directory (users, tokens) and its unit of work, which names the
repositories of identity and webhooks over one transaction of the kit's document store."""

from __future__ import annotations

from datetime import datetime

from shipyard.kit.errors import AlreadyExists
from shipyard.kit.outbox import OutboxRelay
from shipyard.kit.store.documents import DocumentRepository
from shipyard.kit.store.port import Collection, Document, DocumentStore, Page, Transaction
from shipyard.kit.store.unit_of_work import StoreUnitOfWork, StoreUnitOfWorkFactory
from shipyard_gateway.adapters.webhook_store import WEBHOOK_COLLECTIONS, StoredDeadLetters, StoredWebhooks
from shipyard_gateway.domain.identity import API, TokenRecord, User
from shipyard_gateway.settings import SERVICE

SOURCE = f"shipyard/{SERVICE}"
"""The CloudEvents source of what the gateway would publish (it records no domain events)."""
USERS = Collection("users")
TOKENS = Collection("tokens", indexed=("user",))
DIRECTORY_COLLECTIONS = (USERS, TOKENS)
COLLECTIONS = (*DIRECTORY_COLLECTIONS, *WEBHOOK_COLLECTIONS)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class StoredUsers(DocumentRepository[User]):
    """Users keyed by name."""

    collection = USERS
    noun = "user"

    def taken(self, item: User, field: str) -> AlreadyExists:
        return AlreadyExists(f"a user named {item.name!r} already exists")

    def to_document(self, item: User) -> Document:
        return {"_id": item.name, "roles": sorted(item.roles), "create_time": item.create_time.isoformat(),
                "display_name": item.display_name, "disabled": item.disabled, "deleted": item.deleted}

    def from_document(self, doc: Document) -> User:
        return User(doc["_id"], frozenset(doc["roles"]), datetime.fromisoformat(doc["create_time"]),
                    doc.get("display_name", ""), doc.get("disabled", False), doc.get("deleted", False),
                    revision=doc["_rev"])

    async def every(self) -> list[User]:
        """Every user (the deleted ones too), by name."""
        return await self.find(page=Page())


class StoredTokens(DocumentRepository[TokenRecord]):
    """Token records keyed by their public id (only the hash of each secret is kept)."""

    collection = TOKENS
    noun = "token"

    def to_document(self, item: TokenRecord) -> Document:
        return {"_id": item.id, "user": item.user, "secret_hash": item.secret_hash,
                "create_time": item.create_time.isoformat(), "description": item.description,
                "kind": item.kind, "expire_time": _iso(item.expire_time),
                "last_use_time": _iso(item.last_use_time)}

    def from_document(self, doc: Document) -> TokenRecord:
        # Tokens stored before kinds and lifetimes existed are API tokens that never expire.
        return TokenRecord(doc["_id"], doc["user"], doc["secret_hash"],
                           datetime.fromisoformat(doc["create_time"]), doc.get("description", ""),
                           doc.get("kind", API), _time(doc.get("expire_time")),
                           _time(doc.get("last_use_time")), revision=doc["_rev"])

    async def of_user(self, user: str | None) -> list[TokenRecord]:
        """The user's token records (everyone's for None)."""
        return await self.find({"user": user} if user is not None else None, Page())


class GatewayUnitOfWork(StoreUnitOfWork):
    """One transaction over the gateway's users, tokens, webhooks and dead letters."""

    def __init__(self, txn: Transaction) -> None:
        super().__init__(txn, SOURCE)
        self.users = StoredUsers(txn)
        self.tokens = StoredTokens(txn)
        self.webhooks = StoredWebhooks(txn)
        self.dead_letters = StoredDeadLetters(txn)


def unit_of_work_factory(store: DocumentStore,
                         relay: OutboxRelay | None) -> StoreUnitOfWorkFactory[GatewayUnitOfWork]:
    """The gateway's units of work on ``store``."""
    return StoreUnitOfWorkFactory(store, relay, GatewayUnitOfWork)
