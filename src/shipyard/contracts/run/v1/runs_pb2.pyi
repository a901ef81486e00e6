import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_KIND_UNSPECIFIED: _ClassVar[RunKind]
    RUN_KIND_TRAINING: _ClassVar[RunKind]
    RUN_KIND_PREPROCESSING: _ClassVar[RunKind]
    RUN_KIND_EVALUATION: _ClassVar[RunKind]
    RUN_KIND_TRIAL: _ClassVar[RunKind]

class Distribution(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISTRIBUTION_NONE: _ClassVar[Distribution]
    DISTRIBUTION_AUTOMATIC: _ClassVar[Distribution]
    DISTRIBUTION_MANUAL: _ClassVar[Distribution]

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_QUEUED: _ClassVar[RunStatus]
    RUN_STATUS_WAITING_FOR_GPUS: _ClassVar[RunStatus]
    RUN_STATUS_STARTING: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_COMPLETE: _ClassVar[RunStatus]
    RUN_STATUS_FAILED: _ClassVar[RunStatus]
    RUN_STATUS_STOPPING: _ClassVar[RunStatus]
    RUN_STATUS_STOPPED: _ClassVar[RunStatus]
    RUN_STATUS_ERROR: _ClassVar[RunStatus]

class TensorBoardState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENSORBOARD_STATE_UNSPECIFIED: _ClassVar[TensorBoardState]
    TENSORBOARD_STATE_STOPPED: _ClassVar[TensorBoardState]
    TENSORBOARD_STATE_RUNNING: _ClassVar[TensorBoardState]
RUN_KIND_UNSPECIFIED: RunKind
RUN_KIND_TRAINING: RunKind
RUN_KIND_PREPROCESSING: RunKind
RUN_KIND_EVALUATION: RunKind
RUN_KIND_TRIAL: RunKind
DISTRIBUTION_NONE: Distribution
DISTRIBUTION_AUTOMATIC: Distribution
DISTRIBUTION_MANUAL: Distribution
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_QUEUED: RunStatus
RUN_STATUS_WAITING_FOR_GPUS: RunStatus
RUN_STATUS_STARTING: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_COMPLETE: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_STOPPING: RunStatus
RUN_STATUS_STOPPED: RunStatus
RUN_STATUS_ERROR: RunStatus
TENSORBOARD_STATE_UNSPECIFIED: TensorBoardState
TENSORBOARD_STATE_STOPPED: TensorBoardState
TENSORBOARD_STATE_RUNNING: TensorBoardState

class RunInput(_message.Message):
    __slots__ = ("repo_kind", "repo", "version", "mount_path")
    REPO_KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MOUNT_PATH_FIELD_NUMBER: _ClassVar[int]
    repo_kind: str
    repo: str
    version: int
    mount_path: str
    def __init__(self, repo_kind: _Optional[str] = ..., repo: _Optional[str] = ..., version: _Optional[int] = ..., mount_path: _Optional[str] = ...) -> None: ...

class RunOutputTarget(_message.Message):
    __slots__ = ("repo_kind", "repo", "mount_path")
    REPO_KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    MOUNT_PATH_FIELD_NUMBER: _ClassVar[int]
    repo_kind: str
    repo: str
    mount_path: str
    def __init__(self, repo_kind: _Optional[str] = ..., repo: _Optional[str] = ..., mount_path: _Optional[str] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "name", "project", "description", "tags", "kind", "command", "framework", "framework_version", "image", "inputs", "outputs", "hyperparameters", "config_file_name", "gpus", "start_with_available", "cluster", "status", "status_reason", "exit_code", "owner", "create_time", "start_time", "end_time", "metrics", "revision", "notes", "code", "commit", "priority", "environment", "params", "labels", "external", "artifact_count", "latest_metrics", "time_limit", "account", "distribution", "workers", "study", "tuning")
    class HyperparametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LatestMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: MetricPoint
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[MetricPoint, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    START_WITH_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LATEST_METRICS_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    STUDY_FIELD_NUMBER: _ClassVar[int]
    TUNING_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    project: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    kind: RunKind
    command: str
    framework: str
    framework_version: str
    image: str
    inputs: _containers.RepeatedCompositeFieldContainer[RunInput]
    outputs: _containers.RepeatedCompositeFieldContainer[RunOutputTarget]
    hyperparameters: _containers.ScalarMap[str, str]
    config_file_name: str
    gpus: int
    start_with_available: bool
    cluster: str
    status: RunStatus
    status_reason: str
    exit_code: int
    owner: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    metrics: _containers.ScalarMap[str, float]
    revision: int
    notes: _containers.RepeatedScalarFieldContainer[str]
    code: str
    commit: str
    priority: int
    environment: RunEnvironment
    params: _containers.ScalarMap[str, str]
    labels: _containers.ScalarMap[str, str]
    external: bool
    artifact_count: int
    latest_metrics: _containers.MessageMap[str, MetricPoint]
    time_limit: str
    account: str
    distribution: Distribution
    workers: int
    study: str
    tuning: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[RunKind, str]] = ..., command: _Optional[str] = ..., framework: _Optional[str] = ..., framework_version: _Optional[str] = ..., image: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[RunInput, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[RunOutputTarget, _Mapping]]] = ..., hyperparameters: _Optional[_Mapping[str, str]] = ..., config_file_name: _Optional[str] = ..., gpus: _Optional[int] = ..., start_with_available: _Optional[bool] = ..., cluster: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., status_reason: _Optional[str] = ..., exit_code: _Optional[int] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., revision: _Optional[int] = ..., notes: _Optional[_Iterable[str]] = ..., code: _Optional[str] = ..., commit: _Optional[str] = ..., priority: _Optional[int] = ..., environment: _Optional[_Union[RunEnvironment, _Mapping]] = ..., params: _Optional[_Mapping[str, str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., external: _Optional[bool] = ..., artifact_count: _Optional[int] = ..., latest_metrics: _Optional[_Mapping[str, MetricPoint]] = ..., time_limit: _Optional[str] = ..., account: _Optional[str] = ..., distribution: _Optional[_Union[Distribution, str]] = ..., workers: _Optional[int] = ..., study: _Optional[str] = ..., tuning: _Optional[bool] = ...) -> None: ...

class RunEnvironment(_message.Message):
    __slots__ = ("image", "url", "python", "requirements", "digest", "framework", "framework_version")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    PYTHON_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_VERSION_FIELD_NUMBER: _ClassVar[int]
    image: str
    url: str
    python: str
    requirements: _containers.RepeatedScalarFieldContainer[str]
    digest: str
    framework: str
    framework_version: str
    def __init__(self, image: _Optional[str] = ..., url: _Optional[str] = ..., python: _Optional[str] = ..., requirements: _Optional[_Iterable[str]] = ..., digest: _Optional[str] = ..., framework: _Optional[str] = ..., framework_version: _Optional[str] = ...) -> None: ...

class SubmitRunRequest(_message.Message):
    __slots__ = ("run", "config_file", "request_id", "template", "tuning", "keep_trial_outputs")
    RUN_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FILE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    TUNING_FIELD_NUMBER: _ClassVar[int]
    KEEP_TRIAL_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    run: Run
    config_file: bytes
    request_id: str
    template: str
    tuning: bytes
    keep_trial_outputs: bool
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., config_file: _Optional[bytes] = ..., request_id: _Optional[str] = ..., template: _Optional[str] = ..., tuning: _Optional[bytes] = ..., keep_trial_outputs: _Optional[bool] = ...) -> None: ...

class RunTemplate(_message.Message):
    __slots__ = ("id", "name", "description", "run", "owner", "create_time", "has_config_file")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    HAS_CONFIG_FILE_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    run: Run
    owner: str
    create_time: _timestamp_pb2.Timestamp
    has_config_file: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., run: _Optional[_Union[Run, _Mapping]] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., has_config_file: _Optional[bool] = ...) -> None: ...

class CreateTemplateRequest(_message.Message):
    __slots__ = ("name", "description", "from_run")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FROM_RUN_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    from_run: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., from_run: _Optional[str] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ("templates",)
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[RunTemplate]
    def __init__(self, templates: _Optional[_Iterable[_Union[RunTemplate, _Mapping]]] = ...) -> None: ...

class DeleteTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteTemplateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CloneRunRequest(_message.Message):
    __slots__ = ("name", "new_name", "hyperparameters", "request_id")
    class HyperparametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    NEW_NAME_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    new_name: str
    hyperparameters: _containers.ScalarMap[str, str]
    request_id: str
    def __init__(self, name: _Optional[str] = ..., new_name: _Optional[str] = ..., hyperparameters: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("project", "status", "kind", "name_prefix", "tag", "page_size", "page_token", "study", "exclude_trials")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STUDY_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_TRIALS_FIELD_NUMBER: _ClassVar[int]
    project: str
    status: RunStatus
    kind: RunKind
    name_prefix: str
    tag: str
    page_size: int
    page_token: str
    study: str
    exclude_trials: bool
    def __init__(self, project: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., kind: _Optional[_Union[RunKind, str]] = ..., name_prefix: _Optional[str] = ..., tag: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., study: _Optional[str] = ..., exclude_trials: _Optional[bool] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StopRunRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteRunRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteRunResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReadRunLogsRequest(_message.Message):
    __slots__ = ("name", "offset", "max_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    offset: int
    max_bytes: int
    def __init__(self, name: _Optional[str] = ..., offset: _Optional[int] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class ReadRunLogsResponse(_message.Message):
    __slots__ = ("data", "next_offset", "finished")
    DATA_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    next_offset: int
    finished: bool
    def __init__(self, data: _Optional[bytes] = ..., next_offset: _Optional[int] = ..., finished: _Optional[bool] = ...) -> None: ...

class GetRunMetricsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class MetricPoint(_message.Message):
    __slots__ = ("step", "value", "time")
    STEP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    step: int
    value: float
    time: _timestamp_pb2.Timestamp
    def __init__(self, step: _Optional[int] = ..., value: _Optional[float] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MetricSeries(_message.Message):
    __slots__ = ("name", "points")
    NAME_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    points: _containers.RepeatedCompositeFieldContainer[MetricPoint]
    def __init__(self, name: _Optional[str] = ..., points: _Optional[_Iterable[_Union[MetricPoint, _Mapping]]] = ...) -> None: ...

class GetRunMetricsResponse(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[MetricSeries]
    def __init__(self, series: _Optional[_Iterable[_Union[MetricSeries, _Mapping]]] = ...) -> None: ...

class TensorBoardRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TensorBoard(_message.Message):
    __slots__ = ("run", "state", "path", "backend_address")
    RUN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    BACKEND_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    run: str
    state: TensorBoardState
    path: str
    backend_address: str
    def __init__(self, run: _Optional[str] = ..., state: _Optional[_Union[TensorBoardState, str]] = ..., path: _Optional[str] = ..., backend_address: _Optional[str] = ...) -> None: ...

class VerifyRunTokenRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class VerifyRunTokenResponse(_message.Message):
    __slots__ = ("user", "roles", "run")
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    user: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    run: str
    def __init__(self, user: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., run: _Optional[str] = ...) -> None: ...
