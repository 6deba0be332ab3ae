"""Refusals as values: one exception type that knows its gRPC status code and ErrorInfo reason."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

DOMAIN = "clearpoint.v1"

# The gRPC status for each reason (clearpoint.v1.Reason without the REASON_ prefix).
_CODES: dict[str, grpc.StatusCode] = {
    "CODE_MALFORMED": grpc.StatusCode.INVALID_ARGUMENT,
    "CODE_TOO_LONG": grpc.StatusCode.INVALID_ARGUMENT,
    "VERSION_UNSUPPORTED": grpc.StatusCode.INVALID_ARGUMENT,
    "SIGNATURE_INVALID": grpc.StatusCode.INVALID_ARGUMENT,
    "KEY_UNKNOWN": grpc.StatusCode.INVALID_ARGUMENT,
    "KEY_RETIRED": grpc.StatusCode.FAILED_PRECONDITION,
    "VOUCHER_UNKNOWN": grpc.StatusCode.NOT_FOUND,
    "CAMPAIGN_MISMATCH": grpc.StatusCode.FAILED_PRECONDITION,
    "VOUCHER_EXPIRED": grpc.StatusCode.FAILED_PRECONDITION,
    "VOUCHER_NOT_YET_VALID": grpc.StatusCode.FAILED_PRECONDITION,
    "VOUCHER_ALREADY_REDEEMED": grpc.StatusCode.FAILED_PRECONDITION,
    "STOCK_EXHAUSTED": grpc.StatusCode.FAILED_PRECONDITION,
    "STORE_NOT_ALLOWED": grpc.StatusCode.FAILED_PRECONDITION,
    "ROLLBACK_WINDOW_CLOSED": grpc.StatusCode.FAILED_PRECONDITION,
    "ALREADY_ROLLED_BACK": grpc.StatusCode.FAILED_PRECONDITION,
    "REDEMPTION_UNKNOWN": grpc.StatusCode.NOT_FOUND,
    "REQUEST_ID_REUSED": grpc.StatusCode.ALREADY_EXISTS,
    "FIELD_INVALID": grpc.StatusCode.INVALID_ARGUMENT,
    "UNAUTHENTICATED": grpc.StatusCode.UNAUTHENTICATED,
    "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
    "CAMPAIGN_UNKNOWN": grpc.StatusCode.NOT_FOUND,
    "ISSUER_KEY_UNKNOWN": grpc.StatusCode.NOT_FOUND,
    "ISSUER_KEY_STATE": grpc.StatusCode.FAILED_PRECONDITION,
    "NO_ACTIVE_KEY": grpc.StatusCode.FAILED_PRECONDITION,
    "PAGE_TOKEN_INVALID": grpc.StatusCode.INVALID_ARGUMENT,
    "PARTNER_UNKNOWN": grpc.StatusCode.NOT_FOUND,
    "ENROLMENT_TOKEN_INVALID": grpc.StatusCode.PERMISSION_DENIED,
    "AGENT_UNKNOWN": grpc.StatusCode.NOT_FOUND,
    "AGENT_REVOKED": grpc.StatusCode.PERMISSION_DENIED,
    "SCAN_SIGNATURE_INVALID": grpc.StatusCode.INVALID_ARGUMENT,
    "SEQUENCE_REUSED": grpc.StatusCode.ALREADY_EXISTS,
    "NOT_A_VOUCHER": grpc.StatusCode.INVALID_ARGUMENT,
}


class Refusal(Exception):
    """A request the platform refuses, with a reason a machine can act on and a message a person can read."""

    def __init__(self, reason: str, message: str, **metadata: str) -> None:
        if reason not in _CODES:
            raise ValueError(f"unknown reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata = metadata

    @property
    def code(self) -> grpc.StatusCode:
        return _CODES[self.reason]

    def to_status(self) -> status_pb2.Status:
        """The google.rpc.Status carried in the grpc-status-details-bin trailer."""
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata)
        detail = any_pb2.Any()
        detail.Pack(info)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=[detail])

    @classmethod
    def from_status(cls, status: status_pb2.Status) -> Refusal:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info) and info.domain == DOMAIN:
                return cls(info.reason, status.message, **dict(info.metadata))
        raise ValueError("status carries no clearpoint ErrorInfo")

    def __repr__(self) -> str:
        return f"Refusal({self.reason!r}, {self.message!r})"


def field_invalid(field: str, message: str) -> Refusal:
    return Refusal("FIELD_INVALID", message, field=field)
