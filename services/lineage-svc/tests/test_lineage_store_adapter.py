"""The projector and queries on the real SQLite-backed projections (adapters/store.py), composed
as production composes them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from lineage_events import project_created, project_deleted, project_updated, run_submitted
from lineage_world import composed
from shipyard_lineage.adapters.store import ACTIVITY, COLLECTIONS, LineageUnitOfWork
from shipyard_lineage.app.ports import ActivityQuery
from shipyard_lineage.app.projector import ActivityQueries, Projector

from shipyard.kit.store.port import DocumentStore
from shipyard.kit.store.sqlite import SQLiteDocumentStore
from shipyard.kit.store.unit_of_work import StoreUnitOfWorkFactory
from shipyard.kit.testing import sqlite_store


def production_units(store: DocumentStore) -> StoreUnitOfWorkFactory[LineageUnitOfWork]:
    """The units of work ``build_adapters`` makes (with no outbox relay to wake)."""
    return StoreUnitOfWorkFactory(store, None, LineageUnitOfWork)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteDocumentStore]:
    async with sqlite_store(tmp_path / "lineage.db", COLLECTIONS) as store:
        yield store


@pytest.fixture
def projector(store: SQLiteDocumentStore) -> Projector:
    return composed(production_units(store)).projector


@pytest.fixture
def queries(store: SQLiteDocumentStore) -> ActivityQueries:
    return composed(production_units(store)).activity


async def rows(store: SQLiteDocumentStore) -> int:
    async with store.transaction() as txn:
        return await txn.count(ACTIVITY.name)


async def test_duplicate_delivery_in_one_batch_stores_one_row(projector: Projector,
                                                              store: SQLiteDocumentStore) -> None:
    event = project_created("mnist", sequence=1)
    assert await projector.apply([event, event]) == 1
    assert await rows(store) == 1


async def test_redelivery_in_another_batch_stores_no_second_row(projector: Projector,
                                                                store: SQLiteDocumentStore) -> None:
    event = project_created("mnist", sequence=1)
    assert await projector.apply([event]) == 1
    assert await projector.apply([replace(event, sequence=2)]) == 0
    assert await rows(store) == 1


async def test_redelivery_after_a_restart_stores_no_second_row(tmp_path: Path) -> None:
    """The inbox is durable: a new process on the same file still knows the event."""
    event = project_created("mnist", sequence=1)
    for expected in (1, 0):
        async with sqlite_store(tmp_path / "restart.db", COLLECTIONS) as store:
            assert await composed(production_units(store)).projector.apply([event]) == expected
            assert await rows(store) == 1


async def test_activity_round_trips_through_the_store(projector: Projector, queries: ActivityQueries) -> None:
    event = project_updated("mnist", ["description"], user="bob", sequence=5)
    await projector.apply([event])
    [activity] = await queries.list(ActivityQuery(limit=10))
    assert activity.event_id == event.id
    assert activity.type == "io.shipyard.project.updated.v1"
    assert (activity.subject, activity.project, activity.actor) == ("projects/mnist", "mnist", "bob")
    assert activity.time == event.time
    assert activity.sequence == 5
    assert activity.summary == "bob updated project mnist (description)"


async def test_queries_filter_and_page_newest_first(projector: Projector, queries: ActivityQueries) -> None:
    await projector.apply([project_created("mnist", sequence=1), project_created("iris", sequence=2),
                           run_submitted("r1", "mnist", sequence=3), project_deleted("iris", sequence=4),
                           run_submitted("r2", "mnist", sequence=5)])

    async def seqs(**filters: object) -> list[int]:
        found = await queries.list(ActivityQuery(limit=100, **filters))  # type: ignore[arg-type]
        return [a.sequence for a in found]

    assert await seqs() == [5, 4, 3, 2, 1]
    assert await seqs(project="mnist") == [5, 3, 1]
    assert await seqs(area="run") == [5, 3]
    assert await seqs(area="project", project="iris") == [4, 2]
    assert await seqs(type="io.shipyard.project.created.v1") == [2, 1]
    assert await seqs(subject="projects/iris") == [4, 2]
    assert await seqs(before_sequence=4) == [3, 2, 1]
    assert [a.sequence for a in await queries.list(ActivityQuery(limit=2, before_sequence=5))] == [4, 3]
