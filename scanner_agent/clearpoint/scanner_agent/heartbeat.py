"""What the agent reports of itself on its stream, for the fleet view (`clearpoint ops agents`):
its version and uptime, each scanner's state, the journal's backlog, and when answers last came.
The uplink adds the send time and what the previous heartbeat's ack measured."""

from __future__ import annotations

import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version

from clearpoint.scanner_agent.journal import Journal
from clearpoint.scanner_agent.reads import Driver
from clearpoint.v1 import agents_pb2

_STARTED_NS = time.monotonic_ns()


def agent_version() -> str:
    try:
        return version("clearpoint")
    except PackageNotFoundError:
        return "unknown"


async def report(
    drivers: Mapping[str, Driver], journal: Journal, last_answer_us: int | None
) -> agents_pb2.AgentHeartbeat:
    beat = agents_pb2.AgentHeartbeat(version=agent_version(), backlog=journal.backlog)
    beat.uptime.FromNanoseconds(time.monotonic_ns() - _STARTED_NS)
    if journal.backlog:
        oldest = await journal.oldest_unanswered_us()
        if oldest is not None:
            beat.oldest_unanswered_time.FromMicroseconds(oldest)
    if last_answer_us is not None:
        beat.last_answer_time.FromMicroseconds(last_answer_us)
    for scanner_id, driver in drivers.items():
        h = driver.health
        status = beat.scanners.add(
            scanner_id=scanner_id, kind=h.kind, path=h.path, connected=h.connected, device=h.device[:256]
        )
        if h.last_scan_us is not None:
            status.last_scan_time.FromMicroseconds(h.last_scan_us)
        if h.last_error:
            status.last_error = h.last_error[:256]
            if h.last_error_us is not None:
                status.last_error_time.FromMicroseconds(h.last_error_us)
    return beat
