"""Webhooks and their dead letters in the kit's document store."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from shipyard.kit.errors import AlreadyExists
from shipyard.kit.store.port import Collection, DocumentStore, DuplicateKey, Page, Transaction
from shipyard_gateway.app.ports import WebhookStore
from shipyard_gateway.domain.webhooks import DeadLetter, Webhook

# ``key`` is owner/name: the store's unique keys are single fields.
WEBHOOKS = Collection("webhooks", unique=("key",), indexed=("owner",))
DEAD_LETTERS = Collection("webhook_dead_letters", indexed=("webhook_id", "sequence"))
WEBHOOK_COLLECTIONS = (WEBHOOKS, DEAD_LETTERS)


def _doc(webhook: Webhook) -> dict[str, Any]:
    return {"_id": webhook.id, "key": f"{webhook.owner}/{webhook.name}", "name": webhook.name,
            "url": webhook.url, "types": list(webhook.types), "project": webhook.project,
            "owner": webhook.owner, "create_time": webhook.create_time.isoformat(),
            "start_sequence": webhook.start_sequence, "delivered_sequence": webhook.delivered_sequence,
            "delivered": webhook.delivered, "dead_letters": webhook.dead_letters,
            "last_error": webhook.last_error}


def _webhook(doc: dict[str, Any]) -> Webhook:
    return Webhook(id=doc["_id"], name=doc["name"], url=doc["url"], types=tuple(doc["types"]),
                   project=doc["project"], owner=doc["owner"],
                   create_time=datetime.fromisoformat(doc["create_time"]),
                   start_sequence=doc["start_sequence"], delivered_sequence=doc["delivered_sequence"],
                   delivered=doc["delivered"], dead_letters=doc["dead_letters"], last_error=doc["last_error"])


def _letter_id(webhook_id: str, sequence: int) -> str:
    return f"{webhook_id}-{sequence}"


def _letter(doc: dict[str, Any]) -> DeadLetter:
    return DeadLetter(webhook_id=doc["webhook_id"], event_id=doc["event_id"], type=doc["type"],
                      subject=doc["subject"], sequence=doc["sequence"], attempts=doc["attempts"],
                      last_error=doc["last_error"], time=datetime.fromisoformat(doc["time"]))


class StoredWebhooks(WebhookStore):
    """Webhooks keyed by id, their sealed secret beside them (never read back but to send)."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def get(self, webhook_id: str) -> Webhook | None:
        doc = await self._txn.get(WEBHOOKS.name, webhook_id)
        return _webhook(doc) if doc else None

    async def find(self, owner: str, name: str) -> Webhook | None:
        docs = await self._txn.find(WEBHOOKS.name, {"key": f"{owner}/{name}"})
        return _webhook(docs[0]) if docs else None

    async def list(self, owner: str | None) -> list[Webhook]:
        where = {"owner": owner} if owner is not None else None
        return [_webhook(d) for d in await self._txn.find(WEBHOOKS.name, where, Page(order_by="key"))]

    async def add(self, webhook: Webhook, sealed_secret: str) -> None:
        try:
            await self._txn.insert(WEBHOOKS.name, {**_doc(webhook), "sealed_secret": sealed_secret})
        except DuplicateKey:
            raise AlreadyExists(f"you already have a webhook named {webhook.name!r}") from None

    async def sealed_secret(self, webhook_id: str) -> str | None:
        doc = await self._txn.get(WEBHOOKS.name, webhook_id)
        return str(doc["sealed_secret"]) if doc else None

    async def save(self, webhook: Webhook) -> bool:
        current = await self._txn.get(WEBHOOKS.name, webhook.id)
        if current is None:
            return False
        await self._txn.replace(WEBHOOKS.name, {**_doc(webhook), "sealed_secret": current["sealed_secret"]},
                                current["_rev"])
        return True

    async def remove(self, webhook_id: str) -> bool:
        letters = await self._txn.find(DEAD_LETTERS.name, {"webhook_id": webhook_id})
        await self._txn.delete_many(DEAD_LETTERS.name, [d["_id"] for d in letters])
        return await self._txn.delete(WEBHOOKS.name, webhook_id)

    async def add_dead_letter(self, letter: DeadLetter) -> None:
        letter_id = _letter_id(letter.webhook_id, letter.sequence)
        if await self._txn.get(DEAD_LETTERS.name, letter_id) is not None:
            return  # the same event given up again after a crash: kept once
        await self._txn.insert(DEAD_LETTERS.name, {
            "_id": letter_id, "webhook_id": letter.webhook_id, "event_id": letter.event_id,
            "type": letter.type, "subject": letter.subject, "sequence": letter.sequence,
            "attempts": letter.attempts, "last_error": letter.last_error, "time": letter.time.isoformat()})

    async def dead_letters(self, webhook_id: str, after_sequence: int,
                           limit: int) -> builtins.list[DeadLetter]:
        # The cursor is the last letter seen: its sequence and its id (made from the sequence).
        after = (after_sequence, _letter_id(webhook_id, after_sequence)) if after_sequence else None
        page = Page(order_by="sequence", after=after, limit=limit)
        return [_letter(d) for d in await self._txn.find(DEAD_LETTERS.name, {"webhook_id": webhook_id}, page)]


class StoredWebhooksFactory:
    """One webhook-store transaction per use."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[StoredWebhooks]:
        async with self._store.transaction() as txn:
            yield StoredWebhooks(txn)
