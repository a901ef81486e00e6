"""Transactional outbox and its relay.

A state change and the events it causes are committed in one transaction; the relay
publishes them after commit and deletes them once JetStream has acknowledged. If the bus
is down, events wait in the outbox; if the process dies between commit and publish, the
next start publishes them. JetStream deduplicates by event id, so a publish repeated after
a crash (acknowledged but not yet deleted) is stored once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from pathlib import Path

from shipyard.kit.bus import EventBus
from shipyard.kit.events import Event
from shipyard.kit.store.port import Collection, DocumentStore, Page, Transaction

log = logging.getLogger(__name__)

OUTBOX = Collection("outbox")


class _Clock:
    """Strictly increasing nanosecond keys, so the outbox keeps commit order."""

    last = 0

    @classmethod
    def next(cls) -> str:
        cls.last = max(cls.last + 1, time.time_ns())
        return f"{cls.last:020d}"


async def add_to_outbox(txn: Transaction, events: list[Event]) -> None:
    """Stage events in the caller's transaction."""
    for event in events:
        await txn.insert(OUTBOX.name, {
            "_id": _Clock.next(),
            "subject": event.nats_subject,
            "headers": event.headers(),
            "payload": base64.b64encode(event.payload()).decode(),
        })


class OutboxRelay:
    """Publishes committed events in commit order; runs as a background task of the service."""

    def __init__(self, store: DocumentStore, bus: EventBus, batch_size: int = 500,
                 hold_file: Path | None = None) -> None:
        self._store = store
        self._bus = bus
        self._batch_size = batch_size
        self._hold_file = hold_file
        self._wake = asyncio.Event()
        self.published = 0

    def notify(self) -> None:
        """Tell the relay that a transaction with events committed."""
        self._wake.set()

    async def run(self) -> None:
        """Publish forever; errors back off and retry, so nothing is lost."""
        delay = 0.1
        while True:
            # Cleared before reading: a commit that lands while we publish sets it again,
            # so its events go out right after, not at the next poll.
            self._wake.clear()
            try:
                while await self._publish_batch():
                    pass
                delay = 0.1
            except Exception as exc:
                log.warning("outbox relay: publish failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    async def _publish_batch(self) -> bool:
        """Publish one batch; whether a full batch went out (so more may be waiting)."""
        if self._hold_file is not None and self._hold_file.exists():
            return False
        async with self._store.transaction() as txn:
            docs = await txn.find(OUTBOX.name, page=Page(limit=self._batch_size))
        if not docs:
            return False
        await self._bus.publish_encoded([(d["subject"], d["headers"], base64.b64decode(d["payload"]))
                                         for d in docs])
        async with self._store.transaction() as txn:
            await txn.delete_many(OUTBOX.name, [d["_id"] for d in docs])
        self.published += len(docs)
        return len(docs) == self._batch_size
