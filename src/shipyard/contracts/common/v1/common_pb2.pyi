import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Actor(_message.Message):
    __slots__ = ("user", "roles")
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    user: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...

class VersionRef(_message.Message):
    __slots__ = ("repo", "version", "mount_path", "repo_kind", "repo_id")
    REPO_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MOUNT_PATH_FIELD_NUMBER: _ClassVar[int]
    REPO_KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_ID_FIELD_NUMBER: _ClassVar[int]
    repo: str
    version: int
    mount_path: str
    repo_kind: str
    repo_id: str
    def __init__(self, repo: _Optional[str] = ..., version: _Optional[int] = ..., mount_path: _Optional[str] = ..., repo_kind: _Optional[str] = ..., repo_id: _Optional[str] = ...) -> None: ...

class CodeRef(_message.Message):
    __slots__ = ("repo", "commit")
    REPO_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    repo: str
    commit: str
    def __init__(self, repo: _Optional[str] = ..., commit: _Optional[str] = ...) -> None: ...

class RunOutput(_message.Message):
    __slots__ = ("repo_kind", "repo", "manifest_digest", "mount_path", "repo_id")
    REPO_KIND_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MOUNT_PATH_FIELD_NUMBER: _ClassVar[int]
    REPO_ID_FIELD_NUMBER: _ClassVar[int]
    repo_kind: str
    repo: str
    manifest_digest: str
    mount_path: str
    repo_id: str
    def __init__(self, repo_kind: _Optional[str] = ..., repo: _Optional[str] = ..., manifest_digest: _Optional[str] = ..., mount_path: _Optional[str] = ..., repo_id: _Optional[str] = ...) -> None: ...

class MetricValue(_message.Message):
    __slots__ = ("name", "value", "step", "time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    step: int
    time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., step: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
