"""Idempotent consumers: an inbox of processed event ids, written with the effect."""

from __future__ import annotations

from datetime import UTC, datetime

from shipyard.kit.events import Event
from shipyard.kit.store.port import Collection, Transaction

INBOX = Collection("inbox")


async def first_delivery(txn: Transaction, consumer: str, event: Event) -> bool:
    """Record the event as processed by ``consumer``; False if it already was.

    Call it in the same transaction as the event's effect: either both commit or neither.
    """
    key = f"{consumer}:{event.id}"
    if await txn.get(INBOX.name, key) is not None:
        return False
    await txn.insert(INBOX.name, {"_id": key, "at": datetime.now(UTC).isoformat()})
    return True
