"""Clearing runs as operators meet them, in real processes: `clearpoint platform clear` killed with
SIGKILL and run again gives the statements an uninterrupted run gives; two platform processes on
one database clear each period once; exchanges racing a period's cut each land in one period;
reconciliation says where a statement and the ledger disagree."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from clearpoint.platform.clearing import periods
from clearpoint.platform.clearing.reconciliation import reconcile
from clearpoint.platform.clearing.settlement import Direction
from clearpoint.platform.clearing.tables import periods as periods_table
from clearpoint.platform.clearing.tables import statements as statements_table
from clearpoint.platform.core.database import Database
from clearpoint.platform.exchange import channels
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from tests.clearing_helpers import Books, at, open_books
from tests.conftest import MASTER_KEY_RAW, _admin_sql, _drop_pg_database, _pg_url
from tests.processes import CLI, Proc, free_port

HOURS = 6  # of exchanges, from 09:30 on 1 December 2026


def _env(url: str, **more: str) -> dict[str, str]:
    env = dict(
        os.environ,
        CLEARPOINT_DATABASE_URL=url,
        CLEARPOINT_MASTER_KEY=base64.b64encode(MASTER_KEY_RAW).decode(),
        CLEARPOINT_CLEARING_SCHEDULE="hourly",
    )
    env.update(more)
    return env


async def _populate(url: str) -> None:
    """Every hour for HOURS hours: miles to stars (both sides), miles to platform points, and a side
    refused."""
    books = await open_books(url)
    try:
        for hour in range(HOURS):
            books.clock.now_us = at(9 + hour, 31)
            await books.exchange(books.a, books.b, 100 + hour, True, True)
            await books.exchange(books.a, None, 50 + hour, True, None)
            await books.exchange(books.a, books.c, 70, False, None)
    finally:
        await books.db.dispose()


async def _statements(url: str) -> dict[tuple[int, str], tuple[bytes, bytes]]:
    db = Database(url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(select(statements_table))
            return {(r.period_number, r.channel_id): (bytes(r.content), bytes(r.signature)) for r in rows}
    finally:
        await db.dispose()


async def _closed_periods(url: str) -> list[tuple[int, str]]:
    db = Database(url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(select(periods_table.c.number, periods_table.c.state).order_by("number"))
            return [(r.number, r.state) for r in rows]
    finally:
        await db.dispose()


async def _copy(url: str, tmp_path: Path) -> tuple[str, str | None]:
    """A copy of the database at `url` (SQLite: the file; PostgreSQL: a database made from it as a
    template); returns its URL and, for PostgreSQL, its name to drop."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        assert parsed.database is not None
        target = tmp_path / "copy.sqlite3"
        shutil.copyfile(parsed.database, target)
        return f"sqlite:///{target}", None
    name = f"{parsed.database}_copy"
    await _admin_sql(url, f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"')
    return parsed.set(database=name).render_as_string(hide_password=False), name


def _clear(url: str, *args: str, lease: str = "30") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "platform", "clear", *args],
        env=_env(url, CLEARPOINT_CLEARING_LEASE_SECONDS=lease),
        capture_output=True,
        text=True,
        timeout=300,
    )


async def test_a_run_killed_midway_resumes_to_the_statements_of_an_uninterrupted_run(
    own_database_url: str, tmp_path: Path
) -> None:
    await _populate(own_database_url)
    copy_url, copy_name = await _copy(own_database_url, tmp_path)
    try:
        whole = _clear(copy_url, "-o", "json")
        assert whole.returncode == 0, whole.stderr
        closed = json.loads(whole.stdout)
        assert len(closed) > HOURS and closed[0]["start"] == "2026-12-01T09:00:00Z"

        killed = Proc([*CLI, "platform", "clear"], _env(own_database_url, CLEARPOINT_CLEARING_LEASE_SECONDS="1"))
        killed.start()
        killed.wait_for("period 3 (")  # its cut taken: period 3 is being closed
        killed.kill()
        halfway = await _closed_periods(own_database_url)
        assert 2 <= len(halfway) < len(closed), "the run was not killed mid-way"

        await asyncio.sleep(1.2)  # the killed run's lease lapses
        again = _clear(own_database_url, "-o", "json", lease="1")
        assert again.returncode == 0, again.stderr
        if halfway[-1][1] == "closing":
            assert f"period {halfway[-1][0]}: resuming on its cut" in again.stderr
        assert await _closed_periods(own_database_url) == [(n, "closed") for n in range(1, len(closed) + 1)]
        assert await _statements(own_database_url) == await _statements(copy_url)
    finally:
        if copy_name is not None:
            base = _pg_url()
            assert base is not None
            await _drop_pg_database(base, copy_name)


async def test_two_platform_processes_on_one_database_clear_each_period_once(own_database_url: str) -> None:
    await _populate(own_database_url)
    procs = [
        Proc([*CLI, "platform", "serve"], _env(own_database_url, CLEARPOINT_LISTEN=f"127.0.0.1:{free_port()}"))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.wait_for("serving on")
        # Both start with every period since 09:00 on 1 December due; wait for them to be closed.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            got = await _closed_periods(own_database_url)
            if (
                got
                and all(state == "closed" for _, state in got)
                and sum("clearing: period" in line for p in procs for line in p.err) >= len(got)
            ):
                break
            await asyncio.sleep(0.5)
    finally:
        for p in procs:
            p.stop()
    numbers = [n for n, _ in got]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > HOURS
    said = [line for p in procs for line in p.err if "clearing: period" in line]
    for n in numbers:
        assert sum(f"clearing: period {n} closed" in line for line in said) == 1, (n, said)
    assert len(await _statements(own_database_url)) == 3 * len(numbers)


async def test_exchanges_racing_the_cut_each_land_in_exactly_one_period(own_pg_url: str) -> None:
    """PostgreSQL's race (SQLite runs one write transaction at a time)."""
    books = await open_books(own_pg_url)
    try:
        await _race(books)
    finally:
        await books.db.dispose()


async def _race(books: Books) -> None:
    books.clock.now_us = at(9, 59, 59)  # every exchange is stamped a second before the first cut
    cut_taken = asyncio.Event()
    done_after_cut = 0

    async def worker() -> None:
        nonlocal done_after_cut
        while done_after_cut < 40:
            await books.exchange(books.a, None, 10, True, None)
            if cut_taken.is_set():
                done_after_cut += 1

    async def clear_soon() -> None:
        await asyncio.sleep(0.3)
        await books.clearing.run(at(10, 0))
        cut_taken.set()

    await asyncio.gather(*(worker() for _ in range(8)), clear_soon())
    books.clock.now_us = at(11, 0, 30)
    await books.clearing.run()

    async with books.db.read() as conn:
        first = await periods.by_number(conn, 1)
        second = await periods.by_number(conn, 2)
        assert first is not None and second is not None
        listed = await channels.registered_before(conn, at(11, 0))
        in_first = await periods.ledger_totals(conn, first, None, listed)
        in_second = await periods.ledger_totals(conn, second, first, listed)
        posted = await conn.scalar(
            select(func.count()).select_from(
                select(statements_table.c.statement_id).where(statements_table.c.period_number > 0).subquery()
            )
        )
    out = (books.a.partner_id, Direction.OUT_OF_CHANNEL)
    exchanges_made = await _count_posted_out(books)
    # Both periods hold some of the exchanges stamped before the first cut: the cut fell among them.
    assert in_first[out] > 0 and in_second[out] > 0
    assert in_first[out] + in_second[out] == 10 * exchanges_made
    assert posted == 6
    for number in (1, 2):
        report = await reconcile(books.clearing, number)
        assert report.agrees, report


async def _count_posted_out(books: Books) -> int:
    from clearpoint.platform.exchange.tables import exchanges

    async with books.db.read() as conn:
        return int(await conn.scalar(select(func.count()).where(exchanges.c.from_channel == books.a.partner_id)) or 0)


async def test_the_clear_and_reconcile_commands(own_database_url: str) -> None:
    await _populate(own_database_url)
    not_an_end = _clear(own_database_url, "--period", "2026-12-01T10:30:00Z")
    assert not_an_end.returncode == 1
    assert "2026-12-01T10:30:00Z is not the end of a period under the schedule 'hourly'" in not_an_end.stderr
    assert "2026-12-01T10:00:00Z and 2026-12-01T11:00:00Z" in not_an_end.stderr
    for bad, says in (
        ("2099-01-01T00:00:00Z", "has not ended yet"),
        ("yesterday", "neither 'due' nor a time"),
        ("2026-12-01T10:00:00", "needs its zone"),
    ):
        refused = _clear(own_database_url, "--period", bad)
        assert refused.returncode == 1 and says in refused.stderr, refused.stderr
    bad_schedule = _clear(own_database_url, "--clearing-schedule", "weekly")
    assert bad_schedule.returncode == 2 and "is not 'hourly', 'daily'" in bad_schedule.stderr

    two = _clear(own_database_url, "--period", "2026-12-01T11:00:00Z")
    assert two.returncode == 0, two.stderr
    assert [line.split()[0] for line in two.stdout.splitlines()[1:]] == ["1", "2"]
    assert "period 2 (2026-12-01T10:00:00Z to 2026-12-01T11:00:00Z): cut at ledger seq" in two.stderr

    def reconcile_cli(period: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "platform", "reconcile", "--period", period, "-o", "json"],
            env=_env(own_database_url),
            capture_output=True,
            text=True,
            timeout=120,
        )

    fine = reconcile_cli("2")
    assert fine.returncode == 0, fine.stderr
    report = json.loads(fine.stdout)
    assert report["agrees"] and {r["direction"] for r in report["rows"]} == {"out_of_channel", "into_channel"}

    # A statement altered where it is stored: reconciliation names it, and exits 1.
    db = Database(own_database_url)
    try:
        async with db.write() as conn:
            rows = (await conn.execute(select(statements_table).where(statements_table.c.period_number == 2))).all()
            row = next(r for r in rows if b'"points":"' in bytes(r.content))
            tampered = bytes(row.content).replace(b'"points":"', b'"points":"1', 1)
            await conn.execute(
                update(statements_table)
                .where(statements_table.c.statement_id == row.statement_id)
                .values(content=tampered)
            )
    finally:
        await db.dispose()
    broken = reconcile_cli("2")
    assert broken.returncode == 1
    problems = json.loads(broken.stdout)["statements"]
    assert {p["problem"] for p in problems if p["statement_id"] == row.statement_id} >= {
        "the signature does not match these bytes under this key",
        "differs from the period cleared again",
    }
    missing = reconcile_cli("99")
    assert missing.returncode == 1 and "period 99 is not a closed period" in missing.stderr
