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

class RepoKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPO_KIND_UNSPECIFIED: _ClassVar[RepoKind]
    REPO_KIND_CODE: _ClassVar[RepoKind]
    REPO_KIND_DATASET: _ClassVar[RepoKind]
    REPO_KIND_FEATURESET: _ClassVar[RepoKind]
    REPO_KIND_MODEL: _ClassVar[RepoKind]

class Versioning(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSIONING_UNSPECIFIED: _ClassVar[Versioning]
    VERSIONING_NONE: _ClassVar[Versioning]
    VERSIONING_DVS: _ClassVar[Versioning]

class RepoStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPO_STATUS_UNSPECIFIED: _ClassVar[RepoStatus]
    REPO_STATUS_CREATING: _ClassVar[RepoStatus]
    REPO_STATUS_QUEUED: _ClassVar[RepoStatus]
    REPO_STATUS_DOWNLOADING: _ClassVar[RepoStatus]
    REPO_STATUS_UPLOADING: _ClassVar[RepoStatus]
    REPO_STATUS_READY: _ClassVar[RepoStatus]
    REPO_STATUS_FAILED: _ClassVar[RepoStatus]
    REPO_STATUS_STOPPING: _ClassVar[RepoStatus]
    REPO_STATUS_STOPPED: _ClassVar[RepoStatus]
REPO_KIND_UNSPECIFIED: RepoKind
REPO_KIND_CODE: RepoKind
REPO_KIND_DATASET: RepoKind
REPO_KIND_FEATURESET: RepoKind
REPO_KIND_MODEL: RepoKind
VERSIONING_UNSPECIFIED: Versioning
VERSIONING_NONE: Versioning
VERSIONING_DVS: Versioning
REPO_STATUS_UNSPECIFIED: RepoStatus
REPO_STATUS_CREATING: RepoStatus
REPO_STATUS_QUEUED: RepoStatus
REPO_STATUS_DOWNLOADING: RepoStatus
REPO_STATUS_UPLOADING: RepoStatus
REPO_STATUS_READY: RepoStatus
REPO_STATUS_FAILED: RepoStatus
REPO_STATUS_STOPPING: RepoStatus
REPO_STATUS_STOPPED: RepoStatus

class GitSource(_message.Message):
    __slots__ = ("url", "branch", "commit", "path", "credential")
    URL_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    url: str
    branch: str
    commit: str
    path: str
    credential: str
    def __init__(self, url: _Optional[str] = ..., branch: _Optional[str] = ..., commit: _Optional[str] = ..., path: _Optional[str] = ..., credential: _Optional[str] = ...) -> None: ...

class S3Source(_message.Message):
    __slots__ = ("bucket", "prefix", "endpoint", "aws", "region", "credential")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    AWS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    endpoint: str
    aws: bool
    region: str
    credential: str
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., endpoint: _Optional[str] = ..., aws: _Optional[bool] = ..., region: _Optional[str] = ..., credential: _Optional[str] = ...) -> None: ...

class GcsSource(_message.Message):
    __slots__ = ("bucket", "prefix", "credential")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    credential: str
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., credential: _Optional[str] = ...) -> None: ...

class VolumeSource(_message.Message):
    __slots__ = ("volume", "subpath")
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    SUBPATH_FIELD_NUMBER: _ClassVar[int]
    volume: str
    subpath: str
    def __init__(self, volume: _Optional[str] = ..., subpath: _Optional[str] = ...) -> None: ...

class NfsSource(_message.Message):
    __slots__ = ("server", "path")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    server: str
    path: str
    def __init__(self, server: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class HostPathSource(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class RedshiftSource(_message.Message):
    __slots__ = ("endpoint", "database", "credential", "ca_cert")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    CA_CERT_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    database: str
    credential: str
    ca_cert: str
    def __init__(self, endpoint: _Optional[str] = ..., database: _Optional[str] = ..., credential: _Optional[str] = ..., ca_cert: _Optional[str] = ...) -> None: ...

class SqlSource(_message.Message):
    __slots__ = ("provider", "host", "port", "database", "credential", "connection", "dsn")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    DSN_FIELD_NUMBER: _ClassVar[int]
    provider: str
    host: str
    port: int
    database: str
    credential: str
    connection: str
    dsn: str
    def __init__(self, provider: _Optional[str] = ..., host: _Optional[str] = ..., port: _Optional[int] = ..., database: _Optional[str] = ..., credential: _Optional[str] = ..., connection: _Optional[str] = ..., dsn: _Optional[str] = ...) -> None: ...

class FsxSource(_message.Message):
    __slots__ = ("dns_name", "mount_name", "volume_handle")
    DNS_NAME_FIELD_NUMBER: _ClassVar[int]
    MOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    VOLUME_HANDLE_FIELD_NUMBER: _ClassVar[int]
    dns_name: str
    mount_name: str
    volume_handle: str
    def __init__(self, dns_name: _Optional[str] = ..., mount_name: _Optional[str] = ..., volume_handle: _Optional[str] = ...) -> None: ...

class UrlSource(_message.Message):
    __slots__ = ("url", "extract")
    URL_FIELD_NUMBER: _ClassVar[int]
    EXTRACT_FIELD_NUMBER: _ClassVar[int]
    url: str
    extract: bool
    def __init__(self, url: _Optional[str] = ..., extract: _Optional[bool] = ...) -> None: ...

class UploadSource(_message.Message):
    __slots__ = ("filename", "extract")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    EXTRACT_FIELD_NUMBER: _ClassVar[int]
    filename: str
    extract: bool
    def __init__(self, filename: _Optional[str] = ..., extract: _Optional[bool] = ...) -> None: ...

class NoSource(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Source(_message.Message):
    __slots__ = ("git", "s3", "gcs", "volume", "nfs", "hostpath", "redshift", "sql", "fsx", "url", "upload", "none")
    GIT_FIELD_NUMBER: _ClassVar[int]
    S3_FIELD_NUMBER: _ClassVar[int]
    GCS_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    NFS_FIELD_NUMBER: _ClassVar[int]
    HOSTPATH_FIELD_NUMBER: _ClassVar[int]
    REDSHIFT_FIELD_NUMBER: _ClassVar[int]
    SQL_FIELD_NUMBER: _ClassVar[int]
    FSX_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    NONE_FIELD_NUMBER: _ClassVar[int]
    git: GitSource
    s3: S3Source
    gcs: GcsSource
    volume: VolumeSource
    nfs: NfsSource
    hostpath: HostPathSource
    redshift: RedshiftSource
    sql: SqlSource
    fsx: FsxSource
    url: UrlSource
    upload: UploadSource
    none: NoSource
    def __init__(self, git: _Optional[_Union[GitSource, _Mapping]] = ..., s3: _Optional[_Union[S3Source, _Mapping]] = ..., gcs: _Optional[_Union[GcsSource, _Mapping]] = ..., volume: _Optional[_Union[VolumeSource, _Mapping]] = ..., nfs: _Optional[_Union[NfsSource, _Mapping]] = ..., hostpath: _Optional[_Union[HostPathSource, _Mapping]] = ..., redshift: _Optional[_Union[RedshiftSource, _Mapping]] = ..., sql: _Optional[_Union[SqlSource, _Mapping]] = ..., fsx: _Optional[_Union[FsxSource, _Mapping]] = ..., url: _Optional[_Union[UrlSource, _Mapping]] = ..., upload: _Optional[_Union[UploadSource, _Mapping]] = ..., none: _Optional[_Union[NoSource, _Mapping]] = ...) -> None: ...

class Repo(_message.Message):
    __slots__ = ("id", "kind", "name", "project", "description", "tags", "versioning", "source", "status", "status_reason", "owner", "create_time", "update_time", "revision", "latest_version", "access", "labels", "aliases")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AliasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    VERSIONING_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: RepoKind
    name: str
    project: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    versioning: Versioning
    source: Source
    status: RepoStatus
    status_reason: str
    owner: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    revision: int
    latest_version: int
    access: str
    labels: _containers.ScalarMap[str, str]
    aliases: _containers.ScalarMap[str, int]
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[RepoKind, str]] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., versioning: _Optional[_Union[Versioning, str]] = ..., source: _Optional[_Union[Source, _Mapping]] = ..., status: _Optional[_Union[RepoStatus, str]] = ..., status_reason: _Optional[str] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ..., latest_version: _Optional[int] = ..., access: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., aliases: _Optional[_Mapping[str, int]] = ...) -> None: ...

class FileEntry(_message.Message):
    __slots__ = ("path", "size", "sha256", "mode")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    path: str
    size: int
    sha256: str
    mode: int
    def __init__(self, path: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., mode: _Optional[int] = ...) -> None: ...

class Version(_message.Message):
    __slots__ = ("repo_id", "kind", "repo", "number", "manifest_digest", "size_bytes", "file_count", "message", "produced_by_run", "owner", "create_time", "metrics", "params", "used_by_runs", "stage", "run_names", "labels")
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
    class RunNamesEntry(_message.Message):
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
    REPO_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PRODUCED_BY_RUN_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    USED_BY_RUNS_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    RUN_NAMES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    repo_id: str
    kind: RepoKind
    repo: str
    number: int
    manifest_digest: str
    size_bytes: int
    file_count: int
    message: str
    produced_by_run: str
    owner: str
    create_time: _timestamp_pb2.Timestamp
    metrics: _containers.ScalarMap[str, float]
    params: _containers.ScalarMap[str, str]
    used_by_runs: _containers.RepeatedScalarFieldContainer[str]
    stage: str
    run_names: _containers.ScalarMap[str, str]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, repo_id: _Optional[str] = ..., kind: _Optional[_Union[RepoKind, str]] = ..., repo: _Optional[str] = ..., number: _Optional[int] = ..., manifest_digest: _Optional[str] = ..., size_bytes: _Optional[int] = ..., file_count: _Optional[int] = ..., message: _Optional[str] = ..., produced_by_run: _Optional[str] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., params: _Optional[_Mapping[str, str]] = ..., used_by_runs: _Optional[_Iterable[str]] = ..., stage: _Optional[str] = ..., run_names: _Optional[_Mapping[str, str]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class LabelRepoRequest(_message.Message):
    __slots__ = ("kind", "name", "set", "remove")
    class SetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    name: str
    set: _containers.ScalarMap[str, str]
    remove: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., name: _Optional[str] = ..., set: _Optional[_Mapping[str, str]] = ..., remove: _Optional[_Iterable[str]] = ...) -> None: ...

class LabelVersionRequest(_message.Message):
    __slots__ = ("kind", "repo", "number", "set", "remove")
    class SetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    repo: str
    number: int
    set: _containers.ScalarMap[str, str]
    remove: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., repo: _Optional[str] = ..., number: _Optional[int] = ..., set: _Optional[_Mapping[str, str]] = ..., remove: _Optional[_Iterable[str]] = ...) -> None: ...

class SetAliasRequest(_message.Message):
    __slots__ = ("kind", "repo", "alias", "version")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    repo: str
    alias: str
    version: int
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., repo: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class CollectGarbageRequest(_message.Message):
    __slots__ = ("dry_run",)
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    def __init__(self, dry_run: _Optional[bool] = ...) -> None: ...

class CollectGarbageResponse(_message.Message):
    __slots__ = ("dry_run", "deleted_blobs", "deleted_bytes", "referenced_blobs", "referenced_bytes", "recent_blobs", "recent_bytes", "grace_seconds")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    DELETED_BLOBS_FIELD_NUMBER: _ClassVar[int]
    DELETED_BYTES_FIELD_NUMBER: _ClassVar[int]
    REFERENCED_BLOBS_FIELD_NUMBER: _ClassVar[int]
    REFERENCED_BYTES_FIELD_NUMBER: _ClassVar[int]
    RECENT_BLOBS_FIELD_NUMBER: _ClassVar[int]
    RECENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    deleted_blobs: int
    deleted_bytes: int
    referenced_blobs: int
    referenced_bytes: int
    recent_blobs: int
    recent_bytes: int
    grace_seconds: float
    def __init__(self, dry_run: _Optional[bool] = ..., deleted_blobs: _Optional[int] = ..., deleted_bytes: _Optional[int] = ..., referenced_blobs: _Optional[int] = ..., referenced_bytes: _Optional[int] = ..., recent_blobs: _Optional[int] = ..., recent_bytes: _Optional[int] = ..., grace_seconds: _Optional[float] = ...) -> None: ...

class ReserveUploadRequest(_message.Message):
    __slots__ = ("digest", "size_bytes")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    digest: str
    size_bytes: int
    def __init__(self, digest: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class ReserveUploadResponse(_message.Message):
    __slots__ = ("pending_bytes", "limit_bytes")
    PENDING_BYTES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    pending_bytes: int
    limit_bytes: int
    def __init__(self, pending_bytes: _Optional[int] = ..., limit_bytes: _Optional[int] = ...) -> None: ...

class CheckVersionWriteRequest(_message.Message):
    __slots__ = ("kind", "name")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    name: str
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., name: _Optional[str] = ...) -> None: ...

class SnapshotCodeRequest(_message.Message):
    __slots__ = ("repo", "commit")
    REPO_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    repo: str
    commit: str
    def __init__(self, repo: _Optional[str] = ..., commit: _Optional[str] = ...) -> None: ...

class CodeSnapshot(_message.Message):
    __slots__ = ("repo", "commit", "manifest_digest", "file_count", "size_bytes")
    REPO_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    repo: str
    commit: str
    manifest_digest: str
    file_count: int
    size_bytes: int
    def __init__(self, repo: _Optional[str] = ..., commit: _Optional[str] = ..., manifest_digest: _Optional[str] = ..., file_count: _Optional[int] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class SetFeatureSpecRequest(_message.Message):
    __slots__ = ("featureset", "spec_yaml", "parent_version")
    FEATURESET_FIELD_NUMBER: _ClassVar[int]
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    featureset: str
    spec_yaml: str
    parent_version: int
    def __init__(self, featureset: _Optional[str] = ..., spec_yaml: _Optional[str] = ..., parent_version: _Optional[int] = ...) -> None: ...

class CreateRepoRequest(_message.Message):
    __slots__ = ("repo", "request_id")
    REPO_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    repo: Repo
    request_id: str
    def __init__(self, repo: _Optional[_Union[Repo, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetRepoRequest(_message.Message):
    __slots__ = ("kind", "name")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    name: str
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., name: _Optional[str] = ...) -> None: ...

class ListReposRequest(_message.Message):
    __slots__ = ("kind", "project", "no_project", "name_prefix", "tag", "page_size", "page_token")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    NO_PROJECT_FIELD_NUMBER: _ClassVar[int]
    NAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    project: str
    no_project: bool
    name_prefix: str
    tag: str
    page_size: int
    page_token: str
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., project: _Optional[str] = ..., no_project: _Optional[bool] = ..., name_prefix: _Optional[str] = ..., tag: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListReposResponse(_message.Message):
    __slots__ = ("repos", "next_page_token")
    REPOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    repos: _containers.RepeatedCompositeFieldContainer[Repo]
    next_page_token: str
    def __init__(self, repos: _Optional[_Iterable[_Union[Repo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateRepoRequest(_message.Message):
    __slots__ = ("kind", "name", "repo", "update_mask", "revision")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    name: str
    repo: Repo
    update_mask: _field_mask_pb2.FieldMask
    revision: int
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., name: _Optional[str] = ..., repo: _Optional[_Union[Repo, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class DeleteRepoRequest(_message.Message):
    __slots__ = ("kind", "name", "revision", "force")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    name: str
    revision: int
    force: bool
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., name: _Optional[str] = ..., revision: _Optional[int] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteRepoResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FindMissingBlobsRequest(_message.Message):
    __slots__ = ("digests",)
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    digests: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, digests: _Optional[_Iterable[str]] = ...) -> None: ...

class FindMissingBlobsResponse(_message.Message):
    __slots__ = ("missing",)
    MISSING_FIELD_NUMBER: _ClassVar[int]
    missing: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, missing: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateVersionRequest(_message.Message):
    __slots__ = ("kind", "repo", "manifest_digest", "parent_version", "message", "request_id", "produced_by_run", "produced_by_run_name", "metrics", "params")
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
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCED_BY_RUN_FIELD_NUMBER: _ClassVar[int]
    PRODUCED_BY_RUN_NAME_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    repo: str
    manifest_digest: str
    parent_version: int
    message: str
    request_id: str
    produced_by_run: str
    produced_by_run_name: str
    metrics: _containers.ScalarMap[str, float]
    params: _containers.ScalarMap[str, str]
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., repo: _Optional[str] = ..., manifest_digest: _Optional[str] = ..., parent_version: _Optional[int] = ..., message: _Optional[str] = ..., request_id: _Optional[str] = ..., produced_by_run: _Optional[str] = ..., produced_by_run_name: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateVersionFromPathRequest(_message.Message):
    __slots__ = ("kind", "repo", "path", "device", "inode", "parent_version", "message", "request_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    INODE_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    repo: str
    path: str
    device: int
    inode: int
    parent_version: int
    message: str
    request_id: str
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., repo: _Optional[str] = ..., path: _Optional[str] = ..., device: _Optional[int] = ..., inode: _Optional[int] = ..., parent_version: _Optional[int] = ..., message: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("kind", "repo", "number")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    repo: str
    number: int
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., repo: _Optional[str] = ..., number: _Optional[int] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("kind", "repo", "page_size", "page_token")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    repo: str
    page_size: int
    page_token: str
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., repo: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[Version]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[Version, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListVersionFilesRequest(_message.Message):
    __slots__ = ("kind", "repo", "number", "path_prefix", "page_size", "page_token")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    PATH_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    repo: str
    number: int
    path_prefix: str
    page_size: int
    page_token: str
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., repo: _Optional[str] = ..., number: _Optional[int] = ..., path_prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVersionFilesResponse(_message.Message):
    __slots__ = ("files", "next_page_token")
    FILES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[FileEntry]
    next_page_token: str
    def __init__(self, files: _Optional[_Iterable[_Union[FileEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CompareVersionsRequest(_message.Message):
    __slots__ = ("kind", "repo", "number", "other_repo", "other_number")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    OTHER_REPO_FIELD_NUMBER: _ClassVar[int]
    OTHER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    repo: str
    number: int
    other_repo: str
    other_number: int
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., repo: _Optional[str] = ..., number: _Optional[int] = ..., other_repo: _Optional[str] = ..., other_number: _Optional[int] = ...) -> None: ...

class FileChange(_message.Message):
    __slots__ = ("path", "before", "after")
    PATH_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    path: str
    before: FileEntry
    after: FileEntry
    def __init__(self, path: _Optional[str] = ..., before: _Optional[_Union[FileEntry, _Mapping]] = ..., after: _Optional[_Union[FileEntry, _Mapping]] = ...) -> None: ...

class CompareVersionsResponse(_message.Message):
    __slots__ = ("left", "right", "changes", "unchanged_files")
    LEFT_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FILES_FIELD_NUMBER: _ClassVar[int]
    left: Version
    right: Version
    changes: _containers.RepeatedCompositeFieldContainer[FileChange]
    unchanged_files: int
    def __init__(self, left: _Optional[_Union[Version, _Mapping]] = ..., right: _Optional[_Union[Version, _Mapping]] = ..., changes: _Optional[_Iterable[_Union[FileChange, _Mapping]]] = ..., unchanged_files: _Optional[int] = ...) -> None: ...

class DeleteVersionRequest(_message.Message):
    __slots__ = ("kind", "repo", "number", "force")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    kind: RepoKind
    repo: str
    number: int
    force: bool
    def __init__(self, kind: _Optional[_Union[RepoKind, str]] = ..., repo: _Optional[str] = ..., number: _Optional[int] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteVersionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
