"""The projector and the activity queries (app/projector.py), composed as production composes them,
on the real store adapters over the kit's in-memory store."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TypeAlias

import pytest
from lineage_events import (
    project_created,
    project_deleted,
    project_updated,
    received,
    run_submitted,
)
from lineage_world import composed, memory_units
from shipyard_lineage.adapters.store import LineageUnitOfWork, StoredActivity
from shipyard_lineage.app.event_facts import activity_of
from shipyard_lineage.app.ports import ActivityQuery
from shipyard_lineage.app.projector import ActivityQueries, Projector
from shipyard_lineage.bootstrap import Composed
from shipyard_lineage.domain.activity import Activity, area_of

from shipyard.contracts.common.v1 import common_pb2
from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.events import Event
from shipyard.kit.paging import PAGE_DEFAULT, PAGE_MAX
from shipyard.kit.store.port import Transaction
from shipyard.kit.testing import RecordingUnitOfWorkFactory

Units: TypeAlias = RecordingUnitOfWorkFactory[LineageUnitOfWork]


class StoreDown(Exception):
    """The store failing mid-batch."""


class FailingActivity(StoredActivity):
    """The real activity feed, failing to add the events named in ``fail_on``."""

    def __init__(self, txn: Transaction, fail_on: set[str]) -> None:
        super().__init__(txn)
        self._fail_on = fail_on

    async def add(self, activity: Activity) -> None:
        if activity.event_id in self._fail_on:
            raise StoreDown(f"cannot store activity {activity.event_id}")
        await super().add(activity)


@pytest.fixture
def projector(world: Composed) -> Projector:
    return world.projector


@pytest.fixture
def queries(world: Composed) -> ActivityQueries:
    return world.activity


async def activities(units: Units) -> int:
    async with units() as tx:
        return await tx.activity.count()


async def feed(queries: ActivityQueries, **filters: object) -> list[Activity]:
    return await queries.list(ActivityQuery(limit=PAGE_MAX, **filters))  # type: ignore[arg-type]


# --- exactly once ------------------------------------------------------------------------


async def test_each_event_makes_one_activity(projector: Projector, queries: ActivityQueries) -> None:
    events = [project_created("a", sequence=1), project_created("b", sequence=2)]
    assert await projector.apply(events) == 2
    assert [a.event_id for a in await feed(queries)] == [events[1].id, events[0].id]


async def test_the_same_event_twice_in_one_batch_makes_one_activity(projector: Projector,
                                                                    queries: ActivityQueries) -> None:
    event = project_created("mnist", sequence=7)
    assert await projector.apply([event, event]) == 1
    assert [a.event_id for a in await feed(queries)] == [event.id]


async def test_redelivery_in_a_later_batch_makes_no_second_activity(projector: Projector,
                                                                    queries: ActivityQueries) -> None:
    event = project_created("mnist", sequence=7)
    other = project_created("other", sequence=8)
    assert await projector.apply([event]) == 1
    # JetStream redelivers with a new sequence number: still the same event id.
    assert await projector.apply([replace(event, sequence=9), other]) == 1
    assert sorted(a.event_id for a in await feed(queries)) == sorted([event.id, other.id])


async def test_an_empty_batch_applies_nothing(projector: Projector, units: Units) -> None:
    assert await projector.apply([]) == 0
    assert await activities(units) == 0


async def test_a_failing_batch_applies_nothing_and_can_be_redelivered() -> None:
    fail_on: set[str] = set()

    def failing(txn: Transaction) -> LineageUnitOfWork:
        uow = LineageUnitOfWork(txn)
        uow.activity = FailingActivity(txn, fail_on)
        return uow

    units = await memory_units(failing)
    world = composed(units)
    first, second = project_created("mnist", sequence=1), project_created("iris", sequence=2)
    fail_on.add(second.id)
    with pytest.raises(StoreDown):
        await world.projector.apply([first, second])
    assert await activities(units) == 0
    async with units() as tx:
        assert await tx.graph.cursor() == 0

    fail_on.clear()
    assert await world.projector.apply([first, second]) == 2
    assert len(await feed(world.activity)) == 2


# --- summaries ---------------------------------------------------------------------------


async def test_summary_names_the_actor_and_the_project(projector: Projector,
                                                       queries: ActivityQueries) -> None:
    await projector.apply([project_created("mnist", user="alice", sequence=1),
                           project_deleted("mnist", user="olga", sequence=2)])
    deleted, created = await feed(queries)
    assert created.summary == "alice created project mnist"
    assert deleted.summary == "olga deleted project mnist"
    assert (created.actor, created.project, created.subject) == ("alice", "mnist", "projects/mnist")
    assert created.type == "io.shipyard.project.created.v1"
    assert created.area == "project"


async def test_update_summary_lists_the_changed_fields(projector: Projector,
                                                       queries: ActivityQueries) -> None:
    await projector.apply([project_updated("mnist", ["description", "leaderboard"], user="bob")])
    [activity] = await feed(queries)
    assert activity.summary == "bob updated project mnist (description, leaderboard)"
    assert activity.actor == "bob"


def test_activity_copies_the_envelope() -> None:
    event = run_submitted("r-17", "mnist", user="carol", sequence=42)
    activity = activity_of(event)
    assert activity.event_id == event.id
    assert activity.time == event.time
    assert activity.sequence == 42
    assert activity.project == "mnist"
    assert activity.area == "run"
    assert "carol" in activity.summary
    assert "r-17" in activity.summary


def test_an_event_without_an_actor_names_the_service_that_acted() -> None:
    event = replace(project_created("mnist"), data=events_pb2.ProjectCreated(), source="shipyard/repo-svc")
    activity = activity_of(event)
    assert activity.actor == "repo-svc"
    assert activity.summary == "repo-svc created project mnist"


@pytest.mark.parametrize(("ce_type", "area"), [
    ("io.shipyard.project.created.v1", "project"),
    ("io.shipyard.run.metrics_logged.v1", "run"),
    ("io.shipyard.model.published.v1", "model"),
    ("garbage", ""),
])
def test_area_of(ce_type: str, area: str) -> None:
    assert area_of(ce_type) == area


# --- queries -----------------------------------------------------------------------------


async def seeded(projector: Projector) -> list[Event]:
    """Six events over two projects and two areas, sequences 1..6."""
    events = [project_created("mnist", sequence=1), project_created("iris", sequence=2),
              run_submitted("r1", "mnist", sequence=3), project_updated("mnist", ["description"], sequence=4),
              run_submitted("r2", "iris", sequence=5), project_deleted("iris", sequence=6)]
    await projector.apply(events)
    return events


async def test_list_is_newest_first(projector: Projector, queries: ActivityQueries) -> None:
    await seeded(projector)
    assert [a.sequence for a in await feed(queries)] == [6, 5, 4, 3, 2, 1]


async def test_list_filters_by_project(projector: Projector, queries: ActivityQueries) -> None:
    await seeded(projector)
    assert [a.sequence for a in await feed(queries, project="mnist")] == [4, 3, 1]


async def test_list_filters_by_area(projector: Projector, queries: ActivityQueries) -> None:
    await seeded(projector)
    assert [a.sequence for a in await feed(queries, area="run")] == [5, 3]
    assert [a.sequence for a in await feed(queries, area="project", project="iris")] == [6, 2]


async def test_list_filters_by_type(projector: Projector, queries: ActivityQueries) -> None:
    await seeded(projector)
    assert [a.sequence for a in await feed(queries, type="io.shipyard.project.created.v1")] == [2, 1]
    assert await feed(queries, type="io.shipyard.project.nothing.v1") == []


async def test_list_filters_by_subject_and_time(projector: Projector, queries: ActivityQueries) -> None:
    events = await seeded(projector)
    assert [a.sequence for a in await feed(queries, subject="projects/iris")] == [6, 2]
    later = max(e.time for e in events) + timedelta(seconds=1)
    assert await feed(queries, since=later) == []


async def test_list_pages_newest_first_with_before_sequence(projector: Projector,
                                                            queries: ActivityQueries) -> None:
    await projector.apply([project_created(f"p{i:02d}", sequence=i) for i in range(1, 24)])
    seen: list[int] = []
    before: int | None = None
    for _ in range(10):
        page = await queries.list(ActivityQuery(limit=10, before_sequence=before))
        seen.extend(a.sequence for a in page)
        if len(page) < 10:
            break
        before = page[-1].sequence
    assert seen == list(range(23, 0, -1))


async def test_list_limit_defaults_and_is_capped(projector: Projector, queries: ActivityQueries) -> None:
    await projector.apply([run_submitted(f"r{i}", "p", sequence=i) for i in range(1, PAGE_MAX + 2)]
                          + [run_submitted("elsewhere", "q", sequence=PAGE_MAX + 2)])
    assert len(await queries.list(ActivityQuery(limit=0))) == PAGE_DEFAULT
    capped = await queries.list(ActivityQuery(limit=PAGE_MAX + 1, project="p"))
    assert len(capped) == PAGE_MAX
    assert {a.project for a in capped} == {"p"}


async def test_list_with_a_negative_limit_is_invalid(queries: ActivityQueries) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await queries.list(ActivityQuery(limit=-1))
    assert caught.value.field == "page_size"


# --- what the feed shows ----------------------------------------------------------------------


def metrics_logged(run: str, sequence: int) -> Event:
    data = events_pb2.RunMetricsLogged(run_id=f"id-{run}", name=run, project="vision",
                                       values=[common_pb2.MetricValue(name="loss", value=0.5, step=sequence)])
    return received(data, f"runs/{run}", "vision", sequence)


async def test_a_runs_metrics_stay_out_of_the_feed_but_are_applied_once(projector: Projector,
                                                                        queries: ActivityQueries) -> None:
    steps = [metrics_logged("train-1", n) for n in range(2, 12)]
    assert await projector.apply([run_submitted("train-1", "vision", sequence=1), *steps]) == 11
    assert await projector.apply(steps) == 0  # redelivered: still recorded as applied
    assert [a.type for a in await feed(queries)] == ["io.shipyard.run.submitted.v1"]
    asked = await feed(queries, type="io.shipyard.run.metrics_logged.v1")
    assert len(asked) == 10
