"""Outages with real processes: the platform SIGKILLed mid-stream, the agent SIGKILLed between its
journal write and the platform's answer, answers lost on the way back, the platform down for a
minute of scans. Nothing is lost, nothing counts twice, everything arrives in order."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from clearpoint.platform.agents.tables import agent_scans
from clearpoint.platform.campaigns.tables import campaigns
from clearpoint.platform.core.database import Database
from clearpoint.platform.redemption.tables import redemptions
from clearpoint.scanner_agent.journal import ClaimBookEntry, read_claims
from clearpoint.scanner_agent.virtual_scanner import VirtualScanner
from sqlalchemy import func, select

from tests.agent_helpers import till_config
from tests.netproxy import Proxy
from tests.processes import Proc, agent_process, free_port, seed, start_platform_process

BAUD = 115_200


def _config(tmp_path: Path, port: int, scanner: VirtualScanner) -> Path:
    return till_config(
        tmp_path,
        f"127.0.0.1:{port}",
        scanner,
        BAUD,
        reconnect_initial_seconds=0.2,
        reconnect_max_seconds=2.0,
        answer_wait_seconds=0.5,
    )


async def _start_agent(config: Path, token: str) -> Proc:
    agent = agent_process(config, token)
    agent.start()
    await asyncio.to_thread(agent.wait_for, "scanner till-1 connected")
    await asyncio.to_thread(agent.wait_for, "platform link up")
    return agent


async def _answered(journal: Path, count: int, within: float) -> list[ClaimBookEntry]:
    deadline = time.monotonic() + within
    while True:
        claims = [c for c in read_claims(journal) if c.answered_us is not None]
        if len(claims) >= count or time.monotonic() > deadline:
            return claims
        await asyncio.sleep(0.1)


async def _platform_counts(database_url: str, campaign_id: str) -> dict[str, int]:
    db = Database(database_url)
    try:
        async with db.read() as conn:
            mine = redemptions.c.campaign_id == campaign_id
            return {
                "redemptions": await conn.scalar(select(func.count()).where(mine)),
                "vouchers": await conn.scalar(select(func.count(redemptions.c.voucher_id.distinct())).where(mine)),
                "counter": await conn.scalar(
                    select(campaigns.c.redeemed).where(campaigns.c.campaign_id == campaign_id)
                ),
                "scans": await conn.scalar(select(func.count()).where(agent_scans.c.campaign_id == campaign_id)),
            }
    finally:
        await db.dispose()


def _check_once(claims: list[ClaimBookEntry], codes: list[str], counts: dict[str, int]) -> None:
    assert [c.sequence for c in claims] == list(range(1, len(codes) + 1))
    assert [c.data.decode() for c in claims] == codes, "lost or reordered"
    assert {c.outcome for c in claims} == {"accepted"}, {(c.outcome, c.reason) for c in claims}
    assert len({c.redemption_id for c in claims}) == len(codes)
    n = len(codes)
    assert counts == {"redemptions": n, "vouchers": n, "counter": n, "scans": n}, counts


async def test_platform_killed_mid_stream(database_url: str, tmp_path: Path) -> None:
    seeded = await seed(database_url, 150)
    port = free_port()
    platform = start_platform_process(database_url, seeded.master_key_b64, port)
    scanner = VirtualScanner(tmp_path / "usb-Virtual_Scanner-if00")
    agent = await _start_agent(_config(tmp_path, port, scanner), seeded.token)
    try:
        for i, code in enumerate(seeded.codes):
            await scanner.send(code.encode() + b"\r", baud=BAUD)
            if i == 60:
                platform.kill()  # mid-stream: scans on the wire, some applied and unanswered
            if i == 100:
                platform = await asyncio.to_thread(start_platform_process, database_url, seeded.master_key_b64, port)
        claims = await _answered(tmp_path / "agent-data" / "journal.sqlite3", 150, within=60)
    finally:
        assert agent.stop() == 0, "".join(agent.err)
        platform.stop()
        scanner.close()
    assert len(claims) == len(seeded.codes), "the agent's log:\n" + "".join(agent.err[-60:])
    _check_once(claims, seeded.codes, await _platform_counts(database_url, seeded.campaign_id))
    assert any("platform link down" in line for line in agent.err)


async def test_agent_killed_between_journal_and_answer(database_url: str, tmp_path: Path) -> None:
    seeded = await seed(database_url, 10)
    port = free_port()
    platform = start_platform_process(database_url, seeded.master_key_b64, port)
    proxy = Proxy(port)
    scanner = VirtualScanner(tmp_path / "usb-Virtual_Scanner-if00")
    config = _config(tmp_path, proxy.port, scanner)
    journal = tmp_path / "agent-data" / "journal.sqlite3"
    agent = await _start_agent(config, seeded.token)
    try:
        # 1. Journaled, not yet sent: the platform is down when the scans are read.
        platform.kill()
        for code in seeded.codes[:5]:
            await scanner.send(code.encode() + b"\r", baud=BAUD)
        await asyncio.to_thread(agent.wait_for, "#5", 10, "out")
        assert sum("QUEUED" in line for line in agent.out) == 5
        agent.kill()
        assert [c.outcome for c in read_claims(journal)] == ["pending"] * 5
        platform = await asyncio.to_thread(start_platform_process, database_url, seeded.master_key_b64, port)
        agent = await _start_agent(config, "")
        assert len(await _answered(journal, 5, within=30)) == 5

        # 2. Applied by the platform, answer lost on the way back, agent killed before it heard.
        proxy.drop_downstream = True
        for code in seeded.codes[5:]:
            await scanner.send(code.encode() + b"\r", baud=BAUD)
        deadline = time.monotonic() + 30
        while (await _platform_counts(database_url, seeded.campaign_id))["scans"] < 10:
            assert time.monotonic() < deadline, "the platform never applied the scans"
            await asyncio.sleep(0.1)
        agent.kill()
        assert [c.outcome for c in read_claims(journal)][5:] == ["pending"] * 5
        proxy.drop_downstream = False
        agent = await _start_agent(config, "")
        claims = await _answered(journal, 10, within=30)
    finally:
        agent.stop()
        platform.stop()
        proxy.close()
        scanner.close()
    _check_once(claims, seeded.codes, await _platform_counts(database_url, seeded.campaign_id))


@pytest.mark.slow
async def test_platform_down_for_a_minute_of_scans(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'platform.sqlite3'}"
    seeded = await seed(database_url, 140)
    port = free_port()
    platform = start_platform_process(database_url, seeded.master_key_b64, port)
    scanner = VirtualScanner(tmp_path / "usb-Virtual_Scanner-if00")
    agent = await _start_agent(_config(tmp_path, port, scanner), seeded.token)
    journal = tmp_path / "agent-data" / "journal.sqlite3"
    try:
        for code in seeded.codes[:20]:
            await scanner.send(code.encode() + b"\r", baud=BAUD)
        assert len(await _answered(journal, 20, within=30)) == 20
        platform.kill()
        down_since = time.monotonic()
        for code in seeded.codes[20:]:  # a scan every half second for a minute
            await scanner.send(code.encode() + b"\r", baud=BAUD)
            await asyncio.sleep(max(0.0, down_since + 0.5 * (seeded.codes.index(code) - 19) - time.monotonic()))
        assert time.monotonic() - down_since >= 60
        assert len(await _answered(journal, 140, within=0)) == 20, "answers while the platform was down"
        platform = await asyncio.to_thread(start_platform_process, database_url, seeded.master_key_b64, port)
        claims = await _answered(journal, 140, within=60)
    finally:
        agent.stop()
        platform.stop()
        scanner.close()
    _check_once(claims, seeded.codes, await _platform_counts(database_url, seeded.campaign_id))
    db = Database(database_url)
    async with db.read() as conn:
        arrivals = [
            r.received_us
            for r in await conn.execute(
                select(agent_scans.c.received_us)
                .where(agent_scans.c.campaign_id == seeded.campaign_id)
                .order_by(agent_scans.c.sequence)
            )
        ]
    await db.dispose()
    assert arrivals == sorted(arrivals), "scans arrived out of order"
    assert sum("QUEUED" in line for line in agent.out) >= 120
    assert sum("answer to a queued scan" in line for line in agent.out) >= 120
