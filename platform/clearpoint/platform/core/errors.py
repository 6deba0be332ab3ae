"""Refusals: how the platform says no, as values any caller can act on, with no transport in them.

A refusal carries a `Reason` (the names of clearpoint.v1.Reason without the REASON_ prefix), a
message a person can read, and metadata a machine can use (`field` names the bad request field).
The API edge maps each reason to a gRPC status code in one table (api/reasons.py); a stored
refusal is its JSON form, so a replay raises the same refusal without knowing the wire.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    """Why a request was refused; the same set as clearpoint.v1.Reason (a test holds them equal)."""

    CODE_MALFORMED = "CODE_MALFORMED"
    CODE_TOO_LONG = "CODE_TOO_LONG"
    VERSION_UNSUPPORTED = "VERSION_UNSUPPORTED"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    KEY_UNKNOWN = "KEY_UNKNOWN"
    KEY_RETIRED = "KEY_RETIRED"
    VOUCHER_UNKNOWN = "VOUCHER_UNKNOWN"
    CAMPAIGN_MISMATCH = "CAMPAIGN_MISMATCH"
    VOUCHER_EXPIRED = "VOUCHER_EXPIRED"
    VOUCHER_NOT_YET_VALID = "VOUCHER_NOT_YET_VALID"
    VOUCHER_ALREADY_REDEEMED = "VOUCHER_ALREADY_REDEEMED"
    STOCK_EXHAUSTED = "STOCK_EXHAUSTED"
    STORE_NOT_ALLOWED = "STORE_NOT_ALLOWED"
    ROLLBACK_WINDOW_CLOSED = "ROLLBACK_WINDOW_CLOSED"
    ALREADY_ROLLED_BACK = "ALREADY_ROLLED_BACK"
    REDEMPTION_UNKNOWN = "REDEMPTION_UNKNOWN"
    REQUEST_ID_REUSED = "REQUEST_ID_REUSED"
    FIELD_INVALID = "FIELD_INVALID"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    CAMPAIGN_UNKNOWN = "CAMPAIGN_UNKNOWN"
    ISSUER_KEY_UNKNOWN = "ISSUER_KEY_UNKNOWN"
    ISSUER_KEY_STATE = "ISSUER_KEY_STATE"
    NO_ACTIVE_KEY = "NO_ACTIVE_KEY"
    PAGE_TOKEN_INVALID = "PAGE_TOKEN_INVALID"  # noqa: S105 (a reason's name, not a secret)
    PARTNER_UNKNOWN = "PARTNER_UNKNOWN"
    ENROLMENT_TOKEN_INVALID = "ENROLMENT_TOKEN_INVALID"  # noqa: S105 (a reason's name, not a secret)
    AGENT_UNKNOWN = "AGENT_UNKNOWN"
    AGENT_REVOKED = "AGENT_REVOKED"
    SCAN_SIGNATURE_INVALID = "SCAN_SIGNATURE_INVALID"
    SEQUENCE_REUSED = "SEQUENCE_REUSED"
    NOT_A_VOUCHER = "NOT_A_VOUCHER"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    TOO_MANY_STREAMS = "TOO_MANY_STREAMS"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    ACCOUNT_UNKNOWN = "ACCOUNT_UNKNOWN"
    UNIT_MISMATCH = "UNIT_MISMATCH"
    TRANSFER_UNKNOWN = "TRANSFER_UNKNOWN"
    TRANSFER_RESOLVED = "TRANSFER_RESOLVED"
    TRANSFER_EXPIRED = "TRANSFER_EXPIRED"
    CHANNEL_UNKNOWN = "CHANNEL_UNKNOWN"
    RULE_NOT_IN_FORCE = "RULE_NOT_IN_FORCE"
    MEMBER_UNKNOWN = "MEMBER_UNKNOWN"
    ACCOUNT_NOT_LINKED = "ACCOUNT_NOT_LINKED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    QUOTE_EXPIRED = "QUOTE_EXPIRED"
    EXCHANGE_UNKNOWN = "EXCHANGE_UNKNOWN"
    STATEMENT_UNKNOWN = "STATEMENT_UNKNOWN"
    API_KEY_UNKNOWN = "API_KEY_UNKNOWN"
    API_KEY_INACTIVE = "API_KEY_INACTIVE"


class Refusal(Exception):
    """A request the platform refuses, with a reason a machine can act on and a message a person can read."""

    # Set when the refusal is a request's first answer (core.once): when it was first given, and
    # whether this is that answer given again to a replay.
    answered_us: int | None = None
    replayed: bool = False

    def __init__(self, reason: Reason | str, message: str, **metadata: str) -> None:
        super().__init__(message)
        self.reason = Reason(reason)  # an unknown reason is a bug: ValueError here, not a silent INTERNAL later
        self.message = message
        self.metadata = metadata

    def to_json(self) -> str:
        """The stored form of a refusal (a request's first answer), read back by `from_json`."""
        return json.dumps({"reason": self.reason.value, "message": self.message, "metadata": self.metadata})

    @classmethod
    def from_json(cls, text: str) -> Refusal:
        data: dict[str, Any] = json.loads(text)
        return cls(data["reason"], data["message"], **data.get("metadata", {}))

    def __repr__(self) -> str:
        return f"Refusal({self.reason.value!r}, {self.message!r})"


def field_invalid(field: str, message: str) -> Refusal:
    return Refusal(Reason.FIELD_INVALID, message, field=field)
