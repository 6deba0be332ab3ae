"""Rolling a redemption back: the voucher's use and the campaign's prize are given back, once.

Only within the campaign's rollback window, and only by the partner that redeemed or owns the
campaign (an operator may too); a redemption the caller may not see is reported as unknown.
"""

from __future__ import annotations

from clearpoint.platform.campaigns.tables import campaigns, vouchers
from clearpoint.platform.core import ids
from clearpoint.platform.core.clock import SECOND_US
from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.core.principals import Principal
from clearpoint.platform.redemption.records import Redemption
from clearpoint.platform.redemption.redeemer import redemption_of
from clearpoint.platform.redemption.tables import redemptions
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection


def check(redemption_id: str, reason: str) -> None:
    if not ids.is_id("rdm", redemption_id):
        raise field_invalid("redemption_id", "redemption_id must look like rdm_ followed by 16 hex digits")
    if not 1 <= len(reason) <= 500:
        raise field_invalid("reason", "reason must be 1 to 500 characters")


async def rollback(
    conn: AsyncConnection, principal: Principal, redemption_id: str, reason: str, now_us: int
) -> Redemption:
    """Undo a redemption inside the caller's write transaction (the caller keeps it exactly-once)."""
    check(redemption_id, reason)
    row = (
        await conn.execute(
            select(redemptions, campaigns.c.partner_id, campaigns.c.rollback_window_us)
            .join(campaigns, campaigns.c.campaign_id == redemptions.c.campaign_id)
            .where(redemptions.c.redemption_id == redemption_id)
        )
    ).first()
    if row is None or not (principal.is_operator or principal.partner_id in (row.redeemed_by, row.partner_id)):
        raise Refusal(Reason.REDEMPTION_UNKNOWN, f"no redemption {redemption_id}")
    if row.rolled_back_us is not None:
        raise Refusal(Reason.ALREADY_ROLLED_BACK, f"redemption {redemption_id} was already rolled back")
    if now_us - row.redeemed_us > row.rollback_window_us:
        raise Refusal(
            Reason.ROLLBACK_WINDOW_CLOSED,
            f"redemption {redemption_id} is older than the campaign's rollback window "
            f"({row.rollback_window_us // SECOND_US} s)",
        )
    done = (
        await conn.execute(
            update(redemptions)
            .where(redemptions.c.redemption_id == redemption_id, redemptions.c.rolled_back_us.is_(None))
            .values(rolled_back_us=now_us, rollback_reason=reason)
            .returning(*redemptions.c)
        )
    ).first()
    if done is None:
        raise Refusal(Reason.ALREADY_ROLLED_BACK, f"redemption {redemption_id} was already rolled back")
    await conn.execute(
        update(vouchers).where(vouchers.c.voucher_id == row.voucher_id).values(uses_made=vouchers.c.uses_made - 1)
    )
    await conn.execute(
        update(campaigns)
        .where(campaigns.c.campaign_id == row.campaign_id)
        .values(rolled_back=campaigns.c.rolled_back + 1)
    )
    return redemption_of(done)
