"""Corrections of closed periods: a closed statement is never edited; an operator records an
adjustment that names the statement it corrects, moves the points in the ledger (a posted transfer
on the channel's account, code "correction"), and the adjustment is settled in the period that
transfer lands in, as a line of its own beside that period's exchanges."""

from __future__ import annotations

from dataclasses import dataclass

from clearpoint.platform.clearing.periods import Period, in_period
from clearpoint.platform.clearing.settlement import Correction, Direction
from clearpoint.platform.clearing.tables import adjustments, statements
from clearpoint.platform.core import ids
from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.exchange import channels, ledger
from clearpoint.platform.exchange.channels import PLATFORM
from clearpoint.platform.exchange.tables import transfers
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

CODE = "correction"


@dataclass(frozen=True, slots=True)
class Request:
    channel_id: str
    corrects_statement_id: str
    direction: str
    points: int
    rule_version: int
    reason: str


async def record(conn: AsyncConnection, request: Request, now_us: int) -> Correction:
    """Check the correction, move its points in the ledger and keep it; refused with the field at fault."""
    try:
        direction = Direction(request.direction)
    except ValueError:
        raise field_invalid("direction", "direction is out_of_channel or into_channel") from None
    if not request.points or abs(request.points) > ledger.MAX_AMOUNT:
        raise field_invalid(
            "points", f"points is a whole number from -{ledger.MAX_AMOUNT} to {ledger.MAX_AMOUNT}, not 0"
        )
    if not 1 <= len(request.reason) <= 200 or not request.reason.isprintable():
        raise field_invalid("reason", "reason is 1 to 200 printable characters: say what is being corrected")
    corrected = (
        await conn.execute(
            select(statements.c.channel_id, statements.c.period_id).where(
                statements.c.statement_id == request.corrects_statement_id
            )
        )
    ).first()
    if corrected is None:
        raise Refusal(Reason.STATEMENT_UNKNOWN, f"no statement {request.corrects_statement_id}", field="statement_id")
    if corrected.channel_id != request.channel_id:
        raise field_invalid(
            "channel_id", f"statement {request.corrects_statement_id} is not channel {request.channel_id}'s"
        )
    if await channels.version(conn, request.channel_id, request.rule_version) is None:
        raise field_invalid("rule_version", f"channel {request.channel_id} has no rule version {request.rule_version}")
    channel = await channels.known(conn, request.channel_id, "channel_id")
    own = ledger.account_named(channel.unit, channel.partner_id, "channel")
    hub = ledger.account_named(channel.unit, PLATFORM, "hub")
    # More points out of the channel (or fewer into it) move from its account to the hub; the other way otherwise.
    outward = (direction is Direction.OUT_OF_CHANNEL) == (request.points > 0)
    leg = (
        ledger.Leg(own, hub, abs(request.points), request.rule_version)
        if outward
        else ledger.Leg(hub, own, abs(request.points), request.rule_version)
    )
    txn_id = ledger.new_id("txn")
    await ledger.transact(conn, [leg], code=CODE, now_us=now_us, txn_id=txn_id)
    made = Correction(
        ids.new_id("adj"),
        request.channel_id,
        request.corrects_statement_id,
        corrected.period_id,
        direction,
        request.rule_version,
        request.points,
        request.reason,
    )
    await conn.execute(
        insert(adjustments).values(
            adjustment_id=made.adjustment_id,
            channel_id=made.channel_id,
            corrects_statement_id=made.corrects_statement_id,
            direction=direction.value,
            points=made.points,
            rule_version=made.rule_version,
            reason=made.reason,
            txn_id=txn_id,
            created_us=now_us,
        )
    )
    return made


async def landed_in(conn: AsyncConnection, period: Period, previous: Period | None) -> list[Correction]:
    """The corrections whose ledger transfer belongs to `period`."""
    rows = await conn.execute(
        select(adjustments, statements.c.period_id)
        .join(transfers, transfers.c.txn_id == adjustments.c.txn_id)
        .join(statements, statements.c.statement_id == adjustments.c.corrects_statement_id)
        .where(in_period(period, previous))
        .order_by(adjustments.c.adjustment_id)
    )
    return [
        Correction(
            r.adjustment_id,
            r.channel_id,
            r.corrects_statement_id,
            r.period_id,
            Direction(r.direction),
            r.rule_version,
            r.points,
            r.reason,
        )
        for r in rows
    ]


def ledger_flow(direction: Direction, points: int) -> tuple[Direction, int]:
    """Which way a correction's points move on the channel's account, and how many: more points out
    of the channel (or fewer into it) leave its account for the hub; the other way otherwise."""
    if points > 0:
        return direction, points
    other = Direction.INTO_CHANNEL if direction is Direction.OUT_OF_CHANNEL else Direction.OUT_OF_CHANNEL
    return other, -points
