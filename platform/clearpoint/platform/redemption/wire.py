"""Redemptions, prize claims, vouchers and previews as clearpoint.v1 messages."""

from __future__ import annotations

from clearpoint.platform.edge import reason_enum, to_timestamp
from clearpoint.platform.redemption.records import Preview, PrizeClaim, Redemption, Voucher
from clearpoint.v1 import redemption_pb2

R = redemption_pb2


def claim(c: PrizeClaim) -> R.PrizeClaim:
    return R.PrizeClaim(
        campaign_id=c.campaign_id,
        campaign_name=c.campaign_name,
        prize_description=c.prize_description,
        voucher_id=c.voucher_id,
        uses_remaining=c.uses_remaining,
    )


def redemption(r: Redemption) -> R.Redemption:
    return R.Redemption(
        redemption_id=r.redemption_id,
        voucher_id=r.voucher_id,
        campaign_id=r.campaign_id,
        store_id=r.store_id,
        redeemed_by=r.redeemed_by,
        redeem_time=to_timestamp(r.redeemed_us),
        state=R.REDEMPTION_STATE_ROLLED_BACK if r.rolled_back_us is not None else R.REDEMPTION_STATE_REDEEMED,
        rollback_time=to_timestamp(r.rolled_back_us),
        rollback_reason=r.rollback_reason or "",
        request_id=r.request_id,
    )


def voucher(v: Voucher) -> R.Voucher:
    return R.Voucher(
        voucher_id=v.voucher_id,
        campaign_id=v.campaign_id,
        key_id=v.kid,
        uses_allowed=v.uses_allowed,
        uses_made=v.uses_made,
        issue_time=to_timestamp(v.issued_us),
    )


def preview(p: Preview) -> R.ValidateCodeResponse:
    return R.ValidateCodeResponse(
        redeemable=p.reason is None,
        reason=reason_enum(p.reason),
        message=p.message,
        claim=claim(p.claim) if p.claim else None,
        valid_from=to_timestamp(p.valid_from_us),
        valid_until=to_timestamp(p.valid_until_us),
    )
