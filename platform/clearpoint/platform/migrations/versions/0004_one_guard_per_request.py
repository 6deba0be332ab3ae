"""one guard per request

Redemptions no longer carry a unique (redeemed_by, request_id): the first answer's key in
`idempotency` (principal, method, request id) is the one exactly-once guard. The second guard keyed
a scan's redemption by its partner, so a partner's Redeem with a request id shaped like a scan's
("scan:<agent>:<sequence>") took the scan's place and the voucher was refused.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_GUARD = "uq_redemptions_redeemed_by_request_id"


def upgrade() -> None:
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_constraint(_GUARD, type_="unique")


def downgrade() -> None:
    bind = op.get_bind()
    clashes = bind.execute(
        sa.text("SELECT redeemed_by, request_id FROM redemptions GROUP BY redeemed_by, request_id HAVING COUNT(*) > 1")
    ).first()
    if clashes is not None:
        partner, request_id = clashes
        raise RuntimeError(
            f"cannot downgrade below 0004: partner {partner} has two redemptions with request id {request_id!r}"
            " (a scan and an API call), which revision 0003 cannot hold"
        )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_unique_constraint(_GUARD, ["redeemed_by", "request_id"])
