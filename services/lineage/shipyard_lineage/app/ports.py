"""Ports of lineage-svc's use cases."""

from __future__ import annotations

import abc
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shipyard.kit.events import Event
from shipyard_lineage.domain.activity import Activity


@dataclass(frozen=True)
class ActivityQuery:
    """Which activities to list: newest first, before ``before_sequence`` when given."""

    limit: int
    before_sequence: int | None = None
    project: str = ""
    area: str = ""
    type: str = ""
    subject: str = ""
    since: datetime | None = None


class ActivityFeed(abc.ABC):
    """The activity projection."""

    @abc.abstractmethod
    async def first_delivery(self, event: Event) -> bool:
        """Record the event as handled; False if it already was (inbox)."""

    @abc.abstractmethod
    async def add(self, activity: Activity) -> None:
        """Append one entry."""

    @abc.abstractmethod
    async def list(self, query: ActivityQuery) -> list[Activity]:
        """Entries matching the query, newest (highest sequence) first."""


class ProjectionUnitOfWork(Protocol):
    """One transaction over the projections."""

    @property
    def activity(self) -> ActivityFeed:
        """The activity feed in this transaction."""


class ProjectionUnitOfWorkFactory(Protocol):
    """Starts units of work."""

    def __call__(self) -> AbstractAsyncContextManager[ProjectionUnitOfWork]: ...
