"""The ports repo-svc's use cases depend on; adapters implement them, tests fake them."""

from __future__ import annotations

import abc
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from google.protobuf.message import Message

from shipyard_repo.domain.projects import Project


class ProjectRepository(abc.ABC):
    """Projects in repo-svc's store."""

    @abc.abstractmethod
    async def get(self, name: str) -> Project | None:
        """The project with that name."""

    @abc.abstractmethod
    async def get_by_id(self, project_id: str) -> Project | None:
        """The project with that id (names change, ids do not)."""

    @abc.abstractmethod
    async def add(self, project: Project) -> Project:
        """Store a new project (revision 1); AlreadyExists when the name is taken."""

    @abc.abstractmethod
    async def save(self, project: Project) -> Project:
        """Store a change made on ``project.revision``; Aborted if someone changed it since."""

    @abc.abstractmethod
    async def remove(self, project: Project) -> None:
        """Delete the project as read at ``project.revision``; Aborted if it changed since."""

    @abc.abstractmethod
    async def list(self, after: tuple[str, str] | None, limit: int) -> list[Project]:
        """Projects in name order after the one with this (name, id)."""


class RequestLog(abc.ABC):
    """Remembers which resource a create request made, for retried requests."""

    @abc.abstractmethod
    async def resource_of(self, key: str) -> str | None:
        """The id of the resource made by request ``key``, if any."""

    @abc.abstractmethod
    async def remember(self, key: str, resource_id: str) -> None:
        """Record that request ``key`` made the resource with that id."""


class UnitOfWork(Protocol):
    """One transaction: repositories plus the events to publish if it commits."""

    @property
    def projects(self) -> ProjectRepository:
        """Projects in this transaction."""

    @property
    def requests(self) -> RequestLog:
        """Create requests in this transaction."""

    def emit(self, data: Message, subject: str, project: str) -> None:
        """Publish this event if, and only if, the transaction commits."""


class UnitOfWorkFactory(Protocol):
    """Starts units of work."""

    def __call__(self) -> AbstractAsyncContextManager[UnitOfWork]: ...

