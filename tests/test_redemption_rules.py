"""Parity of the redemption rules across every path that applies or explains them.

`redemption/rules.py` states the rules once. One table of cases (a voucher, its campaign, its key,
a store and a time) goes through every path built from them, and all must agree:

- the rules' own diagnosis (the SELECT that names the first broken rule);
- the claim statement for one request (PostgreSQL: the group statement with one item; SQLite: one
  transaction), and the same in a batch beside other requests (the shared batcher);
- the whole redemption (`Redeemer.redeem`), whose refusal reason must be the diagnosis's;
- the preview (`Redeemer.validate`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from clearpoint.platform.app import Platform
from clearpoint.platform.campaigns import catalog, issuing
from clearpoint.platform.campaigns.records import Campaign, CampaignSpec
from clearpoint.platform.campaigns.tables import campaigns, vouchers
from clearpoint.platform.core import ids, once
from clearpoint.platform.core.batching import Batcher
from clearpoint.platform.core.clock import ManualClock
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.core.once import RequestKey
from clearpoint.platform.core.principals import Principal, Role
from clearpoint.platform.partners import accounts
from clearpoint.platform.redemption import redeemer
from clearpoint.platform.redemption.codes import CheckedCode
from clearpoint.platform.redemption.redeemer import REDEEM, RedeemRequest
from clearpoint.platform.redemption.rules import diagnosis
from clearpoint.platform.redemption.statements import Attempt, Claimed, Claimer
from sqlalchemy import update

from tests.conftest import MASTER_KEY

HOUR = 3600 * 1_000_000


@dataclass(frozen=True)
class Case:
    name: str
    expected: Reason | None  # None: the voucher is redeemed
    uses: int = 1
    used: int = 0  # uses already made
    stock: int = 100
    stock_taken: int = 0  # prizes already redeemed from the campaign
    stores: tuple[str, ...] = ()
    store: str = "store-1"
    at: int = 0  # microseconds from the campaign's start (which is an hour before "now")
    unknown_voucher: bool = False
    other_campaign: bool = False  # the code names another campaign than the voucher's
    retired_key: bool = False
    listed_elsewhere: bool = False  # another campaign lists the store asked at


CASES = [
    Case("redeemable", None),
    Case("last use of a multi-use voucher", None, uses=3, used=2),
    Case("at a listed store", None, stores=("store-1", "store-2")),
    Case("last prize of the campaign", None, stock=5, stock_taken=4),
    Case("never issued", Reason.VOUCHER_UNKNOWN, unknown_voucher=True),
    Case("code names another campaign", Reason.CAMPAIGN_MISMATCH, other_campaign=True),
    Case("signed by a retired key", Reason.KEY_RETIRED, retired_key=True),
    Case("before the campaign starts", Reason.VOUCHER_NOT_YET_VALID, at=-2 * HOUR),
    Case("after the campaign ends", Reason.VOUCHER_EXPIRED, at=30 * HOUR),
    Case("at a store not listed", Reason.STORE_NOT_ALLOWED, stores=("store-2",)),
    Case(
        "at a store only another campaign lists", Reason.STORE_NOT_ALLOWED, stores=("store-2",), listed_elsewhere=True
    ),
    Case("all uses made", Reason.VOUCHER_ALREADY_REDEEMED, uses=2, used=2),
    Case("no prizes left", Reason.STOCK_EXHAUSTED, stock=3, stock_taken=3),
    # Where several rules are broken, the table's order decides which one is named.
    Case("used up and expired", Reason.VOUCHER_EXPIRED, used=1, at=30 * HOUR),
    Case("used up and no prizes left", Reason.VOUCHER_ALREADY_REDEEMED, used=1, stock=1, stock_taken=1),
    Case("retired key and wrong store", Reason.KEY_RETIRED, retired_key=True, stores=("store-2",)),
]


@dataclass
class Arranged:
    attempt: Attempt
    code: str
    campaign: Campaign


class World:
    """A platform database where each case gets a campaign and vouchers of its own."""

    def __init__(self, platform: Platform, clock: ManualClock, partner: Principal) -> None:
        self.p = platform
        self.clock = clock
        self.partner = partner

    async def arrange(self, case: Case) -> Arranged:
        start = self.clock() - HOUR
        spec = CampaignSpec(
            case.name, f"prize of {case.name}", start, start + 24 * HOUR, case.stores, case.stock, case.uses, 0
        )
        async with self.p.db.write() as conn:
            campaign = await catalog.create(conn, self.partner, spec, self.clock())
            signer = await self.p.keys.signer(conn)
            ((voucher_id, _),) = await issuing.issue(conn, campaign, 1, signer, self.clock())
            await conn.execute(update(vouchers).where(vouchers.c.voucher_id == voucher_id).values(uses_made=case.used))
            await conn.execute(
                update(campaigns)
                .where(campaigns.c.campaign_id == campaign.campaign_id)
                .values(redeemed=case.stock_taken)
            )
            if case.retired_key:
                await self.p.keys.rotate(conn)
                await self.p.keys.retire(conn, signer.kid)
            if case.listed_elsewhere:
                await catalog.create(
                    conn, self.partner, replace(spec, name="elsewhere", store_ids=(case.store,)), self.clock()
                )
        if case.unknown_voucher:
            voucher_id = ids.new_id("vch")
        named = campaign
        if case.other_campaign:
            async with self.p.db.write() as conn:
                named = await catalog.create(conn, self.partner, replace(spec, name="another"), self.clock())
        code = issuing.sign_code(named, voucher_id, signer)
        checked = CheckedCode(signer.kid, voucher_id, named.campaign_id, start, start + 24 * HOUR)
        key = RequestKey(self.partner.partner_id, REDEEM, secrets.token_hex(8))
        attempt = Attempt(
            key,
            secrets.token_bytes(32),
            self.partner.partner_id,
            key.request_id,
            checked,
            case.store,
            ids.new_id("rdm"),
        )
        return Arranged(attempt, code, campaign)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    clock = ManualClock()
    platform = await Platform.open(database_url, master_key=MASTER_KEY, clock=clock)
    async with platform.db.write() as conn:
        partner, _ = await accounts.create(conn, f"rules-{secrets.token_hex(4)}", Role.PARTNER, clock())
        await platform.keys.create(conn)
    yield World(platform, clock, Principal(partner.partner_id, partner.name, Role.PARTNER))
    await platform.close()


def _at(world: World, case: Case) -> Callable[[], None]:
    """Move the clock to the case's moment; returns how to move it back."""
    world.clock.advance((case.at) / 1_000_000)
    return lambda: world.clock.advance(-case.at / 1_000_000)


async def _diagnosis(world: World, arranged: Arranged) -> Reason | None:
    async with world.p.db.read() as conn:
        return await world.p.redeemer._why_not(conn, _request(world, arranged), arranged.attempt.code)


async def _diagnosis_rows(world: World, arranged: Arranged, case: Case) -> list[dict[str, Any]]:
    """The diagnosis, with and without the store, from the redeemer's statements (built when it was
    imported) and from the rules' table now: all must read the same row."""
    found = []
    terms = redeemer._terms(arranged.attempt.code, case.store, world.clock())
    async with world.p.db.read() as conn:
        for statement in (
            redeemer._DIAGNOSIS,
            diagnosis(redeemer._TERMS),
            redeemer._PREVIEW,
            diagnosis(redeemer._TERMS, with_store=False),
        ):
            found.append(dict((await conn.execute(statement, terms)).one()._mapping))
    return found


def _request(world: World, arranged: Arranged) -> RedeemRequest:
    a = arranged.attempt
    return RedeemRequest(world.partner, a.key, a.fingerprint, a.request_id, arranged.code, a.store_id)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_every_path_agrees(world: World, case: Case) -> None:
    claimer = Claimer(world.p.db, world.clock)
    arranged = [await world.arrange(case) for _ in range(5)]
    back = _at(world, case)
    try:
        named = await _diagnosis(world, arranged[0])
        rows = await _diagnosis_rows(world, arranged[0], case)
        preview = await world.p.redeemer.validate(arranged[0].code, case.store)
        # The claim statement alone (PostgreSQL's group statement with one item; SQLite's transaction).
        (alone,) = await claimer([arranged[0].attempt])
        # The same rules in a batch, beside requests that succeed (a batch split by a refusal included).
        fresh = [await world.arrange(Case("a good neighbour", None)) for _ in range(3)]
        batcher: Batcher[Attempt, Claimed | None] = Batcher(claimer, key=lambda a: a.code.voucher_id)
        batch = await asyncio.gather(*(batcher.submit(x.attempt) for x in [arranged[1], *fresh, arranged[2]]))
        # The whole redemption, refusal and all.
        try:
            outcome: Any = await world.p.redeemer.redeem(_request(world, arranged[3]))
        except Refusal as refused:
            outcome = refused.reason
    finally:
        back()

    assert named is case.expected
    assert rows[0] == rows[1] and rows[2] == rows[3]
    with_store, without_store = rows[0], rows[2]
    assert with_store["reason"] == (case.expected.value if case.expected else None)
    # Without a store, the store rule is left out: the next broken rule, if any, is named.
    expected_without = None if case.expected in (None, Reason.STORE_NOT_ALLOWED) else with_store["reason"]
    assert without_store["reason"] == expected_without
    if not case.unknown_voucher:
        voucher, uses_left, name, prize, valid_from, valid_until = list(with_store.values())[1:]
        assert voucher == arranged[0].attempt.code.voucher_id and uses_left == case.uses - case.used
        campaign = arranged[0].campaign
        if not case.other_campaign:
            assert (name, prize) == (case.name, f"prize of {case.name}")
            assert (valid_from, valid_until) == (campaign.spec.valid_from_us, campaign.spec.valid_until_us)
    else:
        assert (with_store["voucher_id"], with_store["uses_left"]) == (None, None)
    assert preview.reason == case.expected
    assert (alone is None) == (case.expected is not None)
    assert [r is None for r in (batch[0], batch[4])] == [case.expected is not None] * 2
    assert all(isinstance(r, Claimed) for r in batch[1:4]), "a refusal in the batch cost its neighbours"
    if case.expected is None:
        assert outcome.claim.uses_remaining == case.uses - case.used - 1
        assert alone is not None and alone.uses_remaining == case.uses - case.used - 1
    else:
        assert outcome == case.expected


async def test_a_request_answered_before_is_not_applied_again(world: World) -> None:
    """The claim statement on every database skips a request that has a first answer."""
    arranged = await world.arrange(Case("answered", None, uses=5))
    a = arranged.attempt
    async with world.p.db.write() as conn:
        await once.record_many(world.p.db, conn, [once.row(a.key, a.fingerprint, world.clock(), body=b"rdm_earlier")])
    assert await Claimer(world.p.db, world.clock)([a]) == [None]
    assert await _diagnosis(world, arranged) is None  # no rule refuses it: it was answered, not refused


async def test_a_poisoned_member_costs_only_itself(world: World) -> None:
    """A batch whose statement fails because of one member (a value the database refuses: NULL where
    none is allowed; on PostgreSQL also a NUL character, which no text column holds) is run again
    member by member: the good ones are redeemed, only the bad one fails."""
    claimer = Claimer(world.p.db, world.clock)
    poisons = [{"store_id": None}] + ([{"store_id": "store\x00-1"}] if world.p.db.is_postgres else [])
    for poison in poisons:
        good = [await world.arrange(Case("a good neighbour", None)) for _ in range(4)]
        bad = replace((await world.arrange(Case("poisoned", None))).attempt, **poison)
        batcher: Batcher[Attempt, Claimed | None] = Batcher(claimer, key=lambda a: a.code.voucher_id)
        results = await asyncio.gather(
            *(batcher.submit(a) for a in [good[0].attempt, good[1].attempt, bad, good[2].attempt, good[3].attempt]),
            return_exceptions=True,
        )
        assert batcher.largest == 5, "the five went as one batch"
        assert all(isinstance(r, Claimed) for i, r in enumerate(results) if i != 2), (poison, results)
        assert results[2] is None or isinstance(results[2], Exception), (poison, results[2])
