"""Clearing periods: where each begins and ends, the cut that fixes what the ledger holds for it, and
the period's movements per channel read from the ledger.

A transfer belongs to the first period whose end is after its time and whose watermark is at or
above its `seq`. The watermark is the ledger's highest `seq` taken while no transaction that writes
transfers is open (PostgreSQL: under a SHARE lock on the table, which waits for those in flight;
SQLite: inside its one write transaction), so no transfer at or below it can commit later. An
exchange that commits after the cut, even one stamped before the period's end, lands in the next
period: every transfer lands in exactly one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clearpoint.platform.clearing.schedule import Schedule
from clearpoint.platform.clearing.settlement import Direction, Movement
from clearpoint.platform.clearing.statements import PeriodInfo, period_id
from clearpoint.platform.clearing.tables import periods
from clearpoint.platform.core.database import Database
from clearpoint.platform.exchange import channels, ledger
from clearpoint.platform.exchange.channels import Channel
from clearpoint.platform.exchange.tables import transfers
from sqlalchemy import ColumnElement, and_, func, insert, or_, select, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

# What counts: transfers that are final (posted at once, or the post of a pending one); a void moves nothing.
_FINAL = (ledger.Kind.POSTED.value, ledger.Kind.POST.value)
EXCHANGE = "exchange"  # the ledger code of an exchange's legs


class State(StrEnum):
    CLOSING = "closing"  # the cut is taken; statements not yet written
    CLOSED = "closed"  # statements written; never changed again


@dataclass(frozen=True, slots=True)
class Period:
    info: PeriodInfo
    watermark: int
    state: State
    summary: str | None

    @property
    def period_id(self) -> str:
        return self.info.period_id


async def last(conn: AsyncConnection) -> Period | None:
    row = (await conn.execute(select(periods).order_by(periods.c.number.desc()).limit(1))).first()
    return None if row is None else _period(row)


async def by_number(conn: AsyncConnection, number: int) -> Period | None:
    row = (await conn.execute(select(periods).where(periods.c.number == number))).first()
    return None if row is None else _period(row)


async def listed(conn: AsyncConnection, *, limit: int, before_number: int | None = None) -> list[Period]:
    """Periods, newest first."""
    query = select(periods).order_by(periods.c.number.desc()).limit(limit)
    if before_number is not None:
        query = query.where(periods.c.number < before_number)
    return [_period(r) for r in await conn.execute(query)]


async def next_due(conn: AsyncConnection, schedule: Schedule, through_us: int) -> PeriodInfo | Period | None:
    """The period to close next: one whose cut was taken by a run that did not finish, else the one
    after the last closed, if it ends at or before `through_us`. The first period begins at the cut
    at or before the first channel's registration (nothing to clear before there is a channel)."""
    previous = await last(conn)
    if previous is not None and previous.state is State.CLOSING:
        return previous
    if previous is not None:
        start, number = previous.info.end_us, previous.info.number + 1
    else:
        first = await channels.first_registered_us(conn)
        if first is None:
            return None
        start, number = schedule.cut_at_or_before(first), 1
    end = schedule.next_cut(start)
    if end > through_us:
        return None
    return PeriodInfo(period_id(end), number, start, end)


async def take_cut(db: Database, info: PeriodInfo, now_us: int) -> Period:
    """Fix what the period holds: its watermark, written with the period as `closing`."""
    async with db.write() as conn:
        if db.is_postgres:
            await conn.execute(text("LOCK TABLE ledger_transfers IN SHARE MODE"))
        watermark = int(await conn.scalar(select(func.coalesce(func.max(transfers.c.seq), 0))) or 0)
        await conn.execute(
            insert(periods).values(
                period_id=info.period_id,
                number=info.number,
                start_us=info.start_us,
                end_us=info.end_us,
                watermark=watermark,
                state=State.CLOSING.value,
                closing_us=now_us,
            )
        )
    return Period(info, watermark, State.CLOSING, None)


def in_period(period: Period, previous: Period | None) -> ColumnElement[bool]:
    """SQL: a transfer belongs to `period` (given the period before it)."""
    mine = and_(transfers.c.seq <= period.watermark, transfers.c.created_us < period.info.end_us)
    if previous is None:
        return mine
    return and_(mine, or_(transfers.c.seq > previous.watermark, transfers.c.created_us >= previous.info.end_us))


def channel_accounts(listed: Sequence[Channel]) -> dict[str, str]:
    """Each channel's own account in its unit (the other side of it is the platform's hub)."""
    return {ledger.account_named(c.unit, c.partner_id, "channel"): c.partner_id for c in listed}


async def movements(
    conn: AsyncConnection, period: Period, previous: Period | None, listed: Sequence[Channel]
) -> list[Movement]:
    """The period's final exchange movements on channels' accounts, per channel, direction and rule
    version: one GROUP BY over the ledger. (Corrections are settled apart, each on its own line.)"""
    owners = channel_accounts(listed)
    rows = await conn.execute(
        select(
            transfers.c.debit_account,
            transfers.c.credit_account,
            transfers.c.rule_version,
            func.sum(transfers.c.amount).label("points"),
            func.count().label("n"),
        )
        .where(
            transfers.c.kind.in_(_FINAL),
            transfers.c.code == EXCHANGE,
            transfers.c.rule_version.is_not(None),
            in_period(period, previous),
        )
        .group_by(transfers.c.debit_account, transfers.c.credit_account, transfers.c.rule_version)
    )
    found = []
    for r in rows:
        if r.debit_account in owners:
            channel, direction = owners[r.debit_account], Direction.OUT_OF_CHANNEL
        elif r.credit_account in owners:
            channel, direction = owners[r.credit_account], Direction.INTO_CHANNEL
        else:
            raise LookupError(f"priced transfers between {r.debit_account} and {r.credit_account}: no channel's")
        found.append(Movement(channel, direction, int(r.rule_version), int(r.points), int(r.n)))
    return _merged(found)


async def ledger_totals(
    conn: AsyncConnection, period: Period, previous: Period | None, listed: Sequence[Channel]
) -> dict[tuple[str, Direction], int]:
    """Every final point in the period into or out of each channel's account, priced or not: what
    the statements must add up to."""
    owners = channel_accounts(listed)
    accounts = list(owners)
    rows = await conn.execute(
        select(transfers.c.debit_account, transfers.c.credit_account, func.sum(transfers.c.amount).label("points"))
        .where(
            transfers.c.kind.in_(_FINAL),
            or_(transfers.c.debit_account.in_(accounts), transfers.c.credit_account.in_(accounts)),
            in_period(period, previous),
        )
        .group_by(transfers.c.debit_account, transfers.c.credit_account)
    )
    totals: dict[tuple[str, Direction], int] = {}
    for r in rows:
        for account, direction in (
            (r.debit_account, Direction.OUT_OF_CHANNEL),
            (r.credit_account, Direction.INTO_CHANNEL),
        ):
            if account in owners:
                key = (owners[account], direction)
                totals[key] = totals.get(key, 0) + int(r.points)
    return totals


def _merged(found: list[Movement]) -> list[Movement]:
    """One movement per (channel, direction, version), whatever other account the transfers had."""
    by: dict[tuple[str, Direction, int], Movement] = {}
    for m in found:
        key = (m.channel_id, m.direction, m.rule_version)
        had = by.get(key)
        by[key] = m if had is None else Movement(*key, had.points + m.points, had.transfers + m.transfers)
    return list(by.values())


def _period(row: Row[Any]) -> Period:
    return Period(
        PeriodInfo(row.period_id, row.number, row.start_us, row.end_us), row.watermark, State(row.state), row.summary
    )
