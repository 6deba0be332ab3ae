"""Authentication and the role policy, enforced by the interceptor for every call."""

from __future__ import annotations

import grpc
import pytest
from clearpoint.v1 import campaigns_pb2, issuer_keys_pb2, partners_pb2, redemption_pb2

from tests.helpers import Client, RunningPlatform, refusal_of, rid


async def _refused(call, reason: str, code: grpc.StatusCode) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code
    assert refusal_of(err.value).reason == reason


async def test_no_key_bad_key_refused(platform: RunningPlatform) -> None:
    anon = platform.client("")
    req = campaigns_pb2.ListCampaignsRequest()
    await _refused(anon.campaigns.ListCampaigns(req), "UNAUTHENTICATED", grpc.StatusCode.UNAUTHENTICATED)
    key = platform.operator_key
    # Wrong, truncated, extended (a key matched as a prefix would pass these) and oversized keys.
    for bad in (
        "nonsense",
        "cpk_000000000000_" + "A" * 43,
        key[:-1] + "x",
        key[:-1],
        key + "x",
        key + "A" * 8,
        " " + key,
        key + " ",
        "x" * 4000,
    ):
        await _refused(
            anon.campaigns.ListCampaigns(req, metadata=(("x-api-key", bad),)),
            "UNAUTHENTICATED",
            grpc.StatusCode.UNAUTHENTICATED,
        )
    # Past gRPC's soft metadata limit the transport may refuse before any project code runs.
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await anon.campaigns.ListCampaigns(req, metadata=(("x-api-key", "x" * 10_000),))
        assert err.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAUTHENTICATED)
    # The bearer form works too.
    ok = await anon.partners.WhoAmI(
        partners_pb2.WhoAmIRequest(), metadata=(("authorization", f"Bearer {platform.operator_key}"),)
    )
    assert ok.partner.role == partners_pb2.ROLE_OPERATOR


async def test_partner_cannot_administer(platform: RunningPlatform, partner: Client) -> None:
    md = partner.metadata
    denied = grpc.StatusCode.PERMISSION_DENIED
    await _refused(
        partner.keys.CreateIssuerKey(issuer_keys_pb2.CreateIssuerKeyRequest(request_id=rid()), metadata=md),
        "PERMISSION_DENIED",
        denied,
    )
    await _refused(
        partner.keys.ListIssuerKeys(issuer_keys_pb2.ListIssuerKeysRequest(), metadata=md), "PERMISSION_DENIED", denied
    )
    await _refused(
        partner.partners.CreatePartner(partners_pb2.CreatePartnerRequest(request_id=rid(), name="x"), metadata=md),
        "PERMISSION_DENIED",
        denied,
    )
    me = await partner.partners.WhoAmI(partners_pb2.WhoAmIRequest(), metadata=md)
    assert me.partner.role == partners_pb2.ROLE_PARTNER


async def test_partner_sees_only_its_own_campaigns(platform: RunningPlatform, partner: Client) -> None:
    """Another partner's campaign or voucher is refused exactly as one that does not exist (same
    status, reason and message, but for the id), so refusals tell nobody what exists."""
    other = await platform.new_partner()
    theirs = await other.campaign(platform.clock(), name="Theirs")
    mine = await partner.campaign(platform.clock(), name="Mine")
    (their_voucher,) = await other.issue(theirs.campaign_id, 1)
    md = partner.metadata
    nobodys_campaign, nobodys_voucher = "cmp_" + "0" * 12, "vch_" + "0" * 16

    async def refusal(call) -> tuple[grpc.StatusCode, str, str]:  # type: ignore[no-untyped-def]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        return err.value.code(), refusal_of(err.value).reason, err.value.details() or ""

    def calls(campaign_id: str, voucher_id: str) -> list:  # type: ignore[type-arg]
        return [
            partner.campaigns.GetCampaign(campaigns_pb2.GetCampaignRequest(campaign_id=campaign_id), metadata=md),
            partner.campaigns.IssueVouchers(
                campaigns_pb2.IssueVouchersRequest(request_id=rid(), campaign_id=campaign_id, count=1), metadata=md
            ),
            partner.redemption.ListRedemptions(
                redemption_pb2.ListRedemptionsRequest(campaign_id=campaign_id), metadata=md
            ),
            partner.redemption.GetVoucher(redemption_pb2.GetVoucherRequest(voucher_id=voucher_id), metadata=md),
            partner.campaigns.WatchCampaignProgress(
                campaigns_pb2.WatchCampaignProgressRequest(campaign_id=campaign_id), metadata=md
            ).read(),
        ]

    for theirs_call, nobodys_call in zip(
        calls(theirs.campaign_id, their_voucher.voucher_id), calls(nobodys_campaign, nobodys_voucher), strict=True
    ):
        code, reason, message = await refusal(theirs_call)
        unknown = await refusal(nobodys_call)
        assert code == grpc.StatusCode.NOT_FOUND and reason in ("CAMPAIGN_UNKNOWN", "VOUCHER_UNKNOWN")
        shown = message.replace(theirs.campaign_id, nobodys_campaign).replace(their_voucher.voucher_id, nobodys_voucher)
        assert (code, reason, shown) == unknown

    listed = await partner.campaigns.ListCampaigns(campaigns_pb2.ListCampaignsRequest(), metadata=md)
    assert [c.campaign_id for c in listed.campaigns] == [mine.campaign_id]
    # An operator sees both.
    op = platform.operator()
    everything = await op.campaigns.ListCampaigns(
        campaigns_pb2.ListCampaignsRequest(page_size=1000), metadata=op.metadata
    )
    assert {mine.campaign_id, theirs.campaign_id} <= {c.campaign_id for c in everything.campaigns}


async def test_paging_and_bad_page_token(platform: RunningPlatform, partner: Client) -> None:
    made = [await partner.campaign(platform.clock(), name=f"c{i}") for i in range(5)]
    seen, token = [], ""
    while True:
        page = await partner.campaigns.ListCampaigns(
            campaigns_pb2.ListCampaignsRequest(page_size=2, page_token=token), metadata=partner.metadata
        )
        seen += [c.campaign_id for c in page.campaigns]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(c.campaign_id for c in made) and len(seen) == 5
    await _refused(
        partner.campaigns.ListCampaigns(
            campaigns_pb2.ListCampaignsRequest(page_token="garbage"), metadata=partner.metadata
        ),
        "PAGE_TOKEN_INVALID",
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_bad_fields_named(platform: RunningPlatform, partner: Client) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await partner.campaign(platform.clock(), total_stock=0)
    refusal = refusal_of(err.value)
    assert (refusal.reason, refusal.metadata["field"]) == ("FIELD_INVALID", "total_stock")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await partner.redeem("CP1:00", request_id="")
    assert refusal_of(err.value).metadata["field"] == "request_id"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await partner.redeem("CP1:00", store_id="")
    assert refusal_of(err.value).metadata["field"] == "store_id"
