"""Redemptions: one row per use of a voucher, with what the store was told to hand over."""

from __future__ import annotations

from clearpoint.platform.core.tables import metadata
from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("redemption_id", String(32), primary_key=True),
    Column("voucher_id", String(32), ForeignKey("vouchers.voucher_id"), nullable=False),
    Column("campaign_id", String(32), ForeignKey("campaigns.campaign_id"), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("redeemed_by", String(32), ForeignKey("partners.partner_id"), nullable=False),
    Column("request_id", String(128), nullable=False),
    # SHA-256 of the request's fields (its first answer, in core.once, carries the same).
    Column("request_sha256", LargeBinary(32), nullable=False),
    Column("redeemed_us", BigInteger, nullable=False),
    # The voucher's uses left right after this redemption, part of the answer a replay repeats.
    Column("uses_remaining", Integer, nullable=False),
    Column("rolled_back_us", BigInteger),
    Column("rollback_reason", Text),
    # No unique (redeemed_by, request_id): the first answer's key (core.once) is the one guard, and a
    # second one here made a partner's request id collide with an agent's scan of the same partner.
)
Index("ix_redemptions_campaign_time", redemptions.c.campaign_id, redemptions.c.redeemed_us)
