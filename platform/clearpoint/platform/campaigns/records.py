"""Campaigns and their progress as plain records; the wire module turns them into messages."""

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
    as_of_us: int = field(default=0, compare=False)  # a re-read of the same counts is no change
