"""Campaigns, the stores they may be redeemed at, their refusal counts, and their vouchers."""

from __future__ import annotations

from clearpoint.platform.core.tables import metadata
from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Integer, String, Table, Text

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", String(32), primary_key=True),
    Column("partner_id", String(32), ForeignKey("partners.partner_id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prize_description", Text, nullable=False),
    Column("valid_from_us", BigInteger, nullable=False),
    Column("valid_until_us", BigInteger, nullable=False),
    Column("all_stores", Integer, nullable=False),
    Column("total_stock", BigInteger, nullable=False),
    Column("uses_per_voucher", Integer, nullable=False),
    Column("rollback_window_us", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # Counters kept in the same row the redemption statement locks, so stock checks are atomic.
    Column("issued", BigInteger, nullable=False, server_default="0"),
    Column("redeemed", BigInteger, nullable=False, server_default="0"),
    Column("rolled_back", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("redeemed - rolled_back <= total_stock", name="stock"),
    CheckConstraint("rolled_back <= redeemed", name="rolled_back"),
    CheckConstraint("valid_from_us < valid_until_us", name="window"),
)
Index("ix_campaigns_partner_created", campaigns.c.partner_id, campaigns.c.created_us)

campaign_stores = Table(
    "campaign_stores",
    metadata,
    Column("campaign_id", String(32), ForeignKey("campaigns.campaign_id"), primary_key=True),
    Column("store_id", String(64), primary_key=True),
)

campaign_refusals = Table(
    "campaign_refusals",
    metadata,
    Column("campaign_id", String(32), ForeignKey("campaigns.campaign_id"), primary_key=True),
    Column("reason", String(48), primary_key=True),
    # Spread over a few rows so concurrent refusals do not queue on one row lock; readers sum them.
    Column("shard", Integer, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

vouchers = Table(
    "vouchers",
    metadata,
    Column("voucher_id", String(32), primary_key=True),
    Column("campaign_id", String(32), ForeignKey("campaigns.campaign_id"), nullable=False),
    Column("kid", String(8), ForeignKey("issuer_keys.kid"), nullable=False),
    Column("uses_allowed", Integer, nullable=False),
    Column("uses_made", Integer, nullable=False, server_default="0"),
    Column("issued_us", BigInteger, nullable=False),
    CheckConstraint("uses_made >= 0 AND uses_made <= uses_allowed", name="uses"),
)
Index("ix_vouchers_campaign", vouchers.c.campaign_id)
