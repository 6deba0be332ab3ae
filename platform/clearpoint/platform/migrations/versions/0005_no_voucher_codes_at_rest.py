"""no voucher codes at rest

The scan log kept every scan's bytes, voucher codes included, so whoever read the database could
redeem a multi-use voucher's remaining uses. Every scan now gets `data_sha256` (what was scanned,
by digest), and a voucher code's bytes are dropped (`data` NULL); other barcodes keep theirs.
A downgrade cannot bring the codes back: their rows get empty `data`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:20:00
"""

from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CHUNK = 1000
_VOUCHER_PREFIX = re.compile(rb"CP[0-9]+:")


def upgrade() -> None:
    with op.batch_alter_table("agent_scans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data_sha256", sa.LargeBinary(length=32), nullable=True))
        batch_op.alter_column("data", existing_type=sa.LargeBinary(), nullable=True)
    bind = op.get_bind()
    scans = sa.table(
        "agent_scans",
        sa.column("agent_id", sa.String()),
        sa.column("sequence", sa.BigInteger()),
        sa.column("data", sa.LargeBinary()),
        sa.column("data_sha256", sa.LargeBinary()),
    )
    last: tuple[str, int] = ("", -1)
    while True:
        rows = bind.execute(
            sa.select(scans.c.agent_id, scans.c.sequence, scans.c.data)
            .where(sa.tuple_(scans.c.agent_id, scans.c.sequence) > sa.tuple_(sa.literal(last[0]), sa.literal(last[1])))
            .order_by(scans.c.agent_id, scans.c.sequence)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        for agent_id, sequence, data in rows:
            data = bytes(data)
            bind.execute(
                scans.update()
                .where(scans.c.agent_id == agent_id, scans.c.sequence == sequence)
                .values(
                    data_sha256=hashlib.sha256(data).digest(),
                    data=None if _VOUCHER_PREFIX.match(data) else data,
                )
            )
        last = (rows[-1][0], rows[-1][1])
    with op.batch_alter_table("agent_scans", schema=None) as batch_op:
        batch_op.alter_column("data_sha256", existing_type=sa.LargeBinary(length=32), nullable=False)


def downgrade() -> None:
    op.execute(sa.text("UPDATE agent_scans SET data = :empty WHERE data IS NULL").bindparams(empty=b""))
    with op.batch_alter_table("agent_scans", schema=None) as batch_op:
        batch_op.alter_column("data", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column("data_sha256")
