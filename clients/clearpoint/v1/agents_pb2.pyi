import datetime

from clearpoint.v1 import errors_pb2 as _errors_pb2
from clearpoint.v1 import redemption_pb2 as _redemption_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_STATE_UNSPECIFIED: _ClassVar[AgentState]
    AGENT_STATE_ACTIVE: _ClassVar[AgentState]
    AGENT_STATE_REVOKED: _ClassVar[AgentState]

class AgentHealth(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_HEALTH_UNSPECIFIED: _ClassVar[AgentHealth]
    AGENT_HEALTH_ONLINE: _ClassVar[AgentHealth]
    AGENT_HEALTH_STALE: _ClassVar[AgentHealth]
    AGENT_HEALTH_NEVER_SEEN: _ClassVar[AgentHealth]

class ScanOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCAN_OUTCOME_UNSPECIFIED: _ClassVar[ScanOutcome]
    SCAN_OUTCOME_ACCEPTED: _ClassVar[ScanOutcome]
    SCAN_OUTCOME_REFUSED: _ClassVar[ScanOutcome]
    SCAN_OUTCOME_NOT_A_VOUCHER: _ClassVar[ScanOutcome]
    SCAN_OUTCOME_REJECTED: _ClassVar[ScanOutcome]
AGENT_STATE_UNSPECIFIED: AgentState
AGENT_STATE_ACTIVE: AgentState
AGENT_STATE_REVOKED: AgentState
AGENT_HEALTH_UNSPECIFIED: AgentHealth
AGENT_HEALTH_ONLINE: AgentHealth
AGENT_HEALTH_STALE: AgentHealth
AGENT_HEALTH_NEVER_SEEN: AgentHealth
SCAN_OUTCOME_UNSPECIFIED: ScanOutcome
SCAN_OUTCOME_ACCEPTED: ScanOutcome
SCAN_OUTCOME_REFUSED: ScanOutcome
SCAN_OUTCOME_NOT_A_VOUCHER: ScanOutcome
SCAN_OUTCOME_REJECTED: ScanOutcome

class Agent(_message.Message):
    __slots__ = ("agent_id", "partner_id", "store_id", "display_name", "public_key", "state", "enrol_time", "revoke_time", "status")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ENROL_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    partner_id: str
    store_id: str
    display_name: str
    public_key: bytes
    state: AgentState
    enrol_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    status: AgentStatus
    def __init__(self, agent_id: _Optional[str] = ..., partner_id: _Optional[str] = ..., store_id: _Optional[str] = ..., display_name: _Optional[str] = ..., public_key: _Optional[bytes] = ..., state: _Optional[_Union[AgentState, str]] = ..., enrol_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[AgentStatus, _Mapping]] = ...) -> None: ...

class AgentStatus(_message.Message):
    __slots__ = ("health", "connected", "last_seen_time", "connect_time", "heartbeat", "stale_after")
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    CONNECT_TIME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STALE_AFTER_FIELD_NUMBER: _ClassVar[int]
    health: AgentHealth
    connected: bool
    last_seen_time: _timestamp_pb2.Timestamp
    connect_time: _timestamp_pb2.Timestamp
    heartbeat: AgentHeartbeat
    stale_after: _duration_pb2.Duration
    def __init__(self, health: _Optional[_Union[AgentHealth, str]] = ..., connected: _Optional[bool] = ..., last_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connect_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., heartbeat: _Optional[_Union[AgentHeartbeat, _Mapping]] = ..., stale_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AgentHeartbeat(_message.Message):
    __slots__ = ("version", "uptime", "scanners", "backlog", "oldest_unanswered_time", "last_answer_time", "round_trip", "clock_offset", "send_time")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    SCANNERS_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    OLDEST_UNANSWERED_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ANSWER_TIME_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRIP_FIELD_NUMBER: _ClassVar[int]
    CLOCK_OFFSET_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    version: str
    uptime: _duration_pb2.Duration
    scanners: _containers.RepeatedCompositeFieldContainer[ScannerStatus]
    backlog: int
    oldest_unanswered_time: _timestamp_pb2.Timestamp
    last_answer_time: _timestamp_pb2.Timestamp
    round_trip: _duration_pb2.Duration
    clock_offset: _duration_pb2.Duration
    send_time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[str] = ..., uptime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., scanners: _Optional[_Iterable[_Union[ScannerStatus, _Mapping]]] = ..., backlog: _Optional[int] = ..., oldest_unanswered_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_answer_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., round_trip: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., clock_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ScannerStatus(_message.Message):
    __slots__ = ("scanner_id", "kind", "path", "connected", "last_scan_time", "last_error", "last_error_time", "device")
    SCANNER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_SCAN_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_TIME_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    scanner_id: str
    kind: str
    path: str
    connected: bool
    last_scan_time: _timestamp_pb2.Timestamp
    last_error: str
    last_error_time: _timestamp_pb2.Timestamp
    device: str
    def __init__(self, scanner_id: _Optional[str] = ..., kind: _Optional[str] = ..., path: _Optional[str] = ..., connected: _Optional[bool] = ..., last_scan_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ..., last_error_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., device: _Optional[str] = ...) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ("send_time", "platform_time")
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_TIME_FIELD_NUMBER: _ClassVar[int]
    send_time: _timestamp_pb2.Timestamp
    platform_time: _timestamp_pb2.Timestamp
    def __init__(self, send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., platform_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateEnrolmentTokenRequest(_message.Message):
    __slots__ = ("request_id", "partner_id", "store_id", "ttl_seconds")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    partner_id: str
    store_id: str
    ttl_seconds: int
    def __init__(self, request_id: _Optional[str] = ..., partner_id: _Optional[str] = ..., store_id: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class CreateEnrolmentTokenResponse(_message.Message):
    __slots__ = ("token_id", "token", "expire_time")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    token: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, token_id: _Optional[str] = ..., token: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EnrolAgentRequest(_message.Message):
    __slots__ = ("token", "public_key", "display_name", "proof_signature")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROOF_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    token: str
    public_key: bytes
    display_name: str
    proof_signature: bytes
    def __init__(self, token: _Optional[str] = ..., public_key: _Optional[bytes] = ..., display_name: _Optional[str] = ..., proof_signature: _Optional[bytes] = ...) -> None: ...

class EnrolAgentResponse(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ...) -> None: ...

class RevokeAgentRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class RevokeAgentResponse(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAgentRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class GetAgentResponse(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ...) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    def __init__(self, agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ...) -> None: ...

class SignedScan(_message.Message):
    __slots__ = ("agent_id", "scanner_id", "sequence", "scan_time", "symbology", "data", "signature")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SCANNER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SCAN_TIME_FIELD_NUMBER: _ClassVar[int]
    SYMBOLOGY_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    scanner_id: str
    sequence: int
    scan_time: _timestamp_pb2.Timestamp
    symbology: str
    data: bytes
    signature: bytes
    def __init__(self, agent_id: _Optional[str] = ..., scanner_id: _Optional[str] = ..., sequence: _Optional[int] = ..., scan_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., symbology: _Optional[str] = ..., data: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class StreamScansRequest(_message.Message):
    __slots__ = ("scan", "scans", "hello", "heartbeat")
    SCAN_FIELD_NUMBER: _ClassVar[int]
    SCANS_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    scan: SignedScan
    scans: _containers.RepeatedCompositeFieldContainer[SignedScan]
    hello: StreamHello
    heartbeat: AgentHeartbeat
    def __init__(self, scan: _Optional[_Union[SignedScan, _Mapping]] = ..., scans: _Optional[_Iterable[_Union[SignedScan, _Mapping]]] = ..., hello: _Optional[_Union[StreamHello, _Mapping]] = ..., heartbeat: _Optional[_Union[AgentHeartbeat, _Mapping]] = ...) -> None: ...

class StreamHello(_message.Message):
    __slots__ = ("agent_id", "signature")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    signature: bytes
    def __init__(self, agent_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ScanAnswer(_message.Message):
    __slots__ = ("sequence", "outcome", "reason", "message", "claim", "redemption_id", "replayed", "answer_time")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    REDEMPTION_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TIME_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    outcome: ScanOutcome
    reason: _errors_pb2.Reason
    message: str
    claim: _redemption_pb2.PrizeClaim
    redemption_id: str
    replayed: bool
    answer_time: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., outcome: _Optional[_Union[ScanOutcome, str]] = ..., reason: _Optional[_Union[_errors_pb2.Reason, str]] = ..., message: _Optional[str] = ..., claim: _Optional[_Union[_redemption_pb2.PrizeClaim, _Mapping]] = ..., redemption_id: _Optional[str] = ..., replayed: _Optional[bool] = ..., answer_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StreamScansResponse(_message.Message):
    __slots__ = ("answer", "max_in_flight", "answers", "max_scans_per_message", "challenge", "heartbeat_interval", "heartbeat_ack")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    MAX_SCANS_PER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    answer: ScanAnswer
    max_in_flight: int
    answers: _containers.RepeatedCompositeFieldContainer[ScanAnswer]
    max_scans_per_message: int
    challenge: bytes
    heartbeat_interval: _duration_pb2.Duration
    heartbeat_ack: HeartbeatAck
    def __init__(self, answer: _Optional[_Union[ScanAnswer, _Mapping]] = ..., max_in_flight: _Optional[int] = ..., answers: _Optional[_Iterable[_Union[ScanAnswer, _Mapping]]] = ..., max_scans_per_message: _Optional[int] = ..., challenge: _Optional[bytes] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ...) -> None: ...
