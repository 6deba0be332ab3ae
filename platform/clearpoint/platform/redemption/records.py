"""What a redemption gives back, as plain records; the wire module turns them into messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PrizeClaim:
    """What the store hands over."""

    campaign_id: str
    campaign_name: str
    prize_description: str
    voucher_id: str
    uses_remaining: int


@dataclass(frozen=True, slots=True)
class Redemption:
    redemption_id: str
    voucher_id: str
    campaign_id: str
    store_id: str
    redeemed_by: str
    request_id: str
    redeemed_us: int
    rolled_back_us: int | None = None
    rollback_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RedeemOutcome:
    redemption: Redemption
    claim: PrizeClaim
    replayed: bool


@dataclass(frozen=True, slots=True)
class Preview:
    """ValidateCode's answer: whether the code would be redeemed now, and why not if not."""

    reason: str | None
    message: str
    claim: PrizeClaim | None
    valid_from_us: int | None
    valid_until_us: int | None


@dataclass(frozen=True, slots=True)
class Voucher:
    voucher_id: str
    campaign_id: str
    kid: str
    uses_allowed: int
    uses_made: int
    issued_us: int
