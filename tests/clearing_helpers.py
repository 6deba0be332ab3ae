"""The books clearing tests work on: three channels with rules that change, a member in all three,
and exchanges made at chosen times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from clearpoint.platform import migrate
from clearpoint.platform.clearing import schedule
from clearpoint.platform.clearing.runner import Clearing
from clearpoint.platform.clearing.statements import StatementKey
from clearpoint.platform.clearing.tables import statements as statements_table
from clearpoint.platform.core.clock import ManualClock
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.principals import Principal
from clearpoint.platform.exchange import channels, exchanges, members
from clearpoint.platform.exchange.exchanges import Request
from sqlalchemy import select

from tests.conftest import MASTER_KEY
from tests.helpers import channel_rule, principals

MIN = 60_000_000


def at(hh: int, mm: int, ss: int = 0) -> int:
    return int(datetime(2026, 12, 1, hh, mm, ss, tzinfo=UTC).timestamp()) * 1_000_000


@dataclass
class Books:
    db: Database
    clock: ManualClock
    a: Principal  # Alpha: 1 mile = 0.25 platform points, fee 1.5 %; price 0.5 EUR cents, 0.35 from 09:40
    b: Principal  # Beta: 1 platform point = 3.333333 stars; price 0.125, then 0.2 from 10:01
    c: Principal  # Gamma: 1 platform point = 1.5 of its points; price 2.25 USD cents
    op: Principal
    member: str
    clearing: Clearing
    keys: dict[str, str]  # API keys by partner id

    async def exchange(
        self, frm: Principal | None, to: Principal | None, points: int, out: bool | None, inside: bool | None
    ) -> exchanges.Exchange:
        """Start an exchange now and have each channel answer (None: it does not answer yet)."""
        request = Request(self.member, frm and frm.partner_id, to and to.partner_id, points)
        async with self.db.write() as conn:
            made = await exchanges.start(conn, self.op, request, self.clock())
        for side, answer, who in (("out", out, frm), ("in", inside, to)):
            if who is not None and answer is not None:
                made = await self.answer(who, made.exchange_id, answer)
            if side == "out" and frm is not None and not out:
                break
        return made

    async def answer(self, who: Principal, exchange_id: str, accept: bool) -> exchanges.Exchange:
        async with self.db.write() as conn:
            return await exchanges.resolve(conn, who, exchange_id, accept, self.clock())

    async def stored(self) -> dict[tuple[int, str], tuple[bytes, bytes]]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(statements_table))
            return {(r.period_number, r.channel_id): (bytes(r.content), bytes(r.signature)) for r in rows}


async def open_books(url: str, start_us: int | None = None) -> Books:
    """Three channels (their rules as Books says, times counted from the start), a member linked to
    all three, at 09:30 on 1 December 2026 (or `start_us`); clearing hourly, signed with the
    session's master key."""
    db = Database(url)
    await migrate.upgrade(db)
    clock = ManualClock(at(9, 30) if start_us is None else start_us)
    now = clock()
    async with db.write() as conn:
        a, b, c, op, keys = await principals(conn, now)
        for who, programme, unit in ((a, "Alpha Miles", "miles"), (b, "Beta Stars", "stars"), (c, "Gamma", "gems")):
            await channels.register(conn, who.partner_id, programme, unit, now)
        pid = a.partner_id
        await channels.publish(
            conn, channel_rule(pid, now, to_platform=Decimal("0.25"), fee_percent=Decimal("1.5")), now
        )
        await channels.publish(
            conn,
            channel_rule(
                pid, now + 600_000_000, to_platform=Decimal("0.25"), fee_percent=Decimal("1.5"), price=Decimal("0.35")
            ),
            now,
        )
        await channels.publish(
            conn, channel_rule(b.partner_id, now, from_platform=Decimal("3.333333"), price=Decimal("0.125")), now
        )
        await channels.publish(
            conn,
            channel_rule(b.partner_id, now + 1_860_000_000, from_platform=Decimal("3.333333"), price=Decimal("0.2")),
            now,
        )
        await channels.publish(
            conn,
            channel_rule(c.partner_id, now, from_platform=Decimal("1.5"), price=Decimal("2.25"), currency="USD"),
            now,
        )
        member = (await members.register(conn, op, "Ada", now)).member_id
        for who, ref in ((a, "A-1"), (b, "B-1"), (c, "C-1")):
            await members.link(conn, who, member, who.partner_id, ref, now)
    clearing = Clearing(db, clock, schedule.parse("hourly"), StatementKey.derived(MASTER_KEY))
    return Books(db, clock, a, b, c, op, member, clearing, keys)
