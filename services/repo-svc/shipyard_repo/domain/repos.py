"""Repos: code, datasets, feature sets and models, each with a source and (optionally) versions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

from shipyard.kit.caller import Caller
from shipyard.kit.errors import FailedPrecondition, InvalidArgument, PermissionDenied

from .names import check_mask, check_name, check_text
from .sources import NoSource, RepoKind, Source, UploadSource, Versioning, access, check_source

DESCRIPTION_MAX = 4096
TAGS_MAX = 32
EDITABLE = ("name", "description", "tags", "project")


class RepoStatus(enum.Enum):
    """Where a repo is in its life (the product's statuses)."""

    CREATING = "creating"
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    UPLOADING = "uploading"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Repo:
    """A repo as repo-svc keeps it. ``project`` "" means no project ("All Projects")."""

    id: str
    kind: RepoKind
    name: str
    owner: str
    create_time: datetime
    update_time: datetime
    versioning: Versioning
    source: Source
    project: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    status: RepoStatus = RepoStatus.READY
    status_reason: str = ""
    latest_version: int = 0
    revision: int = 0
    labels: dict[str, str] = field(default_factory=dict)  # key-value tags (MLflow's registered model tags)
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version number ("champion" -> 3)

    @property
    def key(self) -> str:
        """Unique over all repos: names are unique per kind."""
        return repo_key(self.kind, self.name)

    @property
    def label(self) -> str:
        """How messages name the repo: ``dataset 'digits'``."""
        return f"{self.kind.value} {self.name!r}"

    @property
    def versioned(self) -> bool:
        """Whether the platform keeps this repo's versions."""
        return self.versioning is Versioning.DVS


def repo_key(kind: RepoKind, name: str) -> str:
    """The unique key of a repo: its kind and name."""
    return f"{kind.value}/{name}"


@dataclass(frozen=True)
class RepoFields:
    """What a user may set on a repo."""

    kind: RepoKind
    name: str = ""
    project: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    versioning: Versioning = Versioning.DVS
    source: Source = field(default_factory=NoSource)

    def checked(self, allow_private: bool = False) -> RepoFields:
        """These fields, normalized, or InvalidArgument naming the first bad one."""
        check_name("repo.name", self.name)
        if self.project:
            check_name("repo.project", self.project)
        check_text("repo.description", self.description, DESCRIPTION_MAX)
        source = check_source(self.kind, self.versioning, self.source, allow_private=allow_private)
        return replace(self, tags=check_tags(self.tags), source=source)


def check_tags(tags: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Tags: at most 32 names, each like a resource name; duplicates dropped, order kept."""
    if len(tags) > TAGS_MAX:
        raise InvalidArgument("repo.tags", f"at most {TAGS_MAX} tags (got {len(tags)})")
    for index, tag in enumerate(tags):
        check_name(f"repo.tags[{index}]", tag)
    return tuple(dict.fromkeys(tags))


def first_status(fields: RepoFields) -> RepoStatus:
    """A new repo's status: ready unless its content has yet to arrive.

    Code is never imported: runs clone it at their pinned commit, IDEs at the latest.
    """
    if fields.kind is RepoKind.CODE:
        return RepoStatus.READY
    if isinstance(fields.source, UploadSource):
        return RepoStatus.UPLOADING
    if access(fields.source, fields.versioning) == "downloaded":
        return RepoStatus.QUEUED
    return RepoStatus.READY


def new_repo(repo_id: str, fields: RepoFields, owner: str, now: datetime) -> Repo:
    """A new repo owned by ``owner``; ``fields`` must have been checked."""
    return Repo(
        id=repo_id,
        kind=fields.kind,
        name=fields.name,
        owner=owner,
        create_time=now,
        update_time=now,
        versioning=fields.versioning,
        source=fields.source,
        project=fields.project,
        description=fields.description,
        tags=fields.tags,
        status=first_status(fields),
    )


def apply_update(repo: Repo, fields: RepoFields, paths: list[str], now: datetime) -> tuple[Repo, list[str]]:
    """The repo with the masked fields taken from ``fields``, and which ones changed."""
    changes: dict[str, object] = {p: getattr(fields, p) for p in check_mask(paths, EDITABLE)}
    if "name" in changes:
        check_name("repo.name", str(changes["name"]))
    if changes.get("project"):
        check_name("repo.project", str(changes["project"]))
    if "description" in changes:
        check_text("repo.description", str(changes["description"]), DESCRIPTION_MAX)
    if "tags" in changes:
        changes["tags"] = check_tags(fields.tags)
    changed = [p for p, v in changes.items() if getattr(repo, p) != v]
    if not changed:
        return repo, []
    return replace(repo, **changes, update_time=now), changed  # type: ignore[arg-type]


def check_may_change(repo: Repo, caller: Caller) -> None:
    """Only the owner of a repo, or an operator, may change or delete it."""
    if caller.user != repo.owner and not caller.is_operator:
        raise PermissionDenied(
            f"{repo.label} belongs to {repo.owner!r}; only its owner or an operator may change or delete it"
        )


def check_may_write(repo: Repo, caller: Caller) -> None:
    """The right to write a repo's next version (a push, a path import, a run's output): its owner
    or an operator. Projects have no members yet; when they do, this is where they come in."""
    if caller.user != repo.owner and not caller.is_operator:
        raise PermissionDenied(
            f"{repo.label} belongs to {repo.owner!r}; only its owner or an operator may write its versions"
        )


# The roles that may write versions at all (the gateway's policy of CreateVersion and SubmitRun; the
# roles of docs/architecture.md §2): a finished run's outputs are committed only while its owner holds one.
VERSION_WRITERS = frozenset({"operator", "data-scientist", "ml-engineer"})


def check_may_write_versions(caller: Caller) -> None:
    """That ``caller`` holds a role that may write versions (the gateway checks it per call; a run's
    outputs are committed after the call, so repo-svc checks it then)."""
    if not caller.roles & VERSION_WRITERS:
        raise PermissionDenied(
            f"{caller.user!r} holds no role that may write versions now "
            f"({', '.join(sorted(VERSION_WRITERS))})"
        )


def check_versioned(repo: Repo) -> None:
    """Versions exist only for DVS-versioned repos."""
    if not repo.versioned:
        raise FailedPrecondition(
            f"{repo.label} is not versioned: its source is referenced in place "
            "(create it with DVS versioning to keep versions)"
        )
