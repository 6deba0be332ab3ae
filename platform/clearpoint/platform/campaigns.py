"""Campaigns: rules for a valid campaign, ownership, issuing vouchers, and progress counts."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from clearpoint.formats import voucher_codes as tokens
from clearpoint.platform import ids
from clearpoint.platform.auth import Principal
from clearpoint.platform.errors import Refusal, field_invalid
from clearpoint.platform.keystore import Signer
from clearpoint.platform.records import Campaign, CampaignSpec, Progress
from clearpoint.platform.schema import campaign_refusals, campaign_stores, campaigns, vouchers
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

MAX_ISSUE = 10_000
REFUSAL_SHARDS = 8
MAX_STORES = 10_000
MAX_WINDOW_US = 30 * 86_400 * 1_000_000
DEFAULT_ROLLBACK_WINDOW_US = 15 * 60 * 1_000_000
# Codes carry their validity as whole seconds (CWT NumericDate); keep the window within what they can say.
MAX_TIME_US = (2**32 - 1) * 1_000_000


def check_spec(spec: CampaignSpec) -> CampaignSpec:
    """Refuse a campaign a partner could not have meant; fill defaults."""
    if not 1 <= len(spec.name) <= 200:
        raise field_invalid("name", "name must be 1 to 200 characters")
    if not 1 <= len(spec.prize_description) <= 1000:
        raise field_invalid("prize_description", "prize_description must be 1 to 1000 characters")
    if spec.valid_from_us <= 0 or spec.valid_from_us >= MAX_TIME_US:
        raise field_invalid("valid_from", "valid_from is required and must fall between 1970 and 2106")
    if spec.valid_until_us <= spec.valid_from_us or spec.valid_until_us >= MAX_TIME_US:
        raise field_invalid("valid_until", "valid_until is required, after valid_from, and before 2106")
    if spec.valid_until_us // 1_000_000 <= spec.valid_from_us // 1_000_000:
        raise field_invalid("valid_until", "the validity window must span at least one whole second")
    if not 1 <= spec.total_stock <= 2**53:
        raise field_invalid("total_stock", "total_stock must be at least 1")
    if not 0 <= spec.uses_per_voucher <= 1_000_000:
        raise field_invalid("uses_per_voucher", "uses_per_voucher must be 1 to 1000000 (0 means 1)")
    if not 0 <= spec.rollback_window_us <= MAX_WINDOW_US:
        raise field_invalid("rollback_window", "rollback_window must be 0 to 30 days")
    if len(spec.store_ids) > MAX_STORES:
        raise field_invalid("store_ids", f"at most {MAX_STORES} store ids")
    for store in spec.store_ids:
        check_store_id(store, "store_ids")
    return CampaignSpec(
        name=spec.name,
        prize_description=spec.prize_description,
        valid_from_us=spec.valid_from_us,
        valid_until_us=spec.valid_until_us,
        store_ids=tuple(sorted(set(spec.store_ids))),
        total_stock=spec.total_stock,
        uses_per_voucher=spec.uses_per_voucher or 1,
        rollback_window_us=spec.rollback_window_us,
    )


def check_store_id(store: str, field: str = "store_id") -> None:
    if not 1 <= len(store) <= 64 or not store.isprintable() or store.strip() != store:
        raise field_invalid(field, "a store id is 1 to 64 printable characters without outer spaces")


async def create(conn: AsyncConnection, owner: Principal, spec: CampaignSpec, now_us: int) -> Campaign:
    spec = check_spec(spec)
    campaign_id = ids.new_id("cmp")
    await conn.execute(
        insert(campaigns).values(
            campaign_id=campaign_id,
            partner_id=owner.partner_id,
            name=spec.name,
            prize_description=spec.prize_description,
            valid_from_us=spec.valid_from_us,
            valid_until_us=spec.valid_until_us,
            all_stores=0 if spec.store_ids else 1,
            total_stock=spec.total_stock,
            uses_per_voucher=spec.uses_per_voucher,
            rollback_window_us=spec.rollback_window_us,
            created_us=now_us,
        )
    )
    if spec.store_ids:
        await conn.execute(
            insert(campaign_stores), [{"campaign_id": campaign_id, "store_id": s} for s in spec.store_ids]
        )
    return Campaign(campaign_id, owner.partner_id, spec, now_us)


def _check_campaign_id(campaign_id: str) -> None:
    if not ids.is_id("cmp", campaign_id):
        raise field_invalid("campaign_id", "campaign_id must look like cmp_ followed by 12 hex digits")


async def get(conn: AsyncConnection, viewer: Principal, campaign_id: str, *, for_update: bool = False) -> Campaign:
    """The campaign if the viewer may see it; a partner never learns of another partner's campaigns."""
    _check_campaign_id(campaign_id)
    row = (await conn.execute(select(campaigns).where(campaigns.c.campaign_id == campaign_id))).first()
    if row is None:
        raise Refusal("CAMPAIGN_UNKNOWN", f"no campaign {campaign_id}")
    if not viewer.is_operator and row.partner_id != viewer.partner_id:
        raise Refusal("PERMISSION_DENIED", f"campaign {campaign_id} belongs to another partner")
    stores = (
        await conn.scalars(select(campaign_stores.c.store_id).where(campaign_stores.c.campaign_id == campaign_id))
    ).all()
    return _campaign(row, stores)


def _campaign(row, stores: Sequence[str]) -> Campaign:  # type: ignore[no-untyped-def]
    spec = CampaignSpec(
        name=row.name,
        prize_description=row.prize_description,
        valid_from_us=row.valid_from_us,
        valid_until_us=row.valid_until_us,
        store_ids=tuple(sorted(stores)),
        total_stock=row.total_stock,
        uses_per_voucher=row.uses_per_voucher,
        rollback_window_us=row.rollback_window_us,
    )
    return Campaign(row.campaign_id, row.partner_id, spec, row.created_us)


async def list_page(
    conn: AsyncConnection, viewer: Principal, limit: int, after: tuple[int, str] | None
) -> list[Campaign]:
    """Newest first; `after` is the (created_us, campaign_id) of the last campaign already shown."""
    query = select(campaigns).order_by(campaigns.c.created_us.desc(), campaigns.c.campaign_id.desc()).limit(limit)
    if not viewer.is_operator:
        query = query.where(campaigns.c.partner_id == viewer.partner_id)
    if after is not None:
        query = query.where(
            or_(
                campaigns.c.created_us < after[0],
                and_(campaigns.c.created_us == after[0], campaigns.c.campaign_id < after[1]),
            )
        )
    rows = (await conn.execute(query)).all()
    result = []
    for row in rows:
        stores = (
            await conn.scalars(
                select(campaign_stores.c.store_id).where(campaign_stores.c.campaign_id == row.campaign_id)
            )
        ).all()
        result.append(_campaign(row, stores))
    return result


def sign_code(campaign: Campaign, voucher_id: str, signer: Signer) -> str:
    """A voucher's code; Ed25519 is deterministic, so signing again gives the same code."""
    spec = campaign.spec
    claims = tokens.VoucherClaims(
        voucher_id=ids.to_bytes("vch", voucher_id),
        campaign_id=ids.to_bytes("cmp", campaign.campaign_id),
        not_before=spec.valid_from_us // 1_000_000,
        expires=-(-spec.valid_until_us // 1_000_000),
    )
    return tokens.encode_code(claims, bytes.fromhex(signer.kid), signer.private_key)


async def issue(
    conn: AsyncConnection, campaign: Campaign, count: int, signer: Signer, now_us: int
) -> list[tuple[str, str]]:
    """Create `count` vouchers and sign their codes; returns (voucher id, code) in issue order."""
    if not 1 <= count <= MAX_ISSUE:
        raise field_invalid("count", f"count must be 1 to {MAX_ISSUE}")
    spec = campaign.spec
    issued: list[tuple[str, str]] = []
    rows = []
    for _ in range(count):
        voucher_id = ids.from_bytes("vch", secrets.token_bytes(ids.VOUCHER_BYTES))
        issued.append((voucher_id, sign_code(campaign, voucher_id, signer)))
        rows.append(
            {
                "voucher_id": voucher_id,
                "campaign_id": campaign.campaign_id,
                "kid": signer.kid,
                "uses_allowed": spec.uses_per_voucher,
                "issued_us": now_us,
            }
        )
    await conn.execute(insert(vouchers), rows)
    await conn.execute(
        update(campaigns)
        .where(campaigns.c.campaign_id == campaign.campaign_id)
        .values(issued=campaigns.c.issued + count)
    )
    return issued


async def progress(conn: AsyncConnection, campaign_id: str, now_us: int) -> Progress:
    row = (
        await conn.execute(
            select(campaigns.c.issued, campaigns.c.redeemed, campaigns.c.rolled_back, campaigns.c.total_stock).where(
                campaigns.c.campaign_id == campaign_id
            )
        )
    ).one()
    rows = await conn.execute(
        select(campaign_refusals.c.reason, func.sum(campaign_refusals.c.count))
        .where(campaign_refusals.c.campaign_id == campaign_id)
        .group_by(campaign_refusals.c.reason)
    )
    refused = {reason: int(count) for reason, count in rows}
    return Progress(
        campaign_id=campaign_id,
        issued=row.issued,
        redeemed=row.redeemed,
        rolled_back=row.rolled_back,
        remaining_stock=row.total_stock - (row.redeemed - row.rolled_back),
        refused=refused,
        as_of_us=now_us,
    )


async def count_refusal(conn: AsyncConnection, campaign_id: str, reason: str) -> None:
    """Add one refusal, as one upsert (both SQLite and PostgreSQL speak ON CONFLICT)."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    shard = secrets.randbelow(REFUSAL_SHARDS)
    stmt = dialect_insert(campaign_refusals).values(campaign_id=campaign_id, reason=reason, shard=shard, count=1)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[campaign_refusals.c.campaign_id, campaign_refusals.c.reason, campaign_refusals.c.shard],
            set_={"count": campaign_refusals.c.count + 1},
        )
    )
