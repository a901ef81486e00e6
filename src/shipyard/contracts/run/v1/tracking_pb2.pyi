import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shipyard.contracts.repo.v1 import repos_pb2 as _repos_pb2
from shipyard.contracts.run.v1 import runs_pb2 as _runs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrackedRunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRACKED_RUN_STATUS_UNSPECIFIED: _ClassVar[TrackedRunStatus]
    TRACKED_RUN_STATUS_RUNNING: _ClassVar[TrackedRunStatus]
    TRACKED_RUN_STATUS_FINISHED: _ClassVar[TrackedRunStatus]
    TRACKED_RUN_STATUS_FAILED: _ClassVar[TrackedRunStatus]
    TRACKED_RUN_STATUS_KILLED: _ClassVar[TrackedRunStatus]

class LoggedModelStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOGGED_MODEL_STATUS_UNSPECIFIED: _ClassVar[LoggedModelStatus]
    LOGGED_MODEL_STATUS_PENDING: _ClassVar[LoggedModelStatus]
    LOGGED_MODEL_STATUS_READY: _ClassVar[LoggedModelStatus]
    LOGGED_MODEL_STATUS_FAILED: _ClassVar[LoggedModelStatus]
TRACKED_RUN_STATUS_UNSPECIFIED: TrackedRunStatus
TRACKED_RUN_STATUS_RUNNING: TrackedRunStatus
TRACKED_RUN_STATUS_FINISHED: TrackedRunStatus
TRACKED_RUN_STATUS_FAILED: TrackedRunStatus
TRACKED_RUN_STATUS_KILLED: TrackedRunStatus
LOGGED_MODEL_STATUS_UNSPECIFIED: LoggedModelStatus
LOGGED_MODEL_STATUS_PENDING: LoggedModelStatus
LOGGED_MODEL_STATUS_READY: LoggedModelStatus
LOGGED_MODEL_STATUS_FAILED: LoggedModelStatus

class LoggedMetric(_message.Message):
    __slots__ = ("key", "value", "step", "timestamp_ms", "model_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: float
    step: int
    timestamp_ms: int
    model_id: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ..., step: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., model_id: _Optional[str] = ...) -> None: ...

class CreateTrackedRunRequest(_message.Message):
    __slots__ = ("name", "project", "tags", "start_time_ms")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    project: str
    tags: _containers.ScalarMap[str, str]
    start_time_ms: int
    def __init__(self, name: _Optional[str] = ..., project: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., start_time_ms: _Optional[int] = ...) -> None: ...

class UpdateTrackedRunRequest(_message.Message):
    __slots__ = ("run_id", "status", "end_time_ms")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    END_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    status: TrackedRunStatus
    end_time_ms: int
    def __init__(self, run_id: _Optional[str] = ..., status: _Optional[_Union[TrackedRunStatus, str]] = ..., end_time_ms: _Optional[int] = ...) -> None: ...

class GetRunByIdRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class LogRunDataRequest(_message.Message):
    __slots__ = ("run_id", "metrics", "params", "tags")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    metrics: _containers.RepeatedCompositeFieldContainer[LoggedMetric]
    params: _containers.ScalarMap[str, str]
    tags: _containers.ScalarMap[str, str]
    def __init__(self, run_id: _Optional[str] = ..., metrics: _Optional[_Iterable[_Union[LoggedMetric, _Mapping]]] = ..., params: _Optional[_Mapping[str, str]] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class LogRunDataResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteRunTagRequest(_message.Message):
    __slots__ = ("run_id", "key")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    key: str
    def __init__(self, run_id: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class DeleteRunTagResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMetricHistoryRequest(_message.Message):
    __slots__ = ("run_id", "key")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    key: str
    def __init__(self, run_id: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class GetMetricHistoryResponse(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedCompositeFieldContainer[LoggedMetric]
    def __init__(self, metrics: _Optional[_Iterable[_Union[LoggedMetric, _Mapping]]] = ...) -> None: ...

class SearchRunsRequest(_message.Message):
    __slots__ = ("projects", "filter", "order_by", "page_size", "page_token")
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedScalarFieldContainer[str]
    filter: str
    order_by: _containers.RepeatedScalarFieldContainer[str]
    page_size: int
    page_token: str
    def __init__(self, projects: _Optional[_Iterable[str]] = ..., filter: _Optional[str] = ..., order_by: _Optional[_Iterable[str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SearchRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[_runs_pb2.Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[_runs_pb2.Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ArtifactOwner(_message.Message):
    __slots__ = ("run_id", "model_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    model_id: str
    def __init__(self, run_id: _Optional[str] = ..., model_id: _Optional[str] = ...) -> None: ...

class ArtifactFile(_message.Message):
    __slots__ = ("path", "digest", "size_bytes", "is_dir")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    IS_DIR_FIELD_NUMBER: _ClassVar[int]
    path: str
    digest: str
    size_bytes: int
    is_dir: bool
    def __init__(self, path: _Optional[str] = ..., digest: _Optional[str] = ..., size_bytes: _Optional[int] = ..., is_dir: _Optional[bool] = ...) -> None: ...

class RecordArtifactsRequest(_message.Message):
    __slots__ = ("owner", "files")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    owner: ArtifactOwner
    files: _containers.RepeatedCompositeFieldContainer[ArtifactFile]
    def __init__(self, owner: _Optional[_Union[ArtifactOwner, _Mapping]] = ..., files: _Optional[_Iterable[_Union[ArtifactFile, _Mapping]]] = ...) -> None: ...

class RecordArtifactsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListArtifactsRequest(_message.Message):
    __slots__ = ("owner", "path", "recursive")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    owner: ArtifactOwner
    path: str
    recursive: bool
    def __init__(self, owner: _Optional[_Union[ArtifactOwner, _Mapping]] = ..., path: _Optional[str] = ..., recursive: _Optional[bool] = ...) -> None: ...

class ListArtifactsResponse(_message.Message):
    __slots__ = ("files",)
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[ArtifactFile]
    def __init__(self, files: _Optional[_Iterable[_Union[ArtifactFile, _Mapping]]] = ...) -> None: ...

class GetArtifactRequest(_message.Message):
    __slots__ = ("owner", "path")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    owner: ArtifactOwner
    path: str
    def __init__(self, owner: _Optional[_Union[ArtifactOwner, _Mapping]] = ..., path: _Optional[str] = ...) -> None: ...

class LoggedModel(_message.Message):
    __slots__ = ("id", "name", "run_id", "project", "status", "tags", "params", "model_type", "owner", "create_time", "update_time")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    run_id: str
    project: str
    status: LoggedModelStatus
    tags: _containers.ScalarMap[str, str]
    params: _containers.ScalarMap[str, str]
    model_type: str
    owner: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., run_id: _Optional[str] = ..., project: _Optional[str] = ..., status: _Optional[_Union[LoggedModelStatus, str]] = ..., tags: _Optional[_Mapping[str, str]] = ..., params: _Optional[_Mapping[str, str]] = ..., model_type: _Optional[str] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateLoggedModelRequest(_message.Message):
    __slots__ = ("run_id", "name", "tags", "params", "model_type")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    tags: _containers.ScalarMap[str, str]
    params: _containers.ScalarMap[str, str]
    model_type: str
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., params: _Optional[_Mapping[str, str]] = ..., model_type: _Optional[str] = ...) -> None: ...

class GetLoggedModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class FinalizeLoggedModelRequest(_message.Message):
    __slots__ = ("model_id", "status")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    status: LoggedModelStatus
    def __init__(self, model_id: _Optional[str] = ..., status: _Optional[_Union[LoggedModelStatus, str]] = ...) -> None: ...

class SetLoggedModelTagsRequest(_message.Message):
    __slots__ = ("model_id", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, model_id: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SearchLoggedModelsRequest(_message.Message):
    __slots__ = ("projects", "run_id", "name")
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedScalarFieldContainer[str]
    run_id: str
    name: str
    def __init__(self, projects: _Optional[_Iterable[str]] = ..., run_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class SearchLoggedModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[LoggedModel]
    def __init__(self, models: _Optional[_Iterable[_Union[LoggedModel, _Mapping]]] = ...) -> None: ...

class RegisterModelVersionRequest(_message.Message):
    __slots__ = ("source", "path", "repo", "message", "request_id")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    source: ArtifactOwner
    path: str
    repo: str
    message: str
    request_id: str
    def __init__(self, source: _Optional[_Union[ArtifactOwner, _Mapping]] = ..., path: _Optional[str] = ..., repo: _Optional[str] = ..., message: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...
