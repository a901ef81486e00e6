"""The project use cases, composed as production composes them, on the real store adapter (SQLite),
and its transactional outbox."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from repo_world import repo_world
from shipyard_repo.adapters.store import COLLECTIONS, PROJECTS, SOURCE, RepoUnitOfWork, unit_of_work_factory
from shipyard_repo.app.projects import Projects
from shipyard_repo.domain.events import ProjectDeleted
from shipyard_repo.domain.projects import ProjectFields, new_project

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.errors import Aborted, AlreadyExists, InvalidArgument, PermissionDenied
from shipyard.kit.events import Event, decode
from shipyard.kit.outbox import OUTBOX
from shipyard.kit.store.port import Page
from shipyard.kit.store.sqlite import SQLiteDocumentStore
from shipyard.kit.store.unit_of_work import StoreUnitOfWorkFactory
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER, sqlite_store


class Boom(Exception):
    """Raised inside a unit of work to make it roll back."""


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteDocumentStore]:
    async with sqlite_store(tmp_path / "x.db", COLLECTIONS) as store:
        yield store


@pytest.fixture
def factory(store: SQLiteDocumentStore) -> StoreUnitOfWorkFactory[RepoUnitOfWork]:
    return unit_of_work_factory(store, relay=None)


@pytest.fixture
async def projects(tmp_path: Path, store: SQLiteDocumentStore) -> Projects:
    return (await repo_world(tmp_path, store=store)).app.projects


async def outbox(store: SQLiteDocumentStore) -> list[Event]:
    """The events waiting in the outbox, decoded as the relay would, in commit order."""
    async with store.transaction() as txn:
        docs = await txn.find(OUTBOX.name, page=Page())
    return [decode(d["headers"], base64.b64decode(d["payload"])) for d in docs]


async def project_count(store: SQLiteDocumentStore) -> int:
    async with store.transaction() as txn:
        return await txn.count(PROJECTS.name)


async def test_create_stores_the_project_and_its_event_together(projects: Projects,
                                                                store: SQLiteDocumentStore) -> None:
    project = await projects.create(ALICE, ProjectFields(name="mnist", description="digits"))

    assert project.revision == 1
    assert await projects.get("mnist") == project
    [event] = await outbox(store)
    assert event.type == "io.shipyard.project.created.v1"
    assert event.source == SOURCE
    assert event.subject == "projects/mnist"
    assert event.project == "mnist"
    assert isinstance(event.data, events_pb2.ProjectCreated)
    assert event.data.project.id == project.id
    assert event.data.project.owner == "alice"
    assert event.data.actor.user == "alice"


async def test_project_round_trips_through_the_store(projects: Projects) -> None:
    fields = ProjectFields(name="mnist", description="d\nwith lines", thumbnail_url="https://x.org/i.png",
                           leaderboard=True, details="\u00fcber")
    created = await projects.create(ALICE, fields)
    assert await projects.get("mnist") == created
    assert created.create_time.tzinfo is not None


async def test_failed_create_stores_nothing_and_emits_nothing(projects: Projects,
                                                              store: SQLiteDocumentStore) -> None:
    await projects.create(ALICE, ProjectFields(name="mnist"))
    with pytest.raises(AlreadyExists):
        await projects.create(BOB, ProjectFields(name="mnist"), request_id="r-1")
    with pytest.raises(InvalidArgument):
        await projects.create(BOB, ProjectFields(name="bad name"))

    assert await project_count(store) == 1
    assert len(await outbox(store)) == 1
    assert (await projects.create(BOB, ProjectFields(name="other"), request_id="r-1")).name == "other"


async def test_a_unit_of_work_that_fails_after_emitting_rolls_back_both(
        factory: StoreUnitOfWorkFactory[RepoUnitOfWork], store: SQLiteDocumentStore) -> None:
    project = new_project("id-1", ProjectFields(name="mnist"), "alice", datetime.now(UTC))
    with pytest.raises(Boom):
        async with factory() as uow:
            await uow.projects.add(project)
            uow.record(ProjectDeleted(project, ALICE))
            raise Boom

    assert await project_count(store) == 0
    assert await outbox(store) == []


async def test_idempotent_create_on_the_store(projects: Projects, store: SQLiteDocumentStore) -> None:
    first = await projects.create(ALICE, ProjectFields(name="mnist"), request_id="r-1")
    again = await projects.create(ALICE, ProjectFields(name="mnist"), request_id="r-1")
    assert again == first
    assert len(await outbox(store)) == 1


async def test_update_and_delete_put_their_events_in_commit_order(projects: Projects,
                                                                  store: SQLiteDocumentStore) -> None:
    created = await projects.create(ALICE, ProjectFields(name="mnist"))
    updated = await projects.update(ALICE, "mnist", ProjectFields(name="digits", description="x"),
                                    ["name", "description"], revision=created.revision)
    await projects.update(ALICE, "digits", ProjectFields(description="x"), ["description"])  # no change
    await projects.delete(OPERATOR_CALLER, "digits", revision=updated.revision)

    events = await outbox(store)
    assert [e.type for e in events] == ["io.shipyard.project.created.v1", "io.shipyard.project.updated.v1",
                                        "io.shipyard.project.deleted.v1"]
    assert events[1].subject == "projects/digits"
    assert list(events[1].data.changed_fields) == ["name", "description"]
    assert events[1].data.previous_name == "mnist"
    assert events[1].data.project.revision == 2
    assert events[2].data.project_id == created.id
    assert events[2].data.actor.user == "olga"
    assert await project_count(store) == 0


async def test_stale_revision_and_denied_changes_emit_nothing(projects: Projects,
                                                              store: SQLiteDocumentStore) -> None:
    created = await projects.create(ALICE, ProjectFields(name="mnist"))
    await projects.update(ALICE, "mnist", ProjectFields(description="1"), ["description"])
    with pytest.raises(Aborted):
        await projects.update(ALICE, "mnist", ProjectFields(description="2"), ["description"],
                              revision=created.revision)
    with pytest.raises(PermissionDenied):
        await projects.delete(BOB, "mnist")
    assert len(await outbox(store)) == 2
    assert (await projects.get("mnist")).description == "1"


async def test_repository_save_and_remove_check_the_revision_they_read(
        projects: Projects, factory: StoreUnitOfWorkFactory[RepoUnitOfWork]) -> None:
    """The store's own optimistic check, behind the use case's: a write on a stale read loses."""
    stale = await projects.create(ALICE, ProjectFields(name="mnist"))
    await projects.update(ALICE, "mnist", ProjectFields(description="winner"), ["description"])

    with pytest.raises(Aborted):
        async with factory() as uow:
            await uow.projects.save(replace(stale, description="loser"))
    with pytest.raises(Aborted):
        async with factory() as uow:
            await uow.projects.remove(stale)
    assert (await projects.get("mnist")).description == "winner"


async def test_repository_rename_onto_a_taken_name_is_already_exists(
        projects: Projects, factory: StoreUnitOfWorkFactory[RepoUnitOfWork]) -> None:
    mnist = await projects.create(ALICE, ProjectFields(name="mnist"))
    await projects.create(ALICE, ProjectFields(name="digits"))
    with pytest.raises(AlreadyExists):
        async with factory() as uow:
            await uow.projects.save(replace(mnist, name="digits"))
    assert (await projects.get("mnist")).id == mnist.id


async def test_list_pages_through_the_store_in_name_order(projects: Projects) -> None:
    names = [f"proj-{i:03d}" for i in range(120)]
    for name in reversed(names):
        await projects.create(ALICE, ProjectFields(name=name))
    seen: list[str] = []
    token = ""
    for _ in range(10):
        page, token = await projects.list_page(25, token)
        seen.extend(p.name for p in page)
        if not token:
            break
    assert seen == names
