"""Clearing periods, the statements that close them, and the lease that elects one runner.

A period is the ledger between two cuts: transfers written before its end and at or below its
watermark (the ledger's last `seq` once every writer that began before the cut had committed), and
not in an earlier period. Its row is written twice: `closing` with the watermark, then `closed`
with its statements in the same transaction, so a run killed in between resumes on the same cut.
"""

from __future__ import annotations

from clearpoint.platform.core.tables import metadata
from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Integer, LargeBinary, String, Table, Text

periods = Table(
    "clearing_periods",
    metadata,
    Column("period_id", String(32), primary_key=True),
    # 1, 2, ...: each period starts where the one before it ended.
    Column("number", Integer, nullable=False, unique=True),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False, unique=True),
    Column("watermark", BigInteger, nullable=False),
    Column("state", String(8), nullable=False),
    # The multilateral net of every channel's statement, per currency (canonical JSON), once closed.
    Column("summary", Text),
    Column("closing_us", BigInteger, nullable=False),
    Column("closed_us", BigInteger),
    CheckConstraint("state IN ('closing', 'closed')", name="state"),
    CheckConstraint("(state = 'closed') = (summary IS NOT NULL AND closed_us IS NOT NULL)", name="closed"),
    CheckConstraint("start_us < end_us", name="span"),
)

statements = Table(
    "clearing_statements",
    metadata,
    Column("statement_id", String(32), primary_key=True),
    Column("period_id", String(32), ForeignKey("clearing_periods.period_id"), nullable=False),
    Column("channel_id", String(32), ForeignKey("channels.partner_id"), nullable=False),
    # The statement itself (docs/clearing.md): canonical JSON, its SHA-256, and the platform's
    # Ed25519 signature over that hash by the key `key_id` names.
    Column("content", LargeBinary, nullable=False),
    Column("content_sha256", LargeBinary(32), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("period_number", Integer, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)
# One statement per channel per period, whoever runs the period and however often.
Index("uq_clearing_statements_channel_period", statements.c.channel_id, statements.c.period_id, unique=True)
Index("ix_clearing_statements_channel_number", statements.c.channel_id, statements.c.period_number)

adjustments = Table(
    "clearing_adjustments",
    metadata,
    # A correction of a closed period's statement, settled in the period its ledger transfer lands in.
    Column("adjustment_id", String(32), primary_key=True),
    Column("channel_id", String(32), ForeignKey("channels.partner_id"), nullable=False),
    Column("corrects_statement_id", String(32), ForeignKey("clearing_statements.statement_id"), nullable=False),
    # The statement's direction it corrects, by how many points (negative: fewer than were counted),
    # priced at the rule version it names.
    Column("direction", String(16), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("rule_version", Integer, nullable=False),
    Column("reason", String(200), nullable=False),
    # The ledger transaction that moves the points (one posted transfer, code "correction").
    Column("txn_id", String(32), nullable=False, unique=True),
    Column("created_us", BigInteger, nullable=False),
    CheckConstraint("direction IN ('out_of_channel', 'into_channel')", name="direction"),
    CheckConstraint("points <> 0", name="points"),
)

lease = Table(
    "clearing_lease",
    metadata,
    # One row: the platform process running clearing, until when (it renews while it runs).
    Column("name", String(16), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_us", BigInteger, nullable=False),
)
