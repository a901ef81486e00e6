"""In-memory fakes of lineage-svc's ports (ActivityFeed and the projection unit of work),
plus helpers that build events the way producers do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from google.protobuf.message import Message
from shipyard_lineage.app.ports import ActivityFeed, ActivityQuery
from shipyard_lineage.domain.activity import Activity

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.contracts.repo.v1 import projects_pb2
from shipyard.kit.events import Event, new_event


class StoreDown(Exception):
    """The fake store failing mid-batch."""


class FakeActivityFeed(ActivityFeed):
    """Activities in a list, plus the ids of the events already handled (the inbox)."""

    def __init__(self) -> None:
        self.handled: set[str] = set()
        self.rows: list[Activity] = []
        self.queries: list[ActivityQuery] = []
        self.fail_on: set[str] = set()  # event ids whose add() fails, to exercise rollback

    async def first_delivery(self, event: Event) -> bool:
        if event.id in self.handled:
            return False
        self.handled.add(event.id)
        return True

    async def add(self, activity: Activity) -> None:
        if activity.event_id in self.fail_on:
            raise StoreDown(f"cannot store activity {activity.event_id}")
        if any(a.event_id == activity.event_id for a in self.rows):
            raise AssertionError(f"activity {activity.event_id} added twice")  # a unique key in the store
        self.rows.append(activity)

    async def list(self, query: ActivityQuery) -> list[Activity]:
        self.queries.append(query)
        found = [a for a in self.rows
                 if (not query.project or a.project == query.project)
                 and (not query.area or a.area == query.area)
                 and (not query.type or a.type == query.type)
                 and (not query.subject or a.subject == query.subject)
                 and (query.before_sequence is None or a.sequence < query.before_sequence)
                 and (query.since is None or a.time >= query.since)]
        found.sort(key=lambda a: (a.sequence, a.event_id), reverse=True)
        return found[:query.limit]


@dataclass
class FakeProjections:
    """One unit of work over the fake projections."""

    activity: FakeActivityFeed


@dataclass
class FakeProjectionsFactory:
    """Starts fake units of work; a block that raises leaves the projections as they were."""

    activity: FakeActivityFeed = field(default_factory=FakeActivityFeed)
    commits: int = 0
    rollbacks: int = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeProjections]:
        handled, rows = set(self.activity.handled), list(self.activity.rows)
        try:
            yield FakeProjections(self.activity)
        except BaseException:
            self.activity.handled, self.activity.rows = handled, rows
            self.rollbacks += 1
            raise
        self.commits += 1


def actor(user: str, *roles: str) -> common_pb2.Actor:
    return common_pb2.Actor(user=user, roles=list(roles))


def project_created(name: str, user: str = "alice", sequence: int = 1) -> Event:
    """A ProjectCreated event as repo-svc emits it, received with stream ``sequence``."""
    data = events_pb2.ProjectCreated(project=projects_pb2.Project(id=f"id-{name}", name=name, owner=user),
                                     actor=actor(user, "data-scientist"))
    return received(data, f"projects/{name}", name, sequence)


def project_updated(name: str, changed: list[str], user: str = "alice", sequence: int = 1) -> Event:
    data = events_pb2.ProjectUpdated(project=projects_pb2.Project(id=f"id-{name}", name=name),
                                     changed_fields=changed, actor=actor(user, "data-scientist"))
    return received(data, f"projects/{name}", name, sequence)


def project_deleted(name: str, user: str = "alice", sequence: int = 1) -> Event:
    data = events_pb2.ProjectDeleted(project_id=f"id-{name}", name=name, actor=actor(user, "operator"))
    return received(data, f"projects/{name}", name, sequence)


def run_submitted(run: str, project: str, user: str = "alice", sequence: int = 1) -> Event:
    data = events_pb2.RunSubmitted(run_id=f"id-{run}", name=run, project=project, kind="training",
                                   actor=actor(user, "data-scientist"))
    return received(data, f"projects/{project}/runs/{run}", project, sequence)


def received(data: Message, subject: str, project: str, sequence: int) -> Event:
    """A new event as a consumer gets it: with its JetStream sequence set."""
    return replace(new_event(data, source="shipyard/test", subject=subject, project=project),
                   sequence=sequence)
