"""What happened to repo-svc's aggregates, as domain values: the use cases record these, and
``shipyard_repo.app.events`` translates each into the contract's event."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.kit.caller import Caller

from .images import Image
from .projects import Project
from .repos import Repo
from .versions import Version


@dataclass(frozen=True)
class ProjectCreated:
    """A project was created."""

    project: Project
    actor: Caller


@dataclass(frozen=True)
class ProjectUpdated:
    """A project's ``changed_fields`` changed; ``previous_name`` when it was renamed."""

    project: Project
    changed_fields: tuple[str, ...]
    actor: Caller
    previous_name: str = ""


@dataclass(frozen=True)
class ProjectDeleted:
    """A project was deleted (as it was last read)."""

    project: Project
    actor: Caller


@dataclass(frozen=True)
class RepoCreated:
    """A repo was created."""

    repo: Repo
    actor: Caller


@dataclass(frozen=True)
class RepoUpdated:
    """A repo's ``changed_fields`` changed; its previous name and project when those changed."""

    repo: Repo
    changed_fields: tuple[str, ...]
    actor: Caller
    previous_name: str = ""
    previous_project: str = ""


@dataclass(frozen=True)
class RepoDeleted:
    """A repo (and every version of it) was deleted."""

    repo: Repo
    actor: Caller


@dataclass(frozen=True)
class VersionCreated:
    """A version of ``repo`` was created (``repo`` as it is with it: its latest version)."""

    repo: Repo
    version: Version
    actor: Caller


@dataclass(frozen=True)
class VersionDeleted:
    """A version of ``repo`` was deleted."""

    repo: Repo
    version: Version
    actor: Caller


@dataclass(frozen=True)
class VersionRefused:
    """A finished run's output got no version; the run is told why."""

    run_id: str
    run_name: str
    repo_kind: str
    repo: str
    repo_id: str
    reason: str
    project: str
    owner: Caller


@dataclass(frozen=True)
class ImageAdded:
    """An image entered the catalog."""

    image: Image
    actor: Caller


@dataclass(frozen=True)
class ImageDeleted:
    """An image left the catalog."""

    image: Image
    actor: Caller


RepoEvent = (ProjectCreated | ProjectUpdated | ProjectDeleted | RepoCreated | RepoUpdated | RepoDeleted
             | VersionCreated | VersionDeleted | VersionRefused | ImageAdded | ImageDeleted)
"""Every event repo-svc records."""
