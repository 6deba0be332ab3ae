"""The points ledger: units, accounts per (owner, unit), and immutable transfers.

The shape is the one TigerBeetle made standard. An account keeps four running totals (debits and
credits, each pending and posted) in the row every transfer on it updates, so a balance is one row
read and the rule that a guarded account never goes negative is a CHECK constraint the database
enforces under any concurrency, on SQLite and PostgreSQL alike. A transfer is never changed: a
pending one is resolved by a second transfer that posts or voids it (at most one, by a unique
constraint), and a mistake is corrected by a new transfer.
"""

from __future__ import annotations

from clearpoint.platform.core.tables import metadata
from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Integer, String, Table

units = Table(
    "ledger_units",
    metadata,
    # "PTS" for platform points; a channel's points are "pts_" + its partner id's hex.
    Column("unit", String(32), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

accounts = Table(
    "ledger_accounts",
    metadata,
    Column("account_id", String(32), primary_key=True),
    Column("unit", String(32), ForeignKey("ledger_units.unit"), nullable=False),
    # Who holds it: a member id, a partner id, or "platform"; and what for ("member", "float", "fees", ...).
    Column("owner", String(64), nullable=False),
    Column("purpose", String(16), nullable=False),
    # 1: debits must never exceed posted credits (a member's points); 0: may go below zero (an issuer's float).
    Column("guarded", Integer, nullable=False),
    Column("debits_pending", BigInteger, nullable=False, server_default="0"),
    Column("debits_posted", BigInteger, nullable=False, server_default="0"),
    Column("credits_pending", BigInteger, nullable=False, server_default="0"),
    Column("credits_posted", BigInteger, nullable=False, server_default="0"),
    Column("created_us", BigInteger, nullable=False),
    CheckConstraint("guarded = 0 OR debits_pending + debits_posted <= credits_posted", name="not_overdrawn"),
    CheckConstraint(
        "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
        name="totals",
    ),
)
Index("uq_ledger_accounts_owner_unit_purpose", accounts.c.owner, accounts.c.unit, accounts.c.purpose, unique=True)

transfers = Table(
    "ledger_transfers",
    metadata,
    Column("transfer_id", String(32), primary_key=True),
    # The transaction it is a leg of: all of a transaction's legs were applied together, or none.
    Column("txn_id", String(32), nullable=False),
    Column("leg", Integer, nullable=False),
    Column("debit_account", String(32), ForeignKey("ledger_accounts.account_id"), nullable=False),
    Column("credit_account", String(32), ForeignKey("ledger_accounts.account_id"), nullable=False),
    Column("unit", String(32), ForeignKey("ledger_units.unit"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    # "posted" (done at once), "pending" (reserved), or the resolution of a pending one: "post" or "void".
    Column("kind", String(8), nullable=False),
    # For "post" and "void": the pending transfer resolved; unique, so it is resolved exactly once.
    Column("pending_id", String(32), ForeignKey("ledger_transfers.transfer_id"), unique=True),
    # For "pending": when it voids itself if not resolved before.
    Column("timeout_us", BigInteger),
    # Why the movement was made ("exchange", "fee", "rounding", "correction", ...).
    Column("code", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    CheckConstraint("amount > 0", name="amount"),
    CheckConstraint("debit_account <> credit_account", name="two_accounts"),
    CheckConstraint("kind IN ('posted', 'pending', 'post', 'void')", name="kind"),
    CheckConstraint("(kind IN ('post', 'void')) = (pending_id IS NOT NULL)", name="resolves"),
)
Index("ix_ledger_transfers_txn", transfers.c.txn_id, transfers.c.leg, unique=True)
Index("ix_ledger_transfers_debit", transfers.c.debit_account, transfers.c.created_us)
Index("ix_ledger_transfers_credit", transfers.c.credit_account, transfers.c.created_us)
Index("ix_ledger_transfers_timeout", transfers.c.timeout_us)
