"""Clearing (clearing/) on both databases: two hourly periods of exchanges between three channels,
settled by hand below, with rule changes inside a period, lines that do not round evenly, a side
still pending at the cut, an exchange stamped before a cut that commits after it, a voided side, a
channel in another currency and a channel that moved nothing; statements signed, verifiable and
the same on every run."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from clearpoint.formats import statements as form
from clearpoint.platform import migrate
from clearpoint.platform.clearing import adjustments, periods, schedule
from clearpoint.platform.clearing.reconciliation import reconcile
from clearpoint.platform.clearing.runner import Clearing, ClearingBusy
from clearpoint.platform.clearing.settlement import Direction, Movement, Price, line, net_positions, settle
from clearpoint.platform.clearing.statements import StatementKey
from clearpoint.platform.clearing.tables import periods as periods_table
from clearpoint.platform.clearing.tables import statements as statements_table
from clearpoint.platform.core.clock import ManualClock
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.principals import Role
from clearpoint.platform.exchange import channels
from clearpoint.platform.exchange.tables import transfers
from clearpoint.platform.keys.master_key import MasterKey
from clearpoint.platform.partners import accounts as partner_accounts
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select

from tests.clearing_helpers import MIN, Books, at, open_books


@pytest.fixture
async def books(own_database_url: str) -> AsyncIterator[Books]:
    made = await open_books(own_database_url)
    yield made
    await made.db.dispose()


def body(content: bytes) -> dict[str, object]:
    parsed = json.loads(content)
    assert isinstance(parsed, dict)
    return parsed


def lines_of(content: bytes) -> list[tuple[str, str, str, str, str, str]]:
    return [
        (x["direction"], x["rule_version"], x["points"], x["price"], x["exact_amount"], x["amount"])
        for x in body(content)["lines"]  # type: ignore[attr-defined]
    ]


def totals_of(content: bytes) -> list[tuple[str, str, str, str]]:
    return [
        (t["currency"], t["owed_by_channel"], t["owed_to_channel"], t["net_to_channel"])
        for t in body(content)["totals"]  # type: ignore[attr-defined]
    ]


async def test_two_periods_settled_as_by_hand(books: Books) -> None:
    a, b, c = books.a, books.b, books.c
    clock = books.clock
    # -- period 1, 09:00 to 10:00 --
    clock.now_us = at(9, 31)
    await books.exchange(a, b, 1000, True, True)  # A v1: 1000 miles out; 246 platform points; B v1: 819 stars in
    clock.now_us = at(9, 45)
    await books.exchange(a, None, 501, True, None)  # A v2: 501 out; 123 platform points to the wallet
    clock.now_us = at(9, 50)
    await books.exchange(None, b, 101, None, True)  # 101 platform points; B v1: 336 stars in
    clock.now_us = at(9, 55)
    await books.exchange(a, b, 100, False, None)  # Alpha refuses: nothing moves
    clock.now_us = at(9, 58)
    held = await books.exchange(a, b, 200, True, None)  # A v2: 200 out; Beta answers only after the cut
    clock.now_us = at(10, 0, 30)
    closed = await books.clearing.run()
    assert [(x.period.number, x.statements) for x in closed] == [(1, 3)]
    # -- period 2, 10:00 to 11:00 (and a transfer stamped 09:59:30 that commits after the cut) --
    clock.now_us = at(9, 59, 30)
    await books.exchange(a, None, 100, True, None)  # A v2: 100 out, lands in period 2
    clock.now_us = at(10, 2)  # within the side's 5 minutes; Beta's rule is v2 by now
    await books.answer(b, held.exchange_id, True)  # B v1 (the exchange's version): 163 stars in
    clock.now_us = at(10, 10)
    await books.exchange(a, b, 400, True, True)  # A v2: 400 out; B v2: 326 stars in
    clock.now_us = at(10, 20)
    await books.exchange(None, c, 20, None, True)  # C v1: 30 gems in
    clock.now_us = at(10, 30)  # Alpha refunded 100 miles of period 1's v1 exchange: corrected in period 2
    async with books.db.read() as conn:
        alpha_p1 = await conn.scalar(
            select(statements_table.c.statement_id).where(
                statements_table.c.channel_id == a.partner_id, statements_table.c.period_number == 1
            )
        )
    fix = adjustments.Request(a.partner_id, alpha_p1, "out_of_channel", -100, 1, "100 miles refunded by Alpha")
    async with books.db.write() as conn:
        correction = await adjustments.record(conn, fix, clock())
    clock.now_us = at(11, 0, 30)
    assert [x.period.number for x in await books.clearing.run()] == [2]

    got = await books.stored()
    assert set(got) == {(n, p.partner_id) for n in (1, 2) for p in (a, b, c)}
    eur_out = Direction.OUT_OF_CHANNEL.value
    eur_in = Direction.INTO_CHANNEL.value
    assert lines_of(got[(1, a.partner_id)][0]) == [
        (eur_out, "1", "1000", "0.5", "500", "500"),
        (eur_out, "2", "701", "0.35", "245.35", "245"),
    ]
    assert totals_of(got[(1, a.partner_id)][0]) == [("EUR", "745", "0", "-745")]
    assert lines_of(got[(1, b.partner_id)][0]) == [(eur_in, "1", "1155", "0.125", "144.375", "144")]
    assert totals_of(got[(1, b.partner_id)][0]) == [("EUR", "0", "144", "144")]
    assert lines_of(got[(1, c.partner_id)][0]) == [] and totals_of(got[(1, c.partner_id)][0]) == []
    assert lines_of(got[(2, a.partner_id)][0]) == [(eur_out, "2", "500", "0.35", "175", "175")]
    assert body(got[(2, a.partner_id)][0])["adjustments"] == [
        {
            "adjustment_id": correction.adjustment_id,
            "corrects": {"statement_id": alpha_p1, "period_id": "prd_20261201T100000Z"},
            "reason": "100 miles refunded by Alpha",
            "direction": "out_of_channel",
            "rule_version": "1",
            "points": "-100",
            "transfers": "1",
            "price": "0.5",
            "currency": "EUR",
            "exact_amount": "-50",
            "amount": "-50",
        }
    ]
    assert totals_of(got[(2, a.partner_id)][0]) == [("EUR", "125", "0", "-125")]
    assert lines_of(got[(2, b.partner_id)][0]) == [
        (eur_in, "1", "163", "0.125", "20.375", "20"),
        (eur_in, "2", "326", "0.2", "65.2", "65"),
    ]
    assert totals_of(got[(2, b.partner_id)][0]) == [("EUR", "0", "85", "85")]
    assert lines_of(got[(2, c.partner_id)][0]) == [(eur_in, "1", "30", "2.25", "67.5", "68")]
    assert totals_of(got[(2, c.partner_id)][0]) == [("USD", "0", "68", "68")]

    # The multilateral net: per currency, the channels and the platform's margin sum to zero.
    async with books.db.read() as conn:
        summaries = dict((await conn.execute(select(periods_table.c.number, periods_table.c.summary))).all())
    p2 = json.loads(summaries[2])["currencies"]
    nets = {x["currency"]: ({y["channel"]: y["net_to_channel"] for y in x["channels"]}, x["platform"]) for x in p2}
    assert nets["EUR"] == ({a.partner_id: "-125", b.partner_id: "85"}, "40")
    assert nets["USD"] == ({c.partner_id: "68"}, "-68")
    assert json.loads(summaries[1])["currencies"][0]["platform"] == "601"

    # Every statement verifies under the platform's statement key, and names its channel and period.
    for (number, channel_id), (content, signature) in got.items():
        checked = form.verify(content, signature, books.clearing.key.public_key)
        assert checked["channel"]["id"] == channel_id and checked["period"]["number"] == str(number)
    p1 = body(got[(1, a.partner_id)][0])["period"]
    assert p1 == {
        "id": "prd_20261201T100000Z",
        "number": "1",
        "start": "2026-12-01T09:00:00Z",
        "end": "2026-12-01T10:00:00Z",
    }

    # The ledger's totals for each period agree with the statements, point for point.
    async with books.db.read() as conn:
        listed = await channels.registered_before(conn, at(11, 0))
        first = await periods.by_number(conn, 1)
        second = await periods.by_number(conn, 2)
        assert first is not None and second is not None
        assert await periods.ledger_totals(conn, first, None, listed) == {
            (a.partner_id, Direction.OUT_OF_CHANNEL): 1701,
            (b.partner_id, Direction.INTO_CHANNEL): 1155,
        }
        assert await periods.ledger_totals(conn, second, first, listed) == {
            (a.partner_id, Direction.OUT_OF_CHANNEL): 500,
            (a.partner_id, Direction.INTO_CHANNEL): 100,  # the correction: the refunded miles back
            (b.partner_id, Direction.INTO_CHANNEL): 489,
            (c.partner_id, Direction.INTO_CHANNEL): 30,
        }

    for number in (1, 2):
        report = await reconcile(books.clearing, number)
        assert report.agrees, report

    # Running again writes nothing and changes nothing.
    assert await books.clearing.run() == []
    assert await books.stored() == got


async def test_a_statement_altered_by_one_byte_fails_verification(books: Books) -> None:
    books.clock.now_us = at(9, 31)
    await books.exchange(books.a, books.b, 1000, True, True)
    books.clock.now_us = at(10, 0, 30)
    await books.clearing.run()
    content, signature = (await books.stored())[(1, books.a.partner_id)]
    key = books.clearing.key.public_key
    form.verify(content, signature, key)
    for i in range(len(content)):
        altered = content[:i] + bytes([content[i] ^ 0x01]) + content[i + 1 :]
        with pytest.raises(form.StatementInvalid):
            form.verify(altered, signature, key)
    with pytest.raises(form.StatementInvalid, match="signature"):
        form.verify(content, signature[:-1] + bytes([signature[-1] ^ 1]), key)
    other = StatementKey.derived(MasterKey(secrets.token_bytes(32)))
    with pytest.raises(form.StatementInvalid, match="signature"):
        form.verify(content, signature, other.public_key)
    with pytest.raises(form.StatementInvalid, match="at most"):
        form.verify(b" " * (form.MAX_BYTES + 1), signature, key)
    # Signed, but not canonical (a space added, keys reordered): refused even with a good signature.
    loose = json.dumps(json.loads(content), indent=1).encode()
    with pytest.raises(form.StatementInvalid, match="canonical"):
        form.verify(loose, other.sign(loose), other.public_key)


async def test_nothing_to_clear_before_a_period_ends_or_without_channels(own_database_url: str) -> None:
    db = Database(own_database_url)
    await migrate.upgrade(db)
    clock = ManualClock(at(9, 30))
    clearing = Clearing(db, clock, schedule.parse("hourly"), StatementKey.derived(MasterKey(secrets.token_bytes(32))))
    try:
        assert await clearing.run() == []  # no channel: no period
        async with db.write() as conn:
            partner, _ = await partner_accounts.create(conn, "p", Role.PARTNER, clock())
            await channels.register(conn, partner.partner_id, "P", "pts", clock())
        clock.now_us = at(9, 59, 59)
        assert await clearing.run() == []  # the first period has not ended
        clock.now_us = at(12, 0)
        assert [x.period.number for x in await clearing.run()] == [1, 2, 3]  # every period due, in order
        async with db.read() as conn:
            assert await conn.scalar(select(func.count()).select_from(statements_table)) == 3
    finally:
        await db.dispose()


async def test_one_runner_at_a_time_and_a_dead_runners_lease_lapses(books: Books) -> None:
    other = Clearing(books.db, books.clock, books.clearing.schedule, books.clearing.key, holder="other")
    books.clock.now_us = at(10, 0, 30)
    await other._take_lease()
    with pytest.raises(ClearingBusy, match="other"):
        await books.clearing.run()
    await other._release_lease()
    assert [x.period.number for x in await books.clearing.run()] == [1]
    await other._take_lease()  # and is never released, as by a process killed mid-run
    books.clock.now_us = at(11, 0, 30)
    assert [x.period.number for x in await books.clearing.run()] == [2]


# -- the arithmetic alone ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "price", "exact", "amount"),
    [
        (5, "0.5", "2.5", 2),  # half to even: down to 2
        (7, "0.5", "3.5", 4),  # and up to 4
        (1155, "0.125", "144.375", 144),
        (3, "0.333333", "0.999999", 1),
        (1, "0.000001", "0.000001", 0),
        (2**63 - 1, "9999999.999999", "92233720368538534697963145.224193", 92233720368538534697963145),
    ],
)
def test_a_line_is_priced_exactly_and_rounded_once(points: int, price: str, exact: str, amount: int) -> None:
    priced = line(Movement("ch", Direction.INTO_CHANNEL, 1, points, 1), Price(Decimal(price), "EUR"))
    assert priced.exact == Decimal(exact) and priced.amount == amount


def test_nets_sum_to_zero_with_the_platforms_line() -> None:
    prices = {("a", 1): Price(Decimal("0.3"), "EUR"), ("b", 1): Price(Decimal("0.7"), "EUR")}
    moved = [
        Movement("a", Direction.OUT_OF_CHANNEL, 1, 1000, 3),
        Movement("a", Direction.INTO_CHANNEL, 1, 10, 1),
        Movement("b", Direction.INTO_CHANNEL, 1, 99, 2),
    ]
    settled = settle(["a", "b", "c"], moved, prices)
    assert [s.channel_id for s in settled] == ["a", "b", "c"]
    assert [(t.owed_by_channel, t.owed_to_channel) for t in settled[0].totals] == [(300, 3)]
    (eur,) = net_positions(settled)
    assert eur.nets == (("a", -297), ("b", 69)) and eur.platform == 228
    assert sum(n for _, n in eur.nets) + eur.platform == 0
    with pytest.raises(ValueError, match="not being settled"):
        settle(["a"], moved, prices)


@pytest.mark.parametrize(
    ("spec", "after", "cut"),
    [
        ("hourly", at(9, 30), at(10, 0)),
        ("hourly", at(10, 0), at(11, 0)),
        ("daily", at(9, 30), at(0, 0) + 24 * 60 * MIN),
        ("daily@09:45", at(9, 30), at(9, 45)),
        ("*/15 * * * *", at(9, 30), at(9, 45)),
    ],
)
def test_schedules(spec: str, after: int, cut: int) -> None:
    parsed = schedule.parse(spec)
    assert parsed.next_cut(after) == cut
    assert parsed.cut_at_or_before(cut) == cut
    assert parsed.cut_at_or_before(cut - 1) < cut


@pytest.mark.parametrize("spec", ["", "weekly", "daily@24:00", "daily@9:5", "* * * *", "0 * * * * *", "61 * * * *"])
def test_a_bad_schedule_is_refused_with_the_forms_it_takes(spec: str) -> None:
    with pytest.raises(schedule.ScheduleInvalid, match="hourly"):
        schedule.parse(spec)


async def test_legs_written_before_clearing_existed_get_their_rule_version(books: Books) -> None:
    """Migration 0007 gives the priced legs of exchanges made before it their channel's rule version."""
    books.clock.now_us = at(9, 45)
    await books.exchange(books.a, books.b, 1000, True, True)
    await books.exchange(books.a, None, 200, True, None)
    await books.exchange(None, books.b, 40, None, None)  # its in side still pending
    read = select(transfers.c.transfer_id, transfers.c.rule_version).order_by(transfers.c.seq)
    async with books.db.read() as conn:
        before = (await conn.execute(read)).all()
    assert sorted({v for _, v in before}, key=str) == [1, 2, None]  # Beta's v1, Alpha's v2, and unpriced legs
    await migrate.downgrade(books.db, "0006")
    await migrate.upgrade(books.db)
    async with books.db.read() as conn:
        assert (await conn.execute(read)).all() == before


VECTORS = json.loads((Path(__file__).parent / "vectors" / "statements.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=lambda v: v["title"])
def test_statement_vectors_verify_without_the_projects_code(v: dict[str, str]) -> None:
    """What a partner does with its own libraries: canonical JSON (for content made only of objects,
    arrays and strings, RFC 8785 is sorted keys, no spaces, UTF-8), SHA-256, Ed25519."""
    content = v["content"].encode("utf-8")
    again = json.dumps(json.loads(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert again.encode("utf-8") == content
    digest = hashlib.sha256(content).digest()
    assert digest.hex() == v["content_sha256"]
    public = bytes.fromhex(VECTORS["public_key"])
    Ed25519PublicKey.from_public_bytes(public).verify(bytes.fromhex(v["signature"]), digest)
    assert hashlib.sha256(public).hexdigest()[:16] == VECTORS["key_id"] == json.loads(content)["key_id"]
    assert form.verify(content, bytes.fromhex(v["signature"]), public)["format"] == form.FORMAT


def test_the_committed_statement_vectors_are_current() -> None:
    script = Path(__file__).parent.parent / "scripts" / "make_statement_vectors.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
