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

class ClusterKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLUSTER_KIND_UNSPECIFIED: _ClassVar[ClusterKind]
    CLUSTER_KIND_SLURM: _ClassVar[ClusterKind]
    CLUSTER_KIND_KUBERNETES: _ClassVar[ClusterKind]
    CLUSTER_KIND_LSF: _ClassVar[ClusterKind]
CLUSTER_KIND_UNSPECIFIED: ClusterKind
CLUSTER_KIND_SLURM: ClusterKind
CLUSTER_KIND_KUBERNETES: ClusterKind
CLUSTER_KIND_LSF: ClusterKind

class Cluster(_message.Message):
    __slots__ = ("name", "kind", "description", "host", "ssh_port", "ssh_user", "credential", "partition", "queue", "work_dir", "namespace", "kubeconfig_credential", "login_required", "gpus", "max_workers", "owner", "create_time", "ssh_host_key", "container_runtime", "on_login_node", "service_account", "slurmrestd_url")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    SSH_PORT_FIELD_NUMBER: _ClassVar[int]
    SSH_USER_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WORK_DIR_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KUBECONFIG_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    LOGIN_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    MAX_WORKERS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SSH_HOST_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    ON_LOGIN_NODE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SLURMRESTD_URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: ClusterKind
    description: str
    host: str
    ssh_port: int
    ssh_user: str
    credential: str
    partition: str
    queue: str
    work_dir: str
    namespace: str
    kubeconfig_credential: str
    login_required: bool
    gpus: int
    max_workers: int
    owner: str
    create_time: _timestamp_pb2.Timestamp
    ssh_host_key: str
    container_runtime: str
    on_login_node: bool
    service_account: str
    slurmrestd_url: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ClusterKind, str]] = ..., description: _Optional[str] = ..., host: _Optional[str] = ..., ssh_port: _Optional[int] = ..., ssh_user: _Optional[str] = ..., credential: _Optional[str] = ..., partition: _Optional[str] = ..., queue: _Optional[str] = ..., work_dir: _Optional[str] = ..., namespace: _Optional[str] = ..., kubeconfig_credential: _Optional[str] = ..., login_required: _Optional[bool] = ..., gpus: _Optional[int] = ..., max_workers: _Optional[int] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ssh_host_key: _Optional[str] = ..., container_runtime: _Optional[str] = ..., on_login_node: _Optional[bool] = ..., service_account: _Optional[str] = ..., slurmrestd_url: _Optional[str] = ...) -> None: ...

class AddClusterRequest(_message.Message):
    __slots__ = ("cluster",)
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    cluster: Cluster
    def __init__(self, cluster: _Optional[_Union[Cluster, _Mapping]] = ...) -> None: ...

class GetClusterRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListClustersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListClustersResponse(_message.Message):
    __slots__ = ("clusters",)
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    clusters: _containers.RepeatedCompositeFieldContainer[Cluster]
    def __init__(self, clusters: _Optional[_Iterable[_Union[Cluster, _Mapping]]] = ...) -> None: ...

class DeleteClusterRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteClusterResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateClusterRequest(_message.Message):
    __slots__ = ("name", "cluster", "update_mask")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    name: str
    cluster: Cluster
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, name: _Optional[str] = ..., cluster: _Optional[_Union[Cluster, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...
