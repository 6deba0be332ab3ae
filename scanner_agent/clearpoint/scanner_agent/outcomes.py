"""What a scan can come to, named once: the journal stores these values, the console and `agent claims` show them."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, TypeAlias


class Outcome(StrEnum):
    """The platform's answer to a scan; the value is what the claim book stores and prints."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    NOT_A_VOUCHER = "not_a_voucher"
    REJECTED = "rejected"


PENDING: Final = "pending"
"""The claim book's outcome for a scan the platform has not answered yet."""

ClaimOutcome: TypeAlias = Outcome | Literal["pending"]
