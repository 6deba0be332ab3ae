"""Reading vouchers and redemptions, each only by the partner whose campaign it belongs to."""

from __future__ import annotations

from clearpoint.platform.campaigns.tables import campaigns, vouchers
from clearpoint.platform.core import ids
from clearpoint.platform.core.errors import Reason, field_invalid
from clearpoint.platform.core.principals import Principal
from clearpoint.platform.redemption.codes import refusal
from clearpoint.platform.redemption.records import Redemption, Voucher
from clearpoint.platform.redemption.redeemer import redemption_of
from clearpoint.platform.redemption.tables import redemptions
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection


def check_voucher_id(voucher_id: str) -> None:
    if not ids.is_id("vch", voucher_id):
        raise field_invalid("voucher_id", "give a voucher_id (vch_ followed by 16 hex digits) or a code")


async def voucher(conn: AsyncConnection, viewer: Principal, voucher_id: str) -> Voucher:
    row = (
        await conn.execute(
            select(vouchers, campaigns.c.partner_id)
            .join(campaigns, campaigns.c.campaign_id == vouchers.c.campaign_id)
            .where(vouchers.c.voucher_id == voucher_id)
        )
    ).first()
    if row is None or not (viewer.is_operator or row.partner_id == viewer.partner_id):
        raise refusal(Reason.VOUCHER_UNKNOWN)  # another partner's voucher looks like no voucher at all
    return Voucher(row.voucher_id, row.campaign_id, row.kid, row.uses_allowed, row.uses_made, row.issued_us)


async def redemptions_page(
    conn: AsyncConnection, campaign_id: str, limit: int, after: tuple[int, str] | None
) -> list[Redemption]:
    """Newest first; `after` is the (redeemed_us, redemption_id) of the last redemption already shown."""
    query = (
        select(redemptions)
        .where(redemptions.c.campaign_id == campaign_id)
        .order_by(redemptions.c.redeemed_us.desc(), redemptions.c.redemption_id.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            or_(
                redemptions.c.redeemed_us < after[0],
                and_(redemptions.c.redeemed_us == after[0], redemptions.c.redemption_id < after[1]),
            )
        )
    return [redemption_of(r) for r in await conn.execute(query)]
