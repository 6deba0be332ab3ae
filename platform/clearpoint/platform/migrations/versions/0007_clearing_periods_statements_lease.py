"""clearing: periods, statements, adjustments, the runner's lease; the rule version on priced legs

A channel's legs of an exchange (and the transfers that resolve them) carry the version of the
channel's rule they are priced at, so clearing sums a period's movements per version in one
GROUP BY over the ledger. Legs written before this revision get theirs from their exchange.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 06:32:51.208673
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clearing_lease",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_clearing_lease")),
    )
    op.create_table(
        "clearing_periods",
        sa.Column("period_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("end_us", sa.BigInteger(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("closing_us", sa.BigInteger(), nullable=False),
        sa.Column("closed_us", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "(state = 'closed') = (summary IS NOT NULL AND closed_us IS NOT NULL)",
            name=op.f("ck_clearing_periods_closed"),
        ),
        sa.CheckConstraint("state IN ('closing', 'closed')", name=op.f("ck_clearing_periods_state")),
        sa.CheckConstraint("start_us < end_us", name=op.f("ck_clearing_periods_span")),
        sa.PrimaryKeyConstraint("period_id", name=op.f("pk_clearing_periods")),
        sa.UniqueConstraint("end_us", name=op.f("uq_clearing_periods_end_us")),
        sa.UniqueConstraint("number", name=op.f("uq_clearing_periods_number")),
    )
    op.create_table(
        "clearing_statements",
        sa.Column("statement_id", sa.String(length=32), nullable=False),
        sa.Column("period_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("content_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("period_number", sa.Integer(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.partner_id"], name=op.f("fk_clearing_statements_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["clearing_periods.period_id"],
            name=op.f("fk_clearing_statements_period_id_clearing_periods"),
        ),
        sa.PrimaryKeyConstraint("statement_id", name=op.f("pk_clearing_statements")),
    )
    with op.batch_alter_table("clearing_statements", schema=None) as batch_op:
        batch_op.create_index("ix_clearing_statements_channel_number", ["channel_id", "period_number"], unique=False)
        batch_op.create_index("uq_clearing_statements_channel_period", ["channel_id", "period_id"], unique=True)

    op.create_table(
        "clearing_adjustments",
        sa.Column("adjustment_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("corrects_statement_id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("txn_id", sa.String(length=32), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "direction IN ('out_of_channel', 'into_channel')", name=op.f("ck_clearing_adjustments_direction")
        ),
        sa.CheckConstraint("points <> 0", name=op.f("ck_clearing_adjustments_points")),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.partner_id"], name=op.f("fk_clearing_adjustments_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["corrects_statement_id"],
            ["clearing_statements.statement_id"],
            name=op.f("fk_clearing_adjustments_corrects_statement_id_clearing_statements"),
        ),
        sa.PrimaryKeyConstraint("adjustment_id", name=op.f("pk_clearing_adjustments")),
        sa.UniqueConstraint("txn_id", name=op.f("uq_clearing_adjustments_txn_id")),
    )
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule_version", sa.Integer(), nullable=True))
    # The from-channel's leg is leg 0 of an exchange's out side; the to-channel's is leg 1 of its in
    # side; a resolution ("<txn>:r") repeats its pending legs' numbers.
    legs = sa.table(
        "ledger_transfers", sa.column("txn_id"), sa.column("leg"), sa.column("code"), sa.column("rule_version")
    )
    made = sa.table(
        "exchanges",
        sa.column("txn_out"),
        sa.column("txn_in"),
        sa.column("rule_in_version"),
        sa.column("rule_out_version"),
    )
    for txn, leg, version in ((made.c.txn_out, 0, made.c.rule_in_version), (made.c.txn_in, 1, made.c.rule_out_version)):
        for named in (txn, txn + ":r"):
            op.execute(
                sa.update(legs)
                .where(
                    legs.c.leg == leg,
                    legs.c.code == "exchange",
                    legs.c.txn_id.in_(sa.select(named).where(txn.is_not(None))),
                )
                .values(rule_version=sa.select(version).where(named == legs.c.txn_id).scalar_subquery())
            )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35 and later): a batch copy of the table would
    # break the foreign keys that point at it.
    op.drop_column("ledger_transfers", "rule_version")
    op.drop_table("clearing_adjustments")

    with op.batch_alter_table("clearing_statements", schema=None) as batch_op:
        batch_op.drop_index("uq_clearing_statements_channel_period")
        batch_op.drop_index("ix_clearing_statements_channel_number")

    op.drop_table("clearing_statements")
    op.drop_table("clearing_periods")
    op.drop_table("clearing_lease")
