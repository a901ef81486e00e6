import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_SOURCE_UNSPECIFIED: _ClassVar[ImageSource]
    IMAGE_SOURCE_STANDARD: _ClassVar[ImageSource]
    IMAGE_SOURCE_REGISTRY: _ClassVar[ImageSource]
    IMAGE_SOURCE_CODE_REPO: _ClassVar[ImageSource]

class ImageStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_STATUS_UNSPECIFIED: _ClassVar[ImageStatus]
    IMAGE_STATUS_READY: _ClassVar[ImageStatus]
    IMAGE_STATUS_BUILDING: _ClassVar[ImageStatus]
    IMAGE_STATUS_FAILED: _ClassVar[ImageStatus]
IMAGE_SOURCE_UNSPECIFIED: ImageSource
IMAGE_SOURCE_STANDARD: ImageSource
IMAGE_SOURCE_REGISTRY: ImageSource
IMAGE_SOURCE_CODE_REPO: ImageSource
IMAGE_STATUS_UNSPECIFIED: ImageStatus
IMAGE_STATUS_READY: ImageStatus
IMAGE_STATUS_BUILDING: ImageStatus
IMAGE_STATUS_FAILED: ImageStatus

class Image(_message.Message):
    __slots__ = ("name", "url", "description", "private", "credential", "framework", "framework_version", "python", "requirements", "source", "status", "status_reason", "owner", "create_time", "code", "commit", "build_file", "digest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_VERSION_FIELD_NUMBER: _ClassVar[int]
    PYTHON_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    BUILD_FILE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    url: str
    description: str
    private: bool
    credential: str
    framework: str
    framework_version: str
    python: str
    requirements: _containers.RepeatedScalarFieldContainer[str]
    source: ImageSource
    status: ImageStatus
    status_reason: str
    owner: str
    create_time: _timestamp_pb2.Timestamp
    code: str
    commit: str
    build_file: str
    digest: str
    def __init__(self, name: _Optional[str] = ..., url: _Optional[str] = ..., description: _Optional[str] = ..., private: _Optional[bool] = ..., credential: _Optional[str] = ..., framework: _Optional[str] = ..., framework_version: _Optional[str] = ..., python: _Optional[str] = ..., requirements: _Optional[_Iterable[str]] = ..., source: _Optional[_Union[ImageSource, str]] = ..., status: _Optional[_Union[ImageStatus, str]] = ..., status_reason: _Optional[str] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., code: _Optional[str] = ..., commit: _Optional[str] = ..., build_file: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class AddImageRequest(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: Image
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class GetImageRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ("framework",)
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    framework: str
    def __init__(self, framework: _Optional[str] = ...) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...

class DeleteImageRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteImageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResolveImageRequest(_message.Message):
    __slots__ = ("name", "framework", "framework_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    framework: str
    framework_version: str
    def __init__(self, name: _Optional[str] = ..., framework: _Optional[str] = ..., framework_version: _Optional[str] = ...) -> None: ...
