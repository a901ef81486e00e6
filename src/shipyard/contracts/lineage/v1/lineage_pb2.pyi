import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_UPSTREAM: _ClassVar[Direction]
    DIRECTION_DOWNSTREAM: _ClassVar[Direction]
    DIRECTION_BOTH: _ClassVar[Direction]
DIRECTION_UNSPECIFIED: Direction
DIRECTION_UPSTREAM: Direction
DIRECTION_DOWNSTREAM: Direction
DIRECTION_BOTH: Direction

class Activity(_message.Message):
    __slots__ = ("event_id", "type", "subject", "project", "actor", "time", "summary", "sequence")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: str
    subject: str
    project: str
    actor: str
    time: _timestamp_pb2.Timestamp
    summary: str
    sequence: int
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[str] = ..., subject: _Optional[str] = ..., project: _Optional[str] = ..., actor: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., summary: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class ListActivityRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "project", "type_prefix", "since", "subject")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TYPE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    project: str
    type_prefix: str
    since: _timestamp_pb2.Timestamp
    subject: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project: _Optional[str] = ..., type_prefix: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subject: _Optional[str] = ...) -> None: ...

class ListActivityResponse(_message.Message):
    __slots__ = ("activities", "next_page_token")
    ACTIVITIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    activities: _containers.RepeatedCompositeFieldContainer[Activity]
    next_page_token: str
    def __init__(self, activities: _Optional[_Iterable[_Union[Activity, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("id", "kind", "label", "project", "attributes", "deleted")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    label: str
    project: str
    attributes: _containers.ScalarMap[str, str]
    deleted: bool
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., label: _Optional[str] = ..., project: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., deleted: _Optional[bool] = ...) -> None: ...

class Edge(_message.Message):
    __slots__ = ("source", "target", "relation")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RELATION_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    relation: str
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., relation: _Optional[str] = ...) -> None: ...

class Graph(_message.Message):
    __slots__ = ("root", "nodes", "edges", "truncated")
    ROOT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    root: str
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    edges: _containers.RepeatedCompositeFieldContainer[Edge]
    truncated: bool
    def __init__(self, root: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., edges: _Optional[_Iterable[_Union[Edge, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class GetLineageRequest(_message.Message):
    __slots__ = ("kind", "name", "direction", "depth")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    direction: Direction
    depth: int
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., depth: _Optional[int] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "kind", "name", "project", "status", "subtype", "update_time", "link", "gpus")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUBTYPE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    name: str
    project: str
    status: str
    subtype: str
    update_time: _timestamp_pb2.Timestamp
    link: str
    gpus: int
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., status: _Optional[str] = ..., subtype: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., link: _Optional[str] = ..., gpus: _Optional[int] = ...) -> None: ...

class Count(_message.Message):
    __slots__ = ("name", "count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    count: int
    def __init__(self, name: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class Dashboard(_message.Message):
    __slots__ = ("recent_jobs", "runs_by_status", "gpus_in_use", "gpus_queued", "repos_by_kind", "deployments", "published_models", "project", "run_counts", "repo_counts")
    class RunsByStatusEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ReposByKindEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    RECENT_JOBS_FIELD_NUMBER: _ClassVar[int]
    RUNS_BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_IN_USE_FIELD_NUMBER: _ClassVar[int]
    GPUS_QUEUED_FIELD_NUMBER: _ClassVar[int]
    REPOS_BY_KIND_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_MODELS_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    RUN_COUNTS_FIELD_NUMBER: _ClassVar[int]
    REPO_COUNTS_FIELD_NUMBER: _ClassVar[int]
    recent_jobs: _containers.RepeatedCompositeFieldContainer[Job]
    runs_by_status: _containers.ScalarMap[str, int]
    gpus_in_use: int
    gpus_queued: int
    repos_by_kind: _containers.ScalarMap[str, int]
    deployments: int
    published_models: int
    project: str
    run_counts: _containers.RepeatedCompositeFieldContainer[Count]
    repo_counts: _containers.RepeatedCompositeFieldContainer[Count]
    def __init__(self, recent_jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., runs_by_status: _Optional[_Mapping[str, int]] = ..., gpus_in_use: _Optional[int] = ..., gpus_queued: _Optional[int] = ..., repos_by_kind: _Optional[_Mapping[str, int]] = ..., deployments: _Optional[int] = ..., published_models: _Optional[int] = ..., project: _Optional[str] = ..., run_counts: _Optional[_Iterable[_Union[Count, _Mapping]]] = ..., repo_counts: _Optional[_Iterable[_Union[Count, _Mapping]]] = ...) -> None: ...

class GetDashboardRequest(_message.Message):
    __slots__ = ("project", "recent")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    RECENT_FIELD_NUMBER: _ClassVar[int]
    project: str
    recent: int
    def __init__(self, project: _Optional[str] = ..., recent: _Optional[int] = ...) -> None: ...

class ExportOpenLineageRequest(_message.Message):
    __slots__ = ("project", "page_size", "page_token", "namespace")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    project: str
    page_size: int
    page_token: str
    namespace: str
    def __init__(self, project: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class ExportOpenLineageResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ProjectionStatus(_message.Message):
    __slots__ = ("last_sequence", "nodes", "edges", "activities", "digest", "rebuilding", "rebuild_started")
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    ACTIVITIES_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REBUILDING_FIELD_NUMBER: _ClassVar[int]
    REBUILD_STARTED_FIELD_NUMBER: _ClassVar[int]
    last_sequence: int
    nodes: int
    edges: int
    activities: int
    digest: str
    rebuilding: bool
    rebuild_started: _timestamp_pb2.Timestamp
    def __init__(self, last_sequence: _Optional[int] = ..., nodes: _Optional[int] = ..., edges: _Optional[int] = ..., activities: _Optional[int] = ..., digest: _Optional[str] = ..., rebuilding: _Optional[bool] = ..., rebuild_started: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetProjectionStatusRequest(_message.Message):
    __slots__ = ("digest",)
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    digest: bool
    def __init__(self, digest: _Optional[bool] = ...) -> None: ...

class RebuildRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
