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
    # The order transfers were written in (an account's history is read in it).
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("transfer_id", String(32), nullable=False, unique=True),
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
    # On a channel's leg of an exchange (and the transfer that resolves it): the version of the
    # channel's rule it is priced at, which clearing settles by. NULL on every other leg.
    Column("rule_version", Integer),
    CheckConstraint("amount > 0", name="amount"),
    CheckConstraint("debit_account <> credit_account", name="two_accounts"),
    CheckConstraint("kind IN ('posted', 'pending', 'post', 'void')", name="kind"),
    CheckConstraint("(kind IN ('post', 'void')) = (pending_id IS NOT NULL)", name="resolves"),
)
Index("ix_ledger_transfers_txn", transfers.c.txn_id, transfers.c.leg, unique=True)
Index("ix_ledger_transfers_debit", transfers.c.debit_account, transfers.c.seq)
Index("ix_ledger_transfers_credit", transfers.c.credit_account, transfers.c.seq)
Index("ix_ledger_transfers_timeout", transfers.c.timeout_us)

# -- channels, their rules, members and their links --------------------------------------------------

channels = Table(
    "channels",
    metadata,
    # A partner that runs a points programme; its points are `unit` in the ledger.
    Column("partner_id", String(32), ForeignKey("partners.partner_id"), primary_key=True),
    Column("unit", String(32), ForeignKey("ledger_units.unit"), nullable=False, unique=True),
    Column("programme", String(100), nullable=False),
    Column("unit_name", String(32), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

channel_rules = Table(
    "channel_rules",
    metadata,
    Column("channel_id", String(32), ForeignKey("channels.partner_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("effective_us", BigInteger, nullable=False),
    # Exact decimals, kept as their text ("0.25"): never floats.
    Column("to_platform", String(24), nullable=False),
    Column("from_platform", String(24), nullable=False),
    Column("fee_percent", String(24), nullable=False),
    Column("min_points", BigInteger, nullable=False),
    Column("max_points", BigInteger, nullable=False),
    Column("daily_points", BigInteger, nullable=False),
    Column("price", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)
Index("ix_channel_rules_effective", channel_rules.c.channel_id, channel_rules.c.effective_us)

members = Table(
    "members",
    metadata,
    Column("member_id", String(32), primary_key=True),
    Column("display_name", String(100), nullable=False),
    Column("registered_by", String(32), ForeignKey("partners.partner_id"), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

member_links = Table(
    "member_links",
    metadata,
    Column("member_id", String(32), ForeignKey("members.member_id"), primary_key=True),
    Column("channel_id", String(32), ForeignKey("channels.partner_id"), primary_key=True),
    # The member's account in the channel's own programme, as the channel names it.
    Column("account_ref", String(64), nullable=False),
    # "pending" until the channel vouches that the account is the member's, then "confirmed".
    Column("state", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("confirmed_us", BigInteger),
    CheckConstraint("state IN ('pending', 'confirmed')", name="state"),
)
Index("uq_member_links_channel_account", member_links.c.channel_id, member_links.c.account_ref, unique=True)

# -- exchanges -----------------------------------------------------------------------------------------

exchanges = Table(
    "exchanges",
    metadata,
    Column("exchange_id", String(32), primary_key=True),
    Column("member_id", String(32), ForeignKey("members.member_id"), nullable=False),
    # NULL on one side: from or to the member's platform points.
    Column("from_channel", String(32), ForeignKey("channels.partner_id")),
    Column("to_channel", String(32), ForeignKey("channels.partner_id")),
    Column("points_in", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("platform_points", BigInteger, nullable=False),
    Column("residue_in_micro", BigInteger, nullable=False),
    Column("points_out", BigInteger, nullable=False),
    Column("residue_out_micro", BigInteger, nullable=False),
    Column("rule_in_version", Integer),
    Column("rule_out_version", Integer),
    # pending_out (the from-channel is to debit the member), pending_in (the to-channel is to credit
    # the member), completed, failed (nothing moved), held (stopped at the member's platform points).
    Column("state", String(16), nullable=False),
    Column("txn_out", String(32)),
    Column("txn_in", String(32)),
    Column("timeout_us", BigInteger, nullable=False),
    Column("requested_by", String(32), ForeignKey("partners.partner_id"), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    CheckConstraint("state IN ('pending_out', 'pending_in', 'completed', 'failed', 'held')", name="state"),
    CheckConstraint("from_channel IS NOT NULL OR to_channel IS NOT NULL", name="a_channel"),
    CheckConstraint("points_in > 0", name="points_in"),
)
Index("ix_exchanges_member_created", exchanges.c.member_id, exchanges.c.created_us)
Index("ix_exchanges_from_state", exchanges.c.from_channel, exchanges.c.state)
Index("ix_exchanges_to_state", exchanges.c.to_channel, exchanges.c.state)
Index("ix_exchanges_state_timeout", exchanges.c.state, exchanges.c.timeout_us)
