import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageBuildStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_BUILD_STATUS_UNSPECIFIED: _ClassVar[ImageBuildStatus]
    IMAGE_BUILD_STATUS_BUILDING: _ClassVar[ImageBuildStatus]
    IMAGE_BUILD_STATUS_COMPLETE: _ClassVar[ImageBuildStatus]
    IMAGE_BUILD_STATUS_FAILED: _ClassVar[ImageBuildStatus]
IMAGE_BUILD_STATUS_UNSPECIFIED: ImageBuildStatus
IMAGE_BUILD_STATUS_BUILDING: ImageBuildStatus
IMAGE_BUILD_STATUS_COMPLETE: ImageBuildStatus
IMAGE_BUILD_STATUS_FAILED: ImageBuildStatus

class ImageBuild(_message.Message):
    __slots__ = ("id", "name", "code", "commit", "folder", "description", "status", "status_reason", "build_file", "python", "requirements", "base_image", "digest", "reused", "notes", "owner", "create_time", "end_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    FOLDER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    BUILD_FILE_FIELD_NUMBER: _ClassVar[int]
    PYTHON_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    BASE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    code: str
    commit: str
    folder: str
    description: str
    status: ImageBuildStatus
    status_reason: str
    build_file: str
    python: str
    requirements: _containers.RepeatedScalarFieldContainer[str]
    base_image: str
    digest: str
    reused: bool
    notes: _containers.RepeatedScalarFieldContainer[str]
    owner: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., code: _Optional[str] = ..., commit: _Optional[str] = ..., folder: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[ImageBuildStatus, str]] = ..., status_reason: _Optional[str] = ..., build_file: _Optional[str] = ..., python: _Optional[str] = ..., requirements: _Optional[_Iterable[str]] = ..., base_image: _Optional[str] = ..., digest: _Optional[str] = ..., reused: _Optional[bool] = ..., notes: _Optional[_Iterable[str]] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BuildImageRequest(_message.Message):
    __slots__ = ("build", "request_id")
    BUILD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    build: ImageBuild
    request_id: str
    def __init__(self, build: _Optional[_Union[ImageBuild, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetImageBuildRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListImageBuildsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListImageBuildsResponse(_message.Message):
    __slots__ = ("builds",)
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    builds: _containers.RepeatedCompositeFieldContainer[ImageBuild]
    def __init__(self, builds: _Optional[_Iterable[_Union[ImageBuild, _Mapping]]] = ...) -> None: ...

class ReadImageBuildLogRequest(_message.Message):
    __slots__ = ("name", "offset", "max_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    offset: int
    max_bytes: int
    def __init__(self, name: _Optional[str] = ..., offset: _Optional[int] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class ReadImageBuildLogResponse(_message.Message):
    __slots__ = ("data", "next_offset", "finished")
    DATA_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    next_offset: int
    finished: bool
    def __init__(self, data: _Optional[bytes] = ..., next_offset: _Optional[int] = ..., finished: _Optional[bool] = ...) -> None: ...
