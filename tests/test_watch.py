"""The live campaign stream reports a redemption within one second."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import pytest
from clearpoint.v1 import campaigns_pb2, errors_pb2, partners_pb2

from tests.helpers import Client, RunningPlatform, refusal_of


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

    from tests.agent_helpers import enrol_agent, open_stream, signed

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
                call, _ = await open_stream(channel, (agent_id, key))
                scans = [signed(agent_id, key, round_ * 10 + i + 1, codes[round_ * 10 + i].encode()) for i in range(10)]
                await call.write(agents_pb2.StreamScansRequest(scans=scans))
                await asyncio.sleep(0.02)
                call.cancel()  # with the answers still coming
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


def _watch(client: Client, campaign_id: str) -> grpc.aio.UnaryStreamCall:  # type: ignore[type-arg]
    return client.campaigns.WatchCampaignProgress(
        campaigns_pb2.WatchCampaignProgressRequest(campaign_id=campaign_id), metadata=client.metadata
    )


async def test_a_caller_holds_at_most_so_many_streams_and_is_told_why(platform: RunningPlatform) -> None:
    platform.server.platform.streams.per_caller = 3
    first, other = await platform.new_partner(), await platform.new_partner()
    campaign = await first.campaign(platform.clock())
    watches = [_watch(first, campaign.campaign_id) for _ in range(3)]
    for watch in watches:
        await asyncio.wait_for(watch.read(), 2)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await asyncio.wait_for(_watch(first, campaign.campaign_id).read(), 2)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    refusal = refusal_of(refused.value)
    assert refusal.reason == "TOO_MANY_STREAMS" and refusal.metadata == {"limit": "3"}
    me = (await first.partners.WhoAmI(partners_pb2.WhoAmIRequest(), metadata=first.metadata)).partner
    assert refusal.message.startswith(f"partner {me.partner_id} ({me.name}) already has 3 streams open")

    # Another caller is not held to the first one's count; the first gets a place back when one ends.
    theirs = await other.campaign(platform.clock())
    await asyncio.wait_for(_watch(other, theirs.campaign_id).read(), 2)
    watches[0].cancel()
    await asyncio.sleep(0.2)
    again = _watch(first, campaign.campaign_id)
    assert (await asyncio.wait_for(again.read(), 2)).progress.campaign_id == campaign.campaign_id
    # A refused or failed open (an unknown campaign) leaves no place taken.
    with pytest.raises(grpc.aio.AioRpcError):
        await asyncio.wait_for(_watch(first, "cmp_000000000000").read(), 2)
    assert platform.server.platform.streams.total == 4


async def test_watchers_share_one_reader_and_unread_ones_hold_nobody_up(platform: RunningPlatform) -> None:
    """Forty streams on two campaigns cost the database one read per poll and per change, not one
    per stream; thirty of them never read, and the one that does sees every redemption at once."""
    partner = await platform.new_partner()
    busy, quiet = await partner.campaign(platform.clock()), await partner.campaign(platform.clock())
    codes = [v.code for v in await partner.issue(busy.campaign_id, 10)]
    unread = [_watch(partner, c.campaign_id) for c in (busy, quiet) for _ in range(15)]
    reader = [_watch(partner, c.campaign_id) for c in (busy, quiet) for _ in range(5)]
    for watch in reader:
        await asyncio.wait_for(watch.read(), 2)
    feed = platform.server.platform.progress
    for _ in range(100):  # the unread ones are opened too, though nobody reads their first message
        if feed.watchers == 40:
            break
        await asyncio.sleep(0.02)
    assert feed.watchers == 40

    before = feed.reads
    await asyncio.sleep(1.0)
    assert feed.reads - before <= 1 / feed.poll_seconds + 2  # polls only; 40 loops would be 200

    for n, code in enumerate(codes, start=1):
        await partner.redeem(code)
        started = time.monotonic()
        while (await asyncio.wait_for(reader[0].read(), 1.0)).progress.redeemed < n:
            pass
        assert time.monotonic() - started < 1.0
    assert len(unread) == 30
