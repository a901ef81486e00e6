"""The projector and the activity queries (app/projector.py) against in-memory fakes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from lineage_fakes import (
    FakeProjectionsFactory,
    StoreDown,
    project_created,
    project_deleted,
    project_updated,
    run_submitted,
)
from shipyard_lineage.app.ports import ActivityQuery
from shipyard_lineage.app.projector import PAGE_DEFAULT, PAGE_MAX, ActivityQueries, Projector
from shipyard_lineage.domain.activity import Activity, activity_of, area_of

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.events import Event


@pytest.fixture
def uow() -> FakeProjectionsFactory:
    return FakeProjectionsFactory()


@pytest.fixture
def projector(uow: FakeProjectionsFactory) -> Projector:
    return Projector(uow)


@pytest.fixture
def queries(uow: FakeProjectionsFactory) -> ActivityQueries:
    return ActivityQueries(uow)


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


async def test_an_empty_batch_applies_nothing(projector: Projector, uow: FakeProjectionsFactory) -> None:
    assert await projector.apply([]) == 0
    assert uow.activity.rows == []


async def test_a_failing_batch_applies_nothing_and_can_be_redelivered(
        projector: Projector, uow: FakeProjectionsFactory, queries: ActivityQueries) -> None:
    first, second = project_created("mnist", sequence=1), project_created("iris", sequence=2)
    uow.activity.fail_on.add(second.id)
    with pytest.raises(StoreDown):
        await projector.apply([first, second])
    assert uow.activity.rows == []
    assert await uow.graph.cursor() == 0

    uow.activity.fail_on.clear()
    assert await projector.apply([first, second]) == 2
    assert len(await feed(queries)) == 2


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


def test_an_event_without_an_actor_is_done_by_someone() -> None:
    event = replace(project_created("mnist"), data=events_pb2.ProjectCreated())
    activity = activity_of(event)
    assert activity.actor == ""
    assert activity.summary == "someone created project mnist"


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


async def test_list_limit_defaults_and_is_capped(queries: ActivityQueries,
                                                 uow: FakeProjectionsFactory) -> None:
    await queries.list(ActivityQuery(limit=0))
    await queries.list(ActivityQuery(limit=PAGE_MAX + 1, project="p"))
    assert [q.limit for q in uow.activity.queries] == [PAGE_DEFAULT, PAGE_MAX]
    assert uow.activity.queries[1].project == "p"


async def test_list_with_a_negative_limit_is_invalid(queries: ActivityQueries) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await queries.list(ActivityQuery(limit=-1))
    assert caught.value.field == "page_size"
