"""Clients that go away mid-stream, against a real `clearpoint platform serve` process: nothing at
ERROR and no traceback in its log, and it serves on."""

from __future__ import annotations

import asyncio

import grpc
from clearpoint.v1 import agents_pb2, campaigns_pb2, campaigns_pb2_grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.agent_helpers import enrol_with, open_stream, signed
from tests.processes import free_port, seed, start_platform_process


async def test_a_serve_process_logs_no_error_for_clients_that_cancel_streams(database_url: str) -> None:
    seeded = await seed(database_url, 40)
    port = free_port()
    proc = start_platform_process(database_url, seeded.master_key_b64, port)
    target = f"127.0.0.1:{port}"
    try:
        key = Ed25519PrivateKey.generate()
        agent_id = (await enrol_with(target, seeded.token, key)).agent_id
        metadata = (("x-api-key", seeded.partner_key),)
        request = campaigns_pb2.WatchCampaignProgressRequest(campaign_id=seeded.campaign_id)
        async with grpc.aio.insecure_channel(target) as channel:
            campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)
            for i in range(20):
                watch = campaigns.WatchCampaignProgress(request, metadata=metadata)
                if i % 2:
                    await asyncio.wait_for(watch.read(), 5)
                watch.cancel()  # half before their first message, half after
            for round_ in range(3):
                call, _ = await open_stream(channel, (agent_id, key))
                scans = [
                    signed(agent_id, key, round_ * 10 + i + 1, seeded.codes[round_ * 10 + i].encode())
                    for i in range(10)
                ]
                await call.write(agents_pb2.StreamScansRequest(scans=scans))
                await asyncio.sleep(0.02)
                call.cancel()  # scans in flight
            half_open = await grpc.aio.insecure_channel(target).__aenter__()
            for _ in range(5):  # streams whose connection is dropped, not cancelled
                await asyncio.wait_for(
                    campaigns_pb2_grpc.CampaignServiceStub(half_open)
                    .WatchCampaignProgress(request, metadata=metadata)
                    .read(),
                    5,
                )
            await half_open.close(grace=None)
            await asyncio.sleep(1.0)
            got = await campaigns.GetCampaign(
                campaigns_pb2.GetCampaignRequest(campaign_id=seeded.campaign_id), metadata=metadata, timeout=5
            )
            assert got.campaign.campaign_id == seeded.campaign_id
    finally:
        code = proc.stop()
    log = "".join(proc.err)
    bad = [line for line in proc.err if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]
    assert bad == [], log[-4000:]
    assert code == 0, log[-4000:]
