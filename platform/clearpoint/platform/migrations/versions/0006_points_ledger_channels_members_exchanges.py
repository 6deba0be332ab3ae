"""points: ledger, channels, members, exchanges

The points ledger (units; accounts with their four running totals, an overdraft of a guarded
account being a CHECK the database refuses; immutable transfers in the order written, a pending
one resolved at most once by a unique pending_id), channels and their versioned rules (exact
decimals kept as text), members and their links to channels' programmes, and exchanges with the
figures they were made with.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:00:41
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_units",
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("unit", name=op.f("pk_ledger_units")),
    )
    op.create_table(
        "channels",
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("programme", sa.String(length=100), nullable=False),
        sa.Column("unit_name", sa.String(length=32), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.partner_id"], name=op.f("fk_channels_partner_id_partners")),
        sa.ForeignKeyConstraint(["unit"], ["ledger_units.unit"], name=op.f("fk_channels_unit_ledger_units")),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_channels")),
        sa.UniqueConstraint("unit", name=op.f("uq_channels_unit")),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("guarded", sa.Integer(), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
            name=op.f("ck_ledger_accounts_totals"),
        ),
        sa.CheckConstraint(
            "guarded = 0 OR debits_pending + debits_posted <= credits_posted",
            name=op.f("ck_ledger_accounts_not_overdrawn"),
        ),
        sa.ForeignKeyConstraint(["unit"], ["ledger_units.unit"], name=op.f("fk_ledger_accounts_unit_ledger_units")),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_ledger_accounts")),
    )
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.create_index("uq_ledger_accounts_owner_unit_purpose", ["owner", "unit", "purpose"], unique=True)

    op.create_table(
        "members",
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("registered_by", sa.String(length=32), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registered_by"], ["partners.partner_id"], name=op.f("fk_members_registered_by_partners")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_members")),
    )
    op.create_table(
        "channel_rules",
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_us", sa.BigInteger(), nullable=False),
        sa.Column("to_platform", sa.String(length=24), nullable=False),
        sa.Column("from_platform", sa.String(length=24), nullable=False),
        sa.Column("fee_percent", sa.String(length=24), nullable=False),
        sa.Column("min_points", sa.BigInteger(), nullable=False),
        sa.Column("max_points", sa.BigInteger(), nullable=False),
        sa.Column("daily_points", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.String(length=24), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.partner_id"], name=op.f("fk_channel_rules_channel_id_channels")
        ),
        sa.PrimaryKeyConstraint("channel_id", "version", name=op.f("pk_channel_rules")),
    )
    with op.batch_alter_table("channel_rules", schema=None) as batch_op:
        batch_op.create_index("ix_channel_rules_effective", ["channel_id", "effective_us"], unique=False)

    op.create_table(
        "exchanges",
        sa.Column("exchange_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("from_channel", sa.String(length=32), nullable=True),
        sa.Column("to_channel", sa.String(length=32), nullable=True),
        sa.Column("points_in", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("platform_points", sa.BigInteger(), nullable=False),
        sa.Column("residue_in_micro", sa.BigInteger(), nullable=False),
        sa.Column("points_out", sa.BigInteger(), nullable=False),
        sa.Column("residue_out_micro", sa.BigInteger(), nullable=False),
        sa.Column("rule_in_version", sa.Integer(), nullable=True),
        sa.Column("rule_out_version", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("txn_out", sa.String(length=32), nullable=True),
        sa.Column("txn_in", sa.String(length=32), nullable=True),
        sa.Column("timeout_us", sa.BigInteger(), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending_out', 'pending_in', 'completed', 'failed', 'held')", name=op.f("ck_exchanges_state")
        ),
        sa.CheckConstraint("from_channel IS NOT NULL OR to_channel IS NOT NULL", name=op.f("ck_exchanges_a_channel")),
        sa.CheckConstraint("points_in > 0", name=op.f("ck_exchanges_points_in")),
        sa.ForeignKeyConstraint(
            ["from_channel"], ["channels.partner_id"], name=op.f("fk_exchanges_from_channel_channels")
        ),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_exchanges_member_id_members")),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["partners.partner_id"], name=op.f("fk_exchanges_requested_by_partners")
        ),
        sa.ForeignKeyConstraint(["to_channel"], ["channels.partner_id"], name=op.f("fk_exchanges_to_channel_channels")),
        sa.PrimaryKeyConstraint("exchange_id", name=op.f("pk_exchanges")),
    )
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.create_index("ix_exchanges_from_state", ["from_channel", "state"], unique=False)
        batch_op.create_index("ix_exchanges_member_created", ["member_id", "created_us"], unique=False)
        batch_op.create_index("ix_exchanges_state_timeout", ["state", "timeout_us"], unique=False)
        batch_op.create_index("ix_exchanges_to_state", ["to_channel", "state"], unique=False)

    op.create_table(
        "ledger_transfers",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("transfer_id", sa.String(length=32), nullable=False),
        sa.Column("txn_id", sa.String(length=32), nullable=False),
        sa.Column("leg", sa.Integer(), nullable=False),
        sa.Column("debit_account", sa.String(length=32), nullable=False),
        sa.Column("credit_account", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("pending_id", sa.String(length=32), nullable=True),
        sa.Column("timeout_us", sa.BigInteger(), nullable=True),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "(kind IN ('post', 'void')) = (pending_id IS NOT NULL)", name=op.f("ck_ledger_transfers_resolves")
        ),
        sa.CheckConstraint("kind IN ('posted', 'pending', 'post', 'void')", name=op.f("ck_ledger_transfers_kind")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_transfers_amount")),
        sa.CheckConstraint("debit_account <> credit_account", name=op.f("ck_ledger_transfers_two_accounts")),
        sa.ForeignKeyConstraint(
            ["credit_account"],
            ["ledger_accounts.account_id"],
            name=op.f("fk_ledger_transfers_credit_account_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account"],
            ["ledger_accounts.account_id"],
            name=op.f("fk_ledger_transfers_debit_account_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["pending_id"],
            ["ledger_transfers.transfer_id"],
            name=op.f("fk_ledger_transfers_pending_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(["unit"], ["ledger_units.unit"], name=op.f("fk_ledger_transfers_unit_ledger_units")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_transfers")),
        sa.UniqueConstraint("pending_id", name=op.f("uq_ledger_transfers_pending_id")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_ledger_transfers_transfer_id")),
    )
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_transfers_credit", ["credit_account", "seq"], unique=False)
        batch_op.create_index("ix_ledger_transfers_debit", ["debit_account", "seq"], unique=False)
        batch_op.create_index("ix_ledger_transfers_timeout", ["timeout_us"], unique=False)
        batch_op.create_index("ix_ledger_transfers_txn", ["txn_id", "leg"], unique=True)

    op.create_table(
        "member_links",
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("account_ref", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_us", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'confirmed')", name=op.f("ck_member_links_state")),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.partner_id"], name=op.f("fk_member_links_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_member_links_member_id_members")),
        sa.PrimaryKeyConstraint("member_id", "channel_id", name=op.f("pk_member_links")),
    )
    with op.batch_alter_table("member_links", schema=None) as batch_op:
        batch_op.create_index("uq_member_links_channel_account", ["channel_id", "account_ref"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("member_links", schema=None) as batch_op:
        batch_op.drop_index("uq_member_links_channel_account")

    op.drop_table("member_links")
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transfers_txn")
        batch_op.drop_index("ix_ledger_transfers_timeout")
        batch_op.drop_index("ix_ledger_transfers_debit")
        batch_op.drop_index("ix_ledger_transfers_credit")

    op.drop_table("ledger_transfers")
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_index("ix_exchanges_to_state")
        batch_op.drop_index("ix_exchanges_state_timeout")
        batch_op.drop_index("ix_exchanges_member_created")
        batch_op.drop_index("ix_exchanges_from_state")

    op.drop_table("exchanges")
    with op.batch_alter_table("channel_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_channel_rules_effective")

    op.drop_table("channel_rules")
    op.drop_table("members")
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.drop_index("uq_ledger_accounts_owner_unit_purpose")

    op.drop_table("ledger_accounts")
    op.drop_table("channels")
    op.drop_table("ledger_units")
