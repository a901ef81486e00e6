"""Project use cases: create, get, list, update, delete — each one transaction plus its event."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import Aborted, AlreadyExists, InvalidArgument, NotFound, ShipyardError
from shipyard.kit.ids import new_id
from shipyard.kit.paging import decode_token, encode_token, page_limit
from shipyard_repo.app.ports import UnitOfWork, Units
from shipyard_repo.domain.events import ProjectCreated, ProjectDeleted, ProjectUpdated
from shipyard_repo.domain.projects import (
    Project,
    ProjectFields,
    apply_update,
    check_may_change,
    new_project,
)

BATCH_MAX = 100
TOKEN_TAG = "projects"


@dataclass
class Projects:
    """The project use cases over a unit-of-work factory."""

    uow: Units
    clock: Clock = utc_now
    ids: Callable[[], str] = new_id

    async def create(self, caller: Caller, fields: ProjectFields, request_id: str = "") -> Project:
        """Create a project owned by the caller; a retried ``request_id`` returns the first result."""
        fields.checked()
        async with self.uow() as uow:
            return await self._create_in(uow, caller, fields, request_id)

    async def batch_create(self, caller: Caller,
                           entries: Sequence[tuple[ProjectFields, str]]) -> list[Project]:
        """Create up to ``BATCH_MAX`` projects in one transaction: all of them or none.

        Each entry is (fields, request_id); an error names the first bad entry by its index.
        """
        if not 1 <= len(entries) <= BATCH_MAX:
            raise InvalidArgument("requests", f"must hold 1 to {BATCH_MAX} entries, not {len(entries)}")
        seen: dict[str, int] = {}
        for index, (fields, _) in enumerate(entries):
            with _entry(index):
                fields.checked()
            if fields.name in seen:
                raise InvalidArgument(f"requests[{index}].project.name",
                                      f"{fields.name!r} is also the name of requests[{seen[fields.name]}]")
            seen[fields.name] = index
        async with self.uow() as uow:
            made = []
            for index, (fields, request_id) in enumerate(entries):
                with _entry(index):
                    made.append(await self._create_in(uow, caller, fields, request_id))
            return made

    async def _create_in(self, uow: UnitOfWork, caller: Caller, fields: ProjectFields,
                         request_id: str) -> Project:
        if request_id:
            made = await uow.requests.resource_of(f"{caller.user}:{request_id}")
            if made is not None:
                earlier = await uow.projects.by_id(made)
                if earlier is None:
                    raise NotFound(f"request {request_id!r} created a project that was deleted since")
                return earlier
        if await uow.projects.get(fields.name) is not None:
            raise AlreadyExists(f"a project named {fields.name!r} already exists")
        project = await uow.projects.add(new_project(self.ids(), fields, caller.user, self.clock()))
        if request_id:
            await uow.requests.remember(f"{caller.user}:{request_id}", project.id)
        uow.record(ProjectCreated(project, caller))
        return project

    async def get(self, name: str) -> Project:
        """The named project; NotFound otherwise."""
        async with self.uow() as uow:
            return await _must_get(uow, name)

    async def list_page(self, page_size: int, page_token: str) -> tuple[list[Project], str]:
        """One page of projects in name order, and the token of the next page ("" at the end)."""
        limit = page_limit(page_size)
        cursor = decode_token(TOKEN_TAG, page_token, 2)
        after = (cursor[0], cursor[1]) if cursor else None
        async with self.uow() as uow:
            projects = await uow.projects.list(after, limit + 1)
        more = len(projects) > limit
        projects = projects[:limit]
        return projects, encode_token(TOKEN_TAG, projects[-1].name, projects[-1].id) if more else ""

    async def update(self, caller: Caller, name: str, fields: ProjectFields, paths: list[str],
                     revision: int = 0) -> Project:
        """Change the masked fields; ``revision`` (when non-zero) must be the current one."""
        async with self.uow() as uow:
            project = await _must_get(uow, name)
            check_may_change(project, caller)
            _check_revision(project, revision)
            updated, changed = apply_update(project, fields, paths, self.clock())
            if not changed:
                return project
            if updated.name != project.name and await uow.projects.get(updated.name) is not None:
                raise AlreadyExists(f"a project named {updated.name!r} already exists")
            saved = await uow.projects.save(updated)
            uow.record(ProjectUpdated(saved, tuple(changed), caller,
                                      previous_name=project.name if saved.name != project.name else ""))
            return saved

    async def delete(self, caller: Caller, name: str, revision: int = 0) -> None:
        """Delete the project (owner or operator only)."""
        async with self.uow() as uow:
            project = await _must_get(uow, name)
            check_may_change(project, caller)
            _check_revision(project, revision)
            await uow.projects.remove(project)
            uow.record(ProjectDeleted(project, caller))


@contextmanager
def _entry(index: int) -> Iterator[None]:
    """Name the batch entry an error is about: ``requests[3].project.name: ...``."""
    try:
        yield
    except InvalidArgument as error:
        raise InvalidArgument(f"requests[{index}].{error.field}", error.problem) from None
    except ShipyardError as error:
        raise type(error)(f"requests[{index}]: {error}") from None


async def _must_get(uow: UnitOfWork, name: str) -> Project:
    if not name:
        raise InvalidArgument("name", "must not be empty")
    project = await uow.projects.get(name)
    if project is None:
        raise NotFound(f"project {name!r} not found")
    return project


def _check_revision(project: Project, revision: int) -> None:
    if revision and revision != project.revision:
        raise Aborted(f"project {project.name!r} is at revision {project.revision}, not {revision}; "
                      "read it again and retry")
