"""The live campaign stream reports a redemption within one second."""

from __future__ import annotations

import asyncio
import time

from clearpoint.v1 import campaigns_pb2, errors_pb2

from tests.helpers import Client, RunningPlatform


async def test_stream_reports_redemption_within_a_second(platform: RunningPlatform, partner: Client) -> None:
    campaign = await partner.campaign(platform.clock(), total_stock=5)
    v1, _ = await partner.issue(campaign.campaign_id, 2)
    stream = partner.campaigns.WatchCampaignProgress(
        campaigns_pb2.WatchCampaignProgressRequest(campaign_id=campaign.campaign_id), metadata=partner.metadata
    )
    first = (await asyncio.wait_for(stream.read(), 2)).progress
    assert (first.issued, first.redeemed, first.remaining_stock) == (2, 0, 5)

    started = time.monotonic()
    await partner.redeem(v1.code)
    update = (await asyncio.wait_for(stream.read(), 1.0)).progress
    assert time.monotonic() - started < 1.0
    assert (update.redeemed, update.remaining_stock) == (1, 4)

    await partner.redeem_refusal(v1.code)
    refused = (await asyncio.wait_for(stream.read(), 1.0)).progress
    assert [(r.reason, r.count) for r in refused.refused] == [(errors_pb2.REASON_VOUCHER_ALREADY_REDEEMED, 1)]
    stream.cancel()
