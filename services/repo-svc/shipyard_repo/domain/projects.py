"""Projects: a team's workspace, optionally with a leaderboard."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from shipyard.kit.caller import Caller
from shipyard.kit.errors import PermissionDenied

from .names import check_mask, check_name, check_text, check_url

DESCRIPTION_MAX = 4096
DETAILS_MAX = 65536
EDITABLE = ("name", "description", "thumbnail_url", "leaderboard", "details")


@dataclass(frozen=True)
class Project:
    """A project as repo-svc keeps it."""

    id: str
    name: str
    owner: str
    create_time: datetime
    update_time: datetime
    description: str = ""
    thumbnail_url: str = ""
    leaderboard: bool = False
    details: str = ""
    revision: int = 0


@dataclass(frozen=True)
class ProjectFields:
    """What a user may set on a project."""

    name: str = ""
    description: str = ""
    thumbnail_url: str = ""
    leaderboard: bool = False
    details: str = ""

    def checked(self) -> ProjectFields:
        """These fields, or InvalidArgument naming the first bad one."""
        check_name("project.name", self.name)
        check_text("project.description", self.description, DESCRIPTION_MAX)
        check_url("project.thumbnail_url", self.thumbnail_url)
        check_text("project.details", self.details, DETAILS_MAX)
        return self


def new_project(project_id: str, fields: ProjectFields, owner: str, now: datetime) -> Project:
    """A new project owned by ``owner``."""
    f = fields.checked()
    return Project(id=project_id, name=f.name, owner=owner, create_time=now, update_time=now,
                   description=f.description, thumbnail_url=f.thumbnail_url,
                   leaderboard=f.leaderboard, details=f.details)


def apply_update(project: Project, fields: ProjectFields, paths: list[str],
                 now: datetime) -> tuple[Project, list[str]]:
    """The project with the masked fields taken from ``fields``, and which ones changed."""
    changes = {p: getattr(fields, p) for p in check_mask(paths, EDITABLE)}
    candidate = ProjectFields(**{f: changes.get(f, getattr(project, f)) for f in EDITABLE})
    candidate.checked()
    changed = [p for p, v in changes.items() if getattr(project, p) != v]
    if not changed:
        return project, []
    return replace(project, **changes, update_time=now), changed


def check_may_change(project: Project, caller: Caller) -> None:
    """Only the owner of a project, or an operator, may change or delete it."""
    if caller.user != project.owner and not caller.is_operator:
        raise PermissionDenied(f"project {project.name!r} belongs to {project.owner!r}; "
                               "only its owner or an operator may change or delete it")
