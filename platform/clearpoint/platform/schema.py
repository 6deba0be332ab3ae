"""Database tables, in SQLAlchemy Core so hot paths can be written as single statements.

Times are integer microseconds since the Unix epoch (UTC): one representation that compares the
same on SQLite and PostgreSQL and needs no timezone handling at the driver.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

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
)

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

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", String(32), primary_key=True),
    Column("partner_id", String(32), ForeignKey("partners.partner_id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prize_description", Text, nullable=False),
    Column("valid_from_us", BigInteger, nullable=False),
    Column("valid_until_us", BigInteger, nullable=False),
    Column("all_stores", Integer, nullable=False),
    Column("total_stock", BigInteger, nullable=False),
    Column("uses_per_voucher", Integer, nullable=False),
    Column("rollback_window_us", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # Counters kept in the same row the redemption statement locks, so stock checks are atomic.
    Column("issued", BigInteger, nullable=False, server_default="0"),
    Column("redeemed", BigInteger, nullable=False, server_default="0"),
    Column("rolled_back", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("redeemed - rolled_back <= total_stock", name="stock"),
    CheckConstraint("rolled_back <= redeemed", name="rolled_back"),
    CheckConstraint("valid_from_us < valid_until_us", name="window"),
)
Index("ix_campaigns_partner_created", campaigns.c.partner_id, campaigns.c.created_us)

campaign_stores = Table(
    "campaign_stores",
    metadata,
    Column("campaign_id", String(32), ForeignKey("campaigns.campaign_id"), primary_key=True),
    Column("store_id", String(64), primary_key=True),
)

campaign_refusals = Table(
    "campaign_refusals",
    metadata,
    Column("campaign_id", String(32), ForeignKey("campaigns.campaign_id"), primary_key=True),
    Column("reason", String(48), primary_key=True),
    # Spread over a few rows so concurrent refusals do not queue on one row lock; readers sum them.
    Column("shard", Integer, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

vouchers = Table(
    "vouchers",
    metadata,
    Column("voucher_id", String(32), primary_key=True),
    Column("campaign_id", String(32), ForeignKey("campaigns.campaign_id"), nullable=False),
    Column("kid", String(8), ForeignKey("issuer_keys.kid"), nullable=False),
    Column("uses_allowed", Integer, nullable=False),
    Column("uses_made", Integer, nullable=False, server_default="0"),
    Column("issued_us", BigInteger, nullable=False),
    CheckConstraint("uses_made >= 0 AND uses_made <= uses_allowed", name="uses"),
)
Index("ix_vouchers_campaign", vouchers.c.campaign_id)

redemptions = Table(
    "redemptions",
    metadata,
    Column("redemption_id", String(32), primary_key=True),
    Column("voucher_id", String(32), ForeignKey("vouchers.voucher_id"), nullable=False),
    Column("campaign_id", String(32), ForeignKey("campaigns.campaign_id"), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("redeemed_by", String(32), ForeignKey("partners.partner_id"), nullable=False),
    Column("request_id", String(128), nullable=False),
    # SHA-256 of the request's fields, so a reused request_id with other fields is told apart.
    Column("request_sha256", LargeBinary(32), nullable=False),
    Column("redeemed_us", BigInteger, nullable=False),
    # The voucher's uses left right after this redemption, part of the answer a replay repeats.
    Column("uses_remaining", Integer, nullable=False),
    Column("rolled_back_us", BigInteger),
    Column("rollback_reason", Text),
    UniqueConstraint("redeemed_by", "request_id"),
)
Index("ix_redemptions_campaign_time", redemptions.c.campaign_id, redemptions.c.redeemed_us)

idempotency = Table(
    "idempotency",
    metadata,
    # The first answer to a mutating request, so a replay returns it and changes nothing.
    Column("principal_id", String(32), primary_key=True),
    Column("method", String(64), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("request_sha256", LargeBinary(32), nullable=False),
    Column("status_code", Integer, nullable=False),
    # On success the serialized response message; on refusal the serialized google.rpc.Status.
    Column("response", LargeBinary, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

enrolment_tokens = Table(
    "enrolment_tokens",
    metadata,
    # The public part of the token ("cpe_<token_id>_<secret>"); the secret is stored only as a hash.
    Column("token_id", String(32), primary_key=True),
    Column("secret_sha256", LargeBinary(32), nullable=False),
    Column("partner_id", String(32), ForeignKey("partners.partner_id"), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    # Set once, by the conditional UPDATE that spends the token: single use is the database's rule.
    Column("used_us", BigInteger),
    Column("agent_id", String(32)),
)

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(32), primary_key=True),
    Column("partner_id", String(32), ForeignKey("partners.partner_id"), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("public_key", LargeBinary(32), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("token_id", String(32), ForeignKey("enrolment_tokens.token_id"), nullable=False, unique=True),
    Column("enrolled_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger),
    CheckConstraint("state IN ('active', 'revoked')", name="state"),
)

agent_scans = Table(
    "agent_scans",
    metadata,
    # One row per (agent, sequence): the dedup key of the at-least-once stream, and the first answer.
    Column("agent_id", String(32), ForeignKey("agents.agent_id"), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("scanner_id", String(64), nullable=False),
    Column("scan_us", BigInteger, nullable=False),
    Column("symbology", String(3), nullable=False),
    Column("data", LargeBinary, nullable=False),
    # SHA-256 of the signed canonical bytes: a resend matches it; a reused sequence does not.
    Column("scan_sha256", LargeBinary(32), nullable=False),
    # When the scan came off the agent's stream, and when it was first answered.
    Column("received_us", BigInteger, nullable=False),
    Column("answered_us", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(48)),
    Column("message", Text, nullable=False),
    Column("redemption_id", String(32)),
    Column("campaign_id", String(32)),
    Column("campaign_name", String(200)),
    Column("prize_description", Text),
    Column("voucher_id", String(32)),
    Column("uses_remaining", Integer),
    CheckConstraint("outcome IN ('accepted', 'refused', 'not_a_voucher')", name="outcome"),
)

scan_rejections = Table(
    "scan_rejections",
    metadata,
    # Scans that were not applied at all (bad signature, unknown or revoked agent, reused sequence):
    # kept as evidence, since they may be an attack.
    Column("rejection_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("agent_id", String(64), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("reason", String(48), nullable=False),
    Column("detail", Text, nullable=False),
    Column("scan_sha256", LargeBinary(32)),
    Column("received_us", BigInteger, nullable=False),
)
Index("ix_scan_rejections_agent", scan_rejections.c.agent_id, scan_rejections.c.received_us)
