"""Statements as partners read them: one by id, a channel's newest first, those after a period, and
the newest period each watched channel has a statement for (what wakes a watcher)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from clearpoint.platform.clearing.statements import PeriodInfo, Statement
from clearpoint.platform.clearing.tables import periods, statements
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.core.fanout import Fanout
from clearpoint.platform.core.principals import Principal
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

_WITH_PERIOD = select(statements, periods.c.start_us, periods.c.end_us).join(
    periods, periods.c.period_id == statements.c.period_id
)


async def get(conn: AsyncConnection, principal: Principal, statement_id: str) -> tuple[Statement, PeriodInfo]:
    """A statement the caller may see; another channel's looks exactly like one that does not exist."""
    row = (await conn.execute(_WITH_PERIOD.where(statements.c.statement_id == statement_id))).first()
    if row is None or not (principal.is_operator or row.channel_id == principal.partner_id):
        raise Refusal(Reason.STATEMENT_UNKNOWN, f"no statement {statement_id}", field="statement_id")
    return _read(row)


async def newest_first(
    conn: AsyncConnection, channel_id: str | None, limit: int, after: tuple[int, str] | None
) -> list[tuple[Statement, PeriodInfo]]:
    """Statements by period number, newest first, then by channel id; one channel's, or all."""
    query = _WITH_PERIOD.order_by(statements.c.period_number.desc(), statements.c.channel_id).limit(limit)
    if channel_id is not None:
        query = query.where(statements.c.channel_id == channel_id)
    if after is not None:
        number, channel = after
        query = query.where(
            or_(
                statements.c.period_number < number,
                and_(statements.c.period_number == number, statements.c.channel_id > channel),
            )
        )
    return [_read(r) for r in await conn.execute(query)]


async def after(
    conn: AsyncConnection, channel_id: str, period_number: int, limit: int = 100
) -> list[tuple[Statement, PeriodInfo]]:
    """A channel's statements of periods after `period_number`, oldest first."""
    rows = await conn.execute(
        _WITH_PERIOD.where(statements.c.channel_id == channel_id, statements.c.period_number > period_number)
        .order_by(statements.c.period_number)
        .limit(limit)
    )
    return [_read(r) for r in rows]


def newest_feed(db: Database, poll_seconds: float) -> Fanout[int]:
    """Per watched channel, the newest period number it has a statement for, read by one task."""

    async def read(channel_ids: Collection[str]) -> dict[str, int]:
        async with db.read() as conn:
            rows = await conn.execute(
                select(statements.c.channel_id, func.max(statements.c.period_number).label("newest"))
                .where(statements.c.channel_id.in_(list(channel_ids)))
                .group_by(statements.c.channel_id)
            )
            found = {r.channel_id: int(r.newest) for r in rows}
        return {channel_id: found.get(channel_id, 0) for channel_id in channel_ids}

    return Fanout(read, poll_seconds=poll_seconds)


def _read(r: Row[Any]) -> tuple[Statement, PeriodInfo]:
    return (
        Statement(
            r.statement_id,
            r.period_id,
            r.period_number,
            r.channel_id,
            bytes(r.content),
            bytes(r.content_sha256),
            bytes(r.signature),
            r.key_id,
        ),
        PeriodInfo(r.period_id, r.period_number, r.start_us, r.end_us),
    )
