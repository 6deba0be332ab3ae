"""The fleet: agents' heartbeats on their streams, kept in the database; stale after silence; a
scanner unplugged shown at once; a revoked agent's stream ended at once, by this process or by
another; bad heartbeats refused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from clearpoint.platform.agents import enrolment
from clearpoint.platform.core.errors import Reason
from clearpoint.v1 import agents_pb2
from google.protobuf import timestamp_pb2

from tests.agent_helpers import agent_on_pty, enrol_agent, open_stream, rest_of
from tests.helpers import Client, RunningPlatform, refusal_of

A = agents_pb2


def _quick(platform: RunningPlatform, heartbeat_s: float = 0.2, stale_s: float = 1.0) -> None:
    fleet = platform.server.platform.fleet
    fleet.heartbeat_us, fleet.stale_after_us = int(heartbeat_s * 1e6), int(stale_s * 1e6)


async def _agent(platform: RunningPlatform, agent_id: str) -> A.Agent:
    operator = platform.operator()
    return (await operator.agents.GetAgent(A.GetAgentRequest(agent_id=agent_id), metadata=operator.metadata)).agent


async def _until(platform: RunningPlatform, agent_id: str, test, within: float = 10.0) -> A.Agent:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while True:
        agent = await _agent(platform, agent_id)
        if test(agent):
            return agent
        assert time.monotonic() < deadline, f"not so within {within} s: {agent}"
        await asyncio.sleep(0.05)


async def test_heartbeats_show_the_agent_its_scanner_and_its_backlog(
    tmp_path: Path, platform: RunningPlatform, partner: Client
) -> None:
    _quick(platform)
    scanner, agent = await agent_on_pty(tmp_path, platform, partner, store_id="store-042")
    agent_id = agent.agent.identity.agent_id
    try:
        seen = await _until(
            platform, agent_id, lambda a: a.status.heartbeat.HasField("round_trip") and a.status.heartbeat.scanners
        )
        assert seen.status.health == A.AGENT_HEALTH_ONLINE and seen.status.connected
        beat = seen.status.heartbeat
        assert beat.version and beat.backlog == 0 and beat.uptime.ToMicroseconds() > 0
        assert 0 <= beat.round_trip.ToMicroseconds() < 2_000_000
        assert abs(beat.clock_offset.ToMicroseconds()) < 2_000_000  # one machine, one clock (and a test clock)
        (till,) = beat.scanners
        assert (till.scanner_id, till.kind, till.path, till.connected) == ("till-1", "serial", scanner.port, True)

        # A scan shows as the scanner's last scan.
        await scanner.send(b"4006381333931\r", baud=115200)
        await agent.wait_answered(1)
        scanned = await _until(platform, agent_id, lambda a: a.status.heartbeat.scanners[0].HasField("last_scan_time"))
        assert scanned.status.heartbeat.HasField("last_answer_time")

        # Unplugged: said at once (not at the next beat), with what went wrong.
        _quick(platform, heartbeat_s=30, stale_s=60)  # (the agent keeps the interval its stream was given)
        scanner.unplug()
        gone = await _until(platform, agent_id, lambda a: not a.status.heartbeat.scanners[0].connected, within=5)
        said = gone.status.heartbeat.scanners[0].last_error  # unplugged, then (retrying) the path missing
        assert "unplugged" in said or "No such file" in said, said
        scanner.replug()
        await _until(platform, agent_id, lambda a: a.status.heartbeat.scanners[0].connected, within=5)
    finally:
        await agent.close()
        scanner.close()
    stopped = await _until(platform, agent_id, lambda a: not a.status.connected, within=5)
    assert stopped.status.health == A.AGENT_HEALTH_ONLINE  # heard from a moment ago


async def test_an_agent_gone_silent_turns_stale(tmp_path: Path, platform: RunningPlatform, partner: Client) -> None:
    _quick(platform, heartbeat_s=0.2, stale_s=1.0)
    scanner, agent = await agent_on_pty(tmp_path, platform, partner, store_id="store-042")
    agent_id = agent.agent.identity.agent_id
    await _until(platform, agent_id, lambda a: a.status.health == A.AGENT_HEALTH_ONLINE)
    await agent.close()
    scanner.close()
    await _until(platform, agent_id, lambda a: not a.status.connected)
    platform.clock.now_us += 999_999  # (the platform's clock is the test's) silent for just under stale_after
    assert (await _agent(platform, agent_id)).status.health == A.AGENT_HEALTH_ONLINE
    platform.clock.now_us += 1
    stale = await _agent(platform, agent_id)
    assert stale.status.health == A.AGENT_HEALTH_STALE
    assert stale.status.stale_after.ToMicroseconds() == 1_000_000 and not stale.status.connected


async def test_an_agent_never_heard_from(platform: RunningPlatform, partner: Client) -> None:
    agent_id, _ = await enrol_agent(platform, partner)
    agent = await _agent(platform, agent_id)
    assert agent.status.health == A.AGENT_HEALTH_NEVER_SEEN and not agent.status.HasField("last_seen_time")
    operator = platform.operator()
    listed = await operator.agents.ListAgents(A.ListAgentsRequest(), metadata=operator.metadata)
    assert {a.agent_id: a.status.health for a in listed.agents}[agent_id] == A.AGENT_HEALTH_NEVER_SEEN
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await _agent(platform, "agt_0000000000000000")
    assert refusal_of(unknown.value).reason == Reason.AGENT_UNKNOWN


@pytest.mark.parametrize("revoked_by", ["this process", "another process"])
async def test_a_revoked_agents_stream_is_ended_at_once(
    tmp_path: Path, platform: RunningPlatform, partner: Client, revoked_by: str
) -> None:
    _quick(platform)
    scanner, agent = await agent_on_pty(tmp_path, platform, partner, store_id="store-042")
    agent_id = agent.agent.identity.agent_id
    try:
        await _until(platform, agent_id, lambda a: a.status.connected)
        started = time.monotonic()
        if revoked_by == "this process":
            operator = platform.operator()
            await operator.agents.RevokeAgent(A.RevokeAgentRequest(agent_id=agent_id), metadata=operator.metadata)
        else:  # as a process on the same database would: a row changed, nothing said to this one
            db = platform.server.platform.db
            async with db.write() as conn:
                await enrolment.revoke(conn, agent_id, platform.server.platform.clock())
        deadline = time.monotonic() + 5
        while not agent.agent.uplink.revoked:
            assert time.monotonic() < deadline, "the agent did not hear it was revoked"
            await asyncio.sleep(0.02)
        took = time.monotonic() - started
        assert took < (0.5 if revoked_by == "this process" else 2.5), took
        assert "AGENT REVOKED" in agent.console.getvalue()
        sessions = agent.agent.uplink.sessions
        await asyncio.sleep(1.0)
        assert agent.agent.uplink.sessions == sessions  # it does not knock again
        await _until(platform, agent_id, lambda a: not a.status.connected, within=5)
    finally:
        await agent.close()
        scanner.close()


def _beat(**fields: object) -> A.AgentHeartbeat:
    beat = A.AgentHeartbeat(**{"version": "1.0", **fields})  # type: ignore[arg-type]
    beat.send_time.CopyFrom(timestamp_pb2.Timestamp(seconds=int(time.time())))
    return beat


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"heartbeat": _beat(scanners=[A.ScannerStatus(scanner_id=str(i)) for i in range(65)])}, "heartbeat.scanners"),
        ({"heartbeat": _beat(version="v" * 257)}, "heartbeat"),
        ({"heartbeat": _beat(scanners=[A.ScannerStatus(last_error="e" * 257)])}, "heartbeat"),
        ({"heartbeat": _beat(scanners=[A.ScannerStatus(device="d" * 257)])}, "heartbeat"),
        ({"heartbeat": _beat(backlog=-1)}, "heartbeat.backlog"),
        ({"heartbeat": _beat(), "scan": A.SignedScan(sequence=1)}, "heartbeat"),
    ],
)
async def test_a_bad_heartbeat_ends_the_stream_naming_the_field(
    platform: RunningPlatform, partner: Client, request_fields: dict[str, object], field: str
) -> None:
    agent_id, key = await enrol_agent(platform, partner)
    call, _ = await open_stream(partner.channel, (agent_id, key))
    await call.write(A.StreamScansRequest(**request_fields))  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await rest_of(call)
    refusal = refusal_of(ended.value)
    assert refusal.reason == Reason.FIELD_INVALID and refusal.metadata.get("field") == field


async def test_a_good_heartbeat_is_acknowledged_with_the_platforms_time(
    platform: RunningPlatform, partner: Client
) -> None:
    agent_id, key = await enrol_agent(platform, partner)
    call, first = await open_stream(partner.channel, (agent_id, key))
    assert first.heartbeat_interval.ToMicroseconds() == platform.server.platform.fleet.heartbeat_us
    device = "usb 0c2e:0b81 port 1-2"  # which USB device the path led to, kept by the fleet as sent
    beat = _beat(
        backlog=7, scanners=[A.ScannerStatus(scanner_id="till-1", kind="serial", connected=True, device=device)]
    )
    await call.write(A.StreamScansRequest(heartbeat=beat))
    ack = await call.read()
    assert isinstance(ack, A.StreamScansResponse) and ack.heartbeat_ack.send_time == beat.send_time
    assert ack.heartbeat_ack.platform_time.ToMicroseconds() == platform.clock()
    seen = await _until(platform, agent_id, lambda a: a.status.HasField("heartbeat"))
    assert seen.status.heartbeat.backlog == 7 and seen.status.heartbeat.scanners[0].scanner_id == "till-1"
    assert seen.status.heartbeat.scanners[0].device == device
    await call.done_writing()
