"""The partners table and their API keys (stored as a hash of their secret part)."""

from __future__ import annotations

from clearpoint.platform.core.tables import metadata
from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, LargeBinary, String, Table

partners = Table(
    "partners",
    metadata,
    Column("partner_id", String(32), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    CheckConstraint("role IN ('partner', 'operator')", name="role"),
)

api_keys = Table(
    "api_keys",
    metadata,
    # The public part of the key ("cpk_<key_id>_<secret>"); the secret is stored only as a hash.
    Column("key_id", String(32), primary_key=True),
    Column("partner_id", String(32), ForeignKey("partners.partner_id"), nullable=False),
    Column("secret_sha256", LargeBinary(32), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger),
    # The end of a rotation's overlap: the key stops working then.
    Column("expires_us", BigInteger),
    # The key that replaced it in a rotation.
    Column("replaced_by", String(32)),
)
