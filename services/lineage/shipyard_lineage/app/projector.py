"""Turns batches of events into projections, each event exactly once."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.kit.errors import InvalidArgument
from shipyard.kit.events import Event
from shipyard.kit.telemetry import consuming
from shipyard_lineage.app.ports import ActivityQuery, ProjectionUnitOfWorkFactory
from shipyard_lineage.domain.activity import Activity, activity_of

CONSUMER = "lineage"
PAGE_DEFAULT = 50
PAGE_MAX = 1000


@dataclass
class Projector:
    """Applies events to the projections."""

    uow: ProjectionUnitOfWorkFactory

    async def apply(self, events: list[Event]) -> int:
        """Apply a batch in one transaction; how many events were new."""
        applied = 0
        async with self.uow() as uow:
            for event in events:
                with consuming(event, CONSUMER):
                    if not await uow.activity.first_delivery(event):
                        continue
                    await uow.activity.add(activity_of(event))
                    applied += 1
        return applied


@dataclass
class ActivityQueries:
    """Reads of the activity feed."""

    uow: ProjectionUnitOfWorkFactory

    async def list(self, query: ActivityQuery) -> list[Activity]:
        """Entries matching ``query``, newest first."""
        if query.limit < 0:
            raise InvalidArgument("page_size", "must not be negative")
        limit = min(query.limit or PAGE_DEFAULT, PAGE_MAX)
        async with self.uow() as uow:
            return await uow.activity.list(ActivityQuery(**{**query.__dict__, "limit": limit}))
