"""Webhooks and their dead letters in the kit's document store."""

from __future__ import annotations

from datetime import datetime

from shipyard.kit.errors import AlreadyExists
from shipyard.kit.store.documents import DocumentRepository
from shipyard.kit.store.port import Collection, Document, Page
from shipyard_gateway.domain.webhooks import DeadLetter, Webhook, letter_id

# ``key`` is owner/name: the store's unique keys are single fields.
WEBHOOKS = Collection("webhooks", unique=("key",), indexed=("owner",))
DEAD_LETTERS = Collection("webhook_dead_letters", indexed=("webhook_id", "sequence"))
WEBHOOK_COLLECTIONS = (WEBHOOKS, DEAD_LETTERS)


def _key(owner: str, name: str) -> str:
    return f"{owner}/{name}"


class StoredWebhooks(DocumentRepository[Webhook]):
    """Webhooks keyed by id, their sealed secret beside them (never read back but to send)."""

    collection = WEBHOOKS
    noun = "webhook"

    def taken(self, item: Webhook, field: str) -> AlreadyExists:
        return AlreadyExists(f"you already have a webhook named {item.name!r}")

    def to_document(self, item: Webhook) -> Document:
        return {"_id": item.id, "key": _key(item.owner, item.name), "name": item.name, "url": item.url,
                "types": list(item.types), "project": item.project, "owner": item.owner,
                "create_time": item.create_time.isoformat(), "start_sequence": item.start_sequence,
                "delivered_sequence": item.delivered_sequence, "delivered": item.delivered,
                "dead_letters": item.dead_letters, "last_error": item.last_error,
                "failing_sequence": item.failing_sequence, "failed_attempts": item.failed_attempts,
                "sealed_secret": item.sealed_secret}

    def from_document(self, doc: Document) -> Webhook:
        return Webhook(id=doc["_id"], name=doc["name"], url=doc["url"], types=tuple(doc["types"]),
                       project=doc["project"], owner=doc["owner"],
                       create_time=datetime.fromisoformat(doc["create_time"]),
                       start_sequence=doc["start_sequence"], delivered_sequence=doc["delivered_sequence"],
                       delivered=doc["delivered"], dead_letters=doc["dead_letters"],
                       last_error=doc["last_error"], sealed_secret=doc["sealed_secret"], revision=doc["_rev"],
                       # Records stored before the count was kept have none.
                       failing_sequence=doc.get("failing_sequence", 0),
                       failed_attempts=doc.get("failed_attempts", 0))

    async def named(self, owner: str, name: str) -> Webhook | None:
        """The owner's webhook of that name."""
        return await self.find_one(key=_key(owner, name))

    async def of_owner(self, owner: str | None) -> list[Webhook]:
        """The owner's webhooks (everyone's for None), by owner and name."""
        return await self.find({"owner": owner} if owner is not None else None, Page(order_by="key"))


class StoredDeadLetters(DocumentRepository[DeadLetter]):
    """Dead letters keyed by webhook and stream sequence, paged by sequence."""

    collection = DEAD_LETTERS
    noun = "dead letter"

    def to_document(self, item: DeadLetter) -> Document:
        return {"_id": item.id, "webhook_id": item.webhook_id, "event_id": item.event_id, "type": item.type,
                "subject": item.subject, "sequence": item.sequence, "attempts": item.attempts,
                "last_error": item.last_error, "time": item.time.isoformat()}

    def from_document(self, doc: Document) -> DeadLetter:
        return DeadLetter(webhook_id=doc["webhook_id"], event_id=doc["event_id"], type=doc["type"],
                          subject=doc["subject"], sequence=doc["sequence"], attempts=doc["attempts"],
                          last_error=doc["last_error"], time=datetime.fromisoformat(doc["time"]),
                          revision=doc["_rev"])

    async def keep(self, letter: DeadLetter) -> None:
        """Keep an event that was given up; the same event given up again after a crash is kept once."""
        if await self.by_id(letter.id) is None:
            await self.add(letter)

    async def after(self, webhook_id: str, after_sequence: int, limit: int) -> list[DeadLetter]:
        """The webhook's dead letters after a stream sequence, oldest first."""
        # The cursor is the last letter seen: its sequence and its id (made from the sequence).
        after = (after_sequence, letter_id(webhook_id, after_sequence)) if after_sequence else None
        page = Page(order_by="sequence", after=after, limit=limit)
        return await self.find({"webhook_id": webhook_id}, page)

    async def forget(self, webhook_id: str) -> None:
        """Delete the webhook's dead letters."""
        letters = await self.txn.find(DEAD_LETTERS.name, {"webhook_id": webhook_id})
        await self.txn.delete_many(DEAD_LETTERS.name, [d["_id"] for d in letters])
