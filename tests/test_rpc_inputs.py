"""RPCs fed what a broken or hostile client sends: garbage bytes, truncated and oversized messages;
plus listing and lookup of redemptions and vouchers. The server refuses cleanly and keeps serving."""

from __future__ import annotations

import grpc
import pytest
from clearpoint.v1 import partners_pb2, redemption_pb2

from tests.helpers import Client, RunningPlatform, refusal_of


async def _raw_call(client: Client, method: str, payload: bytes) -> grpc.StatusCode:
    call = client.channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(payload, metadata=client.metadata, timeout=10)
    return err.value.code()


async def test_garbage_truncated_oversized_requests(platform: RunningPlatform, partner: Client) -> None:
    campaign = await partner.campaign(platform.clock())
    (voucher,) = await partner.issue(campaign.campaign_id, 1)
    good = redemption_pb2.RedeemRequest(request_id="r-1", code=voucher.code, store_id="store-1").SerializeToString()
    method = "/clearpoint.v1.RedemptionService/Redeem"

    # Not protobuf at all, and a message cut off in the middle of a field.
    for payload in (b"\xff" * 64, good[: len(good) // 2]):
        assert await _raw_call(partner, method, payload) == grpc.StatusCode.INVALID_ARGUMENT
    # Larger than the server accepts (4 MiB).
    oversized = redemption_pb2.RedeemRequest(request_id="r-2", code="CP1:" + "0" * (5 << 20), store_id="s")
    assert await _raw_call(partner, method, oversized.SerializeToString()) == grpc.StatusCode.RESOURCE_EXHAUSTED
    # An unknown method.
    assert await _raw_call(partner, "/clearpoint.v1.RedemptionService/Nope", b"") == grpc.StatusCode.UNIMPLEMENTED

    # Nothing was redeemed by any of that, and the server still serves.
    ok = await partner.redeem(voucher.code)
    assert ok.claim.voucher_id == voucher.voucher_id
    me = await partner.partners.WhoAmI(partners_pb2.WhoAmIRequest(), metadata=partner.metadata)
    assert me.partner.role == partners_pb2.ROLE_PARTNER


async def test_list_redemptions_paged_and_get_voucher_by_code(platform: RunningPlatform, partner: Client) -> None:
    campaign = await partner.campaign(platform.clock())
    vouchers = await partner.issue(campaign.campaign_id, 5)
    made = set()
    for v in vouchers:
        made.add((await partner.redeem(v.code)).redemption.redemption_id)
        platform.clock.advance(1)
    seen, token = [], ""
    while True:
        page = await partner.redemption.ListRedemptions(
            redemption_pb2.ListRedemptionsRequest(campaign_id=campaign.campaign_id, page_size=2, page_token=token),
            metadata=partner.metadata,
        )
        assert len(page.redemptions) <= 2
        seen += [r.redemption_id for r in page.redemptions]
        token = page.next_page_token
        if not token:
            break
    assert set(seen) == made and len(seen) == 5
    # Newest first.
    times = [
        r.redeem_time.ToMicroseconds()
        for r in (
            await partner.redemption.ListRedemptions(
                redemption_pb2.ListRedemptionsRequest(campaign_id=campaign.campaign_id), metadata=partner.metadata
            )
        ).redemptions
    ]
    assert times == sorted(times, reverse=True)
    # A page token is bound to its query: reusing it for another campaign is refused.
    other = await partner.campaign(platform.clock())
    first = await partner.redemption.ListRedemptions(
        redemption_pb2.ListRedemptionsRequest(campaign_id=campaign.campaign_id, page_size=2), metadata=partner.metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await partner.redemption.ListRedemptions(
            redemption_pb2.ListRedemptionsRequest(campaign_id=other.campaign_id, page_token=first.next_page_token),
            metadata=partner.metadata,
        )
    assert refusal_of(err.value).reason == "PAGE_TOKEN_INVALID"

    by_code = await partner.redemption.GetVoucher(
        redemption_pb2.GetVoucherRequest(code=vouchers[0].code), metadata=partner.metadata
    )
    assert (by_code.voucher.voucher_id, by_code.voucher.uses_made) == (vouchers[0].voucher_id, 1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await partner.redemption.GetVoucher(
            redemption_pb2.GetVoucherRequest(code=vouchers[0].code[:-2]), metadata=partner.metadata
        )
    assert refusal_of(err.value).reason == "CODE_MALFORMED"
