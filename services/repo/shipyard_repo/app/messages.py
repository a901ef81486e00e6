"""Domain objects as contract messages (for events and the API)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from shipyard.contracts.repo.v1 import projects_pb2
from shipyard_repo.domain.projects import Project, ProjectFields


def _ts(value: object) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)  # type: ignore[arg-type]
    return ts


def project_to_proto(project: Project) -> projects_pb2.Project:
    """The contract form of a project."""
    return projects_pb2.Project(
        id=project.id, name=project.name, description=project.description,
        thumbnail_url=project.thumbnail_url, leaderboard=project.leaderboard, details=project.details,
        owner=project.owner, create_time=_ts(project.create_time), update_time=_ts(project.update_time),
        revision=project.revision)


def fields_from_proto(message: projects_pb2.Project) -> ProjectFields:
    """The user-settable fields of a project message."""
    return ProjectFields(name=message.name, description=message.description,
                         thumbnail_url=message.thumbnail_url, leaderboard=message.leaderboard,
                         details=message.details)
