"""Refusals on the wire: each reason's gRPC status code, in one table, and the google.rpc.Status
(with an ErrorInfo whose domain is clearpoint.v1) that carries a refusal to the caller and back.

A test holds this table, core.errors.Reason and errors.proto's Reason enum to the same set of names.
"""

from __future__ import annotations

import grpc
from clearpoint.platform.core.errors import Reason, Refusal
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

DOMAIN = "clearpoint.v1"
_BAD = grpc.StatusCode.INVALID_ARGUMENT
_STATE = grpc.StatusCode.FAILED_PRECONDITION

STATUS: dict[Reason, grpc.StatusCode] = {
    Reason.CODE_MALFORMED: _BAD,
    Reason.CODE_TOO_LONG: _BAD,
    Reason.VERSION_UNSUPPORTED: _BAD,
    Reason.SIGNATURE_INVALID: _BAD,
    Reason.KEY_UNKNOWN: _BAD,
    Reason.KEY_RETIRED: _STATE,
    Reason.VOUCHER_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.CAMPAIGN_MISMATCH: _STATE,
    Reason.VOUCHER_EXPIRED: _STATE,
    Reason.VOUCHER_NOT_YET_VALID: _STATE,
    Reason.VOUCHER_ALREADY_REDEEMED: _STATE,
    Reason.STOCK_EXHAUSTED: _STATE,
    Reason.STORE_NOT_ALLOWED: _STATE,
    Reason.ROLLBACK_WINDOW_CLOSED: _STATE,
    Reason.ALREADY_ROLLED_BACK: _STATE,
    Reason.REDEMPTION_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.REQUEST_ID_REUSED: grpc.StatusCode.ALREADY_EXISTS,
    Reason.FIELD_INVALID: _BAD,
    Reason.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Reason.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.CAMPAIGN_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.ISSUER_KEY_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.ISSUER_KEY_STATE: _STATE,
    Reason.NO_ACTIVE_KEY: _STATE,
    Reason.PAGE_TOKEN_INVALID: _BAD,
    Reason.PARTNER_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.ENROLMENT_TOKEN_INVALID: grpc.StatusCode.PERMISSION_DENIED,
    Reason.AGENT_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.AGENT_REVOKED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.SCAN_SIGNATURE_INVALID: _BAD,
    Reason.SEQUENCE_REUSED: grpc.StatusCode.ALREADY_EXISTS,
    Reason.NOT_A_VOUCHER: _BAD,
    Reason.DATABASE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.TOO_MANY_STREAMS: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.INSUFFICIENT_BALANCE: _STATE,
    Reason.ACCOUNT_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.UNIT_MISMATCH: _BAD,
    Reason.TRANSFER_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.TRANSFER_RESOLVED: _STATE,
    Reason.TRANSFER_EXPIRED: _STATE,
    Reason.CHANNEL_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.RULE_NOT_IN_FORCE: _STATE,
    Reason.MEMBER_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.ACCOUNT_NOT_LINKED: _STATE,
    Reason.LIMIT_EXCEEDED: _STATE,
    Reason.QUOTE_EXPIRED: _STATE,
    Reason.EXCHANGE_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.STATEMENT_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.API_KEY_UNKNOWN: grpc.StatusCode.NOT_FOUND,
    Reason.API_KEY_INACTIVE: grpc.StatusCode.FAILED_PRECONDITION,
}


def to_status(refusal: Refusal) -> status_pb2.Status:
    """The google.rpc.Status carried in the grpc-status-details-bin trailer."""
    info = error_details_pb2.ErrorInfo(reason=refusal.reason.value, domain=DOMAIN, metadata=refusal.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    code: tuple[int, str] = STATUS[refusal.reason].value
    return status_pb2.Status(code=code[0], message=refusal.message, details=[detail])


def from_status(status: status_pb2.Status) -> Refusal:
    """The refusal a status carries (a client's view of a clearpoint error)."""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == DOMAIN:
            return Refusal(info.reason, status.message, **dict(info.metadata))
    raise ValueError("status carries no clearpoint ErrorInfo")
