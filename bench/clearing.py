#!/usr/bin/env python3
"""A clearing run over a large ledger, beside a bare GROUP BY over the same table, in one run.

For each size (default 1 and 10 million ledger entries) a scratch PostgreSQL database is migrated,
given 20 channels with two rule versions each, and filled by `generate_series` with a ledger shaped
like exchanges': per exchange side a pending leg on the channel's account, the transfer that posts
it (priced: it carries the rule version) and a posted leg of platform points (unpriced); sides go
out of and into channels in turn, all inside one hourly period. Then, each in its own process so
its memory is its own:

1. the bare baseline: `SELECT debit, credit, rule_version, sum(amount), count(*) ... GROUP BY` over
   the whole table, through asyncpg, as the clearing query would be with nothing around it;
2. `Clearing.run()`: the cut, the period's GROUP BY, pricing, 20 signed statements and the period
   closed, as `clearpoint platform clear` runs it.

Printed per size: both times, their ratio (aim at most 1.5) and each process's peak RSS, which for
the run must not grow with the number of entries. Progress goes to stderr; the table (or -o json)
to stdout. Needs PostgreSQL (a user that may create databases; clearpoint_bench_clearing_* are made
and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import asyncpg
from benchutil import say
from redeem_throughput import DEFAULT_DATABASE_URL, create_db, db_url, drop_db

CHANNELS = 20
START_US = 1_796_115_600_000_000  # 2026-12-01T09:00:00Z: the period is 09:00 to 10:00
BARE = (
    "SELECT debit_account, credit_account, rule_version, sum(amount), count(*)"
    " FROM ledger_transfers GROUP BY debit_account, credit_account, rule_version"
)
# The run's own question in raw SQL: the period's final, priced exchange legs, grouped.
PERIOD = (
    "SELECT debit_account, credit_account, rule_version, sum(amount), count(*) FROM ledger_transfers"
    " WHERE kind IN ('posted', 'post') AND code = 'exchange' AND rule_version IS NOT NULL"
    f" AND seq <= (SELECT max(seq) FROM ledger_transfers) AND created_us < {START_US + 3_600_000_000}"
    " GROUP BY debit_account, credit_account, rule_version"
)


async def _seed(url: str, entries: int) -> None:
    """Channels and their accounts through the platform's own code; the ledger by one INSERT."""
    from clearpoint.platform import migrate
    from clearpoint.platform.core.database import Database
    from clearpoint.platform.core.principals import Role
    from clearpoint.platform.exchange import channels, ledger
    from clearpoint.platform.exchange.channels import PLATFORM, PLATFORM_UNIT
    from clearpoint.platform.exchange.rules import Rule
    from clearpoint.platform.partners import accounts

    db = Database(url)
    await migrate.upgrade(db)
    rows = []
    async with db.write() as conn:
        await channels.ensure_platform_accounts(conn, START_US)
        for n in range(CHANNELS):
            partner, _ = await accounts.create(conn, f"channel-{n}", Role.PARTNER, START_US)
            made = await channels.register(conn, partner.partner_id, f"Programme {n}", "pts", START_US)
            for version, price in ((1, "0.5"), (2, "0.35")):
                rule = Rule(
                    partner.partner_id, 0, START_US + version, Decimal("0.25"), Decimal("4"), Decimal(0),
                    1, 10**9, 10**12, Decimal(price), "EUR",
                )  # fmt: skip
                await channels.publish(conn, rule, START_US)
            own = ledger.account_named(made.unit, partner.partner_id, "channel")
            hub = ledger.account_named(made.unit, PLATFORM, "hub")
            rows.append(f"({n}, '{own}', '{hub}', '{made.unit}')")
    treasury = ledger.account_named(PLATFORM_UNIT, PLATFORM, "treasury")
    fees = ledger.account_named(PLATFORM_UNIT, PLATFORM, "fees")
    await db.dispose()
    sides = entries // 3
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute(f"""
            CREATE TEMP TABLE ch (k int, own text, hub text, unit text);
            INSERT INTO ch VALUES {", ".join(rows)};
            INSERT INTO ledger_transfers
              (transfer_id, txn_id, leg, debit_account, credit_account, unit, amount, kind,
               pending_id, timeout_us, code, created_us, rule_version)
            SELECT t.* FROM generate_series(1, {sides}) AS i
            JOIN ch ON ch.k = i % {CHANNELS}
            CROSS JOIN LATERAL (VALUES
              ('p' || i, 'x' || i, 0,
               CASE WHEN (i / {CHANNELS}) % 2 = 0 THEN ch.own ELSE ch.hub END,
               CASE WHEN (i / {CHANNELS}) % 2 = 0 THEN ch.hub ELSE ch.own END,
               ch.unit, 10 + i % 990, 'pending', NULL, {START_US} + 600000000, 'exchange',
               {START_US} + i, 1 + i % 2),
              ('q' || i, 'x' || i || ':r', 0,
               CASE WHEN (i / {CHANNELS}) % 2 = 0 THEN ch.own ELSE ch.hub END,
               CASE WHEN (i / {CHANNELS}) % 2 = 0 THEN ch.hub ELSE ch.own END,
               ch.unit, 10 + i % 990, 'post', 'p' || i, NULL, 'exchange', {START_US} + i + 1, 1 + i % 2),
              ('w' || i, 'y' || i, 0, '{treasury}', '{fees}', 'PTS', 1 + i % 50, 'posted', NULL, NULL,
               'fee', {START_US} + i + 2, NULL)
            ) AS t(transfer_id, txn_id, leg, debit_account, credit_account, unit, amount, kind,
                   pending_id, timeout_us, code, created_us, rule_version);
            ANALYZE ledger_transfers;
        """)
    finally:
        await conn.close()


def _child(what: str, url: str) -> dict[str, Any]:
    """Run one measurement in a process of its own; its time and peak RSS come back as JSON."""
    done = subprocess.run(
        [sys.executable, __file__, "--measure", what, "--database-url", url],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def _measure_sql(url: str, sql: str) -> float:
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        rows = await conn.fetch(sql)
        elapsed = time.perf_counter() - started
        assert rows
        return elapsed
    finally:
        await conn.close()


async def _measure_run(url: str) -> float:
    from clearpoint.platform.clearing import schedule
    from clearpoint.platform.clearing.runner import Clearing
    from clearpoint.platform.clearing.statements import StatementKey
    from clearpoint.platform.core.database import Database
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    db = Database(url)
    clearing = Clearing(
        db, lambda: START_US + 3_601_000_000, schedule.parse("hourly"), StatementKey(Ed25519PrivateKey.generate())
    )
    async with db.read() as conn:  # connect before the clock starts, as a running platform has
        await conn.exec_driver_sql("SELECT 1")
    started = time.perf_counter()
    closed = await clearing.run()
    elapsed = time.perf_counter() - started
    await db.dispose()
    assert [c.statements for c in closed] == [CHANNELS], closed
    return elapsed


def measure_here(what: str, url: str) -> None:
    work = {"bare": lambda: _measure_sql(url, BARE), "period": lambda: _measure_sql(url, PERIOD)}
    seconds = asyncio.run(work[what]() if what in work else _measure_run(url))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024}))


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for entries in args.entries:
        name = f"clearpoint_bench_clearing_{entries}"
        url = db_url(args.database_url, name)
        say(f"size {entries:,}: scratch database {name}")
        create_db(args.database_url, name)
        try:
            started = time.perf_counter()
            asyncio.run(_seed(url, entries))
            say(f"size {entries:,}: ledger filled in {time.perf_counter() - started:.0f} s")
            _child("bare", url)  # once to warm the cache (and set hint bits), as the run will find it
            bare = _child("bare", url)
            say(f"size {entries:,}: bare GROUP BY {bare['seconds']:.2f} s")
            period = _child("period", url)
            say(f"size {entries:,}: the period's GROUP BY in raw SQL {period['seconds']:.2f} s")
            clearing = _child("run", url)
            say(f"size {entries:,}: clearing run {clearing['seconds']:.2f} s")
            results.append({"entries": entries, "bare": bare, "period": period, "clearing": clearing})
        finally:
            if not args.keep:
                drop_db(args.database_url, name)
    return results


def report(results: list[dict[str, Any]]) -> str:
    head = ("entries", "bare s", "period s", "run s", "run/bare", "run/period", "bare MiB", "run MiB")
    lines = ["  ".join(f"{h:>10}" for h in head)]
    for r in results:
        b, p, c = r["bare"]["seconds"], r["period"]["seconds"], r["clearing"]["seconds"]
        cells = (f"{r['entries']:,}", f"{b:.2f}", f"{p:.2f}", f"{c:.2f}", f"{c / b:.2f}", f"{c / p:.2f}")
        cells += (f"{r['bare']['peak_rss_mib']:.1f}", f"{r['clearing']['peak_rss_mib']:.1f}")
        lines.append("  ".join(f"{x:>10}" for x in cells))
    lines.append(
        "bare = GROUP BY over the whole table; period = the run's own GROUP BY in raw SQL; run/bare aims at"
        " most 1.5; MiB = the measuring process's peak RSS"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, nargs="+", default=[1_000_000, 10_000_000], help="ledger sizes")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="a PostgreSQL server URL")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (30,000 and 300,000 entries)")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases (to look into a run)")
    parser.add_argument("--measure", choices=("bare", "period", "run"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        measure_here(args.measure, args.database_url)
        return 0
    if args.quick:
        args.entries = [30_000, 300_000]
    results = run(args)
    print(json.dumps(results, indent=2) if args.output == "json" else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
