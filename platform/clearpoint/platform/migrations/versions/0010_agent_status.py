"""the fleet's view of each agent: its stream and its last heartbeat

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_status",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("stream_id", sa.String(length=32), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("connect_us", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_us", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_us", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("uptime_us", sa.BigInteger(), nullable=True),
        sa.Column("backlog", sa.BigInteger(), nullable=True),
        sa.Column("oldest_unanswered_us", sa.BigInteger(), nullable=True),
        sa.Column("last_answer_us", sa.BigInteger(), nullable=True),
        sa.Column("round_trip_us", sa.BigInteger(), nullable=True),
        sa.Column("clock_offset_us", sa.BigInteger(), nullable=True),
        sa.Column("sent_us", sa.BigInteger(), nullable=True),
        sa.Column("scanners", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.agent_id"], name=op.f("fk_agent_status_agent_id_agents")),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_status")),
    )


def downgrade() -> None:
    op.drop_table("agent_status")
