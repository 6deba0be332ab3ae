import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IssuerKeyState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ISSUER_KEY_STATE_UNSPECIFIED: _ClassVar[IssuerKeyState]
    ISSUER_KEY_STATE_ACTIVE: _ClassVar[IssuerKeyState]
    ISSUER_KEY_STATE_ROTATED: _ClassVar[IssuerKeyState]
    ISSUER_KEY_STATE_RETIRED: _ClassVar[IssuerKeyState]
    ISSUER_KEY_STATE_STANDBY: _ClassVar[IssuerKeyState]
ISSUER_KEY_STATE_UNSPECIFIED: IssuerKeyState
ISSUER_KEY_STATE_ACTIVE: IssuerKeyState
ISSUER_KEY_STATE_ROTATED: IssuerKeyState
ISSUER_KEY_STATE_RETIRED: IssuerKeyState
ISSUER_KEY_STATE_STANDBY: IssuerKeyState

class IssuerKey(_message.Message):
    __slots__ = ("key_id", "state", "public_key", "create_time", "retire_time")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RETIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    state: IssuerKeyState
    public_key: bytes
    create_time: _timestamp_pb2.Timestamp
    retire_time: _timestamp_pb2.Timestamp
    def __init__(self, key_id: _Optional[str] = ..., state: _Optional[_Union[IssuerKeyState, str]] = ..., public_key: _Optional[bytes] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateIssuerKeyRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class CreateIssuerKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: IssuerKey
    def __init__(self, key: _Optional[_Union[IssuerKey, _Mapping]] = ...) -> None: ...

class RotateIssuerKeyRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class RotateIssuerKeyResponse(_message.Message):
    __slots__ = ("active_key", "previous_key")
    ACTIVE_KEY_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_KEY_FIELD_NUMBER: _ClassVar[int]
    active_key: IssuerKey
    previous_key: IssuerKey
    def __init__(self, active_key: _Optional[_Union[IssuerKey, _Mapping]] = ..., previous_key: _Optional[_Union[IssuerKey, _Mapping]] = ...) -> None: ...

class RetireIssuerKeyRequest(_message.Message):
    __slots__ = ("request_id", "key_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key_id: str
    def __init__(self, request_id: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class RetireIssuerKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: IssuerKey
    def __init__(self, key: _Optional[_Union[IssuerKey, _Mapping]] = ...) -> None: ...

class ListIssuerKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListIssuerKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[IssuerKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[IssuerKey, _Mapping]]] = ...) -> None: ...
