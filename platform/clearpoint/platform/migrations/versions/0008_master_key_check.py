"""the database remembers the master key it was set up with

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "master_key_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("check_value", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_master_key_check_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_master_key_check")),
    )


def downgrade() -> None:
    op.drop_table("master_key_check")
