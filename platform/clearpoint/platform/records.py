"""Plain records the domain returns; the gRPC layer turns them into messages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    name: str
    prize_description: str
    valid_from_us: int
    valid_until_us: int
    store_ids: tuple[str, ...]
    total_stock: int
    uses_per_voucher: int
    rollback_window_us: int


@dataclass(frozen=True, slots=True)
class Campaign:
    campaign_id: str
    partner_id: str
    spec: CampaignSpec
    created_us: int


@dataclass(frozen=True, slots=True)
class Progress:
    campaign_id: str
    issued: int
    redeemed: int
    rolled_back: int
    remaining_stock: int
    refused: dict[str, int] = field(default_factory=dict)
    as_of_us: int = 0

    def counts(self) -> tuple[object, ...]:
        """What a watcher compares to decide whether anything changed."""
        return (self.issued, self.redeemed, self.rolled_back, tuple(sorted(self.refused.items())))


@dataclass(frozen=True, slots=True)
class Claim:
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
class Voucher:
    voucher_id: str
    campaign_id: str
    kid: str
    uses_allowed: int
    uses_made: int
    issued_us: int
