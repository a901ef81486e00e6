"""repo-svc's one translation of its domain events into the contract's events: the message, its
CloudEvent subject (``projects/mnist``, ``datasets/digits``) and its project."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.events import caller_actor
from shipyard.kit.store.unit_of_work import Emitted
from shipyard_repo.app.image_messages import image_to_proto
from shipyard_repo.app.messages import KIND_TO_PROTO, project_to_proto, repo_to_proto
from shipyard_repo.domain import events
from shipyard_repo.domain.repos import Repo
from shipyard_repo.domain.sources import RepoKind


def repo_subject(repo: Repo) -> str:
    """The CloudEvent subject of a repo: ``datasets/digits``, ``code/train``."""
    collection = "code" if repo.kind is RepoKind.CODE else f"{repo.kind.value}s"
    return f"{collection}/{repo.name}"


def _project_created(e: events.ProjectCreated) -> Emitted:
    data = events_pb2.ProjectCreated(project=project_to_proto(e.project), actor=caller_actor(e.actor))
    return Emitted(data, f"projects/{e.project.name}", e.project.name)


def _project_updated(e: events.ProjectUpdated) -> Emitted:
    data = events_pb2.ProjectUpdated(project=project_to_proto(e.project), changed_fields=e.changed_fields,
                                     actor=caller_actor(e.actor), previous_name=e.previous_name)
    return Emitted(data, f"projects/{e.project.name}", e.project.name)


def _project_deleted(e: events.ProjectDeleted) -> Emitted:
    data = events_pb2.ProjectDeleted(project_id=e.project.id, name=e.project.name,
                                     actor=caller_actor(e.actor))
    return Emitted(data, f"projects/{e.project.name}", e.project.name)


def _repo_created(e: events.RepoCreated) -> Emitted:
    data = events_pb2.RepoCreated(repo=repo_to_proto(e.repo), actor=caller_actor(e.actor))
    return Emitted(data, repo_subject(e.repo), e.repo.project)


def _repo_updated(e: events.RepoUpdated) -> Emitted:
    data = events_pb2.RepoUpdated(repo=repo_to_proto(e.repo), changed_fields=e.changed_fields,
                                  actor=caller_actor(e.actor), previous_name=e.previous_name,
                                  previous_project=e.previous_project)
    return Emitted(data, repo_subject(e.repo), e.repo.project)


def _repo_deleted(e: events.RepoDeleted) -> Emitted:
    repo = e.repo
    data = events_pb2.RepoDeleted(repo_id=repo.id, kind=KIND_TO_PROTO[repo.kind],  # type: ignore[arg-type]
                                  name=repo.name, project=repo.project, actor=caller_actor(e.actor))
    return Emitted(data, repo_subject(repo), repo.project)


def _version_created(e: events.VersionCreated) -> Emitted:
    repo, version = e.repo, e.version
    data = events_pb2.VersionCreated(
        repo_id=repo.id, repo=repo.name, repo_kind=repo.kind.value, version=version.number,
        manifest_digest=version.manifest_digest, size_bytes=version.size_bytes,
        file_count=version.file_count, produced_by_run=version.produced_by_run, project=repo.project,
        actor=caller_actor(e.actor))
    return Emitted(data, repo_subject(repo), repo.project)


def _version_deleted(e: events.VersionDeleted) -> Emitted:
    repo, version = e.repo, e.version
    data = events_pb2.VersionDeleted(
        repo_id=repo.id, repo=repo.name, repo_kind=repo.kind.value, version=version.number,
        manifest_digest=version.manifest_digest, project=repo.project, actor=caller_actor(e.actor))
    return Emitted(data, repo_subject(repo), repo.project)


def _version_refused(e: events.VersionRefused) -> Emitted:
    data = events_pb2.VersionRefused(
        run_id=e.run_id, run_name=e.run_name, repo_kind=e.repo_kind, repo=e.repo, repo_id=e.repo_id,
        reason=e.reason, project=e.project, actor=caller_actor(e.owner))
    return Emitted(data, f"runs/{e.run_name or e.run_id}", e.project)


def _image_added(e: events.ImageAdded) -> Emitted:
    data = events_pb2.ImageAdded(image=image_to_proto(e.image), actor=caller_actor(e.actor))
    return Emitted(data, f"images/{e.image.name}", "")


def _image_deleted(e: events.ImageDeleted) -> Emitted:
    data = events_pb2.ImageDeleted(name=e.image.name, url=e.image.url, actor=caller_actor(e.actor))
    return Emitted(data, f"images/{e.image.name}", "")


_TRANSLATIONS: dict[type[Any], Callable[[Any], Emitted]] = {
    events.ProjectCreated: _project_created, events.ProjectUpdated: _project_updated,
    events.ProjectDeleted: _project_deleted, events.RepoCreated: _repo_created,
    events.RepoUpdated: _repo_updated, events.RepoDeleted: _repo_deleted,
    events.VersionCreated: _version_created, events.VersionDeleted: _version_deleted,
    events.VersionRefused: _version_refused,
    events.ImageAdded: _image_added, events.ImageDeleted: _image_deleted,
}


def translate(event: events.RepoEvent) -> Emitted:
    """The contract's event for a domain event of repo-svc (the translation its unit of work uses)."""
    try:
        translation = _TRANSLATIONS[type(event)]
    except KeyError:
        raise TypeError(f"repo-svc has no translation for {type(event).__name__}") from None
    return translation(event)
