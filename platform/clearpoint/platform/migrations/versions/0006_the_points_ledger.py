"""the points ledger

Units, accounts with their four running totals (an overdraft of a guarded account is a CHECK the
database refuses), and immutable transfers, a pending one resolved at most once (unique pending_id).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 15:38:40
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
        "ledger_transfers",
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
        sa.PrimaryKeyConstraint("transfer_id", name=op.f("pk_ledger_transfers")),
        sa.UniqueConstraint("pending_id", name=op.f("uq_ledger_transfers_pending_id")),
    )
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_transfers_credit", ["credit_account", "created_us"], unique=False)
        batch_op.create_index("ix_ledger_transfers_debit", ["debit_account", "created_us"], unique=False)
        batch_op.create_index("ix_ledger_transfers_timeout", ["timeout_us"], unique=False)
        batch_op.create_index("ix_ledger_transfers_txn", ["txn_id", "leg"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transfers_txn")
        batch_op.drop_index("ix_ledger_transfers_timeout")
        batch_op.drop_index("ix_ledger_transfers_debit")
        batch_op.drop_index("ix_ledger_transfers_credit")

    op.drop_table("ledger_transfers")
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.drop_index("uq_ledger_accounts_owner_unit_purpose")

    op.drop_table("ledger_accounts")
    op.drop_table("ledger_units")
