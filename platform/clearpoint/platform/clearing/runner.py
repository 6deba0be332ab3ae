"""The clearing run: every period whose end has passed, closed in order, by one process at a time.

Several platform processes may share the database (`--workers N`, or several hosts); each runs the
schedule, and the one holding the lease row does the work. The lease is a guard for effort, not for
correctness: a period's statements are written together with its `closed` state, at most once per
channel and period (a unique index), so two runners could not both write a period even if the lease
were lost mid-run. A run killed after taking a period's cut resumes on the same cut, so it gives
the same statements as one that was never interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from clearpoint.platform.clearing import adjustments, periods, statements
from clearpoint.platform.clearing.periods import Period, State
from clearpoint.platform.clearing.schedule import DEFAULT_LEASE_SECONDS, Schedule, rfc3339
from clearpoint.platform.clearing.settlement import Price, net_positions, settle
from clearpoint.platform.clearing.statements import PeriodInfo, Statement, StatementKey
from clearpoint.platform.clearing.tables import lease
from clearpoint.platform.clearing.tables import periods as periods_table
from clearpoint.platform.clearing.tables import statements as statements_table
from clearpoint.platform.core.clock import Clock
from clearpoint.platform.core.database import Database
from clearpoint.platform.exchange import channels
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

log = logging.getLogger(__name__)

LEASE_NAME = "clearing"
# After a cut, how long the scheduled run waits, so exchanges stamped just before it can commit first.
SETTLE_SECONDS = 2.0
# How long a starting process waits before its first run (a server started and stopped at once runs none).
START_SECONDS = 1.0
# How soon a process looks again after a failed run, or after finding the lease held.
RETRY_SECONDS = 60.0


class ClearingBusy(Exception):
    """Another process holds the clearing lease."""

    def __init__(self, holder: str, until_us: int) -> None:
        super().__init__(f"clearing is being run by {holder} (its lease lasts until {rfc3339(until_us)})")
        self.holder = holder
        self.until_us = until_us


@dataclass(frozen=True, slots=True)
class Closed:
    period: PeriodInfo
    statements: int
    summary: str


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


class Clearing:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        schedule: Schedule,
        key: StatementKey,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        holder: str | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.schedule = schedule
        self.key = key
        self.lease_us = int(lease_seconds * 1_000_000)
        self.holder = holder or _me()
        self._announce = announce or (lambda _channel_id: None)
        self._stopping = asyncio.Event()

    async def run(self, through_us: int | None = None, progress: Callable[[str], None] | None = None) -> list[Closed]:
        """Close every period that ends at or before `through_us` (default: now), oldest first."""
        say = progress or (lambda _line: None)
        through = self.clock() if through_us is None else through_us
        await self._take_lease()
        done: list[Closed] = []
        try:
            while True:
                async with self.db.read() as conn:
                    due = await periods.next_due(conn, self.schedule, through)
                if due is None:
                    break
                if isinstance(due, Period):
                    say(f"period {due.info.number}: resuming on its cut at ledger seq {due.watermark}")
                    period = due
                else:
                    period = await periods.take_cut(self.db, due, self.clock())
                    say(
                        f"period {due.number} ({rfc3339(due.start_us)} to {rfc3339(due.end_us)}):"
                        f" cut at ledger seq {period.watermark}"
                    )
                done.append(await self._close(period, say))
                await self._take_lease()
        finally:
            await self._release_lease()
        return done

    async def _close(self, period: Period, say: Callable[[str], None]) -> Closed:
        made, summary, transfers = await self.compute(period)
        info = period.info
        say(f"period {info.number}: {transfers} transfers over {len(made)} channels")
        await self._write(period, made, summary)
        for s in made:  # this process's watchers hear at once; others' at their next poll
            self._announce(s.channel_id)
        say(f"period {info.number}: {len(made)} statements signed and closed")
        return Closed(info, len(made), summary)

    async def compute(self, period: Period) -> tuple[list[Statement], str, int]:
        """A period's statements, its multilateral summary and how many transfers they count: what
        closing it writes, and what reconciliation compares with what was written."""
        info = period.info
        async with self.db.read() as conn:
            previous = await periods.by_number(conn, info.number - 1)
            listed = await channels.registered_before(conn, info.end_us)
            moved = await periods.movements(conn, period, previous, listed)
            corrections = await adjustments.landed_in(conn, period, previous)
            prices: dict[tuple[str, int], Price] = {}
            for channel_id in sorted({m.channel_id for m in moved} | {c.channel_id for c in corrections}):
                for rule in await channels.history(conn, channel_id):
                    prices[(channel_id, rule.version)] = Price(rule.price, rule.currency)
        settled = settle((c.partner_id for c in listed), moved, prices, corrections)
        by_id = {c.partner_id: c for c in listed}
        made = [statements.make(info, by_id[s.channel_id], s, self.key) for s in settled]
        return made, statements.summary(info, net_positions(settled)), sum(m.transfers for m in moved)

    async def _write(self, period: Period, made: list[Statement], summary: str) -> None:
        """The statements and the period's `closed` state, together or not at all."""
        now = self.clock()
        async with self.db.write() as conn:
            closed = await conn.execute(
                update(periods_table)
                .where(periods_table.c.period_id == period.period_id, periods_table.c.state == State.CLOSING.value)
                .values(state=State.CLOSED.value, summary=summary, closed_us=now)
            )
            if closed.rowcount != 1:
                raise ClearingBusy("another process", now)
            if made:
                await conn.execute(
                    insert(statements_table),
                    [
                        {
                            "statement_id": s.statement_id,
                            "period_id": s.period_id,
                            "channel_id": s.channel_id,
                            "content": s.content,
                            "content_sha256": s.content_sha256,
                            "signature": s.signature,
                            "key_id": s.key_id,
                            "period_number": s.period_number,
                            "created_us": now,
                        }
                        for s in made
                    ],
                )

    async def _take_lease(self) -> None:
        now = self.clock()
        until = now + self.lease_us
        async with self.db.write() as conn:
            taken = await conn.execute(
                update(lease)
                .where(lease.c.name == LEASE_NAME, (lease.c.expires_us <= now) | (lease.c.holder == self.holder))
                .values(holder=self.holder, expires_us=until)
            )
            if taken.rowcount == 1:
                return
            row = (await conn.execute(select(lease).where(lease.c.name == LEASE_NAME))).first()
            if row is not None:
                raise ClearingBusy(row.holder, row.expires_us)
            try:
                async with conn.begin_nested():
                    await conn.execute(insert(lease).values(name=LEASE_NAME, holder=self.holder, expires_us=until))
            except IntegrityError:
                raise ClearingBusy("another process", until) from None

    async def _release_lease(self) -> None:
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    update(lease).where(lease.c.name == LEASE_NAME, lease.c.holder == self.holder).values(expires_us=0)
                )
        except Exception:  # the lease then just runs out
            log.warning("could not release the clearing lease; it lapses in %g s", self.lease_us / 1e6)

    async def scheduled(self) -> None:
        """Inside the platform: after each cut (and once at start, for periods already due), close what
        is due; a process that finds the lease held leaves the run to its holder.

        The run after a wake-up covers at least the cut it woke for: an event loop may fire a timer a
        little early (uvloop rounds to milliseconds), and `now - SETTLE_SECONDS` read then would stop
        just short of the cut, leaving the period for the next one."""
        settle = int(SETTLE_SECONDS * 1_000_000)
        woke_for: int | None = None
        if await self._rest(START_SECONDS):  # a process stopped at once never starts a run
            return
        while True:
            retry = False
            try:
                through = self.clock() - settle
                closed = await self.run(through if woke_for is None else max(through, woke_for))
                for c in closed:
                    log.info("clearing: period %d closed, %d statements", c.period.number, c.statements)
            except ClearingBusy as busy:  # another process is at it; look again in case it dies
                log.debug("clearing: %s", busy)
                retry = True
            except Exception:
                log.exception("clearing run failed; trying again in %g s", RETRY_SECONDS)
                retry = True
            now = self.clock()
            woke_for = self.schedule.next_cut(now - settle)
            wake = woke_for + settle
            if retry:
                wake = min(wake, now + int(RETRY_SECONDS * 1_000_000))
                woke_for = min(woke_for, now - settle)
            if await self._rest(max(wake - now, 0) / 1_000_000):
                return

    async def _rest(self, seconds: float) -> bool:
        """Wait `seconds`, or less if the process is stopping; whether it is."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    def stop(self) -> None:
        """Stop the schedule once the run under way (if any) has finished: a run is never cut off in
        the middle of a transaction by a stopping server."""
        self._stopping.set()
