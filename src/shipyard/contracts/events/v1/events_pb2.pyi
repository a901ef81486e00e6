from shipyard.contracts.common.v1 import common_pb2 as _common_pb2
from shipyard.contracts.repo.v1 import images_pb2 as _images_pb2
from shipyard.contracts.repo.v1 import projects_pb2 as _projects_pb2
from shipyard.contracts.repo.v1 import repos_pb2 as _repos_pb2
from shipyard.contracts.run.v1 import builds_pb2 as _builds_pb2
from shipyard.contracts.run.v1 import clusters_pb2 as _clusters_pb2
from shipyard.contracts.serving.v1 import serving_pb2 as _serving_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProjectCreated(_message.Message):
    __slots__ = ("project", "actor")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    project: _projects_pb2.Project
    actor: _common_pb2.Actor
    def __init__(self, project: _Optional[_Union[_projects_pb2.Project, _Mapping]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class ProjectUpdated(_message.Message):
    __slots__ = ("project", "changed_fields", "actor", "previous_name")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_NAME_FIELD_NUMBER: _ClassVar[int]
    project: _projects_pb2.Project
    changed_fields: _containers.RepeatedScalarFieldContainer[str]
    actor: _common_pb2.Actor
    previous_name: str
    def __init__(self, project: _Optional[_Union[_projects_pb2.Project, _Mapping]] = ..., changed_fields: _Optional[_Iterable[str]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., previous_name: _Optional[str] = ...) -> None: ...

class ProjectDeleted(_message.Message):
    __slots__ = ("project_id", "name", "actor")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    name: str
    actor: _common_pb2.Actor
    def __init__(self, project_id: _Optional[str] = ..., name: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class RepoCreated(_message.Message):
    __slots__ = ("repo", "actor")
    REPO_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    repo: _repos_pb2.Repo
    actor: _common_pb2.Actor
    def __init__(self, repo: _Optional[_Union[_repos_pb2.Repo, _Mapping]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class RepoUpdated(_message.Message):
    __slots__ = ("repo", "changed_fields", "actor", "previous_name", "previous_project")
    REPO_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_NAME_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_PROJECT_FIELD_NUMBER: _ClassVar[int]
    repo: _repos_pb2.Repo
    changed_fields: _containers.RepeatedScalarFieldContainer[str]
    actor: _common_pb2.Actor
    previous_name: str
    previous_project: str
    def __init__(self, repo: _Optional[_Union[_repos_pb2.Repo, _Mapping]] = ..., changed_fields: _Optional[_Iterable[str]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., previous_name: _Optional[str] = ..., previous_project: _Optional[str] = ...) -> None: ...

class RepoDeleted(_message.Message):
    __slots__ = ("repo_id", "kind", "name", "project", "actor")
    REPO_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    repo_id: str
    kind: _repos_pb2.RepoKind
    name: str
    project: str
    actor: _common_pb2.Actor
    def __init__(self, repo_id: _Optional[str] = ..., kind: _Optional[_Union[_repos_pb2.RepoKind, str]] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class RunSubmitted(_message.Message):
    __slots__ = ("run_id", "name", "project", "kind", "code", "inputs", "outputs", "hyperparameters", "image", "cluster", "command", "actor", "gpus", "image_url", "environment_digest")
    class HyperparametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    project: str
    kind: str
    code: _common_pb2.CodeRef
    inputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.VersionRef]
    outputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.VersionRef]
    hyperparameters: _containers.ScalarMap[str, str]
    image: str
    cluster: str
    command: str
    actor: _common_pb2.Actor
    gpus: int
    image_url: str
    environment_digest: str
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., kind: _Optional[str] = ..., code: _Optional[_Union[_common_pb2.CodeRef, _Mapping]] = ..., inputs: _Optional[_Iterable[_Union[_common_pb2.VersionRef, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[_common_pb2.VersionRef, _Mapping]]] = ..., hyperparameters: _Optional[_Mapping[str, str]] = ..., image: _Optional[str] = ..., cluster: _Optional[str] = ..., command: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., gpus: _Optional[int] = ..., image_url: _Optional[str] = ..., environment_digest: _Optional[str] = ...) -> None: ...

class RunStarted(_message.Message):
    __slots__ = ("run_id", "name", "project", "kind", "executor", "notes")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    project: str
    kind: str
    executor: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., kind: _Optional[str] = ..., executor: _Optional[str] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class RunMetricsLogged(_message.Message):
    __slots__ = ("run_id", "name", "project", "values")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    project: str
    values: _containers.RepeatedCompositeFieldContainer[_common_pb2.MetricValue]
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., values: _Optional[_Iterable[_Union[_common_pb2.MetricValue, _Mapping]]] = ...) -> None: ...

class RunFailed(_message.Message):
    __slots__ = ("run_id", "name", "project", "kind", "reason", "exit_code", "last_log_lines", "actor", "status")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_LOG_LINES_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    project: str
    kind: str
    reason: str
    exit_code: int
    last_log_lines: str
    actor: _common_pb2.Actor
    status: str
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., kind: _Optional[str] = ..., reason: _Optional[str] = ..., exit_code: _Optional[int] = ..., last_log_lines: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., status: _Optional[str] = ...) -> None: ...

class RunStopped(_message.Message):
    __slots__ = ("run_id", "name", "project", "kind", "actor")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    project: str
    kind: str
    actor: _common_pb2.Actor
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., kind: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class RunArtifactsLogged(_message.Message):
    __slots__ = ("run_id", "name", "project", "digests", "actor")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    project: str
    digests: _containers.RepeatedScalarFieldContainer[str]
    actor: _common_pb2.Actor
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., digests: _Optional[_Iterable[str]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class RunDeleted(_message.Message):
    __slots__ = ("run_id", "name", "project", "actor")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    project: str
    actor: _common_pb2.Actor
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class VersionCreated(_message.Message):
    __slots__ = ("repo_id", "repo", "repo_kind", "version", "manifest_digest", "size_bytes", "file_count", "produced_by_run", "project", "actor")
    REPO_ID_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    REPO_KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PRODUCED_BY_RUN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    repo_id: str
    repo: str
    repo_kind: str
    version: int
    manifest_digest: str
    size_bytes: int
    file_count: int
    produced_by_run: str
    project: str
    actor: _common_pb2.Actor
    def __init__(self, repo_id: _Optional[str] = ..., repo: _Optional[str] = ..., repo_kind: _Optional[str] = ..., version: _Optional[int] = ..., manifest_digest: _Optional[str] = ..., size_bytes: _Optional[int] = ..., file_count: _Optional[int] = ..., produced_by_run: _Optional[str] = ..., project: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class VersionDeleted(_message.Message):
    __slots__ = ("repo_id", "repo", "repo_kind", "version", "manifest_digest", "project", "actor")
    REPO_ID_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    REPO_KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    repo_id: str
    repo: str
    repo_kind: str
    version: int
    manifest_digest: str
    project: str
    actor: _common_pb2.Actor
    def __init__(self, repo_id: _Optional[str] = ..., repo: _Optional[str] = ..., repo_kind: _Optional[str] = ..., version: _Optional[int] = ..., manifest_digest: _Optional[str] = ..., project: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class VersionRefused(_message.Message):
    __slots__ = ("run_id", "run_name", "repo_kind", "repo", "repo_id", "reason", "project", "actor")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_NAME_FIELD_NUMBER: _ClassVar[int]
    REPO_KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    REPO_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    run_name: str
    repo_kind: str
    repo: str
    repo_id: str
    reason: str
    project: str
    actor: _common_pb2.Actor
    def __init__(self, run_id: _Optional[str] = ..., run_name: _Optional[str] = ..., repo_kind: _Optional[str] = ..., repo: _Optional[str] = ..., repo_id: _Optional[str] = ..., reason: _Optional[str] = ..., project: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class RunCompleted(_message.Message):
    __slots__ = ("run_id", "name", "project", "kind", "outputs", "metrics", "hyperparameters", "actor", "params", "labels", "artifact_count")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class HyperparametersEntry(_message.Message):
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
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_COUNT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    project: str
    kind: str
    outputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.RunOutput]
    metrics: _containers.ScalarMap[str, float]
    hyperparameters: _containers.ScalarMap[str, str]
    actor: _common_pb2.Actor
    params: _containers.ScalarMap[str, str]
    labels: _containers.ScalarMap[str, str]
    artifact_count: int
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., kind: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[_common_pb2.RunOutput, _Mapping]]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., hyperparameters: _Optional[_Mapping[str, str]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., params: _Optional[_Mapping[str, str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., artifact_count: _Optional[int] = ...) -> None: ...

class StudyStarted(_message.Message):
    __slots__ = ("study", "run_id", "project", "algorithm", "objective_metric", "objective_type", "parallel_trial_count", "max_trial_count", "actor")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_METRIC_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    study: str
    run_id: str
    project: str
    algorithm: str
    objective_metric: str
    objective_type: str
    parallel_trial_count: int
    max_trial_count: int
    actor: _common_pb2.Actor
    def __init__(self, study: _Optional[str] = ..., run_id: _Optional[str] = ..., project: _Optional[str] = ..., algorithm: _Optional[str] = ..., objective_metric: _Optional[str] = ..., objective_type: _Optional[str] = ..., parallel_trial_count: _Optional[int] = ..., max_trial_count: _Optional[int] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class TrialCompleted(_message.Message):
    __slots__ = ("study", "name", "run_id", "project", "number", "state", "assignment", "objective", "has_objective")
    class AssignmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STUDY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    HAS_OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    study: str
    name: str
    run_id: str
    project: str
    number: int
    state: str
    assignment: _containers.ScalarMap[str, str]
    objective: float
    has_objective: bool
    def __init__(self, study: _Optional[str] = ..., name: _Optional[str] = ..., run_id: _Optional[str] = ..., project: _Optional[str] = ..., number: _Optional[int] = ..., state: _Optional[str] = ..., assignment: _Optional[_Mapping[str, str]] = ..., objective: _Optional[float] = ..., has_objective: _Optional[bool] = ...) -> None: ...

class StudyUpdated(_message.Message):
    __slots__ = ("study", "run_id", "project", "changed_fields", "parallel_trial_count", "max_trial_count", "max_failed_trial_count", "resumed", "actor")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILED_TRIAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    study: str
    run_id: str
    project: str
    changed_fields: _containers.RepeatedScalarFieldContainer[str]
    parallel_trial_count: int
    max_trial_count: int
    max_failed_trial_count: int
    resumed: bool
    actor: _common_pb2.Actor
    def __init__(self, study: _Optional[str] = ..., run_id: _Optional[str] = ..., project: _Optional[str] = ..., changed_fields: _Optional[_Iterable[str]] = ..., parallel_trial_count: _Optional[int] = ..., max_trial_count: _Optional[int] = ..., max_failed_trial_count: _Optional[int] = ..., resumed: _Optional[bool] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class StudyCompleted(_message.Message):
    __slots__ = ("study", "run_id", "project", "status", "reason", "message", "best_trial", "best_trial_run_id", "best_assignment", "best_objective", "trials")
    class BestAssignmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STUDY_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BEST_TRIAL_FIELD_NUMBER: _ClassVar[int]
    BEST_TRIAL_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    BEST_ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    BEST_OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    study: str
    run_id: str
    project: str
    status: str
    reason: str
    message: str
    best_trial: str
    best_trial_run_id: str
    best_assignment: _containers.ScalarMap[str, str]
    best_objective: float
    trials: int
    def __init__(self, study: _Optional[str] = ..., run_id: _Optional[str] = ..., project: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., best_trial: _Optional[str] = ..., best_trial_run_id: _Optional[str] = ..., best_assignment: _Optional[_Mapping[str, str]] = ..., best_objective: _Optional[float] = ..., trials: _Optional[int] = ...) -> None: ...

class ModelPublished(_message.Message):
    __slots__ = ("model", "version", "catalog_name", "project", "actor", "model_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CATALOG_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: int
    catalog_name: str
    project: str
    actor: _common_pb2.Actor
    model_id: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[int] = ..., catalog_name: _Optional[str] = ..., project: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., model_id: _Optional[str] = ...) -> None: ...

class ModelUnpublished(_message.Message):
    __slots__ = ("catalog_name", "model", "version", "project", "actor", "model_id")
    CATALOG_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    catalog_name: str
    model: str
    version: int
    project: str
    actor: _common_pb2.Actor
    model_id: str
    def __init__(self, catalog_name: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[int] = ..., project: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., model_id: _Optional[str] = ...) -> None: ...

class InferenceCreated(_message.Message):
    __slots__ = ("inference", "actor")
    INFERENCE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    inference: _serving_pb2.Inference
    actor: _common_pb2.Actor
    def __init__(self, inference: _Optional[_Union[_serving_pb2.Inference, _Mapping]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class InferenceUpdated(_message.Message):
    __slots__ = ("inference", "changed_fields", "actor")
    INFERENCE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    inference: _serving_pb2.Inference
    changed_fields: _containers.RepeatedScalarFieldContainer[str]
    actor: _common_pb2.Actor
    def __init__(self, inference: _Optional[_Union[_serving_pb2.Inference, _Mapping]] = ..., changed_fields: _Optional[_Iterable[str]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class InferenceDeleted(_message.Message):
    __slots__ = ("inference_id", "name", "project", "actor")
    INFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    inference_id: str
    name: str
    project: str
    actor: _common_pb2.Actor
    def __init__(self, inference_id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class DeploymentCreated(_message.Message):
    __slots__ = ("deployment", "actor")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    deployment: _serving_pb2.Deployment
    actor: _common_pb2.Actor
    def __init__(self, deployment: _Optional[_Union[_serving_pb2.Deployment, _Mapping]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class DeploymentUpdated(_message.Message):
    __slots__ = ("deployment", "changed_fields", "actor")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    deployment: _serving_pb2.Deployment
    changed_fields: _containers.RepeatedScalarFieldContainer[str]
    actor: _common_pb2.Actor
    def __init__(self, deployment: _Optional[_Union[_serving_pb2.Deployment, _Mapping]] = ..., changed_fields: _Optional[_Iterable[str]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class DeploymentDeleted(_message.Message):
    __slots__ = ("deployment_id", "name", "project", "actor")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    name: str
    project: str
    actor: _common_pb2.Actor
    def __init__(self, deployment_id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class ImageAdded(_message.Message):
    __slots__ = ("image", "actor")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    image: _images_pb2.Image
    actor: _common_pb2.Actor
    def __init__(self, image: _Optional[_Union[_images_pb2.Image, _Mapping]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class ImageDeleted(_message.Message):
    __slots__ = ("name", "url", "actor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    url: str
    actor: _common_pb2.Actor
    def __init__(self, name: _Optional[str] = ..., url: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class BuildCompleted(_message.Message):
    __slots__ = ("build", "actor")
    BUILD_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    build: _builds_pb2.ImageBuild
    actor: _common_pb2.Actor
    def __init__(self, build: _Optional[_Union[_builds_pb2.ImageBuild, _Mapping]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class BuildFailed(_message.Message):
    __slots__ = ("build", "actor")
    BUILD_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    build: _builds_pb2.ImageBuild
    actor: _common_pb2.Actor
    def __init__(self, build: _Optional[_Union[_builds_pb2.ImageBuild, _Mapping]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class ClusterUpdated(_message.Message):
    __slots__ = ("cluster", "changed_fields", "actor")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    cluster: _clusters_pb2.Cluster
    changed_fields: _containers.RepeatedScalarFieldContainer[str]
    actor: _common_pb2.Actor
    def __init__(self, cluster: _Optional[_Union[_clusters_pb2.Cluster, _Mapping]] = ..., changed_fields: _Optional[_Iterable[str]] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...
