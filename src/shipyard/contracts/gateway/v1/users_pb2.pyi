from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetUserRolesRequest(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: str
    def __init__(self, user: _Optional[str] = ...) -> None: ...

class GetUserRolesResponse(_message.Message):
    __slots__ = ("active", "roles")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    active: bool
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, active: _Optional[bool] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...
