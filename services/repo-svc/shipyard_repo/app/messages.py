"""Domain objects as contract messages (for events and the API)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from shipyard.contracts.repo.v1 import projects_pb2, repos_pb2
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.manifest import ManifestEntry
from shipyard.kit.timestamps import timestamp
from shipyard_repo.domain.projects import Project, ProjectFields
from shipyard_repo.domain.repos import Repo, RepoFields, RepoStatus
from shipyard_repo.domain.sources import (
    FsxSource,
    GcsSource,
    GitSource,
    HostPathSource,
    NfsSource,
    NoSource,
    RedshiftSource,
    RepoKind,
    S3Source,
    Source,
    SqlSource,
    UploadSource,
    UrlSource,
    Versioning,
    VolumeSource,
    access,
)
from shipyard_repo.domain.versions import Version


def project_to_proto(project: Project) -> projects_pb2.Project:
    """The contract form of a project."""
    return projects_pb2.Project(
        id=project.id, name=project.name, description=project.description,
        thumbnail_url=project.thumbnail_url, leaderboard=project.leaderboard, details=project.details,
        owner=project.owner, create_time=timestamp(project.create_time),
        update_time=timestamp(project.update_time), revision=project.revision)


def fields_from_proto(message: projects_pb2.Project) -> ProjectFields:
    """The user-settable fields of a project message."""
    return ProjectFields(name=message.name, description=message.description,
                         thumbnail_url=message.thumbnail_url, leaderboard=message.leaderboard,
                         details=message.details)


KIND_TO_PROTO: dict[RepoKind, int] = {
    RepoKind.CODE: repos_pb2.REPO_KIND_CODE,
    RepoKind.DATASET: repos_pb2.REPO_KIND_DATASET,
    RepoKind.FEATURESET: repos_pb2.REPO_KIND_FEATURESET,
    RepoKind.MODEL: repos_pb2.REPO_KIND_MODEL,
}
_KIND_FROM_PROTO = {number: kind for kind, number in KIND_TO_PROTO.items()}
_VERSIONING_TO_PROTO = {Versioning.NONE: repos_pb2.VERSIONING_NONE, Versioning.DVS: repos_pb2.VERSIONING_DVS}
_VERSIONING_FROM_PROTO = {number: v for v, number in _VERSIONING_TO_PROTO.items()}
_STATUS_TO_PROTO = {status: repos_pb2.RepoStatus.Value(f"REPO_STATUS_{status.name}") for status in RepoStatus}
# The oneof field of repos_pb2.Source for each source class; the messages' fields mirror the classes'.
_SOURCE_FIELDS: dict[type[Any], str] = {
    GitSource: "git", S3Source: "s3", GcsSource: "gcs", VolumeSource: "volume", NfsSource: "nfs",
    HostPathSource: "hostpath", RedshiftSource: "redshift", SqlSource: "sql", FsxSource: "fsx",
    UrlSource: "url", UploadSource: "upload", NoSource: "none",
}
_SOURCE_CLASSES = {name: cls for cls, name in _SOURCE_FIELDS.items()}


def kind_from_proto(number: int, field: str = "kind", required: bool = True) -> RepoKind | None:
    """The repo kind of a request; InvalidArgument when missing (if required) or unknown."""
    if number == repos_pb2.REPO_KIND_UNSPECIFIED and not required:
        return None
    kind = _KIND_FROM_PROTO.get(number)
    if kind is None:
        raise InvalidArgument(field, "must be one of code, dataset, featureset, model")
    return kind


def source_to_proto(source: Source) -> repos_pb2.Source:
    """The contract form of a source."""
    name = _SOURCE_FIELDS[type(source)]
    message = repos_pb2.Source()
    part = getattr(message, name)
    part.CopyFrom(type(part)(**asdict(source)))
    return message


def source_from_proto(message: repos_pb2.Source) -> Source:
    """The domain form of a source message (unset: no source)."""
    name = message.WhichOneof("kind")
    if name is None:
        return NoSource()
    part = getattr(message, name)
    values = {f.name: getattr(part, f.name) for f in part.DESCRIPTOR.fields}
    cls: Any = _SOURCE_CLASSES[name]
    return cls(**values)  # type: ignore[no-any-return]


def repo_to_proto(repo: Repo) -> repos_pb2.Repo:
    """The contract form of a repo."""
    return repos_pb2.Repo(
        id=repo.id, kind=KIND_TO_PROTO[repo.kind], name=repo.name, project=repo.project,  # type: ignore[arg-type]
        description=repo.description, tags=list(repo.tags),
        versioning=_VERSIONING_TO_PROTO[repo.versioning], source=source_to_proto(repo.source),  # type: ignore[arg-type]
        status=_STATUS_TO_PROTO[repo.status], status_reason=repo.status_reason,  # type: ignore[arg-type]
        owner=repo.owner, create_time=timestamp(repo.create_time), update_time=timestamp(repo.update_time),
        revision=repo.revision, latest_version=repo.latest_version,
        access=access(repo.source, repo.versioning), labels=repo.labels, aliases=repo.aliases)


def repo_fields_from_proto(message: repos_pb2.Repo, kind: RepoKind | None = None) -> RepoFields:
    """The user-settable fields of a repo message."""
    kind = kind or kind_from_proto(message.kind, "repo.kind")
    assert kind is not None
    if message.versioning == repos_pb2.VERSIONING_UNSPECIFIED:
        versioning = Versioning.NONE if kind is RepoKind.CODE else Versioning.DVS
    else:
        versioning = _VERSIONING_FROM_PROTO.get(message.versioning, Versioning.DVS)
    return RepoFields(kind=kind, name=message.name, project=message.project, description=message.description,
                      tags=tuple(message.tags), versioning=versioning,
                      source=source_from_proto(message.source))


def version_to_proto(repo: Repo, version: Version) -> repos_pb2.Version:
    """The contract form of a version."""
    return repos_pb2.Version(
        repo_id=repo.id, kind=KIND_TO_PROTO[repo.kind], repo=repo.name, number=version.number,  # type: ignore[arg-type]
        manifest_digest=version.manifest_digest, size_bytes=version.size_bytes,
        file_count=version.file_count, message=version.message, produced_by_run=version.produced_by_run,
        owner=version.owner, create_time=timestamp(version.create_time), metrics=version.metrics,
        params=version.params, used_by_runs=list(version.used_by_runs), stage=version.stage,
        run_names=version.run_names, labels=version.labels)


def file_to_proto(entry: ManifestEntry) -> repos_pb2.FileEntry:
    """The contract form of a manifest entry."""
    return repos_pb2.FileEntry(path=entry.path, size=entry.size, sha256=entry.sha256, mode=entry.mode)
