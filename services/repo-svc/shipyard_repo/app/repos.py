"""Repo use cases: create, get, list, update (rename, move, tag), delete — one transaction each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import Aborted, AlreadyExists, InvalidArgument, NotFound
from shipyard.kit.ids import new_id
from shipyard.kit.paging import decode_token, encode_token, page_limit
from shipyard_repo.app.ports import RepoFilter, UnitOfWork, Units
from shipyard_repo.domain.events import RepoCreated, RepoDeleted, RepoUpdated, VersionCreated
from shipyard_repo.domain.names import check_name
from shipyard_repo.domain.repos import (
    Repo,
    RepoFields,
    apply_update,
    check_may_change,
    new_repo,
)
from shipyard_repo.domain.sources import NoSource, RepoKind
from shipyard_repo.domain.versions import EMPTY_MANIFEST, MODEL_STAGES, Version, check_unused

TOKEN_TAG = "repos"


@dataclass
class Repos:
    """The repo use cases over a unit-of-work factory."""

    uow: Units
    clock: Clock = utc_now
    ids: Callable[[], str] = new_id
    # Sources on loopback and private addresses (and file:// git URLs) only when the operator allows.
    allow_private: bool = False

    async def create(self, caller: Caller, fields: RepoFields, request_id: str = "") -> Repo:
        """Create a repo owned by the caller; a retried ``request_id`` returns the first result.

        A versioned repo with no source gets its empty version 1 at once: it is a placeholder
        a run will write the next version of.
        """
        fields = fields.checked(self.allow_private)
        async with self.uow() as uow:
            key = f"{caller.user}:repo:{request_id}"
            if request_id and (made := await uow.requests.resource_of(key)) is not None:
                earlier = await uow.repos.by_id(made)
                if earlier is None:
                    raise NotFound(f"request {request_id!r} created a repo that was deleted since")
                return earlier
            if fields.project:
                await _must_have_project(uow, fields.project)
            credential = getattr(fields.source, "credential", "")
            if credential and await uow.credentials.get(caller.user, credential) is None:
                raise NotFound(f"credential {credential!r} not found: "
                               "save it first (shipyard credential save)")
            if await uow.repos.get(fields.kind, fields.name) is not None:
                raise AlreadyExists(f"a {fields.kind.value} named {fields.name!r} already exists")
            repo = new_repo(self.ids(), fields, caller.user, self.clock())
            placeholder = repo.versioned and isinstance(repo.source, NoSource)
            if placeholder:
                repo = replace(repo, latest_version=1)
            repo = await uow.repos.add(repo)
            if request_id:
                await uow.requests.remember(key, repo.id)
            uow.record(RepoCreated(repo, caller))
            if placeholder:
                first = await uow.versions.add(
                    Version(
                        repo_id=repo.id,
                        number=1,
                        manifest_digest=EMPTY_MANIFEST,
                        size_bytes=0,
                        file_count=0,
                        owner=caller.user,
                        stage=MODEL_STAGES[0] if repo.kind is RepoKind.MODEL else "",
                        create_time=repo.create_time,
                        message="empty placeholder",
                    )
                )
                uow.record(VersionCreated(repo, first, caller))
            return repo

    async def get(self, kind: RepoKind, name: str) -> Repo:
        """The repo of that kind and name; NotFound otherwise."""
        async with self.uow() as uow:
            return await must_get_repo(uow, kind, name)

    async def list_page(self, where: RepoFilter, page_size: int, page_token: str) -> tuple[list[Repo], str]:
        """One page of repos in (kind, name) order, and the next page's token ("" at the end)."""
        limit = page_limit(page_size)
        after = decode_token(TOKEN_TAG, page_token, 2)
        async with self.uow() as uow:
            repos = await uow.repos.list(where, (after[0], after[1]) if after else None, limit + 1)
        more = len(repos) > limit
        repos = repos[:limit]
        return repos, encode_token(TOKEN_TAG, repos[-1].key, repos[-1].id) if more else ""

    async def update(
        self,
        caller: Caller,
        kind: RepoKind,
        name: str,
        fields: RepoFields,
        paths: list[str],
        revision: int = 0,
    ) -> Repo:
        """Change the masked fields (name, description, tags, project); ``revision`` must match if set."""
        async with self.uow() as uow:
            repo = await must_get_repo(uow, kind, name)
            check_may_change(repo, caller)
            _check_revision(repo, revision)
            updated, changed = apply_update(repo, fields, paths, self.clock())
            if not changed:
                return repo
            if "project" in changed and updated.project:
                await _must_have_project(uow, updated.project)
            if "name" in changed and await uow.repos.get(kind, updated.name) is not None:
                raise AlreadyExists(f"a {kind.value} named {updated.name!r} already exists")
            saved = await uow.repos.save(updated)
            uow.record(RepoUpdated(
                saved, tuple(changed), caller,
                previous_name=repo.name if saved.name != repo.name else "",
                previous_project=repo.project if saved.project != repo.project else "",
            ))
            return saved

    async def delete(self, caller: Caller, kind: RepoKind, name: str, revision: int = 0,
                     force: bool = False) -> None:
        """Delete the repo and its versions (owner or operator only).

        The versions' blobs stay in the blob store: other versions and repos may share them.
        """
        async with self.uow() as uow:
            repo = await must_get_repo(uow, kind, name)
            check_may_change(repo, caller)
            _check_revision(repo, revision)
            check_unused(await uow.versions.list(repo.id, None, 1_000_000), force)
            await uow.versions.remove_all(repo.id)
            await uow.repos.remove(repo)
            uow.record(RepoDeleted(repo, caller))


async def must_get_repo(uow: UnitOfWork, kind: RepoKind, name: str) -> Repo:
    """The repo, or NotFound (InvalidArgument for an empty name)."""
    if not name:
        raise InvalidArgument("name", "must not be empty")
    repo = await uow.repos.get(kind, name)
    if repo is None:
        raise NotFound(f"{kind.value} {name!r} not found")
    return repo


async def _must_have_project(uow: UnitOfWork, project: str) -> None:
    check_name("repo.project", project)
    if await uow.projects.get(project) is None:
        raise NotFound(f'project {project!r} not found (leave the project empty for "All Projects")')


def _check_revision(repo: Repo, revision: int) -> None:
    if revision and revision != repo.revision:
        raise Aborted(f"{repo.label} is at revision {repo.revision}, not {revision}; read it again and retry")
