import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExchangeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXCHANGE_STATE_UNSPECIFIED: _ClassVar[ExchangeState]
    EXCHANGE_STATE_PENDING_OUT: _ClassVar[ExchangeState]
    EXCHANGE_STATE_PENDING_IN: _ClassVar[ExchangeState]
    EXCHANGE_STATE_COMPLETED: _ClassVar[ExchangeState]
    EXCHANGE_STATE_FAILED: _ClassVar[ExchangeState]
    EXCHANGE_STATE_HELD: _ClassVar[ExchangeState]

class InstructionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSTRUCTION_KIND_UNSPECIFIED: _ClassVar[InstructionKind]
    INSTRUCTION_KIND_DEBIT_MEMBER: _ClassVar[InstructionKind]
    INSTRUCTION_KIND_CREDIT_MEMBER: _ClassVar[InstructionKind]
EXCHANGE_STATE_UNSPECIFIED: ExchangeState
EXCHANGE_STATE_PENDING_OUT: ExchangeState
EXCHANGE_STATE_PENDING_IN: ExchangeState
EXCHANGE_STATE_COMPLETED: ExchangeState
EXCHANGE_STATE_FAILED: ExchangeState
EXCHANGE_STATE_HELD: ExchangeState
INSTRUCTION_KIND_UNSPECIFIED: InstructionKind
INSTRUCTION_KIND_DEBIT_MEMBER: InstructionKind
INSTRUCTION_KIND_CREDIT_MEMBER: InstructionKind

class Rule(_message.Message):
    __slots__ = ("channel_id", "version", "effective_time", "to_platform", "from_platform", "fee_percent", "min_points", "max_points", "daily_points", "price", "currency")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    TO_PLATFORM_FIELD_NUMBER: _ClassVar[int]
    FROM_PLATFORM_FIELD_NUMBER: _ClassVar[int]
    FEE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MIN_POINTS_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    DAILY_POINTS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    version: int
    effective_time: _timestamp_pb2.Timestamp
    to_platform: str
    from_platform: str
    fee_percent: str
    min_points: int
    max_points: int
    daily_points: int
    price: str
    currency: str
    def __init__(self, channel_id: _Optional[str] = ..., version: _Optional[int] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., to_platform: _Optional[str] = ..., from_platform: _Optional[str] = ..., fee_percent: _Optional[str] = ..., min_points: _Optional[int] = ..., max_points: _Optional[int] = ..., daily_points: _Optional[int] = ..., price: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class RegisterChannelRequest(_message.Message):
    __slots__ = ("request_id", "programme", "unit_name")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAMME_FIELD_NUMBER: _ClassVar[int]
    UNIT_NAME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    programme: str
    unit_name: str
    def __init__(self, request_id: _Optional[str] = ..., programme: _Optional[str] = ..., unit_name: _Optional[str] = ...) -> None: ...

class RegisterChannelResponse(_message.Message):
    __slots__ = ("channel_id", "unit")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    unit: str
    def __init__(self, channel_id: _Optional[str] = ..., unit: _Optional[str] = ...) -> None: ...

class PublishRuleRequest(_message.Message):
    __slots__ = ("request_id", "rule")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    rule: Rule
    def __init__(self, request_id: _Optional[str] = ..., rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class PublishRuleResponse(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: Rule
    def __init__(self, rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class ListRulesRequest(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class ListRulesResponse(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[Rule]
    def __init__(self, rules: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ...) -> None: ...

class RegisterMemberRequest(_message.Message):
    __slots__ = ("request_id", "display_name")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    display_name: str
    def __init__(self, request_id: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("member_id", "display_name", "create_time")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    display_name: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, member_id: _Optional[str] = ..., display_name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterMemberResponse(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: Member
    def __init__(self, member: _Optional[_Union[Member, _Mapping]] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("member_id", "channel_id", "account_ref", "confirmed", "create_time")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_REF_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    channel_id: str
    account_ref: str
    confirmed: bool
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, member_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., account_ref: _Optional[str] = ..., confirmed: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LinkAccountRequest(_message.Message):
    __slots__ = ("request_id", "member_id", "channel_id", "account_ref")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_REF_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    member_id: str
    channel_id: str
    account_ref: str
    def __init__(self, request_id: _Optional[str] = ..., member_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., account_ref: _Optional[str] = ...) -> None: ...

class LinkAccountResponse(_message.Message):
    __slots__ = ("link",)
    LINK_FIELD_NUMBER: _ClassVar[int]
    link: Link
    def __init__(self, link: _Optional[_Union[Link, _Mapping]] = ...) -> None: ...

class ConfirmLinkRequest(_message.Message):
    __slots__ = ("request_id", "member_id", "account_ref")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_REF_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    member_id: str
    account_ref: str
    def __init__(self, request_id: _Optional[str] = ..., member_id: _Optional[str] = ..., account_ref: _Optional[str] = ...) -> None: ...

class ConfirmLinkResponse(_message.Message):
    __slots__ = ("link",)
    LINK_FIELD_NUMBER: _ClassVar[int]
    link: Link
    def __init__(self, link: _Optional[_Union[Link, _Mapping]] = ...) -> None: ...

class GetMemberRequest(_message.Message):
    __slots__ = ("member_id",)
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    def __init__(self, member_id: _Optional[str] = ...) -> None: ...

class Wallet(_message.Message):
    __slots__ = ("posted", "available", "incoming")
    POSTED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    INCOMING_FIELD_NUMBER: _ClassVar[int]
    posted: int
    available: int
    incoming: int
    def __init__(self, posted: _Optional[int] = ..., available: _Optional[int] = ..., incoming: _Optional[int] = ...) -> None: ...

class GetMemberResponse(_message.Message):
    __slots__ = ("member", "links", "wallet")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    WALLET_FIELD_NUMBER: _ClassVar[int]
    member: Member
    links: _containers.RepeatedCompositeFieldContainer[Link]
    wallet: Wallet
    def __init__(self, member: _Optional[_Union[Member, _Mapping]] = ..., links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., wallet: _Optional[_Union[Wallet, _Mapping]] = ...) -> None: ...

class ExchangeTerms(_message.Message):
    __slots__ = ("member_id", "from_channel", "to_channel", "points")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TO_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    from_channel: str
    to_channel: str
    points: int
    def __init__(self, member_id: _Optional[str] = ..., from_channel: _Optional[str] = ..., to_channel: _Optional[str] = ..., points: _Optional[int] = ...) -> None: ...

class ExchangeFigures(_message.Message):
    __slots__ = ("points_in", "value_in", "fee", "platform_points", "residue_in_micro", "points_out", "residue_out_micro", "rule_in_version", "rule_out_version")
    POINTS_IN_FIELD_NUMBER: _ClassVar[int]
    VALUE_IN_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_POINTS_FIELD_NUMBER: _ClassVar[int]
    RESIDUE_IN_MICRO_FIELD_NUMBER: _ClassVar[int]
    POINTS_OUT_FIELD_NUMBER: _ClassVar[int]
    RESIDUE_OUT_MICRO_FIELD_NUMBER: _ClassVar[int]
    RULE_IN_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULE_OUT_VERSION_FIELD_NUMBER: _ClassVar[int]
    points_in: int
    value_in: str
    fee: int
    platform_points: int
    residue_in_micro: int
    points_out: int
    residue_out_micro: int
    rule_in_version: int
    rule_out_version: int
    def __init__(self, points_in: _Optional[int] = ..., value_in: _Optional[str] = ..., fee: _Optional[int] = ..., platform_points: _Optional[int] = ..., residue_in_micro: _Optional[int] = ..., points_out: _Optional[int] = ..., residue_out_micro: _Optional[int] = ..., rule_in_version: _Optional[int] = ..., rule_out_version: _Optional[int] = ...) -> None: ...

class QuoteExchangeRequest(_message.Message):
    __slots__ = ("terms",)
    TERMS_FIELD_NUMBER: _ClassVar[int]
    terms: ExchangeTerms
    def __init__(self, terms: _Optional[_Union[ExchangeTerms, _Mapping]] = ...) -> None: ...

class QuoteExchangeResponse(_message.Message):
    __slots__ = ("figures", "quote_token", "valid_until")
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    QUOTE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    figures: ExchangeFigures
    quote_token: str
    valid_until: _timestamp_pb2.Timestamp
    def __init__(self, figures: _Optional[_Union[ExchangeFigures, _Mapping]] = ..., quote_token: _Optional[str] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StartExchangeRequest(_message.Message):
    __slots__ = ("request_id", "terms", "quote_token")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    QUOTE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    terms: ExchangeTerms
    quote_token: str
    def __init__(self, request_id: _Optional[str] = ..., terms: _Optional[_Union[ExchangeTerms, _Mapping]] = ..., quote_token: _Optional[str] = ...) -> None: ...

class Exchange(_message.Message):
    __slots__ = ("exchange_id", "terms", "figures", "state", "expire_time", "create_time", "update_time")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    terms: ExchangeTerms
    figures: ExchangeFigures
    state: ExchangeState
    expire_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, exchange_id: _Optional[str] = ..., terms: _Optional[_Union[ExchangeTerms, _Mapping]] = ..., figures: _Optional[_Union[ExchangeFigures, _Mapping]] = ..., state: _Optional[_Union[ExchangeState, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StartExchangeResponse(_message.Message):
    __slots__ = ("exchange",)
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    exchange: Exchange
    def __init__(self, exchange: _Optional[_Union[Exchange, _Mapping]] = ...) -> None: ...

class GetExchangeRequest(_message.Message):
    __slots__ = ("exchange_id",)
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    def __init__(self, exchange_id: _Optional[str] = ...) -> None: ...

class GetExchangeResponse(_message.Message):
    __slots__ = ("exchange",)
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    exchange: Exchange
    def __init__(self, exchange: _Optional[_Union[Exchange, _Mapping]] = ...) -> None: ...

class ResolveExchangeRequest(_message.Message):
    __slots__ = ("request_id", "exchange_id", "accept")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    exchange_id: str
    accept: bool
    def __init__(self, request_id: _Optional[str] = ..., exchange_id: _Optional[str] = ..., accept: _Optional[bool] = ...) -> None: ...

class ResolveExchangeResponse(_message.Message):
    __slots__ = ("exchange",)
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    exchange: Exchange
    def __init__(self, exchange: _Optional[_Union[Exchange, _Mapping]] = ...) -> None: ...

class Instruction(_message.Message):
    __slots__ = ("exchange_id", "kind", "account_ref", "member_id", "points", "expire_time")
    EXCHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_REF_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    exchange_id: str
    kind: InstructionKind
    account_ref: str
    member_id: str
    points: int
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, exchange_id: _Optional[str] = ..., kind: _Optional[_Union[InstructionKind, str]] = ..., account_ref: _Optional[str] = ..., member_id: _Optional[str] = ..., points: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListInstructionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListInstructionsResponse(_message.Message):
    __slots__ = ("instructions",)
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    instructions: _containers.RepeatedCompositeFieldContainer[Instruction]
    def __init__(self, instructions: _Optional[_Iterable[_Union[Instruction, _Mapping]]] = ...) -> None: ...

class WatchInstructionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchInstructionsResponse(_message.Message):
    __slots__ = ("instruction",)
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    instruction: Instruction
    def __init__(self, instruction: _Optional[_Union[Instruction, _Mapping]] = ...) -> None: ...

class ListWalletHistoryRequest(_message.Message):
    __slots__ = ("member_id", "page_size", "page_token")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    page_size: int
    page_token: str
    def __init__(self, member_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class WalletEntry(_message.Message):
    __slots__ = ("transfer_id", "amount", "kind", "code", "create_time")
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    amount: int
    kind: str
    code: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, transfer_id: _Optional[str] = ..., amount: _Optional[int] = ..., kind: _Optional[str] = ..., code: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListWalletHistoryResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[WalletEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[WalletEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
