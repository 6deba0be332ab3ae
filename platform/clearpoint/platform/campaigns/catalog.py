"""A partner's campaigns: created, found (only by whom may see them) and listed, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clearpoint.platform.campaigns.records import Campaign, CampaignSpec
from clearpoint.platform.campaigns.rules import check_spec
from clearpoint.platform.campaigns.tables import campaign_stores, campaigns
from clearpoint.platform.core import ids
from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.core.principals import Principal
from sqlalchemy import and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection


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


def check_campaign_id(campaign_id: str) -> None:
    if not ids.is_id("cmp", campaign_id):
        raise field_invalid("campaign_id", "campaign_id must look like cmp_ followed by 12 hex digits")


async def get(conn: AsyncConnection, viewer: Principal, campaign_id: str) -> Campaign:
    """The campaign if the viewer may see it; a partner never learns of another partner's campaigns."""
    check_campaign_id(campaign_id)
    row = (await conn.execute(select(campaigns).where(campaigns.c.campaign_id == campaign_id))).first()
    if row is None or not (viewer.is_operator or row.partner_id == viewer.partner_id):
        # Another partner's campaign is refused exactly as one that does not exist: no existence oracle.
        raise Refusal(Reason.CAMPAIGN_UNKNOWN, f"no campaign {campaign_id}")
    stores = (
        await conn.scalars(select(campaign_stores.c.store_id).where(campaign_stores.c.campaign_id == campaign_id))
    ).all()
    return _campaign(row, stores)


def _campaign(row: Any, stores: Sequence[str]) -> Campaign:
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
