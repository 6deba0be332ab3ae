"""The database goes away under the platform (PostgreSQL terminates its connections, as a restart or
a failover does): service comes back by itself, nothing is applied twice, and a failed request is
safe to send again with its request id. Health says NOT_SERVING while the database cannot be reached."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import _drop_pg_database, _fresh_pg_database, _pg_url, start_platform
from tests.helpers import Client, refusal_of, rid


@pytest.fixture
async def own_database() -> AsyncIterator[str]:
    base = _pg_url()
    if base is None:
        pytest.skip("needs PostgreSQL (CLEARPOINT_TEST_DATABASE_URL)")
    url, name = await _fresh_pg_database(base)
    yield url
    await _drop_pg_database(base, name)


async def _terminate_all(url: str) -> int:
    """What a restart does to the platform: every session on its database is killed (asked from
    another database, so it works while this one refuses connections too)."""
    base, name = url.rsplit("/", 1)
    engine = create_async_engine(f"{base}/postgres".replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with engine.connect() as conn:
            killed = await conn.scalar(
                text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :name"),
                {"name": name},
            )
    finally:
        await engine.dispose()
    return int(killed or 0)


async def _admin(url: str, sql: str) -> None:
    base = url.rsplit("/", 1)[0] + "/postgres"
    engine = create_async_engine(
        base.replace("postgresql://", "postgresql+asyncpg://", 1), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def test_connections_terminated_under_redeem_load(own_database: str) -> None:
    platform = await start_platform(own_database)
    try:
        await platform.operator().create_key_if_none()
        partner = await platform.new_partner()
        campaign = await partner.campaign(platform.clock(), total_stock=10_000)
        codes = [v.code for v in await partner.issue(campaign.campaign_id, 400)]
        request_ids = [rid() for _ in codes]
        outcomes: dict[int, str] = {}
        first_ok_after_kill: list[float] = []
        killed_at: list[float] = []

        async def redeem(i: int) -> None:
            try:
                await partner.redeem(codes[i], request_id=request_ids[i])
                outcomes[i] = "ok"
                if killed_at and not first_ok_after_kill:
                    first_ok_after_kill.append(time.monotonic() - killed_at[0])
            except grpc.aio.AioRpcError as exc:
                outcomes[i] = exc.code().name

        async def load() -> None:
            for start in range(0, len(codes), 8):
                await asyncio.gather(*(redeem(i) for i in range(start, min(start + 8, len(codes)))))
                await asyncio.sleep(0.01)

        async def kill() -> None:
            await asyncio.sleep(0.5)
            assert await _terminate_all(own_database) > 0
            killed_at.append(time.monotonic())

        await asyncio.gather(load(), kill())
        from collections import Counter

        assert killed_at and first_ok_after_kill, Counter(outcomes.values())
        assert first_ok_after_kill[0] < 2.0, f"service came back only after {first_ok_after_kill[0]:.1f} s"
        failed = [i for i, o in outcomes.items() if o != "ok"]
        assert all(outcomes[i] == "UNAVAILABLE" for i in failed), {outcomes[i] for i in failed}
        assert len(failed) < 40, f"{len(failed)} requests failed after the restart"
        # Sent again with their request ids, the failed ones are redeemed (or replayed) exactly once.
        for i in failed:
            await partner.redeem(codes[i], request_id=request_ids[i])
        for i in range(len(codes)):  # every request, again: each is its first answer, replayed
            again = await partner.redeem(codes[i], request_id=request_ids[i])
            assert again.replayed
        got = await _progress(partner, campaign.campaign_id)
        assert got == len(codes)
    finally:
        await platform.close()


async def _progress(partner: Client, campaign_id: str) -> int:
    from clearpoint.v1 import campaigns_pb2

    got = await partner.campaigns.GetCampaign(
        campaigns_pb2.GetCampaignRequest(campaign_id=campaign_id), metadata=partner.metadata
    )
    return int(got.progress.redeemed)


async def _health(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        return int(answer.status)


async def _until(check, want: object, within: float) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while (got := await check()) != want:
        assert time.monotonic() - started < within, f"still {got!r} after {within} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_health_follows_the_database_and_calls_say_unavailable(own_database: str) -> None:
    """While the database refuses connections, health is NOT_SERVING and a call is refused
    UNAVAILABLE / DATABASE_UNAVAILABLE (retryable), never INTERNAL; once it is back, both recover."""
    from clearpoint.v1 import campaigns_pb2

    name = own_database.rsplit("/", 1)[1]
    platform = await start_platform(own_database)
    try:
        await platform.operator().create_key_if_none()
        partner = await platform.new_partner()
        campaign = await partner.campaign(platform.clock())
        get = campaigns_pb2.GetCampaignRequest(campaign_id=campaign.campaign_id)
        assert await _health(platform.target) == health_pb2.HealthCheckResponse.SERVING
        await _admin(own_database, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        assert await _terminate_all(own_database) > 0
        await _until(lambda: _health(platform.target), health_pb2.HealthCheckResponse.NOT_SERVING, within=5)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await partner.campaigns.GetCampaign(get, metadata=partner.metadata)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert refusal_of(err.value).reason == "DATABASE_UNAVAILABLE"
        assert "same request_id" in (err.value.details() or "")
    finally:
        await _admin(own_database, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    try:
        took = await _until(lambda: _health(platform.target), health_pb2.HealthCheckResponse.SERVING, within=5)
        assert took < 3
        got = await partner.campaigns.GetCampaign(get, metadata=partner.metadata)
        assert got.campaign.campaign_id == campaign.campaign_id
    finally:
        await platform.close()
