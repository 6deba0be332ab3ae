"""A real agent between a pseudo-terminal scanner and a real platform: scans in, prize claims out."""

from __future__ import annotations

import asyncio
import logging
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest
from clearpoint.platform.agents.tables import agent_scans
from clearpoint.platform.redemption.tables import redemptions
from clearpoint.scanner_agent.virtual_scanner import VirtualScanner, uart_misread
from sqlalchemy import func, select

from tests.agent_helpers import enrolment_token, start_agent, till_config, write_config
from tests.helpers import Client, RunningPlatform
from tests.netproxy import Proxy

BAUD = 115_200  # a USB virtual COM scanner's usual rate: real pacing, and 1,000 scans in ~16 s
GOOD, BAD = b"\x07G", b"\x07\x07B"


async def _campaign_codes(platform: RunningPlatform, partner: Client, n: int) -> tuple[str, list[str]]:
    campaign = await partner.campaign(platform.clock(), total_stock=max(n, 1))
    codes: list[str] = []
    while len(codes) < n:
        codes += [v.code for v in await partner.issue(campaign.campaign_id, min(1000, n - len(codes)))]
    return campaign.campaign_id, codes


async def _agent_on_pty(tmp_path: Path, platform: RunningPlatform, partner: Client, **serial: object):
    scanner = VirtualScanner(tmp_path / "usb-Virtual_Scanner_0001-if00")
    config = write_config(
        tmp_path,
        platform.target,
        [{"id": "till-1", "type": "serial", "path": scanner.port, "baud": BAUD, **serial}],
        reconnect_initial_seconds=0.05,
        reconnect_max_seconds=0.5,
    )
    agent = await start_agent(config, await enrolment_token(platform, partner))
    await agent.wait_ready()
    return scanner, agent


async def test_a_thousand_scans_at_baud_pace_are_each_redeemed_once(
    platform: RunningPlatform, partner: Client, tmp_path: Path
) -> None:
    campaign_id, codes = await _campaign_codes(platform, partner, 1000)
    scanner, agent = await _agent_on_pty(tmp_path, platform, partner)
    try:
        for code in codes:
            await scanner.send(b"]Q1" + code.encode() + b"\r", baud=BAUD)
        claims = await agent.wait_answered(1000, within=60)
    finally:
        await agent.close()
        scanner.close()
    assert len(claims) == 1000
    assert [c.sequence for c in claims] == list(range(1, 1001))
    assert [c.data.decode() for c in claims] == codes
    assert {c.outcome for c in claims} == {"accepted"} and {c.symbology for c in claims} == {"]Q1"}
    assert len({c.redemption_id for c in claims}) == 1000
    assert {c.campaign_id for c in claims} == {campaign_id}
    async with platform.server.platform.db.read() as conn:
        mine = redemptions.c.campaign_id == campaign_id
        assert await conn.scalar(select(func.count()).where(mine)) == 1000
        agent_id = agent.agent.identity.agent_id
        assert await conn.scalar(select(func.count()).where(agent_scans.c.agent_id == agent_id)) == 1000
        per_voucher = await conn.execute(
            select(redemptions.c.voucher_id, func.count())
            .where(mine)
            .group_by(redemptions.c.voucher_id)
            .having(func.count() > 1)
        )
        assert per_voucher.all() == []
    # One console line per scan, each with the prize.
    lines = agent.console.getvalue().splitlines()
    assert sum("ACCEPTED" in line and "One free 0.5 l cola" in line for line in lines) == 1000


async def test_answers_reach_the_cashier_and_the_scanner(
    platform: RunningPlatform, partner: Client, tmp_path: Path
) -> None:
    _, (code,) = await _campaign_codes(platform, partner, 1)
    scanner, agent = await _agent_on_pty(tmp_path, platform, partner, good_read=GOOD.decode(), bad_read=BAD.decode())
    try:
        await scanner.send(code.encode() + b"\r", baud=BAUD)
        assert await scanner.wait_feedback(len(GOOD), within=5) == GOOD
        await scanner.send(code.encode() + b"\r", baud=BAUD)
        assert await scanner.wait_feedback(len(BAD), within=5) == BAD
        await scanner.send(b"]E04006381333931\r", baud=BAUD)
        assert await scanner.wait_feedback(len(BAD), within=5) == BAD
        claims = await agent.wait_answered(3)
    finally:
        await agent.close()
        scanner.close()
    assert [(c.outcome, c.reason) for c in claims] == [
        ("accepted", ""),
        ("refused", "VOUCHER_ALREADY_REDEEMED"),
        ("not_a_voucher", "NOT_A_VOUCHER"),
    ]
    assert claims[0].prize == "One free 0.5 l cola" and claims[0].redemption_id.startswith("rdm_")
    lines = agent.console.getvalue().splitlines()
    assert "ACCEPTED" in lines[0] and "hand over: One free 0.5 l cola" in lines[0]
    assert "REFUSED" in lines[1] and "already been redeemed" in lines[1]
    assert "NOT A VOUCHER" in lines[2] and "4006381333931" in lines[2]


async def test_bad_input_is_logged_and_the_next_good_scan_goes_through(
    platform: RunningPlatform, partner: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _, codes = await _campaign_codes(platform, partner, 5)
    scanner, agent = await _agent_on_pty(tmp_path, platform, partner)
    try:
        bursts = [
            ("line noise", bytes([0xFF, 0x00, 0xFE, 0x80, 0x00, 0xC3]) * 20 + b"\r"),
            ("binary garbage", bytes(range(256)) * 4 + b"\r"),
            ("100 KB without terminator", b"A" * 100_000),
            ("wrong baud", uart_misread(b"]Q1" + codes[0].encode() + b"\r", BAUD, 9600)),
        ]
        good = iter(codes)
        for _, burst in bursts:
            await scanner.send(burst, baud=BAUD * 8)
            await asyncio.sleep(0.2)
            await scanner.send(b"\r" + next(good).encode() + b"\r", baud=BAUD)
        # A half frame, then the cable is pulled; the scanner comes back and scans again.
        await scanner.send(codes[4].encode()[:40], baud=BAUD)
        scanner.unplug()
        await asyncio.sleep(1.5)
        scanner.replug()
        await asyncio.sleep(1.5)
        await scanner.send(codes[4].encode() + b"\r", baud=BAUD)
        claims = await agent.wait_answered(5, within=20)
        assert not agent.task.done(), "the agent stopped"
    finally:
        await agent.close()
        scanner.close()
    assert [c.data.decode() for c in claims] == codes
    assert {c.outcome for c in claims} == {"accepted"}
    log = caplog.text
    assert "unplugged" in log and "back" in log
    assert "without a terminator" in log or "discarded" in log


async def test_a_link_that_swallows_answers_is_abandoned_and_the_scans_resent(
    platform: RunningPlatform, partner: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _, codes = await _campaign_codes(platform, partner, 3)
    proxy = Proxy(int(platform.target.rsplit(":", 1)[1]))
    scanner = VirtualScanner(tmp_path / "usb-Virtual_Scanner_0001-if00")
    config = till_config(
        tmp_path,
        f"127.0.0.1:{proxy.port}",
        scanner,
        BAUD,
        reconnect_initial_seconds=0.05,
        reconnect_max_seconds=0.5,
        answer_timeout_seconds=2,
    )
    agent = await start_agent(config, await enrolment_token(platform, partner))
    try:
        await agent.wait_ready()
        proxy.drop_downstream = True  # the link stays up, but nothing comes back
        for code in codes:
            await scanner.send(code.encode() + b"\r", baud=BAUD)
        await asyncio.sleep(3)
        assert agent.claims()[0].answered_us is None
        assert "no answer for 2 s" in caplog.text
        proxy.drop_downstream = False
        claims = await agent.wait_answered(3, within=20)
    finally:
        await agent.close()
        scanner.close()
        proxy.close()
    assert [c.outcome for c in claims] == ["accepted"] * 3


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "clearpoint.cli", *args, stdout=PIPE, stderr=PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_enrol_command(platform: RunningPlatform, partner: Client, tmp_path: Path) -> None:
    config = write_config(tmp_path, platform.target, [], name="till PC 7")
    token = await enrolment_token(platform, partner, "store-7")
    code, out, err = await _cli("agent", "enrol", "--config", str(config), "--token", token)
    assert code == 0, err
    agent_id = out.strip()
    assert agent_id.startswith("agt_") and "enrolled for store store-7" in err
    key_file = tmp_path / "agent-data" / "device-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = await _cli("agent", "enrol", "--config", str(config), "--token", token)
    assert again[0] == 1 and f"already enrolled as {agent_id}" in again[2]
    other = tmp_path / "other"
    other.mkdir()
    used = await _cli("agent", "enrol", "--config", str(write_config(other, platform.target, [])), "--token", token)
    assert used[0] == 1 and "enrolment token is not valid" in used[2]
    no_scanner = await _cli("agent", "run", "--config", str(config))
    assert no_scanner[0] == 2 and "no [[scanner]]" in no_scanner[2]
