"""The activity projection in the kit's document store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from shipyard.kit.events import Event
from shipyard.kit.inbox import first_delivery
from shipyard.kit.store.port import Collection, DocumentStore, Page, Transaction
from shipyard_lineage.app.ports import ActivityFeed, ActivityQuery
from shipyard_lineage.app.projector import CONSUMER
from shipyard_lineage.domain.activity import Activity

ACTIVITY = Collection("activity", indexed=("seq", "project", "area", "subject"))
COLLECTIONS = (ACTIVITY,)


class StoredActivity(ActivityFeed):
    """Activities keyed by event id, ordered by stream sequence."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def first_delivery(self, event: Event) -> bool:
        return await first_delivery(self._txn, CONSUMER, event)

    async def add(self, activity: Activity) -> None:
        await self._txn.insert(ACTIVITY.name, {
            "_id": activity.event_id, "type": activity.type, "area": activity.area,
            "subject": activity.subject, "project": activity.project, "actor": activity.actor,
            "time": activity.time.isoformat(), "summary": activity.summary, "seq": activity.sequence})

    async def list(self, query: ActivityQuery) -> list[Activity]:
        where: dict[str, Any] = {k: v for k, v in (("project", query.project), ("area", query.area),
                                                   ("type", query.type), ("subject", query.subject)) if v}
        after = (query.before_sequence, "") if query.before_sequence is not None else None
        found: list[Activity] = []
        # ``since`` is filtered here, page by page, so a short page never hides older matches;
        # a page with nothing recent enough ends the scan (sequence order follows time order,
        # give or take clock skew between services).
        while len(found) < query.limit:
            docs = await self._txn.find(ACTIVITY.name, where,
                                        Page(order_by="seq", descending=True, after=after, limit=query.limit))
            page = [_from_doc(d) for d in docs]
            recent = [a for a in page if query.since is None or a.time >= query.since]
            found.extend(recent)
            if len(docs) < query.limit or not recent:
                break
            after = (page[-1].sequence, "")
        return found[:query.limit]


def _from_doc(doc: dict[str, Any]) -> Activity:
    return Activity(event_id=doc["_id"], type=doc["type"], subject=doc["subject"], project=doc["project"],
                    actor=doc["actor"], time=datetime.fromisoformat(doc["time"]), summary=doc["summary"],
                    sequence=doc["seq"])


class StoreProjections:
    """One projection unit of work per store transaction."""

    def __init__(self, txn: Transaction) -> None:
        self.activity = StoredActivity(txn)


class StoreProjectionsFactory:
    """Starts projection units of work on the store."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[StoreProjections]:
        async with self._store.transaction() as txn:
            yield StoreProjections(txn)
