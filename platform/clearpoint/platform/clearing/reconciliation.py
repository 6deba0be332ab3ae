"""Reconciliation of a closed period: the ledger's totals against the statements, point for point,
and the statements as stored against the same period cleared again (same bytes, valid signatures).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from clearpoint.formats import statements as form
from clearpoint.platform.clearing import periods
from clearpoint.platform.clearing.adjustments import ledger_flow
from clearpoint.platform.clearing.periods import State
from clearpoint.platform.clearing.runner import Clearing
from clearpoint.platform.clearing.settlement import Direction
from clearpoint.platform.clearing.statements import PeriodInfo
from clearpoint.platform.clearing.tables import statements as statements_table
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.exchange import channels
from sqlalchemy import select


@dataclass(frozen=True, slots=True)
class Row:
    """A channel's points in one direction: in the ledger's final transfers and in its statement."""

    channel_id: str
    direction: Direction
    ledger: int
    statement: int

    @property
    def agrees(self) -> bool:
        return self.ledger == self.statement


@dataclass(frozen=True, slots=True)
class Report:
    period: PeriodInfo
    rows: tuple[Row, ...]
    # Statements whose stored bytes are not what clearing the period again gives, and why.
    statements: tuple[tuple[str, str], ...]

    @property
    def agrees(self) -> bool:
        return all(r.agrees for r in self.rows) and not self.statements


async def reconcile(clearing: Clearing, number: int) -> Report:
    async with clearing.db.read() as conn:
        period = await periods.by_number(conn, number)
        if period is None or period.state is not State.CLOSED:
            raise Refusal(Reason.FIELD_INVALID, f"period {number} is not a closed period", field="period")
        previous = await periods.by_number(conn, number - 1)
        listed = await channels.registered_before(conn, period.info.end_us)
        in_ledger = await periods.ledger_totals(conn, period, previous, listed)
        stored = (
            await conn.execute(select(statements_table).where(statements_table.c.period_id == period.period_id))
        ).all()
    again, _, _ = await clearing.compute(period)
    in_statements: defaultdict[tuple[str, Direction], int] = defaultdict(int)
    problems: list[tuple[str, str]] = []
    expected = {s.statement_id: s.content for s in again}
    for row in stored:
        content = bytes(row.content)
        body = json.loads(content)
        for line in body["lines"]:
            in_statements[(row.channel_id, Direction(line["direction"]))] += int(line["points"])
        for fix in body["adjustments"]:  # counted the way its points moved in the ledger
            way, points = ledger_flow(Direction(fix["direction"]), int(fix["points"]))
            in_statements[(row.channel_id, way)] += points
        if row.key_id != clearing.key.key_id:
            problems.append((row.statement_id, f"signed by key {row.key_id}, not the platform's {clearing.key.key_id}"))
        else:
            try:
                form.verify(content, bytes(row.signature), clearing.key.public_key)
            except form.StatementInvalid as exc:
                problems.append((row.statement_id, str(exc)))
        if expected.pop(row.statement_id, None) != content:
            problems.append((row.statement_id, "differs from the period cleared again"))
    problems += [(missing, "missing: clearing the period again makes it") for missing in sorted(expected)]
    keys = sorted(set(in_ledger) | set(in_statements), key=lambda k: (k[0], k[1].value))
    rows = tuple(Row(c, d, in_ledger.get((c, d), 0), in_statements.get((c, d), 0)) for c, d in keys)
    return Report(period.info, rows, tuple(problems))
