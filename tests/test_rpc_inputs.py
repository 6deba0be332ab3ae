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


async def test_what_no_database_can_store_is_refused_naming_the_field(
    platform: RunningPlatform, partner: Client
) -> None:
    """NUL characters and times outside protobuf's range are FIELD_INVALID on both databases (not
    INTERNAL on PostgreSQL and stored on SQLite), and nothing of such a request is kept."""
    from clearpoint.v1 import campaigns_pb2
    from google.protobuf import timestamp_pb2

    from tests.helpers import HOUR_US, rid, ts

    now = platform.clock()
    fine = dict(
        name="Spring",
        prize_description="a prize",
        valid_from=ts(now - HOUR_US),
        valid_until=ts(now + HOUR_US),
        total_stock=10,
        uses_per_voucher=1,
    )
    bad_cases = {
        "name": {"name": "Spr\x00ing"},
        "prize_description": {"prize_description": "\x00"},
        "store_ids": {"store_ids": ["store-1", "st\x00re"]},
        "valid_until": {"valid_until": timestamp_pb2.Timestamp(seconds=2**62)},
        "valid_from": {"valid_from": timestamp_pb2.Timestamp(seconds=0, nanos=-1)},
    }
    bad_cases["valid_until "] = {"valid_until": timestamp_pb2.Timestamp(seconds=1, nanos=2 * 10**9)}
    for field, change in bad_cases.items():
        request = campaigns_pb2.CreateCampaignRequest(request_id=rid(), **(fine | change))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await partner.campaigns.CreateCampaign(request, metadata=partner.metadata)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.value.details())
        refusal = refusal_of(err.value)
        assert refusal.reason == "FIELD_INVALID" and refusal.metadata.get("field") == field.strip(), refusal
    listed = await partner.campaigns.ListCampaigns(campaigns_pb2.ListCampaignsRequest(), metadata=partner.metadata)
    assert listed.campaigns == [], "a refused campaign was stored"

    campaign = await partner.campaign(now, rollback_window_s=3600)
    (voucher,) = await partner.issue(campaign.campaign_id, 1)
    redeemed = await partner.redeem(voucher.code)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await partner.redemption.RollbackRedemption(
            redemption_pb2.RollbackRedemptionRequest(
                request_id=rid(), redemption_id=redeemed.redemption.redemption_id, reason="oops\x00"
            ),
            metadata=partner.metadata,
        )
    assert refusal_of(err.value).reason == "FIELD_INVALID"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await partner.redeem(voucher.code, store_id="store\x00")
    assert refusal_of(err.value).reason == "FIELD_INVALID"


async def test_every_unary_method_refuses_garbage_and_wrong_keys_cleanly(platform: RunningPlatform) -> None:
    """Each unary RPC of every registered service (new ones included, by construction): garbage
    bytes and a cut-off message are INVALID_ARGUMENT, an empty request and a wrong key get a clean
    status, never INTERNAL or UNKNOWN; and the platform still serves after all of it."""
    from clearpoint.platform.api.registry import SERVICES

    operator = platform.operator()
    stranger = platform.client("cpk_000000000000_" + "x" * 43)
    checked = 0
    for service in SERVICES:
        for method in service.descriptor.methods:
            if method.client_streaming or method.server_streaming:
                continue
            path = f"/{service.name}/{method.name}"
            for payload in (b"\xff" * 40, b"\x0a\x40short"):  # not protobuf; a field cut short
                assert await _raw_call(operator, path, payload) == grpc.StatusCode.INVALID_ARGUMENT, path
            try:
                await operator.channel.unary_unary(
                    path, request_serializer=lambda b: b, response_deserializer=lambda b: b
                )(b"", metadata=operator.metadata, timeout=10)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (path, exc)
            if service.policy()[path].api_key:
                assert await _raw_call(stranger, path, b"") == grpc.StatusCode.UNAUTHENTICATED, path
            checked += 1
    assert checked >= 40
    me = await operator.partners.WhoAmI(partners_pb2.WhoAmIRequest(), metadata=operator.metadata)
    assert me.partner.role == partners_pb2.ROLE_OPERATOR
