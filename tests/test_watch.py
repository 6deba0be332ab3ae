"""The live campaign stream reports a redemption within one second."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import pytest
from clearpoint.v1 import agents_pb2_grpc, campaigns_pb2, errors_pb2

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


async def test_streams_cancelled_by_their_clients_leave_no_error_in_the_log(
    platform: RunningPlatform, partner: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that goes away (cancels a watch mid-stream, or a scan stream with scans in flight)
    is ordinary: nothing at ERROR in the log, and the server keeps serving."""
    from clearpoint.v1 import agents_pb2

    from tests.agent_helpers import enrol_agent, signed

    campaign = await partner.campaign(platform.clock())
    codes = [v.code for v in await partner.issue(campaign.campaign_id, 20)]
    agent_id, key = await enrol_agent(platform, partner)
    caplog.clear()
    with caplog.at_level("DEBUG"):
        for _ in range(5):
            watch = partner.campaigns.WatchCampaignProgress(
                campaigns_pb2.WatchCampaignProgressRequest(campaign_id=campaign.campaign_id), metadata=partner.metadata
            )
            await asyncio.wait_for(watch.read(), 2)
            watch.cancel()
        for round_ in range(2):
            async with grpc.aio.insecure_channel(platform.target) as channel:
                call = agents_pb2_grpc.AgentServiceStub(channel).StreamScans()
                scans = [signed(agent_id, key, round_ * 10 + i + 1, codes[round_ * 10 + i].encode()) for i in range(10)]
                await call.write(agents_pb2.StreamScansRequest(scans=scans))
                await asyncio.wait_for(call.read(), 2)  # the announcement; the answers may still be coming
                call.cancel()
        await asyncio.sleep(0.5)
        got = await partner.campaigns.GetCampaign(
            campaigns_pb2.GetCampaignRequest(campaign_id=campaign.campaign_id), metadata=partner.metadata
        )
        assert got.campaign.campaign_id == campaign.campaign_id
        import gc

        gc.collect()  # "Task exception was never retrieved" is logged when the task is collected
        await asyncio.sleep(0.1)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
