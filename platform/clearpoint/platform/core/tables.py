"""The one MetaData every room's tables join, and core's own table: the first answer to each request.

Times are integer microseconds since the Unix epoch (UTC), as everywhere in the platform.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, LargeBinary, MetaData, String, Table, Text

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

first_answers = Table(
    "idempotency",
    metadata,
    # Whose request (a partner, or an agent for its scans), to which method, under which id.
    Column("principal_id", String(32), primary_key=True),
    Column("method", String(64), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    # SHA-256 of the request's fields: a replay matches it; a reused request_id with other fields does not.
    Column("request_sha256", LargeBinary(32), nullable=False),
    # The answer, encoded by whoever made it (the core never reads it); empty for a refusal.
    Column("response", LargeBinary, nullable=False),
    # A refusal as JSON (core.errors.Refusal.to_json), or NULL for an answer.
    Column("refusal", Text),
    Column("created_us", BigInteger, nullable=False),
)
