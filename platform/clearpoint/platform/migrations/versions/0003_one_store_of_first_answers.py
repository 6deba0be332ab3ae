"""one store of first answers

Every request's first answer, a redemption's and a scan's included, is a row of `idempotency`:
an answer body, or a refusal kept as JSON (reason, message, metadata) rather than as a gRPC status.
Redemptions made over the API, scans answered, and enrolments are given their first-answer rows;
the scan log keeps the scan and its outcome, no longer a copy of the answer.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from alembic import op
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DOMAIN = "clearpoint.v1"
CHUNK = 1000
# The gRPC status code of each reason as of this revision (for a downgrade to write statuses again).
_CODES = {
    "CODE_MALFORMED": 3, "CODE_TOO_LONG": 3, "VERSION_UNSUPPORTED": 3, "SIGNATURE_INVALID": 3, "KEY_UNKNOWN": 3,
    "KEY_RETIRED": 9, "VOUCHER_UNKNOWN": 5, "CAMPAIGN_MISMATCH": 9, "VOUCHER_EXPIRED": 9,
    "VOUCHER_NOT_YET_VALID": 9, "VOUCHER_ALREADY_REDEEMED": 9, "STOCK_EXHAUSTED": 9, "STORE_NOT_ALLOWED": 9,
    "ROLLBACK_WINDOW_CLOSED": 9, "ALREADY_ROLLED_BACK": 9, "REDEMPTION_UNKNOWN": 5, "REQUEST_ID_REUSED": 6,
    "FIELD_INVALID": 3, "UNAUTHENTICATED": 16, "PERMISSION_DENIED": 7, "CAMPAIGN_UNKNOWN": 5,
    "ISSUER_KEY_UNKNOWN": 5, "ISSUER_KEY_STATE": 9, "NO_ACTIVE_KEY": 9, "PAGE_TOKEN_INVALID": 3,
    "PARTNER_UNKNOWN": 5, "ENROLMENT_TOKEN_INVALID": 7, "AGENT_UNKNOWN": 5, "AGENT_REVOKED": 7,
    "SCAN_SIGNATURE_INVALID": 3, "SEQUENCE_REUSED": 6, "NOT_A_VOUCHER": 3,
}  # fmt: skip

answers = sa.table(
    "idempotency",
    sa.column("principal_id", sa.String),
    sa.column("method", sa.String),
    sa.column("request_id", sa.String),
    sa.column("request_sha256", sa.LargeBinary),
    sa.column("status_code", sa.Integer),
    sa.column("response", sa.LargeBinary),
    sa.column("refusal", sa.Text),
    sa.column("created_us", sa.BigInteger),
)


def _refusal_json(status_bytes: bytes) -> str:
    status = status_pb2.Status.FromString(status_bytes)
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == DOMAIN:
            return json.dumps({"reason": info.reason, "message": status.message, "metadata": dict(info.metadata)})
    raise ValueError("a stored refusal without a clearpoint ErrorInfo")


def _status_bytes(refusal: str) -> bytes:
    data = json.loads(refusal)
    info = error_details_pb2.ErrorInfo(reason=data["reason"], domain=DOMAIN, metadata=data.get("metadata", {}))
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=_CODES[data["reason"]], message=data["message"], details=[detail]).SerializeToString()


def _rewrite_refusals(bind: Any, column: Any, values: Any) -> None:
    """Each stored refusal (`column` not empty) rewritten with `values(row)`: one row at a time, as few exist."""
    found = bind.execute(
        sa.select(answers.c.principal_id, answers.c.method, answers.c.request_id, column).where(column.is_not(None))
    ).all()
    for row in found:
        key = (answers.c.principal_id == row[0], answers.c.method == row[1], answers.c.request_id == row[2])
        bind.execute(answers.update().where(*key).values(values(row[3])))


def _insert_missing(bind: Any, rows: list[dict[str, Any]]) -> None:
    """Insert first answers that are not there yet (a row already there is the first answer)."""
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        keys = {(r["principal_id"], r["method"], r["request_id"]) for r in chunk}
        present = set(
            bind.execute(
                sa.select(answers.c.principal_id, answers.c.method, answers.c.request_id).where(
                    sa.tuple_(answers.c.principal_id, answers.c.method, answers.c.request_id).in_(list(keys))
                )
            ).all()
        )
        fresh = [r for r in chunk if (r["principal_id"], r["method"], r["request_id"]) not in present]
        if fresh:
            bind.execute(answers.insert(), fresh)


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("idempotency") as batch:
        batch.add_column(sa.Column("refusal", sa.Text(), nullable=True))
    refused = sa.case((answers.c.status_code != 0, answers.c.response), else_=sa.null())
    _rewrite_refusals(bind, refused, lambda status: {"refusal": _refusal_json(bytes(status)), "response": b""})
    with op.batch_alter_table("idempotency") as batch:
        batch.drop_column("status_code")

    redeemed = bind.execute(
        sa.text(
            "SELECT redeemed_by, request_id, request_sha256, redemption_id, redeemed_us FROM redemptions "
            "WHERE request_id NOT LIKE 'scan:%'"
        )
    ).all()
    rows = [
        {
            "principal_id": r.redeemed_by,
            "method": "Redeem",
            "request_id": r.request_id,
            "request_sha256": bytes(r.request_sha256),
            "response": r.redemption_id.encode(),
            "refusal": None,
            "created_us": r.redeemed_us,
        }
        for r in redeemed
    ]
    scans = bind.execute(
        sa.text(
            "SELECT agent_id, sequence, scan_sha256, answered_us, outcome, reason, message, redemption_id "
            "FROM agent_scans"
        )
    ).all()
    for s in scans:
        accepted = s.outcome == "accepted"
        rows.append(
            {
                "principal_id": s.agent_id,
                "method": "StreamScans",
                "request_id": str(s.sequence),
                "request_sha256": bytes(s.scan_sha256),
                "response": s.redemption_id.encode() if accepted else b"",
                "refusal": None if accepted else json.dumps({"reason": s.reason, "message": s.message, "metadata": {}}),
                "created_us": s.answered_us,
            }
        )
    enrolled = bind.execute(
        sa.text(
            "SELECT t.token_id, t.used_us, a.agent_id, a.public_key FROM enrolment_tokens t "
            "JOIN agents a ON a.agent_id = t.agent_id"
        )
    ).all()
    rows += [
        {
            "principal_id": e.token_id,
            "method": "EnrolAgent",
            "request_id": e.token_id,
            "request_sha256": hashlib.sha256(bytes(e.public_key)).digest(),
            "response": e.agent_id.encode(),
            "refusal": None,
            "created_us": e.used_us,
        }
        for e in enrolled
    ]
    _insert_missing(bind, rows)

    with op.batch_alter_table("agent_scans") as batch:
        for column in ("message", "campaign_name", "prize_description", "uses_remaining"):
            batch.drop_column(column)


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("agent_scans") as batch:
        batch.add_column(sa.Column("message", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("campaign_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("prize_description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("uses_remaining", sa.Integer(), nullable=True))
    bind.execute(
        sa.text(
            "UPDATE agent_scans SET campaign_name = (SELECT name FROM campaigns c "
            "WHERE c.campaign_id = agent_scans.campaign_id), prize_description = (SELECT prize_description "
            "FROM campaigns c WHERE c.campaign_id = agent_scans.campaign_id), uses_remaining = (SELECT "
            "uses_remaining FROM redemptions r WHERE r.redemption_id = agent_scans.redemption_id)"
        )
    )
    bind.execute(
        sa.text(
            "UPDATE agent_scans SET message = CASE WHEN outcome = 'accepted' THEN 'prize: ' || prize_description "
            "WHEN outcome = 'not_a_voucher' THEN 'not a voucher code' ELSE coalesce(reason, '') END"
        )
    )
    # Before this revision a redemption's and a scan's answers lived with them, and enrolments had none.
    bind.execute(
        sa.text(
            "DELETE FROM idempotency WHERE method IN ('StreamScans', 'EnrolAgent') "
            "OR (method = 'Redeem' AND refusal IS NULL)"
        )
    )
    with op.batch_alter_table("idempotency") as batch:
        batch.add_column(sa.Column("status_code", sa.Integer(), nullable=False, server_default="0"))
    _rewrite_refusals(
        bind,
        answers.c.refusal,
        lambda refusal: {"status_code": _CODES[json.loads(refusal)["reason"]], "response": _status_bytes(refusal)},
    )
    with op.batch_alter_table("idempotency") as batch:
        batch.drop_column("refusal")
