"""Issuer keys: public halves in clear, private halves sealed under the platform's master key."""

from __future__ import annotations

from clearpoint.platform.core.tables import metadata
from sqlalchemy import BigInteger, CheckConstraint, Column, Index, Integer, LargeBinary, String, Table

issuer_keys = Table(
    "issuer_keys",
    metadata,
    Column("kid", String(8), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("public_key", LargeBinary(32), nullable=False),
    # AES-256-GCM ciphertext of the raw private key under the platform's master key (nonce || ct).
    Column("private_key_sealed", LargeBinary, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("retired_us", BigInteger),
    CheckConstraint("state IN ('active', 'standby', 'rotated', 'retired')", name="state"),
)
# At most one active key, enforced by the database rather than by code paths.
Index(
    "uq_issuer_keys_one_active",
    issuer_keys.c.state,
    unique=True,
    sqlite_where=issuer_keys.c.state == "active",
    postgresql_where=issuer_keys.c.state == "active",
)

# One row: what the database keeps to recognise the master key it was set up with.
master_key_check = Table(
    "master_key_check",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("check_value", LargeBinary(32), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="one_row"),
)
