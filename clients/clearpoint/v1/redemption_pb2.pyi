import datetime

from clearpoint.v1 import errors_pb2 as _errors_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RedemptionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REDEMPTION_STATE_UNSPECIFIED: _ClassVar[RedemptionState]
    REDEMPTION_STATE_REDEEMED: _ClassVar[RedemptionState]
    REDEMPTION_STATE_ROLLED_BACK: _ClassVar[RedemptionState]
REDEMPTION_STATE_UNSPECIFIED: RedemptionState
REDEMPTION_STATE_REDEEMED: RedemptionState
REDEMPTION_STATE_ROLLED_BACK: RedemptionState

class PrizeClaim(_message.Message):
    __slots__ = ("campaign_id", "campaign_name", "prize_description", "voucher_id", "uses_remaining")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_NAME_FIELD_NUMBER: _ClassVar[int]
    PRIZE_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VOUCHER_ID_FIELD_NUMBER: _ClassVar[int]
    USES_REMAINING_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    campaign_name: str
    prize_description: str
    voucher_id: str
    uses_remaining: int
    def __init__(self, campaign_id: _Optional[str] = ..., campaign_name: _Optional[str] = ..., prize_description: _Optional[str] = ..., voucher_id: _Optional[str] = ..., uses_remaining: _Optional[int] = ...) -> None: ...

class Redemption(_message.Message):
    __slots__ = ("redemption_id", "voucher_id", "campaign_id", "store_id", "redeemed_by", "redeem_time", "state", "rollback_time", "rollback_reason", "request_id")
    REDEMPTION_ID_FIELD_NUMBER: _ClassVar[int]
    VOUCHER_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_BY_FIELD_NUMBER: _ClassVar[int]
    REDEEM_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_TIME_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    redemption_id: str
    voucher_id: str
    campaign_id: str
    store_id: str
    redeemed_by: str
    redeem_time: _timestamp_pb2.Timestamp
    state: RedemptionState
    rollback_time: _timestamp_pb2.Timestamp
    rollback_reason: str
    request_id: str
    def __init__(self, redemption_id: _Optional[str] = ..., voucher_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., store_id: _Optional[str] = ..., redeemed_by: _Optional[str] = ..., redeem_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[RedemptionState, str]] = ..., rollback_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rollback_reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ValidateCodeRequest(_message.Message):
    __slots__ = ("code", "store_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    code: str
    store_id: str
    def __init__(self, code: _Optional[str] = ..., store_id: _Optional[str] = ...) -> None: ...

class ValidateCodeResponse(_message.Message):
    __slots__ = ("redeemable", "reason", "message", "claim", "valid_from", "valid_until")
    REDEEMABLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    redeemable: bool
    reason: _errors_pb2.Reason
    message: str
    claim: PrizeClaim
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    def __init__(self, redeemable: _Optional[bool] = ..., reason: _Optional[_Union[_errors_pb2.Reason, str]] = ..., message: _Optional[str] = ..., claim: _Optional[_Union[PrizeClaim, _Mapping]] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RedeemRequest(_message.Message):
    __slots__ = ("request_id", "code", "store_id", "expected_campaign_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    code: str
    store_id: str
    expected_campaign_id: str
    def __init__(self, request_id: _Optional[str] = ..., code: _Optional[str] = ..., store_id: _Optional[str] = ..., expected_campaign_id: _Optional[str] = ...) -> None: ...

class RedeemResponse(_message.Message):
    __slots__ = ("redemption", "claim", "replayed")
    REDEMPTION_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    redemption: Redemption
    claim: PrizeClaim
    replayed: bool
    def __init__(self, redemption: _Optional[_Union[Redemption, _Mapping]] = ..., claim: _Optional[_Union[PrizeClaim, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class RollbackRedemptionRequest(_message.Message):
    __slots__ = ("request_id", "redemption_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REDEMPTION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    redemption_id: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., redemption_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RollbackRedemptionResponse(_message.Message):
    __slots__ = ("redemption",)
    REDEMPTION_FIELD_NUMBER: _ClassVar[int]
    redemption: Redemption
    def __init__(self, redemption: _Optional[_Union[Redemption, _Mapping]] = ...) -> None: ...

class GetVoucherRequest(_message.Message):
    __slots__ = ("voucher_id", "code")
    VOUCHER_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    voucher_id: str
    code: str
    def __init__(self, voucher_id: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class Voucher(_message.Message):
    __slots__ = ("voucher_id", "campaign_id", "key_id", "uses_allowed", "uses_made", "issue_time")
    VOUCHER_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    USES_ALLOWED_FIELD_NUMBER: _ClassVar[int]
    USES_MADE_FIELD_NUMBER: _ClassVar[int]
    ISSUE_TIME_FIELD_NUMBER: _ClassVar[int]
    voucher_id: str
    campaign_id: str
    key_id: str
    uses_allowed: int
    uses_made: int
    issue_time: _timestamp_pb2.Timestamp
    def __init__(self, voucher_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., key_id: _Optional[str] = ..., uses_allowed: _Optional[int] = ..., uses_made: _Optional[int] = ..., issue_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetVoucherResponse(_message.Message):
    __slots__ = ("voucher",)
    VOUCHER_FIELD_NUMBER: _ClassVar[int]
    voucher: Voucher
    def __init__(self, voucher: _Optional[_Union[Voucher, _Mapping]] = ...) -> None: ...

class ListRedemptionsRequest(_message.Message):
    __slots__ = ("campaign_id", "page_size", "page_token")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    page_size: int
    page_token: str
    def __init__(self, campaign_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRedemptionsResponse(_message.Message):
    __slots__ = ("redemptions", "next_page_token")
    REDEMPTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    redemptions: _containers.RepeatedCompositeFieldContainer[Redemption]
    next_page_token: str
    def __init__(self, redemptions: _Optional[_Iterable[_Union[Redemption, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
