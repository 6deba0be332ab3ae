"""Enrolment tokens, enrolled agents, the scans they sent, the scans refused as evidence, and the
fleet's view of each agent."""

from __future__ import annotations

from clearpoint.platform.core.tables import metadata
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

enrolment_tokens = Table(
    "enrolment_tokens",
    metadata,
    # The public part of the token ("cpe_<token_id>_<secret>"); the secret is stored only as a hash.
    Column("token_id", String(32), primary_key=True),
    Column("secret_sha256", LargeBinary(32), nullable=False),
    Column("partner_id", String(32), ForeignKey("partners.partner_id"), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    # Set once, by the conditional UPDATE that spends the token: single use is the database's rule.
    Column("used_us", BigInteger),
    Column("agent_id", String(32)),
)

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(32), primary_key=True),
    Column("partner_id", String(32), ForeignKey("partners.partner_id"), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("public_key", LargeBinary(32), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("token_id", String(32), ForeignKey("enrolment_tokens.token_id"), nullable=False, unique=True),
    Column("enrolled_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger),
    CheckConstraint("state IN ('active', 'revoked')", name="state"),
)

agent_scans = Table(
    "agent_scans",
    metadata,
    # One row per applied (agent, sequence): the store's scan log. The scan's first answer, which a
    # resend gets again, is kept with every other request's (core.once).
    Column("agent_id", String(32), ForeignKey("agents.agent_id"), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("scanner_id", String(64), nullable=False),
    Column("scan_us", BigInteger, nullable=False),
    Column("symbology", String(3), nullable=False),
    # The scanned bytes, except a voucher code's (NULL): a multi-use voucher's remaining uses must not
    # be redeemable by whoever reads the database. data_sha256 names what was scanned either way.
    Column("data", LargeBinary),
    Column("data_sha256", LargeBinary(32), nullable=False),
    # SHA-256 of the signed canonical bytes (the scan's fingerprint).
    Column("scan_sha256", LargeBinary(32), nullable=False),
    # When the scan came off the agent's stream, and when it was first answered.
    Column("received_us", BigInteger, nullable=False),
    Column("answered_us", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(48)),
    Column("redemption_id", String(32)),
    Column("campaign_id", String(32)),
    Column("voucher_id", String(32)),
    CheckConstraint("outcome IN ('accepted', 'refused', 'not_a_voucher')", name="outcome"),
)

scan_rejections = Table(
    "scan_rejections",
    metadata,
    # Scans that were not applied at all (bad signature, unknown or revoked agent, reused sequence):
    # kept as evidence, since they may be an attack.
    Column("rejection_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("agent_id", String(64), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("reason", String(48), nullable=False),
    Column("detail", Text, nullable=False),
    Column("scan_sha256", LargeBinary(32)),
    Column("received_us", BigInteger, nullable=False),
)
Index("ix_scan_rejections_agent", scan_rejections.c.agent_id, scan_rejections.c.received_us)

# The fleet's view of each agent: its stream and what its last heartbeat said. Every platform
# process writes here, so any of them (and `clearpoint ops agents`) sees the whole fleet.
agent_status = Table(
    "agent_status",
    metadata,
    Column("agent_id", String(32), ForeignKey("agents.agent_id"), primary_key=True),
    # The stream opened last; only it may mark the agent disconnected (a reconnect may beat the old
    # stream's end to the database).
    Column("stream_id", String(32), nullable=False),
    Column("connected", Boolean, nullable=False),
    Column("connect_us", BigInteger, nullable=False),
    Column("last_seen_us", BigInteger, nullable=False),
    Column("heartbeat_us", BigInteger),  # when the last heartbeat arrived; the fields below are from it
    Column("version", String(64)),
    Column("uptime_us", BigInteger),
    Column("backlog", BigInteger),
    Column("oldest_unanswered_us", BigInteger),
    Column("last_answer_us", BigInteger),
    Column("round_trip_us", BigInteger),
    Column("clock_offset_us", BigInteger),
    Column("sent_us", BigInteger),
    Column("scanners", Text),  # JSON: one object per scanner (agents.fleet.ScannerState)
)
