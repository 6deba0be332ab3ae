"""API keys can be rotated: an expiry (the end of the overlap) and the key that replaced them

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_us", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("replaced_by", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("replaced_by")
        batch.drop_column("expires_us")
