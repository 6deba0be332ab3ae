import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Statement(_message.Message):
    __slots__ = ("statement_id", "channel_id", "period_id", "period_number", "period_start", "period_end", "content", "content_sha256", "signature", "key_id", "totals")
    STATEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    statement_id: str
    channel_id: str
    period_id: str
    period_number: int
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    content: bytes
    content_sha256: bytes
    signature: bytes
    key_id: str
    totals: _containers.RepeatedCompositeFieldContainer[SettlementTotal]
    def __init__(self, statement_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., period_id: _Optional[str] = ..., period_number: _Optional[int] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., content: _Optional[bytes] = ..., content_sha256: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[str] = ..., totals: _Optional[_Iterable[_Union[SettlementTotal, _Mapping]]] = ...) -> None: ...

class SettlementTotal(_message.Message):
    __slots__ = ("currency", "owed_by_channel", "owed_to_channel", "net_to_channel")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    OWED_BY_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OWED_TO_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    NET_TO_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    currency: str
    owed_by_channel: int
    owed_to_channel: int
    net_to_channel: int
    def __init__(self, currency: _Optional[str] = ..., owed_by_channel: _Optional[int] = ..., owed_to_channel: _Optional[int] = ..., net_to_channel: _Optional[int] = ...) -> None: ...

class GetStatementKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatementKeyResponse(_message.Message):
    __slots__ = ("key_id", "public_key")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    public_key: bytes
    def __init__(self, key_id: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class GetStatementRequest(_message.Message):
    __slots__ = ("statement_id",)
    STATEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    statement_id: str
    def __init__(self, statement_id: _Optional[str] = ...) -> None: ...

class GetStatementResponse(_message.Message):
    __slots__ = ("statement",)
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    statement: Statement
    def __init__(self, statement: _Optional[_Union[Statement, _Mapping]] = ...) -> None: ...

class ListStatementsRequest(_message.Message):
    __slots__ = ("channel_id", "page_size", "page_token")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    page_size: int
    page_token: str
    def __init__(self, channel_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStatementsResponse(_message.Message):
    __slots__ = ("statements", "next_page_token")
    STATEMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    statements: _containers.RepeatedCompositeFieldContainer[Statement]
    next_page_token: str
    def __init__(self, statements: _Optional[_Iterable[_Union[Statement, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchStatementsRequest(_message.Message):
    __slots__ = ("after_period_number",)
    AFTER_PERIOD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    after_period_number: int
    def __init__(self, after_period_number: _Optional[int] = ...) -> None: ...

class RecordAdjustmentRequest(_message.Message):
    __slots__ = ("request_id", "channel_id", "statement_id", "direction", "points", "rule_version", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    RULE_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    channel_id: str
    statement_id: str
    direction: str
    points: int
    rule_version: int
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., statement_id: _Optional[str] = ..., direction: _Optional[str] = ..., points: _Optional[int] = ..., rule_version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class RecordAdjustmentResponse(_message.Message):
    __slots__ = ("adjustment_id", "corrects_period_id")
    ADJUSTMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CORRECTS_PERIOD_ID_FIELD_NUMBER: _ClassVar[int]
    adjustment_id: str
    corrects_period_id: str
    def __init__(self, adjustment_id: _Optional[str] = ..., corrects_period_id: _Optional[str] = ...) -> None: ...

class WatchStatementsResponse(_message.Message):
    __slots__ = ("statement",)
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    statement: Statement
    def __init__(self, statement: _Optional[_Union[Statement, _Mapping]] = ...) -> None: ...
