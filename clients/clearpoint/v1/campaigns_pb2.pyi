import datetime

from clearpoint.v1 import errors_pb2 as _errors_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Campaign(_message.Message):
    __slots__ = ("campaign_id", "partner_id", "name", "prize_description", "valid_from", "valid_until", "store_ids", "total_stock", "uses_per_voucher", "rollback_window", "create_time")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRIZE_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    STORE_IDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STOCK_FIELD_NUMBER: _ClassVar[int]
    USES_PER_VOUCHER_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_WINDOW_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    partner_id: str
    name: str
    prize_description: str
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    store_ids: _containers.RepeatedScalarFieldContainer[str]
    total_stock: int
    uses_per_voucher: int
    rollback_window: _duration_pb2.Duration
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, campaign_id: _Optional[str] = ..., partner_id: _Optional[str] = ..., name: _Optional[str] = ..., prize_description: _Optional[str] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., store_ids: _Optional[_Iterable[str]] = ..., total_stock: _Optional[int] = ..., uses_per_voucher: _Optional[int] = ..., rollback_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateCampaignRequest(_message.Message):
    __slots__ = ("request_id", "name", "prize_description", "valid_from", "valid_until", "store_ids", "total_stock", "uses_per_voucher", "rollback_window")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRIZE_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    STORE_IDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STOCK_FIELD_NUMBER: _ClassVar[int]
    USES_PER_VOUCHER_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_WINDOW_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    prize_description: str
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    store_ids: _containers.RepeatedScalarFieldContainer[str]
    total_stock: int
    uses_per_voucher: int
    rollback_window: _duration_pb2.Duration
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., prize_description: _Optional[str] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., store_ids: _Optional[_Iterable[str]] = ..., total_stock: _Optional[int] = ..., uses_per_voucher: _Optional[int] = ..., rollback_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CreateCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class GetCampaignRequest(_message.Message):
    __slots__ = ("campaign_id",)
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    def __init__(self, campaign_id: _Optional[str] = ...) -> None: ...

class GetCampaignResponse(_message.Message):
    __slots__ = ("campaign", "progress")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    progress: CampaignProgress
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ..., progress: _Optional[_Union[CampaignProgress, _Mapping]] = ...) -> None: ...

class ListCampaignsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCampaignsResponse(_message.Message):
    __slots__ = ("campaigns", "next_page_token")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[Campaign]
    next_page_token: str
    def __init__(self, campaigns: _Optional[_Iterable[_Union[Campaign, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class IssueVouchersRequest(_message.Message):
    __slots__ = ("request_id", "campaign_id", "count")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    campaign_id: str
    count: int
    def __init__(self, request_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class IssuedVoucher(_message.Message):
    __slots__ = ("voucher_id", "code")
    VOUCHER_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    voucher_id: str
    code: str
    def __init__(self, voucher_id: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class IssueVouchersResponse(_message.Message):
    __slots__ = ("vouchers", "key_id")
    VOUCHERS_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    vouchers: _containers.RepeatedCompositeFieldContainer[IssuedVoucher]
    key_id: str
    def __init__(self, vouchers: _Optional[_Iterable[_Union[IssuedVoucher, _Mapping]]] = ..., key_id: _Optional[str] = ...) -> None: ...

class WatchCampaignProgressRequest(_message.Message):
    __slots__ = ("campaign_id",)
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    def __init__(self, campaign_id: _Optional[str] = ...) -> None: ...

class RefusalCount(_message.Message):
    __slots__ = ("reason", "count")
    REASON_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    reason: _errors_pb2.Reason
    count: int
    def __init__(self, reason: _Optional[_Union[_errors_pb2.Reason, str]] = ..., count: _Optional[int] = ...) -> None: ...

class CampaignProgress(_message.Message):
    __slots__ = ("campaign_id", "issued", "redeemed", "rolled_back", "remaining_stock", "refused", "as_of")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUED_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_FIELD_NUMBER: _ClassVar[int]
    ROLLED_BACK_FIELD_NUMBER: _ClassVar[int]
    REMAINING_STOCK_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    issued: int
    redeemed: int
    rolled_back: int
    remaining_stock: int
    refused: _containers.RepeatedCompositeFieldContainer[RefusalCount]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, campaign_id: _Optional[str] = ..., issued: _Optional[int] = ..., redeemed: _Optional[int] = ..., rolled_back: _Optional[int] = ..., remaining_stock: _Optional[int] = ..., refused: _Optional[_Iterable[_Union[RefusalCount, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchCampaignProgressResponse(_message.Message):
    __slots__ = ("progress",)
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    progress: CampaignProgress
    def __init__(self, progress: _Optional[_Union[CampaignProgress, _Mapping]] = ...) -> None: ...
