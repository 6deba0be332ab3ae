"""Exchanges between programmes (exchange/exchanges.py) on both databases: each side a two-phase
transfer its channel resolves, no point made or lost when a side fails, and clear refusals."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from clearpoint.platform import migrate
from clearpoint.platform.core.clock import ManualClock
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.core.principals import Principal, Role
from clearpoint.platform.exchange import channels, exchanges, ledger, members
from clearpoint.platform.exchange.channels import MICRO_SUFFIX, PLATFORM, PLATFORM_UNIT
from clearpoint.platform.exchange.exchanges import QuoteTokens, Request, State
from clearpoint.platform.exchange.tables import accounts
from clearpoint.platform.partners import accounts as partner_accounts
from sqlalchemy import select

from tests.helpers import channel_rule, principals


@dataclass
class World:
    db: Database
    clock: ManualClock
    a: Principal  # a channel: 1 of its points = 0.25 platform points, 1.5 % fee
    b: Principal  # a channel: 1 platform point = 3.333333 of its points
    c: Principal  # a partner with no part in the member's exchanges
    op: Principal
    member: str

    async def write(self, work):  # type: ignore[no-untyped-def]
        async with self.db.write() as conn:
            return await work(conn)

    async def start(self, principal: Principal, request: Request, **kw: object) -> exchanges.Exchange:
        return await self.write(lambda conn: exchanges.start(conn, principal, request, self.clock(), **kw))

    async def resolve(self, principal: Principal, exchange_id: str, accept: bool) -> exchanges.Exchange:
        return await self.write(lambda conn: exchanges.resolve(conn, principal, exchange_id, accept, self.clock()))

    async def refusal(self, work) -> Refusal:  # type: ignore[no-untyped-def]
        with pytest.raises(Refusal) as caught:
            await self.write(work)
        return caught.value

    async def balance(self, unit: str, owner: str, purpose: str) -> ledger.Balance:
        async with self.db.read() as conn:
            account_id = await conn.scalar(
                select(accounts.c.account_id).where(
                    accounts.c.unit == unit, accounts.c.owner == owner, accounts.c.purpose == purpose
                )
            )
            return (await ledger.balances(conn, [account_id]))[account_id]


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    db = Database(database_url)
    await migrate.upgrade(db)
    clock = ManualClock()
    now = clock()
    async with db.write() as conn:
        a, b, c, op, _ = await principals(conn, now)
        await channels.register(conn, a.partner_id, "Alpha Miles", "miles", now)
        await channels.register(conn, b.partner_id, "Beta Stars", "stars", now)
        await channels.publish(
            conn, channel_rule(a.partner_id, now, to_platform=Decimal("0.25"), fee_percent=Decimal("1.5")), now
        )
        await channels.publish(conn, channel_rule(b.partner_id, now, from_platform=Decimal("3.333333")), now)
        member = (await members.register(conn, op, "Ada", now)).member_id
        await members.link(conn, op, member, a.partner_id, "A-1001", now)  # waits for Alpha
        await members.confirm(conn, a, member, "A-1001", now)
        await members.link(conn, b, member, b.partner_id, "B-77", now)  # Beta's own word: confirmed at once
    clock.advance(1)
    yield World(db, clock, a, b, c, op, member)
    await db.dispose()


async def test_an_exchange_moves_points_through_both_sides(world: World) -> None:
    """1000 miles -> 250 platform points, fee 4, 246 to the member -> 819 stars; each figure booked."""
    a, b = world.a.partner_id, world.b.partner_id
    fees_before = (await world.balance(PLATFORM_UNIT, PLATFORM, "fees")).posted  # shared with other tests
    started = await world.start(world.a, Request(world.member, a, b, 1000))
    assert (started.state, started.fee, started.platform_points, started.points_out) == (State.PENDING_OUT, 4, 246, 819)
    assert (started.residue_in_micro, started.residue_out_micro) == (0, 999_918)
    assert (started.rule_in_version, started.rule_out_version) == (1, 1)
    wallet = await world.balance(PLATFORM_UNIT, world.member, "wallet")
    assert (wallet.posted, wallet.credits_pending) == (0, 246)  # not the member's until Alpha debits them

    out = await world.resolve(world.a, started.exchange_id, True)
    assert out.state is State.PENDING_IN
    wallet = await world.balance(PLATFORM_UNIT, world.member, "wallet")
    assert (wallet.posted, wallet.available) == (246, 0)  # theirs, reserved for Beta's side

    done = await world.resolve(world.b, started.exchange_id, True)
    assert done.state is State.COMPLETED
    assert (await world.balance(PLATFORM_UNIT, world.member, "wallet")).posted == 0
    assert (await world.balance(channels.unit_of(a), a, "channel")).posted == -1000
    assert (await world.balance(channels.unit_of(a), PLATFORM, "hub")).posted == 1000
    assert (await world.balance(channels.unit_of(b), b, "channel")).posted == 819
    assert (await world.balance(PLATFORM_UNIT, PLATFORM, "fees")).posted - fees_before == 4
    assert (await world.balance(channels.unit_of(b) + MICRO_SUFFIX, PLATFORM, "rounding")).posted == 999_918
    # Asked again, the same answers change nothing; the other answer is refused with its reason.
    assert (await world.resolve(world.b, started.exchange_id, True)).state is State.COMPLETED
    refusal = await world.refusal(lambda conn: exchanges.resolve(conn, world.b, started.exchange_id, False, 0))
    assert refusal.reason is Reason.TRANSFER_RESOLVED and refusal.metadata == {"resolution": "post"}


async def test_a_failed_side_undoes_only_itself(world: World) -> None:
    a, b = world.a.partner_id, world.b.partner_id
    # Alpha cannot debit the member: nothing moved anywhere.
    first = await world.start(world.a, Request(world.member, a, b, 1000))
    failed = await world.resolve(world.a, first.exchange_id, False)
    assert failed.state is State.FAILED
    wallet = await world.balance(PLATFORM_UNIT, world.member, "wallet")
    assert (wallet.posted, wallet.credits_pending, wallet.debits_pending) == (0, 0, 0)
    assert (await world.balance(channels.unit_of(a), a, "channel")).debits_pending == 0
    # Beta cannot credit: the points stop as the member's platform points, none lost.
    second = await world.start(world.a, Request(world.member, a, b, 1000))
    await world.resolve(world.a, second.exchange_id, True)
    held = await world.resolve(world.b, second.exchange_id, False)
    assert held.state is State.HELD
    wallet = await world.balance(PLATFORM_UNIT, world.member, "wallet")
    assert (wallet.posted, wallet.available) == (246, 246)
    refusal = await world.refusal(lambda conn: exchanges.resolve(conn, world.b, second.exchange_id, True, 0))
    assert refusal.reason is Reason.TRANSFER_RESOLVED
    # From there the member may send them on: platform points into Beta.
    onward = await world.start(world.b, Request(world.member, None, b, 246))
    assert (onward.state, onward.points_out) == (State.PENDING_IN, 819)
    assert (await world.resolve(world.b, onward.exchange_id, True)).state is State.COMPLETED
    assert (await world.balance(PLATFORM_UNIT, world.member, "wallet")).posted == 0


async def test_a_side_nobody_answers_is_voided_at_its_timeout(world: World) -> None:
    a, b = world.a.partner_id, world.b.partner_id
    silent_out = await world.start(world.a, Request(world.member, a, b, 1000))
    answered = await world.start(world.a, Request(world.member, a, b, 2000))
    await world.resolve(world.a, answered.exchange_id, True)  # its in side now waits for Beta
    ours = {silent_out.exchange_id, answered.exchange_id}  # the database may hold other tests' exchanges

    async def sweep() -> dict[str, State]:
        """As the serve process's sweep does: what is overdue, then each voided in its own transaction."""
        due = await world.write(lambda conn: exchanges.overdue(conn, world.clock(), limit=10_000))
        voided = {}
        for exchange_id in set(due) & ours:
            done = await world.write(lambda conn, x=exchange_id: exchanges.void_overdue(conn, x, world.clock()))
            voided[exchange_id] = done.state
        return voided

    world.clock.now_us += exchanges.DEFAULT_SIDE_TIMEOUT_US - 1
    assert await sweep() == {}
    world.clock.now_us += 1
    assert await sweep() == {silent_out.exchange_id: State.FAILED, answered.exchange_id: State.HELD}
    # A late answer is refused with its reason; the member's points are where the timeouts left them.
    late = await world.refusal(
        lambda conn: exchanges.resolve(conn, world.a, silent_out.exchange_id, True, world.clock())
    )
    assert late.reason is Reason.TRANSFER_RESOLVED and late.metadata == {"resolution": "void"}
    wallet = await world.balance(PLATFORM_UNIT, world.member, "wallet")
    assert (wallet.posted, wallet.available, wallet.credits_pending) == (492, 492, 0)  # 2000 x 0.25 - fee 8


async def test_an_answer_after_the_timeout_but_before_the_sweep_voids(world: World) -> None:
    a = world.a.partner_id
    started = await world.start(world.a, Request(world.member, a, None, 1000))
    world.clock.now_us += exchanges.DEFAULT_SIDE_TIMEOUT_US
    late = await world.resolve(world.a, started.exchange_id, True)
    assert (late.state, late.expired) == (State.FAILED, True)
    assert (await world.balance(PLATFORM_UNIT, world.member, "wallet")).credits_pending == 0


async def test_bad_requests_are_refused_with_their_reason_and_nothing_written(world: World) -> None:
    a, b = world.a.partner_id, world.b.partner_id
    stranger = (await world.write(lambda conn: members.register(conn, world.c, "Bo", world.clock()))).member_id
    now = world.clock()
    future = await world.write(
        lambda conn: partner_accounts.create(conn, f"late-{secrets.token_hex(3)}", Role.PARTNER, now)
    )
    late = Principal(future[0].partner_id, future[0].name, Role.PARTNER)

    async def setup_late(conn) -> None:  # type: ignore[no-untyped-def]
        await channels.register(conn, late.partner_id, "Gamma", "g", now)
        await channels.publish(conn, channel_rule(late.partner_id, now + 10**9), now)  # not yet in force
        await members.link(conn, late, world.member, late.partner_id, "G-1", now)

    await world.write(setup_late)
    cases: list[tuple[Principal, Request, Reason, dict[str, str]]] = [
        (world.a, Request(world.member, a, b, 0), Reason.FIELD_INVALID, {"field": "points"}),
        (world.a, Request(world.member, a, b, -5), Reason.FIELD_INVALID, {"field": "points"}),
        (world.a, Request(world.member, a, b, 2**63), Reason.FIELD_INVALID, {"field": "points"}),
        (world.a, Request(world.member, a, b, 2**70), Reason.FIELD_INVALID, {"field": "points"}),
        (world.a, Request(world.member, a, a, 100), Reason.FIELD_INVALID, {"field": "to_channel"}),
        (world.a, Request(world.member, None, None, 100), Reason.FIELD_INVALID, {"field": "to_channel"}),
        (world.a, Request("mbr_0000000000000000", a, b, 100), Reason.MEMBER_UNKNOWN, {"field": "member_id"}),
        (world.a, Request(stranger, a, b, 100), Reason.MEMBER_UNKNOWN, {"field": "member_id"}),  # not Alpha's
        (world.c, Request(world.member, a, b, 100), Reason.MEMBER_UNKNOWN, {"field": "member_id"}),  # another's
        (world.op, Request(world.member, a, world.c.partner_id, 100), Reason.CHANNEL_UNKNOWN, {"field": "to_channel"}),
        (world.op, Request(stranger, a, b, 100), Reason.ACCOUNT_NOT_LINKED, {"field": "from_channel"}),
        (world.b, Request(world.member, a, late.partner_id, 100), Reason.PERMISSION_DENIED, {}),  # not Beta's
        (world.a, Request(world.member, a, late.partner_id, 100), Reason.RULE_NOT_IN_FORCE, {"field": "to_channel"}),
        (late, Request(world.member, late.partner_id, b, 100), Reason.RULE_NOT_IN_FORCE, {"field": "from_channel"}),
        (world.a, Request(world.member, a, b, 9), Reason.LIMIT_EXCEEDED, {}),  # below min_points 10
        (world.a, Request(world.member, a, b, 100_001), Reason.LIMIT_EXCEEDED, {}),
        (world.a, Request(world.member, a, None, 3), Reason.LIMIT_EXCEEDED, {}),
    ]
    for principal, request, reason, metadata in cases:
        refusal = await world.refusal(
            lambda conn, p=principal, r=request: exchanges.start(conn, p, r, world.clock())  # type: ignore[misc]
        )
        assert refusal.reason is reason, (request, refusal)
        assert metadata.items() <= refusal.metadata.items(), (request, refusal.metadata)
    # An account the channel has not confirmed cannot be exchanged from.
    await world.write(lambda conn: members.link(conn, world.op, stranger, a, "A-2002", world.clock()))
    refusal = await world.refusal(
        lambda conn: exchanges.start(conn, world.op, Request(stranger, a, None, 100), world.clock())
    )
    assert refusal.reason is Reason.ACCOUNT_NOT_LINKED and "not yet confirmed" in refusal.message
    async with world.db.read() as conn:
        assert await exchanges.waiting_for(conn, a) == []
    assert (await world.balance(channels.unit_of(a), a, "channel")).debits_pending == 0
    # Another channel cannot answer for Alpha's side, nor even see the exchange.
    started = await world.start(world.a, Request(world.member, a, b, 100))
    refusal = await world.refusal(
        lambda conn: exchanges.resolve(conn, world.c, started.exchange_id, True, world.clock())
    )
    assert refusal.reason is Reason.EXCHANGE_UNKNOWN


async def test_a_member_moves_at_most_the_daily_limit(world: World) -> None:
    a = world.a.partner_id
    await world.write(
        lambda conn: channels.publish(conn, channel_rule(a, world.clock(), daily_points=2500), world.clock())
    )
    await world.start(world.a, Request(world.member, a, None, 2000))
    refusal = await world.refusal(
        lambda conn: exchanges.start(conn, world.a, Request(world.member, a, None, 501), world.clock())
    )
    assert refusal.reason is Reason.LIMIT_EXCEEDED and refusal.metadata["allowed"] == "500"
    await world.start(world.a, Request(world.member, a, None, 500))
    world.clock.now_us += exchanges.DAY_US  # a new UTC day
    await world.start(world.a, Request(world.member, a, None, 2500))


async def test_an_exchange_on_a_quote_gets_the_quoted_result(world: World) -> None:
    a, b = world.a.partner_id, world.b.partner_id
    tokens = QuoteTokens(b"k" * 32)
    request = Request(world.member, a, b, 1000)
    async with world.db.read() as conn:
        priced = await exchanges.price(conn, request, world.clock())
    token = tokens.issue(priced)
    # A new rule for Alpha takes effect before the member says yes: the quote still holds.
    await world.write(
        lambda conn: channels.publish(conn, channel_rule(a, world.clock(), to_platform=Decimal("0.5")), world.clock())
    )
    world.clock.advance(1)
    made = await world.start(world.a, request, versions=tokens.versions(token, request, world.clock()))
    assert (made.platform_points, made.points_out, made.rule_in_version) == (246, 819, 1)
    unquoted = await world.start(world.a, request)
    assert (unquoted.platform_points, unquoted.rule_in_version) == (500, 2)  # 1000 x 0.5, no fee
    # A token for other figures, tampered, or past its validity is QUOTE_EXPIRED.
    for bad_request, bad_token, at in (
        (Request(world.member, a, b, 1001), token, world.clock()),
        (request, token[:-1] + ("0" if token[-1] != "0" else "1"), world.clock()),
        (request, "zz.zz", world.clock()),
        (request, token, priced.valid_until_us),
    ):
        with pytest.raises(Refusal) as caught:
            tokens.versions(bad_token, bad_request, at)
        assert caught.value.reason is Reason.QUOTE_EXPIRED
