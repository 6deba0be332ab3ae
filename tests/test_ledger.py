"""The points ledger (exchange/ledger.py) on both databases: all legs or none, no overdraft of a
guarded account, pending transfers posted or voided exactly once, and, after any sequence of
operations, legs that sum to zero per unit and balances equal to the sum of their entries."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from clearpoint.platform import migrate
from clearpoint.platform.core.clock import ManualClock
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.core.once import RequestKey, run_once
from clearpoint.platform.exchange import ledger
from clearpoint.platform.exchange.ledger import Kind, Leg
from clearpoint.platform.exchange.tables import transfers
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import select

NOW = 1_800_000_000_000_000


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


async def _accounts(db: Database, guarded: list[bool], unit: str | None = None) -> list[str]:
    unit = unit or f"u{secrets.token_hex(4)}"
    async with db.write() as conn:
        await ledger.add_unit(conn, unit, "test points", NOW)
        return [
            await ledger.open_account(conn, unit, f"owner-{n}", "member", guarded=g, now_us=NOW)
            for n, g in enumerate(guarded)
        ]


async def _posted(db: Database, *account_ids: str) -> list[int]:
    async with db.read() as conn:
        found = await ledger.balances(conn, account_ids)
    return [found[a].posted for a in account_ids]


async def _refused(db: Database, legs: list[Leg], **kw: object) -> Refusal:
    with pytest.raises(Refusal) as caught:
        async with db.write() as conn:
            await ledger.transact(conn, legs, code="test", now_us=NOW, **kw)  # type: ignore[arg-type]
    return caught.value


async def test_all_legs_or_none(db: Database) -> None:
    issuer, alice, bob = await _accounts(db, [False, True, True])
    async with db.write() as conn:
        await ledger.transact(conn, [Leg(issuer, alice, 100)], code="issue", now_us=NOW)
    assert await _posted(db, issuer, alice, bob) == [-100, 100, 0]
    # The third leg overdraws bob: the first two (alice -> bob, issuer -> alice) are not applied either.
    refusal = await _refused(db, [Leg(alice, bob, 60), Leg(issuer, alice, 5), Leg(bob, issuer, 61)])
    assert refusal.reason is Reason.INSUFFICIENT_BALANCE and refusal.metadata == {"account_id": bob}
    assert await _posted(db, issuer, alice, bob) == [-100, 100, 0]
    async with db.read() as conn:
        assert len(await ledger.history(conn, bob, 10)) == 0
    # Netted within one transaction, the same legs with 60 back are fine.
    async with db.write() as conn:
        await ledger.transact(
            conn, [Leg(alice, bob, 60), Leg(issuer, alice, 5), Leg(bob, issuer, 60)], code="t", now_us=NOW
        )
    assert await _posted(db, issuer, alice, bob) == [-45, 45, 0]


async def test_bad_legs_are_refused_by_name_and_nothing_is_written(db: Database) -> None:
    issuer, alice = await _accounts(db, [False, True])
    (other,) = await _accounts(db, [True])  # another unit
    cases: list[tuple[list[Leg], Reason, str]] = [
        ([Leg(issuer, alice, 0)], Reason.FIELD_INVALID, "legs[0].amount"),
        ([Leg(issuer, alice, -5)], Reason.FIELD_INVALID, "legs[0].amount"),
        ([Leg(issuer, alice, 2**63)], Reason.FIELD_INVALID, "legs[0].amount"),
        ([Leg(issuer, alice, 2**64 + 1)], Reason.FIELD_INVALID, "legs[0].amount"),
        ([Leg(issuer, alice, ledger.MAX_AMOUNT + 1)], Reason.FIELD_INVALID, "legs[0].amount"),
        ([Leg(issuer, alice, True)], Reason.FIELD_INVALID, "legs[0].amount"),  # type: ignore[arg-type]
        ([Leg(issuer, alice, 1.0)], Reason.FIELD_INVALID, "legs[0].amount"),  # type: ignore[arg-type]
        ([Leg(issuer, alice, 1), Leg(alice, alice, 1)], Reason.FIELD_INVALID, "legs[1]"),
        ([], Reason.FIELD_INVALID, "legs"),
        ([Leg(issuer, alice, 1)] * (ledger.MAX_LEGS + 1), Reason.FIELD_INVALID, "legs"),
        ([Leg(issuer, other, 1)], Reason.UNIT_MISMATCH, "legs[0]"),
    ]
    for legs, reason, field in cases:
        refusal = await _refused(db, legs)
        assert (refusal.reason, refusal.metadata.get("field")) == (reason, field), (legs, refusal)
    refusal = await _refused(db, [Leg(issuer, "acc_0000000000000000", 1)])
    assert refusal.reason is Reason.ACCOUNT_UNKNOWN and refusal.metadata == {"account_id": "acc_0000000000000000"}
    assert await _posted(db, issuer, alice, other) == [0, 0, 0]


async def test_a_pending_transfer_is_posted_or_voided_exactly_once(db: Database) -> None:
    issuer, alice, bob = await _accounts(db, [False, True, True])
    async with db.write() as conn:
        await ledger.transact(conn, [Leg(issuer, alice, 100)], code="issue", now_us=NOW)
        first = await ledger.transact(conn, [Leg(alice, bob, 70)], code="x", now_us=NOW, pending_until_us=NOW + 60)
    txn = first[0].txn_id
    async with db.read() as conn:
        found = await ledger.balances(conn, [alice, bob])
    assert (found[alice].posted, found[alice].available, found[bob].posted) == (100, 30, 0)
    # The reservation holds: 31 more would overdraw what is left available.
    assert (await _refused(db, [Leg(alice, bob, 31)])).reason is Reason.INSUFFICIENT_BALANCE
    async with db.write() as conn:
        done = await ledger.resolve(conn, txn, post=True, now_us=NOW + 1)
    assert (done.kind, done.now) == (Kind.POST, True)
    assert await _posted(db, alice, bob) == [30, 70]
    async with db.write() as conn:  # asked again: the same resolution, nothing moved
        again = await ledger.resolve(conn, txn, post=True, now_us=NOW + 2)
    assert (again.kind, again.now, again.resolved_us) == (Kind.POST, False, NOW + 1)
    with pytest.raises(Refusal) as caught:
        async with db.write() as conn:
            await ledger.resolve(conn, txn, post=False, now_us=NOW + 3)
    assert caught.value.reason is Reason.TRANSFER_RESOLVED and caught.value.metadata["resolution"] == "post"
    assert await _posted(db, alice, bob) == [30, 70]

    # Voided: the reservation is released; a post after the void is refused with its reason.
    async with db.write() as conn:
        second = await ledger.transact(conn, [Leg(alice, bob, 30)], code="x", now_us=NOW, pending_until_us=NOW + 60)
        await ledger.resolve(conn, second[0].txn_id, post=False, now_us=NOW + 5)
    with pytest.raises(Refusal) as caught:
        async with db.write() as conn:
            await ledger.resolve(conn, second[0].txn_id, post=True, now_us=NOW + 6)
    assert caught.value.reason is Reason.TRANSFER_RESOLVED and caught.value.metadata["resolution"] == "void"
    async with db.read() as conn:
        found = await ledger.balances(conn, [alice])
    assert (found[alice].posted, found[alice].available) == (30, 30)
    with pytest.raises(Refusal) as caught:
        async with db.write() as conn:
            await ledger.resolve(conn, "txn_0000000000000000", post=True, now_us=NOW)
    assert caught.value.reason is Reason.TRANSFER_UNKNOWN


async def test_a_pending_transfer_past_its_timeout_is_voided_not_posted(db: Database) -> None:
    issuer, alice, bob = await _accounts(db, [False, True, True])
    async with db.write() as conn:
        await ledger.transact(conn, [Leg(issuer, alice, 50)], code="issue", now_us=NOW)
        late = await ledger.transact(conn, [Leg(alice, bob, 20)], code="x", now_us=NOW, pending_until_us=NOW + 10)
        kept = await ledger.transact(conn, [Leg(alice, bob, 5)], code="x", now_us=NOW, pending_until_us=NOW + 99)
    ours = {late[0].txn_id, kept[0].txn_id}  # the database may hold other tests' transactions

    async def expired_at(at: int) -> list[str]:
        async with db.read() as conn:
            return [t for t in await ledger.expired(conn, at, limit=10_000) if t in ours]

    assert await expired_at(NOW + 9) == []
    assert await expired_at(NOW + 10) == [late[0].txn_id]
    # Posting at the timeout voids it (the channel answered too late) and says so; it is then done.
    async with db.write() as conn:
        voided = await ledger.resolve(conn, late[0].txn_id, post=True, now_us=NOW + 10)
    assert (voided.kind, voided.expired, voided.now) == (Kind.VOID, True, True)
    assert await expired_at(NOW + 100) == [kept[0].txn_id]
    async with db.read() as conn:
        found = await ledger.balances(conn, [alice, bob])
    assert (found[alice].available, found[bob].posted) == (45, 0)


async def test_concurrent_resolvers_resolve_once(db: Database) -> None:
    """Ten at once ask to post and ten to void one pending transaction: one of the two wins, every
    asker is told the same outcome (or refused for asking the other), and the points move once."""
    issuer, alice, bob = await _accounts(db, [False, True, True])
    async with db.write() as conn:
        await ledger.transact(conn, [Leg(issuer, alice, 10)], code="issue", now_us=NOW)
        txn = (await ledger.transact(conn, [Leg(alice, bob, 10)], code="x", now_us=NOW, pending_until_us=NOW + 60))[
            0
        ].txn_id

    async def one(post: bool) -> object:
        for _ in range(5):
            try:
                async with db.write() as conn:
                    return await ledger.resolve(conn, txn, post=post, now_us=NOW + 1)
            except Refusal as refusal:
                return refusal
            except Exception:  # lost the race on the unique resolution: ask again, and learn who won
                await asyncio.sleep(0.01)
        raise AssertionError("no answer")

    outcomes = await asyncio.gather(*(one(i % 2 == 0) for i in range(20)))
    kinds = {o.kind for o in outcomes if isinstance(o, ledger.Resolution)}
    assert len(kinds) == 1
    assert sum(1 for o in outcomes if isinstance(o, ledger.Resolution) and o.now) == 1
    assert all(o.reason is Reason.TRANSFER_RESOLVED for o in outcomes if isinstance(o, Refusal))
    assert await _posted(db, alice, bob) == ([0, 10] if kinds == {Kind.POST} else [10, 0])


# -- any sequence of operations -----------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    """Random transactions, pending ones resolved either way, replays through the first-answer store,
    checked against a model and against the ledger's own entries after every step."""

    url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.db = Database(self.url)
        self.clock = ManualClock()
        self.accounts = self.run(_accounts(self.db, [False, False, True, True, True]))
        self.guarded = {a: g for a, g in zip(self.accounts, [False, False, True, True, True], strict=True)}
        self.model: dict[str, int] = defaultdict(int)  # posted balances
        self.reserved: dict[str, int] = defaultdict(int)  # debits pending
        self.pending: dict[str, list[Leg]] = {}
        self.done: list[tuple[str, bytes, str]] = []  # (request id, fingerprint, txn id) answered

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()

    def _allowed(self, legs: list[Leg], pending: bool) -> bool:
        debit: dict[str, int] = defaultdict(int)
        credit: dict[str, int] = defaultdict(int)
        for leg in legs:
            debit[leg.debit] += leg.amount
            credit[leg.credit] += leg.amount
        # Pending credits do not count until posted; posted ones in the same transaction do.
        return all(
            not self.guarded[a] or self.reserved[a] + debit[a] <= self.model[a] + (0 if pending else credit[a])
            for a in debit
        )

    @rule(
        data=st.data(),
        pending=st.booleans(),
        count=st.integers(1, 4),
    )
    def transact(self, data: st.DataObject, pending: bool, count: int) -> None:
        legs = []
        for _ in range(count):
            debit, credit = data.draw(st.lists(st.sampled_from(self.accounts), min_size=2, max_size=2, unique=True))
            legs.append(Leg(debit, credit, data.draw(st.integers(1, 50))))
        expected = self._allowed(legs, pending)
        request_id = secrets.token_hex(6)
        fingerprint = repr(legs).encode()

        async def work(conn):  # type: ignore[no-untyped-def]
            until = NOW + 10**9 if pending else None
            made = await ledger.transact(conn, legs, code="prop", now_us=NOW, pending_until_us=until)
            return made[0].txn_id

        try:
            txn = self.run(self._once(request_id, fingerprint, work))
        except Refusal as refusal:
            assert refusal.reason is Reason.INSUFFICIENT_BALANCE and not expected, (legs, refusal)
            return
        assert expected, legs
        self.done.append((request_id, fingerprint, txn))
        for leg in legs:
            if pending:
                self.reserved[leg.debit] += leg.amount
            else:
                self.model[leg.debit] -= leg.amount
                self.model[leg.credit] += leg.amount
        if pending:
            self.pending[txn] = legs

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data(), post=st.booleans())
    def resolve(self, data: st.DataObject, post: bool) -> None:
        txn = data.draw(st.sampled_from(sorted(self.pending)))

        async def go() -> ledger.Resolution:
            async with self.db.write() as conn:
                return await ledger.resolve(conn, txn, post=post, now_us=NOW + 1)

        assert self.run(go()).now
        for leg in self.pending.pop(txn):
            self.reserved[leg.debit] -= leg.amount
            if post:
                self.model[leg.debit] -= leg.amount
                self.model[leg.credit] += leg.amount

    @precondition(lambda self: bool(self.done))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """A request sent again gets its first answer and changes nothing."""
        request_id, fingerprint, txn = data.draw(st.sampled_from(self.done))

        async def work(conn):  # type: ignore[no-untyped-def]
            raise AssertionError("a replay ran its work again")

        assert self.run(self._once(request_id, fingerprint, work)) == txn

    async def _once(self, request_id: str, fingerprint: bytes, work):  # type: ignore[no-untyped-def]
        key = RequestKey("ptn_test", "Transact", request_id)
        return await run_once(
            self.db, self.clock, key, hashlib.sha256(fingerprint).digest(), work, str.encode, bytes.decode
        )

    @invariant()
    def the_books_balance(self) -> None:
        async def check() -> None:
            async with self.db.read() as conn:
                found = await ledger.balances(conn, self.accounts)
                rows = (await conn.execute(select(transfers).where(transfers.c.debit_account.in_(self.accounts)))).all()
            for a in self.accounts:
                b = found[a]
                assert b.posted == self.model[a], (a, b)
                assert b.debits_pending == self.reserved[a], (a, b)
                if b.guarded:
                    assert b.available >= 0, b
            # Posted totals and pending totals each sum to zero over the unit's accounts.
            assert sum(b.credits_posted - b.debits_posted for b in found.values()) == 0
            assert sum(b.credits_pending - b.debits_pending for b in found.values()) == 0
            # Each balance is the sum of its entries.
            entries: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
            for r in rows:
                effect = {"posted": (1, 0), "pending": (0, 1), "post": (1, -1), "void": (0, -1)}[r.kind]
                for account, side in ((r.debit_account, 0), (r.credit_account, 2)):
                    entries[account][side] += r.amount * effect[0]
                    entries[account][side + 1] += r.amount * effect[1]
            for a in self.accounts:
                b = found[a]
                assert entries[a] == [b.debits_posted, b.debits_pending, b.credits_posted, b.credits_pending], a

        self.run(check())


@pytest.mark.slow
def test_any_sequence_of_operations_keeps_the_books(database_url: str) -> None:
    async def migrated() -> None:
        database = Database(database_url)
        await migrate.upgrade(database)
        await database.dispose()

    asyncio.run(migrated())
    machine = type("Machine", (LedgerMachine,), {"url": database_url})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
