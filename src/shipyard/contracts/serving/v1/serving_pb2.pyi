import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServingStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVING_STATUS_UNSPECIFIED: _ClassVar[ServingStatus]
    SERVING_STATUS_QUEUED: _ClassVar[ServingStatus]
    SERVING_STATUS_STARTING: _ClassVar[ServingStatus]
    SERVING_STATUS_RUNNING: _ClassVar[ServingStatus]
    SERVING_STATUS_UPDATING: _ClassVar[ServingStatus]
    SERVING_STATUS_FAILED: _ClassVar[ServingStatus]
    SERVING_STATUS_ERROR: _ClassVar[ServingStatus]
    SERVING_STATUS_STOPPING: _ClassVar[ServingStatus]
    SERVING_STATUS_STOPPED: _ClassVar[ServingStatus]
SERVING_STATUS_UNSPECIFIED: ServingStatus
SERVING_STATUS_QUEUED: ServingStatus
SERVING_STATUS_STARTING: ServingStatus
SERVING_STATUS_RUNNING: ServingStatus
SERVING_STATUS_UPDATING: ServingStatus
SERVING_STATUS_FAILED: ServingStatus
SERVING_STATUS_ERROR: ServingStatus
SERVING_STATUS_STOPPING: ServingStatus
SERVING_STATUS_STOPPED: ServingStatus

class ModelRef(_message.Message):
    __slots__ = ("model", "version", "model_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: int
    model_id: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[int] = ..., model_id: _Optional[str] = ...) -> None: ...

class Transformer(_message.Message):
    __slots__ = ("code", "commit", "script", "image")
    CODE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    commit: str
    script: str
    image: str
    def __init__(self, code: _Optional[str] = ..., commit: _Optional[str] = ..., script: _Optional[str] = ..., image: _Optional[str] = ...) -> None: ...

class ServingSpec(_message.Message):
    __slots__ = ("serving_image", "transformer", "framework", "predictor", "cpu", "memory", "gpus", "min_replicas", "max_replicas", "max_concurrency")
    SERVING_IMAGE_FIELD_NUMBER: _ClassVar[int]
    TRANSFORMER_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    MIN_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    serving_image: str
    transformer: Transformer
    framework: str
    predictor: str
    cpu: str
    memory: str
    gpus: int
    min_replicas: int
    max_replicas: int
    max_concurrency: int
    def __init__(self, serving_image: _Optional[str] = ..., transformer: _Optional[_Union[Transformer, _Mapping]] = ..., framework: _Optional[str] = ..., predictor: _Optional[str] = ..., cpu: _Optional[str] = ..., memory: _Optional[str] = ..., gpus: _Optional[int] = ..., min_replicas: _Optional[int] = ..., max_replicas: _Optional[int] = ..., max_concurrency: _Optional[int] = ...) -> None: ...

class Replica(_message.Message):
    __slots__ = ("address", "ready", "restarts", "last_exit", "model")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    LAST_EXIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    address: str
    ready: bool
    restarts: int
    last_exit: str
    model: str
    def __init__(self, address: _Optional[str] = ..., ready: _Optional[bool] = ..., restarts: _Optional[int] = ..., last_exit: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class Inference(_message.Message):
    __slots__ = ("id", "name", "description", "project", "model", "spec", "status", "status_reason", "endpoint", "owner", "create_time", "update_time", "replicas", "revision", "cluster")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    project: str
    model: ModelRef
    spec: ServingSpec
    status: ServingStatus
    status_reason: str
    endpoint: str
    owner: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    replicas: _containers.RepeatedCompositeFieldContainer[Replica]
    revision: int
    cluster: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., project: _Optional[str] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., spec: _Optional[_Union[ServingSpec, _Mapping]] = ..., status: _Optional[_Union[ServingStatus, str]] = ..., status_reason: _Optional[str] = ..., endpoint: _Optional[str] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replicas: _Optional[_Iterable[_Union[Replica, _Mapping]]] = ..., revision: _Optional[int] = ..., cluster: _Optional[str] = ...) -> None: ...

class CatalogEntry(_message.Message):
    __slots__ = ("id", "name", "description", "model", "defaults", "project", "owner", "create_time", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    model: ModelRef
    defaults: ServingSpec
    project: str
    owner: str
    create_time: _timestamp_pb2.Timestamp
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., defaults: _Optional[_Union[ServingSpec, _Mapping]] = ..., project: _Optional[str] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("id", "name", "description", "project", "catalog_entry", "model", "spec", "status", "status_reason", "endpoint", "owner", "create_time", "update_time", "replicas", "revision", "previous_model", "cluster")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    CATALOG_ENTRY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_MODEL_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    project: str
    catalog_entry: str
    model: ModelRef
    spec: ServingSpec
    status: ServingStatus
    status_reason: str
    endpoint: str
    owner: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    replicas: _containers.RepeatedCompositeFieldContainer[Replica]
    revision: int
    previous_model: ModelRef
    cluster: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., project: _Optional[str] = ..., catalog_entry: _Optional[str] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., spec: _Optional[_Union[ServingSpec, _Mapping]] = ..., status: _Optional[_Union[ServingStatus, str]] = ..., status_reason: _Optional[str] = ..., endpoint: _Optional[str] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replicas: _Optional[_Iterable[_Union[Replica, _Mapping]]] = ..., revision: _Optional[int] = ..., previous_model: _Optional[_Union[ModelRef, _Mapping]] = ..., cluster: _Optional[str] = ...) -> None: ...

class CreateInferenceRequest(_message.Message):
    __slots__ = ("inference", "request_id")
    INFERENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    inference: Inference
    request_id: str
    def __init__(self, inference: _Optional[_Union[Inference, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetInferenceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListInferencesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "project")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    project: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class ListInferencesResponse(_message.Message):
    __slots__ = ("inferences", "next_page_token")
    INFERENCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    inferences: _containers.RepeatedCompositeFieldContainer[Inference]
    next_page_token: str
    def __init__(self, inferences: _Optional[_Iterable[_Union[Inference, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteInferenceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteInferenceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PublishModelRequest(_message.Message):
    __slots__ = ("entry", "request_id")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    entry: CatalogEntry
    request_id: str
    def __init__(self, entry: _Optional[_Union[CatalogEntry, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetCatalogEntryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListCatalogRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "project", "model")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    project: str
    model: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class ListCatalogResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[CatalogEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[CatalogEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteCatalogEntryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteCatalogEntryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateDeploymentRequest(_message.Message):
    __slots__ = ("deployment", "request_id")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    request_id: str
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetDeploymentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "project")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    project: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("deployments", "next_page_token")
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    next_page_token: str
    def __init__(self, deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateDeploymentRequest(_message.Message):
    __slots__ = ("name", "catalog_entry", "model", "spec", "update_mask", "revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATALOG_ENTRY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    catalog_entry: str
    model: ModelRef
    spec: ServingSpec
    update_mask: _field_mask_pb2.FieldMask
    revision: int
    def __init__(self, name: _Optional[str] = ..., catalog_entry: _Optional[str] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., spec: _Optional[_Union[ServingSpec, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class DeleteDeploymentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteDeploymentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetKubernetesManifestRequest(_message.Message):
    __slots__ = ("kind", "name", "namespace")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    namespace: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class KubernetesManifest(_message.Message):
    __slots__ = ("yaml",)
    YAML_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    def __init__(self, yaml: _Optional[str] = ...) -> None: ...

class ListClusterEndpointsRequest(_message.Message):
    __slots__ = ("cluster",)
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    def __init__(self, cluster: _Optional[str] = ...) -> None: ...

class ClusterEndpoints(_message.Message):
    __slots__ = ("inferences", "deployments")
    INFERENCES_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    inferences: _containers.RepeatedScalarFieldContainer[str]
    deployments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, inferences: _Optional[_Iterable[str]] = ..., deployments: _Optional[_Iterable[str]] = ...) -> None: ...

class GetRoutesRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Routes(_message.Message):
    __slots__ = ("name", "model", "addresses", "max_concurrency", "revision", "base_url", "upstream_model")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    max_concurrency: int
    revision: int
    base_url: str
    upstream_model: str
    def __init__(self, name: _Optional[str] = ..., model: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ..., max_concurrency: _Optional[int] = ..., revision: _Optional[int] = ..., base_url: _Optional[str] = ..., upstream_model: _Optional[str] = ...) -> None: ...
