import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shipyard.contracts.run.v1 import runs_pb2 as _runs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StudyStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STUDY_STATUS_UNSPECIFIED: _ClassVar[StudyStatus]
    STUDY_STATUS_CREATED: _ClassVar[StudyStatus]
    STUDY_STATUS_RUNNING: _ClassVar[StudyStatus]
    STUDY_STATUS_SUCCEEDED: _ClassVar[StudyStatus]
    STUDY_STATUS_FAILED: _ClassVar[StudyStatus]
    STUDY_STATUS_STOPPED: _ClassVar[StudyStatus]

class TrialState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIAL_STATE_UNSPECIFIED: _ClassVar[TrialState]
    TRIAL_STATE_CREATED: _ClassVar[TrialState]
    TRIAL_STATE_RUNNING: _ClassVar[TrialState]
    TRIAL_STATE_SUCCEEDED: _ClassVar[TrialState]
    TRIAL_STATE_KILLED: _ClassVar[TrialState]
    TRIAL_STATE_FAILED: _ClassVar[TrialState]
    TRIAL_STATE_METRICS_UNAVAILABLE: _ClassVar[TrialState]
    TRIAL_STATE_EARLY_STOPPED: _ClassVar[TrialState]
STUDY_STATUS_UNSPECIFIED: StudyStatus
STUDY_STATUS_CREATED: StudyStatus
STUDY_STATUS_RUNNING: StudyStatus
STUDY_STATUS_SUCCEEDED: StudyStatus
STUDY_STATUS_FAILED: StudyStatus
STUDY_STATUS_STOPPED: StudyStatus
TRIAL_STATE_UNSPECIFIED: TrialState
TRIAL_STATE_CREATED: TrialState
TRIAL_STATE_RUNNING: TrialState
TRIAL_STATE_SUCCEEDED: TrialState
TRIAL_STATE_KILLED: TrialState
TRIAL_STATE_FAILED: TrialState
TRIAL_STATE_METRICS_UNAVAILABLE: TrialState
TRIAL_STATE_EARLY_STOPPED: TrialState

class TrialMetric(_message.Message):
    __slots__ = ("name", "min", "max", "latest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    min: float
    max: float
    latest: float
    def __init__(self, name: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., latest: _Optional[float] = ...) -> None: ...

class Trial(_message.Message):
    __slots__ = ("name", "number", "state", "assignment", "metrics", "objective", "has_objective", "run_status", "status_reason", "create_time", "start_time", "end_time")
    class AssignmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    HAS_OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    RUN_STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    number: int
    state: TrialState
    assignment: _containers.ScalarMap[str, str]
    metrics: _containers.RepeatedCompositeFieldContainer[TrialMetric]
    objective: float
    has_objective: bool
    run_status: _runs_pb2.RunStatus
    status_reason: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., number: _Optional[int] = ..., state: _Optional[_Union[TrialState, str]] = ..., assignment: _Optional[_Mapping[str, str]] = ..., metrics: _Optional[_Iterable[_Union[TrialMetric, _Mapping]]] = ..., objective: _Optional[float] = ..., has_objective: _Optional[bool] = ..., run_status: _Optional[_Union[_runs_pb2.RunStatus, str]] = ..., status_reason: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrialCounts(_message.Message):
    __slots__ = ("created", "running", "succeeded", "killed", "failed", "metrics_unavailable", "early_stopped")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    KILLED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    METRICS_UNAVAILABLE_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOPPED_FIELD_NUMBER: _ClassVar[int]
    created: int
    running: int
    succeeded: int
    killed: int
    failed: int
    metrics_unavailable: int
    early_stopped: int
    def __init__(self, created: _Optional[int] = ..., running: _Optional[int] = ..., succeeded: _Optional[int] = ..., killed: _Optional[int] = ..., failed: _Optional[int] = ..., metrics_unavailable: _Optional[int] = ..., early_stopped: _Optional[int] = ...) -> None: ...

class Study(_message.Message):
    __slots__ = ("name", "run_id", "owner", "project", "status", "reason", "message", "spec_json", "algorithm", "objective_metric", "objective_type", "parallel_trial_count", "max_trial_count", "max_failed_trial_count", "trials", "counts", "best_trial", "keep_trial_outputs", "create_time", "completion_time", "revision", "resume_policy", "trials_revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_METRIC_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILED_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    BEST_TRIAL_FIELD_NUMBER: _ClassVar[int]
    KEEP_TRIAL_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    RESUME_POLICY_FIELD_NUMBER: _ClassVar[int]
    TRIALS_REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    run_id: str
    owner: str
    project: str
    status: StudyStatus
    reason: str
    message: str
    spec_json: str
    algorithm: str
    objective_metric: str
    objective_type: str
    parallel_trial_count: int
    max_trial_count: int
    max_failed_trial_count: int
    trials: int
    counts: TrialCounts
    best_trial: Trial
    keep_trial_outputs: bool
    create_time: _timestamp_pb2.Timestamp
    completion_time: _timestamp_pb2.Timestamp
    revision: int
    resume_policy: str
    trials_revision: int
    def __init__(self, name: _Optional[str] = ..., run_id: _Optional[str] = ..., owner: _Optional[str] = ..., project: _Optional[str] = ..., status: _Optional[_Union[StudyStatus, str]] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., spec_json: _Optional[str] = ..., algorithm: _Optional[str] = ..., objective_metric: _Optional[str] = ..., objective_type: _Optional[str] = ..., parallel_trial_count: _Optional[int] = ..., max_trial_count: _Optional[int] = ..., max_failed_trial_count: _Optional[int] = ..., trials: _Optional[int] = ..., counts: _Optional[_Union[TrialCounts, _Mapping]] = ..., best_trial: _Optional[_Union[Trial, _Mapping]] = ..., keep_trial_outputs: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completion_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ..., resume_policy: _Optional[str] = ..., trials_revision: _Optional[int] = ...) -> None: ...

class GetStudyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListStudiesRequest(_message.Message):
    __slots__ = ("project", "page_size", "page_token")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project: str
    page_size: int
    page_token: str
    def __init__(self, project: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStudiesResponse(_message.Message):
    __slots__ = ("studies", "next_page_token")
    STUDIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    studies: _containers.RepeatedCompositeFieldContainer[Study]
    next_page_token: str
    def __init__(self, studies: _Optional[_Iterable[_Union[Study, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListTrialsRequest(_message.Message):
    __slots__ = ("study", "order_by", "descending", "page_size", "page_token")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    study: str
    order_by: str
    descending: bool
    page_size: int
    page_token: str
    def __init__(self, study: _Optional[str] = ..., order_by: _Optional[str] = ..., descending: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTrialsResponse(_message.Message):
    __slots__ = ("trials", "next_page_token")
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    next_page_token: str
    def __init__(self, trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StopStudyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UpdateStudyRequest(_message.Message):
    __slots__ = ("name", "parallel_trial_count", "max_trial_count", "max_failed_trial_count", "update_mask")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILED_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    name: str
    parallel_trial_count: int
    max_trial_count: int
    max_failed_trial_count: int
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, name: _Optional[str] = ..., parallel_trial_count: _Optional[int] = ..., max_trial_count: _Optional[int] = ..., max_failed_trial_count: _Optional[int] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...
