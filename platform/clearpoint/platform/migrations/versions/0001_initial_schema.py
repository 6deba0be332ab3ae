"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 13:08:39.653788
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency",
        sa.Column("principal_id", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("request_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("principal_id", "method", "request_id", name=op.f("pk_idempotency")),
    )
    op.create_table(
        "issuer_keys",
        sa.Column("kid", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("private_key_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("retired_us", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("state IN ('active', 'standby', 'rotated', 'retired')", name=op.f("ck_issuer_keys_state")),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_issuer_keys")),
    )
    with op.batch_alter_table("issuer_keys", schema=None) as batch_op:
        batch_op.create_index(
            "uq_issuer_keys_one_active",
            ["state"],
            unique=True,
            sqlite_where=sa.text("state = 'active'"),
            postgresql_where=sa.text("state = 'active'"),
        )

    op.create_table(
        "partners",
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("role IN ('partner', 'operator')", name=op.f("ck_partners_role")),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_partners")),
        sa.UniqueConstraint("name", name=op.f("uq_partners_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("secret_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("revoked_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.partner_id"], name=op.f("fk_api_keys_partner_id_partners")),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
    )
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prize_description", sa.Text(), nullable=False),
        sa.Column("valid_from_us", sa.BigInteger(), nullable=False),
        sa.Column("valid_until_us", sa.BigInteger(), nullable=False),
        sa.Column("all_stores", sa.Integer(), nullable=False),
        sa.Column("total_stock", sa.BigInteger(), nullable=False),
        sa.Column("uses_per_voucher", sa.Integer(), nullable=False),
        sa.Column("rollback_window_us", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("issued", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("redeemed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rolled_back", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("redeemed - rolled_back <= total_stock", name=op.f("ck_campaigns_stock")),
        sa.CheckConstraint("rolled_back <= redeemed", name=op.f("ck_campaigns_rolled_back")),
        sa.CheckConstraint("valid_from_us < valid_until_us", name=op.f("ck_campaigns_window")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.partner_id"], name=op.f("fk_campaigns_partner_id_partners")),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_partner_created", ["partner_id", "created_us"], unique=False)

    op.create_table(
        "campaign_refusals",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.campaign_id"], name=op.f("fk_campaign_refusals_campaign_id_campaigns")
        ),
        sa.PrimaryKeyConstraint("campaign_id", "reason", "shard", name=op.f("pk_campaign_refusals")),
    )
    op.create_table(
        "campaign_stores",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.campaign_id"], name=op.f("fk_campaign_stores_campaign_id_campaigns")
        ),
        sa.PrimaryKeyConstraint("campaign_id", "store_id", name=op.f("pk_campaign_stores")),
    )
    op.create_table(
        "vouchers",
        sa.Column("voucher_id", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("kid", sa.String(length=8), nullable=False),
        sa.Column("uses_allowed", sa.Integer(), nullable=False),
        sa.Column("uses_made", sa.Integer(), server_default="0", nullable=False),
        sa.Column("issued_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("uses_made >= 0 AND uses_made <= uses_allowed", name=op.f("ck_vouchers_uses")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.campaign_id"], name=op.f("fk_vouchers_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(["kid"], ["issuer_keys.kid"], name=op.f("fk_vouchers_kid_issuer_keys")),
        sa.PrimaryKeyConstraint("voucher_id", name=op.f("pk_vouchers")),
    )
    with op.batch_alter_table("vouchers", schema=None) as batch_op:
        batch_op.create_index("ix_vouchers_campaign", ["campaign_id"], unique=False)

    op.create_table(
        "redemptions",
        sa.Column("redemption_id", sa.String(length=32), nullable=False),
        sa.Column("voucher_id", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("redeemed_by", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("request_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("redeemed_us", sa.BigInteger(), nullable=False),
        sa.Column("uses_remaining", sa.Integer(), nullable=False),
        sa.Column("rolled_back_us", sa.BigInteger(), nullable=True),
        sa.Column("rollback_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.campaign_id"], name=op.f("fk_redemptions_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["redeemed_by"], ["partners.partner_id"], name=op.f("fk_redemptions_redeemed_by_partners")
        ),
        sa.ForeignKeyConstraint(
            ["voucher_id"], ["vouchers.voucher_id"], name=op.f("fk_redemptions_voucher_id_vouchers")
        ),
        sa.PrimaryKeyConstraint("redemption_id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("redeemed_by", "request_id", name=op.f("uq_redemptions_redeemed_by_request_id")),
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index("ix_redemptions_campaign_time", ["campaign_id", "redeemed_us"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_redemptions_campaign_time")

    op.drop_table("redemptions")
    with op.batch_alter_table("vouchers", schema=None) as batch_op:
        batch_op.drop_index("ix_vouchers_campaign")

    op.drop_table("vouchers")
    op.drop_table("campaign_stores")
    op.drop_table("campaign_refusals")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_partner_created")

    op.drop_table("campaigns")
    op.drop_table("api_keys")
    op.drop_table("partners")
    with op.batch_alter_table("issuer_keys", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_issuer_keys_one_active",
            sqlite_where=sa.text("state = 'active'"),
            postgresql_where=sa.text("state = 'active'"),
        )

    op.drop_table("issuer_keys")
    op.drop_table("idempotency")
