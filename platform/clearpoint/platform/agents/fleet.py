"""The fleet: which agents are heard from, and what their heartbeats last said.

Every platform process writes an agent's row when its stream opens, on every heartbeat, and when
the stream ends; the rows are the fleet's state for all processes and for `clearpoint ops agents`.
Heartbeats of many agents go to the database together (core.batching), one statement a batch, so
a fleet of thousands costs a few writes a second. An agent is stale when nothing was heard from it
within `stale_after_us`, whatever the state of its stream: a stopped agent, a cut cable and a hung
process look the same from here, and each needs a person.

A revoked agent's streams are ended at once by the process that revoked it, and by every other
process within REVOCATION_POLL_S (each looks for new revocations among the agents it serves).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from clearpoint.platform.agents.tables import agent_status, agents
from clearpoint.platform.core import metrics
from clearpoint.platform.core.batching import Batcher
from clearpoint.platform.core.clock import Clock
from clearpoint.platform.core.database import Database
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 15.0
DEFAULT_STALE_AFTER_S = 60.0
REVOCATION_POLL_S = 1.0


class Health(StrEnum):
    ONLINE = "online"
    STALE = "stale"
    NEVER_SEEN = "never_seen"


@dataclass(frozen=True, slots=True)
class ScannerState:
    scanner_id: str
    kind: str
    path: str
    connected: bool
    last_scan_us: int | None = None
    last_error: str = ""
    last_error_us: int | None = None
    device: str = ""  # the USB device the path led to (model and serial number or port); "" if unknown


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What an agent said of itself."""

    agent_id: str
    received_us: int
    version: str
    uptime_us: int
    scanners: tuple[ScannerState, ...]
    backlog: int
    oldest_unanswered_us: int | None
    last_answer_us: int | None
    round_trip_us: int | None
    clock_offset_us: int | None
    sent_us: int


@dataclass(frozen=True, slots=True)
class Status:
    """The fleet's view of one agent."""

    agent_id: str
    health: Health
    connected: bool
    last_seen_us: int | None
    connect_us: int | None
    heartbeat: Heartbeat | None
    stale_after_us: int


def _scanners_json(scanners: Sequence[ScannerState]) -> str:
    return json.dumps([asdict(s) for s in scanners], separators=(",", ":"))


def _scanners_of(text: str | None) -> tuple[ScannerState, ...]:
    return tuple(ScannerState(**entry) for entry in json.loads(text or "[]"))


_HEARTBEAT_UPDATE = (
    update(agent_status)
    .where(agent_status.c.agent_id == bindparam("b_agent_id"))
    .values(
        last_seen_us=bindparam("received_us"),
        heartbeat_us=bindparam("received_us"),
        version=bindparam("version"),
        uptime_us=bindparam("uptime_us"),
        backlog=bindparam("backlog"),
        oldest_unanswered_us=bindparam("oldest_unanswered_us"),
        last_answer_us=bindparam("last_answer_us"),
        round_trip_us=bindparam("round_trip_us"),
        clock_offset_us=bindparam("clock_offset_us"),
        sent_us=bindparam("sent_us"),
        scanners=bindparam("scanners"),
    )
)


class Fleet:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        heartbeat_us: int = int(DEFAULT_HEARTBEAT_S * 1e6),
        stale_after_us: int = int(DEFAULT_STALE_AFTER_S * 1e6),
    ) -> None:
        self.db = db
        self.clock = clock
        self.heartbeat_us = heartbeat_us
        self.stale_after_us = stale_after_us
        self._writes: Batcher[Heartbeat, None] = Batcher(
            self._write_heartbeats, key=lambda h: h.agent_id, name="heartbeats"
        )
        # This process's open streams: agent id -> stream id -> what ends that stream.
        self._local: dict[str, dict[str, Callable[[], None]]] = {}
        self._backlogs: dict[str, int] = {}  # what the agents streaming here last said they hold
        self._revocations_seen_us = clock()

    # --- streams --------------------------------------------------------------------------------

    async def opened(self, agent_id: str, stream_id: str, end: Callable[[], None]) -> None:
        """A proven stream of `agent_id` opened here; `end` ends it (on revocation)."""
        self._local.setdefault(agent_id, {})[stream_id] = end
        metrics.AGENT_STREAMS.inc()
        now = self.clock()
        row = {
            "agent_id": agent_id,
            "stream_id": stream_id,
            "connected": True,
            "connect_us": now,
            "last_seen_us": now,
        }
        changes = {k: v for k, v in row.items() if k != "agent_id"}
        async with self.db.write() as conn:
            await conn.execute(
                self.db.insert(agent_status)
                .values(row)
                .on_conflict_do_update(index_elements=[agent_status.c.agent_id], set_=changes)
            )

    async def closed(self, agent_id: str, stream_id: str) -> None:
        """The stream ended: the agent is disconnected unless a newer stream of it opened since."""
        streams = self._local.get(agent_id, {})
        if streams.pop(stream_id, None) is not None:
            metrics.AGENT_STREAMS.dec()
        if not streams:
            self._local.pop(agent_id, None)
            self._backlogs.pop(agent_id, None)
            metrics.AGENT_BACKLOG.set(sum(self._backlogs.values()))
        async with self.db.write() as conn:
            await conn.execute(
                update(agent_status)
                .where(agent_status.c.agent_id == agent_id, agent_status.c.stream_id == stream_id)
                .values(connected=False)
            )

    @property
    def local_streams(self) -> int:
        return sum(len(s) for s in self._local.values())

    def end_streams(self, agent_id: str) -> int:
        """End this process's streams of `agent_id` (revoked); returns how many."""
        ends = list(self._local.get(agent_id, {}).values())
        for end in ends:
            end()
        return len(ends)

    async def end_revoked(self) -> list[str]:
        """End the streams here of agents revoked since the last look (by any process)."""
        if not self._local:
            self._revocations_seen_us = self.clock()
            return []
        since, self._revocations_seen_us = self._revocations_seen_us, self.clock()
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(agents.c.agent_id).where(
                    agents.c.revoked_us.is_not(None),
                    agents.c.revoked_us >= since - int(REVOCATION_POLL_S * 2e6),  # clocks of processes differ a little
                    agents.c.agent_id.in_(list(self._local)),
                )
            )
            revoked = [r.agent_id for r in rows]
        for agent_id in revoked:
            if self.end_streams(agent_id):
                log.warning("agent %s was revoked: its stream here is ended", agent_id)
        return revoked

    # --- heartbeats -----------------------------------------------------------------------------

    async def heard(self, heartbeat: Heartbeat) -> None:
        metrics.HEARTBEATS.inc()
        if heartbeat.agent_id in self._local:
            self._backlogs[heartbeat.agent_id] = heartbeat.backlog
            metrics.AGENT_BACKLOG.set(sum(self._backlogs.values()))
        await self._writes.submit(heartbeat)

    async def _write_heartbeats(self, beats: Sequence[Heartbeat]) -> Sequence[None]:
        rows = [
            {
                "b_agent_id": h.agent_id,
                "received_us": h.received_us,
                "version": h.version[:64],
                "uptime_us": h.uptime_us,
                "backlog": h.backlog,
                "oldest_unanswered_us": h.oldest_unanswered_us,
                "last_answer_us": h.last_answer_us,
                "round_trip_us": h.round_trip_us,
                "clock_offset_us": h.clock_offset_us,
                "sent_us": h.sent_us,
                "scanners": _scanners_json(h.scanners),
            }
            for h in beats
        ]
        async with self.db.write() as conn:
            await conn.execute(_HEARTBEAT_UPDATE, rows)
        return [None] * len(beats)

    @property
    def heartbeat_batches(self) -> tuple[int, int]:
        """(batches written, the largest): how much heartbeats shared their writes."""
        return self._writes.batches, self._writes.largest

    # --- reading --------------------------------------------------------------------------------

    async def statuses(self, conn: AsyncConnection, agent_ids: Sequence[str] | None = None) -> dict[str, Status]:
        query = select(agent_status)
        if agent_ids is not None:
            query = query.where(agent_status.c.agent_id.in_(list(agent_ids)))
        now = self.clock()
        return {row.agent_id: self._status(row, now) for row in await conn.execute(query)}

    def never_seen(self, agent_id: str) -> Status:
        return Status(agent_id, Health.NEVER_SEEN, False, None, None, None, self.stale_after_us)

    def _status(self, row: Any, now_us: int) -> Status:
        heartbeat = None
        if row.heartbeat_us is not None:
            heartbeat = Heartbeat(
                row.agent_id,
                row.heartbeat_us,
                row.version or "",
                row.uptime_us or 0,
                _scanners_of(row.scanners),
                row.backlog or 0,
                row.oldest_unanswered_us,
                row.last_answer_us,
                row.round_trip_us,
                row.clock_offset_us,
                row.sent_us or 0,
            )
        fresh = now_us - row.last_seen_us < self.stale_after_us
        return Status(
            row.agent_id,
            Health.ONLINE if fresh else Health.STALE,
            bool(row.connected),
            row.last_seen_us,
            row.connect_us,
            heartbeat,
            self.stale_after_us,
        )
