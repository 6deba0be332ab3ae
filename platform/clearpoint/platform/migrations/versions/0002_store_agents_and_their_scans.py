"""store agents and their scans

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:35:48.542417
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scan_rejections",
        sa.Column(
            "rejection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("scan_sha256", sa.LargeBinary(length=32), nullable=True),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("rejection_id", name=op.f("pk_scan_rejections")),
    )
    with op.batch_alter_table("scan_rejections", schema=None) as batch_op:
        batch_op.create_index("ix_scan_rejections_agent", ["agent_id", "received_us"], unique=False)

    op.create_table(
        "enrolment_tokens",
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("secret_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.Column("used_us", sa.BigInteger(), nullable=True),
        sa.Column("agent_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.partner_id"], name=op.f("fk_enrolment_tokens_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_enrolment_tokens")),
    )
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("enrolled_us", sa.BigInteger(), nullable=False),
        sa.Column("revoked_us", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("state IN ('active', 'revoked')", name=op.f("ck_agents_state")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.partner_id"], name=op.f("fk_agents_partner_id_partners")),
        sa.ForeignKeyConstraint(
            ["token_id"], ["enrolment_tokens.token_id"], name=op.f("fk_agents_token_id_enrolment_tokens")
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agents")),
        sa.UniqueConstraint("public_key", name=op.f("uq_agents_public_key")),
        sa.UniqueConstraint("token_id", name=op.f("uq_agents_token_id")),
    )
    op.create_table(
        "agent_scans",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("sequence", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("scanner_id", sa.String(length=64), nullable=False),
        sa.Column("scan_us", sa.BigInteger(), nullable=False),
        sa.Column("symbology", sa.String(length=3), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("scan_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("answered_us", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("redemption_id", sa.String(length=32), nullable=True),
        sa.Column("campaign_id", sa.String(length=32), nullable=True),
        sa.Column("campaign_name", sa.String(length=200), nullable=True),
        sa.Column("prize_description", sa.Text(), nullable=True),
        sa.Column("voucher_id", sa.String(length=32), nullable=True),
        sa.Column("uses_remaining", sa.Integer(), nullable=True),
        sa.CheckConstraint("outcome IN ('accepted', 'refused', 'not_a_voucher')", name=op.f("ck_agent_scans_outcome")),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.agent_id"], name=op.f("fk_agent_scans_agent_id_agents")),
        sa.PrimaryKeyConstraint("agent_id", "sequence", name=op.f("pk_agent_scans")),
    )


def downgrade() -> None:
    op.drop_table("agent_scans")
    op.drop_table("agents")
    op.drop_table("enrolment_tokens")
    with op.batch_alter_table("scan_rejections", schema=None) as batch_op:
        batch_op.drop_index("ix_scan_rejections_agent")

    op.drop_table("scan_rejections")
