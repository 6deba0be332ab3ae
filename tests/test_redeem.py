"""Issuing and redeeming over real gRPC: exactly once, idempotent replay, refusals with reasons."""

from __future__ import annotations

import grpc
import pytest
from clearpoint.v1 import errors_pb2, redemption_pb2

from tests.helpers import Client, RunningPlatform, refusal_of, rid


async def test_issue_redeem_refuse_second(platform: RunningPlatform, partner: Client) -> None:
    campaign = await partner.campaign(platform.clock())
    (voucher,) = await partner.issue(campaign.campaign_id, 1)
    assert voucher.code.startswith("CP1:")

    first = await partner.redeem(voucher.code)
    assert first.claim.prize_description == "One free 0.5 l cola"
    assert first.claim.voucher_id == voucher.voucher_id
    assert first.claim.uses_remaining == 0
    assert first.redemption.state == redemption_pb2.REDEMPTION_STATE_REDEEMED
    assert not first.replayed

    refused = await partner.redeem_refusal(voucher.code)
    assert refused.reason == "VOUCHER_ALREADY_REDEEMED"


async def test_the_store_that_lost_learns_where_and_when(platform: RunningPlatform, partner: Client) -> None:
    """VOUCHER_ALREADY_REDEEMED says where and when the voucher's last use was made, in ErrorInfo
    metadata (store_id, redeemed_at in RFC 3339 UTC) and in the message; a replay says the same."""
    from datetime import datetime

    campaign = await partner.campaign(platform.clock(), uses_per_voucher=2)
    (voucher,) = await partner.issue(campaign.campaign_id, 1)
    await partner.redeem(voucher.code, store_id="store-7")
    platform.clock.advance(90)
    second = await partner.redeem(voucher.code, store_id="store-8")
    request_id = rid()
    refused = await partner.redeem_refusal(voucher.code, store_id="store-9", request_id=request_id)
    assert refused.reason == "VOUCHER_ALREADY_REDEEMED"
    assert refused.metadata["store_id"] == "store-8"
    when = datetime.fromisoformat(refused.metadata["redeemed_at"].replace("Z", "+00:00"))
    assert int(when.timestamp()) == second.redemption.redeem_time.seconds
    assert "at store-8, " in refused.message
    again = await partner.redeem_refusal(voucher.code, store_id="store-9", request_id=request_id)
    assert (again.reason, again.metadata, again.message) == (refused.reason, refused.metadata, refused.message)


async def test_replay_returns_first_answer_and_changes_nothing(platform: RunningPlatform, partner: Client) -> None:
    campaign = await partner.campaign(platform.clock(), uses_per_voucher=3)
    (voucher,) = await partner.issue(campaign.campaign_id, 1)
    request_id = rid()
    first = await partner.redeem(voucher.code, request_id=request_id)
    again = await partner.redeem(voucher.code, request_id=request_id)
    assert again.replayed
    assert again.redemption == first.redemption
    assert again.claim == first.claim
    got = await partner.redemption.GetVoucher(
        redemption_pb2.GetVoucherRequest(voucher_id=voucher.voucher_id), metadata=partner.metadata
    )
    assert got.voucher.uses_made == 1

    reused = await partner.redeem_refusal(voucher.code, store_id="store-2", request_id=request_id)
    assert reused.reason == "REQUEST_ID_REUSED"


async def test_refusal_replays_as_refusal(platform: RunningPlatform, partner: Client) -> None:
    campaign = await partner.campaign(platform.clock(), store_ids=["store-1"])
    (voucher,) = await partner.issue(campaign.campaign_id, 1)
    request_id = rid()
    assert (await partner.redeem_refusal(voucher.code, store_id="store-9", request_id=request_id)).reason == (
        "STORE_NOT_ALLOWED"
    )
    assert (await partner.redeem_refusal(voucher.code, store_id="store-9", request_id=request_id)).reason == (
        "STORE_NOT_ALLOWED"
    )
    ok = await partner.redeem(voucher.code, store_id="store-1")
    assert ok.claim.voucher_id == voucher.voucher_id


async def test_rollback_within_and_outside_window(platform: RunningPlatform, partner: Client) -> None:
    campaign = await partner.campaign(platform.clock(), rollback_window_s=600, total_stock=1)
    v1, v2 = await partner.issue(campaign.campaign_id, 2)
    first = await partner.redeem(v1.code)
    assert (await partner.redeem_refusal(v2.code)).reason == "STOCK_EXHAUSTED"

    platform.clock.advance(599)
    rolled = await partner.redemption.RollbackRedemption(
        redemption_pb2.RollbackRedemptionRequest(
            request_id=rid(), redemption_id=first.redemption.redemption_id, reason="customer changed mind"
        ),
        metadata=partner.metadata,
    )
    assert rolled.redemption.state == redemption_pb2.REDEMPTION_STATE_ROLLED_BACK
    assert rolled.redemption.rollback_reason == "customer changed mind"
    # The use and the prize came back: the same voucher redeems again, and the stock allows it.
    second = await partner.redeem(v1.code)
    assert second.redemption.redemption_id != first.redemption.redemption_id

    platform.clock.advance(601)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await partner.redemption.RollbackRedemption(
            redemption_pb2.RollbackRedemptionRequest(
                request_id=rid(), redemption_id=second.redemption.redemption_id, reason="too late"
            ),
            metadata=partner.metadata,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refusal_of(err.value).reason == "ROLLBACK_WINDOW_CLOSED"


async def test_issue_replay_gives_same_codes_without_keeping_them(platform: RunningPlatform, partner: Client) -> None:
    from clearpoint.platform.core.tables import first_answers as idempotency
    from clearpoint.v1 import campaigns_pb2
    from sqlalchemy import select

    campaign = await partner.campaign(platform.clock())
    request = campaigns_pb2.IssueVouchersRequest(request_id=rid(), campaign_id=campaign.campaign_id, count=3)
    first = await partner.campaigns.IssueVouchers(request, metadata=partner.metadata)
    again = await partner.campaigns.IssueVouchers(request, metadata=partner.metadata)
    assert again == first and all(v.code.startswith("CP1:") for v in again.vouchers)
    async with platform.server.platform.db.read() as conn:
        stored = (
            await conn.execute(select(idempotency.c.response).where(idempotency.c.request_id == request.request_id))
        ).scalar_one()
    assert all(v.code.encode() not in bytes(stored) for v in first.vouchers)
    await partner.redeem(again.vouchers[0].code)


async def test_a_reused_request_id_with_other_fields_is_refused_on_every_mutating_call(
    platform: RunningPlatform, partner: Client
) -> None:
    """Not only Redeem: the same request id with different fields is REQUEST_ID_REUSED, and the
    second request does nothing (replaying the first answer would hide that it was not done)."""
    from clearpoint.v1 import campaigns_pb2

    md = partner.metadata
    campaign = await partner.campaign(platform.clock(), rollback_window_s=3600)

    async def reused(call) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert refusal_of(err.value).reason == "REQUEST_ID_REUSED"

    issue_id = rid()
    first = await partner.campaigns.IssueVouchers(
        campaigns_pb2.IssueVouchersRequest(request_id=issue_id, campaign_id=campaign.campaign_id, count=1), metadata=md
    )
    await reused(
        partner.campaigns.IssueVouchers(
            campaigns_pb2.IssueVouchersRequest(request_id=issue_id, campaign_id=campaign.campaign_id, count=5),
            metadata=md,
        )
    )
    got = await partner.campaigns.GetCampaign(
        campaigns_pb2.GetCampaignRequest(campaign_id=campaign.campaign_id), metadata=md
    )
    assert got.progress.issued == 1, "the second issue made vouchers"

    create_id = rid()
    await partner.campaign(platform.clock(), request_id=create_id, name="First")
    await reused(
        partner.campaigns.CreateCampaign(
            campaigns_pb2.CreateCampaignRequest(
                request_id=create_id,
                name="Second",
                prize_description="x",
                valid_from=campaign.valid_from,
                valid_until=campaign.valid_until,
                total_stock=1,
                uses_per_voucher=1,
            ),
            metadata=md,
        )
    )

    redeemed = await partner.redeem(first.vouchers[0].code)
    rollback_id = rid()
    await partner.redemption.RollbackRedemption(
        redemption_pb2.RollbackRedemptionRequest(
            request_id=rollback_id, redemption_id=redeemed.redemption.redemption_id, reason="till error"
        ),
        metadata=md,
    )
    await reused(
        partner.redemption.RollbackRedemption(
            redemption_pb2.RollbackRedemptionRequest(
                request_id=rollback_id, redemption_id=redeemed.redemption.redemption_id, reason="another reason"
            ),
            metadata=md,
        )
    )


async def test_a_codes_own_expiry_counts_even_inside_its_campaign(platform: RunningPlatform, partner: Client) -> None:
    """A genuine code whose `exp` (or `nbf`) is narrower than its campaign's window is refused by
    its own times, not only by the campaign's: the code is what the issuer vouched for."""
    from clearpoint.formats import voucher_codes

    campaign = await partner.campaign(platform.clock())
    (voucher,) = await partner.issue(campaign.campaign_id, 1)
    parsed = voucher_codes.parse_code(voucher.code)
    now_s = platform.clock() // 1_000_000
    p = platform.server.platform
    async with p.db.read() as conn:
        signer = await p.keys.signer_for(conn, parsed.kid.hex())
    claims = parsed.claims

    def resigned(**times: int) -> str:
        fields = {"not_before": claims.not_before, "expires": claims.expires} | times
        narrowed = voucher_codes.VoucherClaims(claims.voucher_id, claims.campaign_id, **fields)
        return voucher_codes.encode_code(narrowed, parsed.kid, signer.private_key)

    expired, early = resigned(expires=now_s - 1), resigned(not_before=now_s + 3600)
    assert (await partner.redeem_refusal(expired)).reason == "VOUCHER_EXPIRED"
    assert (await partner.redeem_refusal(early)).reason == "VOUCHER_NOT_YET_VALID"
    checked = await partner.redemption.ValidateCode(
        redemption_pb2.ValidateCodeRequest(code=expired, store_id="store-1"), metadata=partner.metadata
    )
    assert checked.reason == errors_pb2.REASON_VOUCHER_EXPIRED
    await partner.redeem(voucher.code)  # the code as issued was never touched


async def test_one_request_id_in_two_partners_or_two_methods_names_two_requests(platform: RunningPlatform) -> None:
    """A request id is the caller's, for one method: two partners (or one partner's campaign, its
    redemption and its rollback) may use the same id, and each is applied, not taken for another's
    replay."""
    first, second = await platform.new_partner(), await platform.new_partner()
    mine = await first.campaign(platform.clock(), request_id="shared-id")
    theirs = await second.campaign(platform.clock())
    (v1,) = await first.issue(mine.campaign_id, 1)
    (v2,) = await second.issue(theirs.campaign_id, 1)
    a = await first.redeem(v1.code, request_id="shared-id")
    b = await second.redeem(v2.code, request_id="shared-id")
    assert not a.replayed and not b.replayed
    assert a.redemption.redemption_id != b.redemption.redemption_id
    assert b.claim.voucher_id == v2.voucher_id
    rolled = await first.redemption.RollbackRedemption(
        redemption_pb2.RollbackRedemptionRequest(
            request_id="shared-id", redemption_id=a.redemption.redemption_id, reason="till error"
        ),
        metadata=first.metadata,
    )
    assert rolled.redemption.state == redemption_pb2.REDEMPTION_STATE_ROLLED_BACK
    again = await first.redeem(v1.code, request_id="another-id")  # the use came back with the rollback
    assert not again.replayed and again.redemption.redemption_id != a.redemption.redemption_id
