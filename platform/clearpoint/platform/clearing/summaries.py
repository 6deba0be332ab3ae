"""What the clearing commands print: closed periods and reconciliation reports, for people (tables)
and for scripts (JSON), and the reading of `--period`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from clearpoint.platform.clearing.reconciliation import Report
from clearpoint.platform.clearing.runner import Closed
from clearpoint.platform.clearing.schedule import Schedule, rfc3339


def through(schedule: Schedule, period: str, now_us: int) -> int:
    """`--period`: 'due' (now), or a period's end, which must be a cut of the schedule and past."""
    if period == "due":
        return now_us
    try:
        at = datetime.fromisoformat(period)
    except ValueError:
        raise ValueError(f"--period {period!r} is neither 'due' nor a time such as 2026-12-03T00:00:00Z") from None
    if at.tzinfo is None:
        raise ValueError(f"--period {period!r} needs its zone: clearing times are UTC, written with Z")
    end = int(at.timestamp() * 1_000_000)
    if schedule.cut_at_or_before(end) != end:
        raise ValueError(
            f"{period} is not the end of a period under the schedule {schedule.spec!r}: the nearest ends are"
            f" {rfc3339(schedule.cut_at_or_before(end))} and {rfc3339(schedule.next_cut(end))}"
        )
    if end > now_us:
        raise ValueError(f"the period ending {rfc3339(end)} has not ended yet")
    return end


def closed(c: Closed) -> dict[str, Any]:
    return {
        "period": c.period.number,
        "period_id": c.period.period_id,
        "start": rfc3339(c.period.start_us),
        "end": rfc3339(c.period.end_us),
        "statements": c.statements,
        "net": json.loads(c.summary)["currencies"],
    }


def closed_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'PERIOD':>6}  {'START':<20}  {'END':<20}  {'STATEMENTS':>10}  NET (channel: to the channel)"]
    for r in rows:
        nets = "; ".join(
            f"{cur['currency']} "
            + ", ".join(f"{x['channel']}: {x['net_to_channel']}" for x in cur["channels"])
            + f", platform: {cur['platform']}"
            for cur in r["net"]
        )
        lines.append(f"{r['period']:>6}  {r['start']:<20}  {r['end']:<20}  {r['statements']:>10}  {nets or '-'}")
    return "\n".join(lines)


def report(r: Report) -> dict[str, Any]:
    return {
        "period": r.period.number,
        "start": rfc3339(r.period.start_us),
        "end": rfc3339(r.period.end_us),
        "agrees": r.agrees,
        "rows": [
            {
                "channel": x.channel_id,
                "direction": x.direction.value,
                "ledger_points": x.ledger,
                "statement_points": x.statement,
                "agrees": x.agrees,
            }
            for x in r.rows
        ],
        "statements": [{"statement_id": s, "problem": why} for s, why in r.statements],
    }


def report_table(r: dict[str, Any]) -> str:
    lines = [
        f"period {r['period']} ({r['start']} to {r['end']}): {'agrees' if r['agrees'] else 'DOES NOT AGREE'}",
        f"{'CHANNEL':<24}  {'DIRECTION':<15}  {'LEDGER':>14}  {'STATEMENT':>14}",
    ]
    for x in r["rows"]:
        mark = "" if x["agrees"] else "  <- differs"
        lines.append(
            f"{x['channel']:<24}  {x['direction']:<15}  {x['ledger_points']:>14}  {x['statement_points']:>14}{mark}"
        )
    lines += [f"statement {s['statement_id']}: {s['problem']}" for s in r["statements"]]
    return "\n".join(lines)
