"""Repositories and the unit of work over the kit's document store (SQLite or MongoDB)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.protobuf.message import Message

from shipyard.kit.errors import Aborted, AlreadyExists
from shipyard.kit.events import Event, new_event
from shipyard.kit.outbox import OutboxRelay, add_to_outbox
from shipyard.kit.store.port import (
    Collection,
    Document,
    DocumentStore,
    DuplicateKey,
    Page,
    RevisionConflict,
    Transaction,
)
from shipyard.kit.telemetry import current_traceparent
from shipyard_repo.app.ports import ProjectRepository, RequestLog
from shipyard_repo.domain.projects import Project

PROJECTS = Collection("projects", unique=("name",))
REQUESTS = Collection("requests")
COLLECTIONS = (PROJECTS, REQUESTS)
SOURCE = "shipyard/repo-svc"


def _to_doc(project: Project) -> Document:
    doc = asdict(project)
    doc["_id"] = doc.pop("id")
    doc.pop("revision")
    doc["create_time"] = project.create_time.isoformat()
    doc["update_time"] = project.update_time.isoformat()
    return doc


def _from_doc(doc: Document) -> Project:
    fields: dict[str, Any] = {k: v for k, v in doc.items() if not k.startswith("_")}
    fields["create_time"] = datetime.fromisoformat(fields["create_time"])
    fields["update_time"] = datetime.fromisoformat(fields["update_time"])
    return Project(id=doc["_id"], revision=doc["_rev"], **fields)


class StoredProjects(ProjectRepository):
    """Projects in the ``projects`` collection, unique by name."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def get(self, name: str) -> Project | None:
        docs = await self._txn.find(PROJECTS.name, {"name": name}, Page(limit=1))
        return _from_doc(docs[0]) if docs else None

    async def get_by_id(self, project_id: str) -> Project | None:
        doc = await self._txn.get(PROJECTS.name, project_id)
        return _from_doc(doc) if doc else None

    async def add(self, project: Project) -> Project:
        try:
            return _from_doc(await self._txn.insert(PROJECTS.name, _to_doc(project)))
        except DuplicateKey:
            raise AlreadyExists(f"a project named {project.name!r} already exists") from None

    async def save(self, project: Project) -> Project:
        try:
            return _from_doc(await self._txn.replace(PROJECTS.name, _to_doc(project), project.revision))
        except RevisionConflict:
            raise Aborted(f"project {project.name!r} changed meanwhile; read it again and retry") from None
        except DuplicateKey:
            raise AlreadyExists(f"a project named {project.name!r} already exists") from None

    async def remove(self, project: Project) -> None:
        try:
            await self._txn.delete(PROJECTS.name, project.id, project.revision)
        except RevisionConflict:
            raise Aborted(f"project {project.name!r} changed meanwhile; read it again and retry") from None

    async def list(self, after: tuple[str, str] | None, limit: int) -> list[Project]:
        page = Page(order_by="name", after=after, limit=limit)
        return [_from_doc(d) for d in await self._txn.find(PROJECTS.name, page=page)]


class StoredRequests(RequestLog):
    """Create-request ids and what they made."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    async def resource_of(self, key: str) -> str | None:
        doc = await self._txn.get(REQUESTS.name, key)
        return str(doc["resource"]) if doc else None

    async def remember(self, key: str, resource_id: str) -> None:
        await self._txn.insert(REQUESTS.name, {"_id": key, "resource": resource_id})


class StoreUnitOfWork:
    """A transaction of the store; emitted events go to its outbox."""

    def __init__(self, txn: Transaction) -> None:
        self.projects = StoredProjects(txn)
        self.requests = StoredRequests(txn)
        self.events: list[Event] = []

    def emit(self, data: Message, subject: str, project: str) -> None:
        self.events.append(new_event(data, source=SOURCE, subject=subject, project=project,
                                     traceparent=current_traceparent()))


class StoreUnitOfWorkFactory:
    """Starts units of work on the store and wakes the relay after a commit with events."""

    def __init__(self, store: DocumentStore, relay: OutboxRelay | None) -> None:
        self._store = store
        self._relay = relay

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[StoreUnitOfWork]:
        async with self._store.transaction() as txn:
            uow = StoreUnitOfWork(txn)
            yield uow
            await add_to_outbox(txn, uow.events)
        if uow.events and self._relay is not None:
            self._relay.notify()
