"""Many concurrent clients over real gRPC race to redeem the same vouchers.

Every client tries every voucher in its own order: exactly one success per voucher use, every
other attempt refused as already redeemed (or stock exhausted), and the stock never exceeded."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import grpc
import pytest
from clearpoint.platform.campaigns.tables import vouchers
from clearpoint.platform.redemption.tables import redemptions
from clearpoint.v1 import campaigns_pb2, redemption_pb2
from sqlalchemy import func, select

from tests.helpers import Client, RunningPlatform, refusal_of, rid

# (clients, vouchers, uses per voucher, stock) per database: PostgreSQL gets the full load.
LOADS = {"postgres": (32, 500, 1, 500), "sqlite": (8, 100, 1, 100)}


async def _race(platform: RunningPlatform, clients: list[Client], codes: list[str]) -> tuple[Counter, Counter]:
    successes: Counter[str] = Counter()
    refusals: Counter[str] = Counter()

    async def run(client: Client, seed: int) -> None:
        order = codes[:]
        random.Random(seed).shuffle(order)
        for code in order:
            try:
                await client.redemption.Redeem(
                    redemption_pb2.RedeemRequest(request_id=rid(), code=code, store_id="store-1"),
                    metadata=client.metadata,
                )
                successes[code] += 1
            except grpc.aio.AioRpcError as exc:
                refusals[refusal_of(exc).reason] += 1

    await asyncio.gather(*(run(c, i) for i, c in enumerate(clients)))
    return successes, refusals


async def _progress(client: Client, campaign_id: str) -> campaigns_pb2.CampaignProgress:
    got = await client.campaigns.GetCampaign(
        campaigns_pb2.GetCampaignRequest(campaign_id=campaign_id), metadata=client.metadata
    )
    return got.progress


@pytest.mark.slow
async def test_race_each_voucher_once(platform: RunningPlatform, partner: Client, database_url: str) -> None:
    n_clients, n_vouchers, uses, stock = LOADS["sqlite" if database_url.startswith("sqlite") else "postgres"]
    campaign = await partner.campaign(platform.clock(), total_stock=stock, uses_per_voucher=uses)
    codes = [v.code for v in await partner.issue(campaign.campaign_id, n_vouchers)]
    # Separate channels (and a few partners), as separate store terminals would be.
    partners = [partner] + [await platform.new_partner() for _ in range(3)]
    clients = [platform.client(partners[i % len(partners)].api_key) for i in range(n_clients)]

    successes, refusals = await _race(platform, clients, codes)

    assert set(successes) == set(codes)
    assert set(successes.values()) == {uses}
    attempts = n_clients * n_vouchers
    assert sum(successes.values()) == n_vouchers * uses
    assert refusals == Counter({"VOUCHER_ALREADY_REDEEMED": attempts - n_vouchers * uses})
    progress = await _progress(partner, campaign.campaign_id)
    assert progress.redeemed == n_vouchers * uses
    assert progress.remaining_stock == stock - n_vouchers * uses
    # Concurrent redemptions really shared statements (PostgreSQL) or transactions (SQLite).
    claims = platform.server.platform.redeemer.claims
    assert claims.largest > 1 and claims.batches < attempts


@pytest.mark.slow
async def test_race_stock_never_exceeded(platform: RunningPlatform, partner: Client, database_url: str) -> None:
    n_clients, n_vouchers, _, _ = LOADS["sqlite" if database_url.startswith("sqlite") else "postgres"]
    n_vouchers //= 2
    stock = n_vouchers // 3
    campaign = await partner.campaign(platform.clock(), total_stock=stock, uses_per_voucher=2)
    codes = [v.code for v in await partner.issue(campaign.campaign_id, n_vouchers)]
    clients = [platform.client(partner.api_key) for _ in range(n_clients)]

    successes, refusals = await _race(platform, clients, codes)

    assert sum(successes.values()) == stock
    assert max(successes.values()) <= 2
    assert set(refusals) <= {"STOCK_EXHAUSTED", "VOUCHER_ALREADY_REDEEMED"}
    progress = await _progress(partner, campaign.campaign_id)
    assert (progress.redeemed, progress.remaining_stock) == (stock, 0)
    # A refusal for stock after the voucher's use was claimed undid that claim: uses match redemptions.
    async with platform.server.platform.db.read() as conn:
        uses = await conn.scalar(
            select(func.sum(vouchers.c.uses_made)).where(vouchers.c.campaign_id == campaign.campaign_id)
        )
        rows = await conn.scalar(
            select(func.count()).select_from(redemptions).where(redemptions.c.campaign_id == campaign.campaign_id)
        )
    assert uses == rows == stock
