"""The statements that claim uses of vouchers, derived from the rules (rules.py), for both databases.

PostgreSQL: one statement claims a whole batch. Its requests arrive as arrays (unnest); a CTE
takes a use of each voucher whose voucher and campaign rules hold and whose request has no first
answer yet; the next takes each campaign's prizes at once, under its row lock, with the stock rule
for the count wanted; the rest write the redemptions, their first answers (core.once) and any rows
attached to them (the scans an agent sent). If a campaign lacks stock for its share, the insert of
a NULL uses_remaining fails the whole statement and nothing of it stays: the batch is split and
each request goes alone, where its own refusal is told apart. A batch of one is the one-statement
path.

SQLite: one write transaction (BEGIN IMMEDIATE, so it alone writes) claims the batch request by
request; in it the voucher's UPDATE checks every rule, stock included, so the campaign's UPDATE
after it cannot fail.

Either way a request that claimed nothing gets None, and the caller asks `rules.diagnosis` why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg
from clearpoint.platform.campaigns.tables import campaigns, vouchers
from clearpoint.platform.core import once
from clearpoint.platform.core.batching import Split
from clearpoint.platform.core.clock import Clock
from clearpoint.platform.core.database import Database, DatabaseUnavailable
from clearpoint.platform.core.errors import Reason
from clearpoint.platform.core.once import RequestKey
from clearpoint.platform.core.tables import first_answers
from clearpoint.platform.redemption.codes import CheckedCode
from clearpoint.platform.redemption.rules import Scope, Terms, campaign_allows, conditions
from clearpoint.platform.redemption.tables import redemptions
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    LargeBinary,
    String,
    Table,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeEngine

# Pauses before sending a batch again after its connection died (a restart or failover in progress).
_RETRY_PAUSES_S = (0.05, 0.25, 1.0)


@dataclass(frozen=True, slots=True)
class Attachment:
    """Rows another room writes with each redemption, in the same statement (inserted if and only if
    the redemption is), and a condition that must hold for the request to be redeemed at all."""

    table: Table
    columns: tuple[str, ...]  # taken from each attempt's `attached` mapping
    # Columns that take the redemption's own value of the same name (redemption_id, campaign_id, voucher_id).
    from_redemption: tuple[str, ...]
    condition: Callable[[Mapping[str, ColumnElement[Any]]], ColumnElement[bool]]
    unmet: Reason  # the refusal when the condition does not hold
    time_column: str  # set to the time of the statement
    # The row to write instead when the request is refused (its reason), in the transaction that
    # keeps the refusal as the request's first answer.
    refused: Callable[[Mapping[str, Any], Reason], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One redemption a batch tries: whose request, what the code names, where, and what to record."""

    key: RequestKey  # the request's first-answer key
    fingerprint: bytes
    redeemed_by: str  # the partner the redemption is recorded for
    request_id: str  # as recorded on the redemption
    code: CheckedCode
    store_id: str
    redemption_id: str
    attached: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    redeemed_us: int
    campaign_name: str
    prize_description: str
    uses_remaining: int


# The columns of a batch's requests, each sent as an array (PostgreSQL) or bound one by one (SQLite).
REQUEST_COLUMNS: tuple[tuple[str, TypeEngine[Any]], ...] = (
    ("idx", Integer()),
    ("voucher_id", String()),
    ("campaign_id", String()),
    ("kid", String()),
    ("store_id", String()),
    ("principal_id", String()),
    ("method", String()),
    ("answer_request_id", String()),
    ("fingerprint", LargeBinary()),
    ("redeemed_by", String()),
    ("request_id", String()),
    ("redemption_id", String()),
    ("body", LargeBinary()),
)


def _request_values(a: Attempt, idx: int) -> tuple[Any, ...]:
    return (
        idx,
        a.code.voucher_id,
        a.code.campaign_id,
        a.code.kid,
        a.store_id,
        a.key.principal_id,
        a.key.method,
        a.key.request_id,
        a.fingerprint,
        a.redeemed_by,
        a.request_id,
        a.redemption_id,
        a.redemption_id.encode(),
    )


class Claimer:
    """Claims a batch of attempts in one statement (PostgreSQL) or one transaction (SQLite)."""

    def __init__(self, db: Database, clock: Clock, attachment: Attachment | None = None) -> None:
        self._db = db
        self._clock = clock
        self._attachment = attachment
        if db.is_postgres:
            self._group = group_statement(attachment)
        else:
            self._one = _one_by_one(attachment)

    async def __call__(self, attempts: Sequence[Attempt]) -> list[Claimed | None]:
        """Claim for a batch; a batch whose connection died is sent again (on a new connection).

        That is safe whatever the database did with the first try: the statement skips every request
        that has a first answer, so a batch that did commit claims nothing again, and each request
        then finds (and replays) its first answer."""
        for pause in (*_RETRY_PAUSES_S, None):
            try:
                if self._db.is_postgres:
                    return await self._claim_group(attempts)
                return await self._claim_one_by_one(attempts)
            except DatabaseUnavailable:
                if pause is None:
                    raise
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    # -- PostgreSQL: one statement for the batch -------------------------------------------------

    async def _claim_group(self, attempts: Sequence[Attempt]) -> list[Claimed | None]:
        now = self._clock()
        columns = [list(c) for c in zip(*(_request_values(a, i) for i, a in enumerate(attempts)), strict=True)]
        values: dict[str, Any] = dict(self._group.fixed)
        values.update((name, column) for (name, _), column in zip(REQUEST_COLUMNS, columns, strict=True))
        values["now"] = now
        if self._attachment is not None:
            for name in self._attachment.columns:
                values[f"a_{name}"] = [a.attached[name] if a.attached else None for a in attempts]
        try:
            async with self._db.autocommit() as conn:
                raw = await conn.get_raw_connection()
                driver: asyncpg.Connection = raw.driver_connection
                records = await driver.fetch(self._group.sql, *(values[name] for name in self._group.order))
        except (asyncpg.exceptions.NotNullViolationError, asyncpg.exceptions.UniqueViolationError):
            # A campaign without stock for its share, or a twin request answered meanwhile: alone,
            # each request's own outcome is told apart (a lone request here simply claimed nothing).
            if len(attempts) > 1:
                raise Split from None
            return [None]
        claimed = {r["idx"]: Claimed(now, r["name"], r["prize_description"], r["remaining"]) for r in records}
        return [claimed.get(i) for i in range(len(attempts))]

    # -- SQLite: one transaction for the batch, request by request -------------------------------

    async def _claim_one_by_one(self, attempts: Sequence[Attempt]) -> list[Claimed | None]:
        one = self._one
        now = self._clock()
        results: list[Claimed | None] = []
        made: list[dict[str, Any]] = []
        answers: list[dict[str, Any]] = []
        attached: list[dict[str, Any]] = []
        try:
            async with self._db.write() as conn:
                for a in attempts:
                    params = _bound_values(a, now, self._attachment)
                    left = (await conn.execute(one.claim_use, params)).scalar()
                    if left is None:
                        results.append(None)
                        continue
                    prize = (await conn.execute(one.claim_prize, params)).one()
                    results.append(Claimed(now, prize.name, prize.prize_description, left))
                    made.append(_redemption_row(a, now, left))
                    answers.append(once.row(a.key, a.fingerprint, now, body=a.redemption_id.encode()))
                    if self._attachment is not None and a.attached is not None:
                        attached.append(_attached_row(self._attachment, a, now))
                if made:
                    await conn.execute(insert(redemptions), made)
                    await conn.execute(insert(first_answers), answers)
                if attached and self._attachment is not None:
                    await conn.execute(insert(self._attachment.table), attached)
        except IntegrityError:
            if len(attempts) > 1:
                raise Split from None
            return [None]
        return results


def _attached_row(attachment: Attachment, a: Attempt, now: int) -> dict[str, Any]:
    assert a.attached is not None
    mine = {"redemption_id": a.redemption_id, "campaign_id": a.code.campaign_id, "voucher_id": a.code.voucher_id}
    return {**a.attached, **{name: mine[name] for name in attachment.from_redemption}, attachment.time_column: now}


def _redemption_row(a: Attempt, now: int, uses_remaining: int) -> dict[str, Any]:
    return {
        "redemption_id": a.redemption_id,
        "voucher_id": a.code.voucher_id,
        "campaign_id": a.code.campaign_id,
        "store_id": a.store_id,
        "redeemed_by": a.redeemed_by,
        "request_id": a.request_id,
        "request_sha256": a.fingerprint,
        "redeemed_us": now,
        "uses_remaining": uses_remaining,
    }


def _bound_values(a: Attempt, now: int, attachment: Attachment | None) -> dict[str, Any]:
    values = {f"p_{name}": value for (name, _), value in zip(REQUEST_COLUMNS, _request_values(a, 0), strict=True)}
    values["now"] = now
    if attachment is not None:
        for name in attachment.columns:
            values[f"a_{name}"] = a.attached[name] if a.attached else None
    return values


@dataclass(frozen=True, slots=True)
class _OneByOne:
    claim_use: Any
    claim_prize: Any


def _one_by_one(attachment: Attachment | None) -> _OneByOne:
    """SQLite's two UPDATEs per request, built once with bind parameters (building them per call cost
    more CPU than SQLite spent running them)."""
    # Prefixed: an UPDATE reserves its columns' own names for the values it sets.
    p = {name: bindparam(f"p_{name}", type_=kind) for name, kind in REQUEST_COLUMNS}
    now = bindparam("now", type_=BigInteger())
    terms = Terms(p["voucher_id"], p["campaign_id"], p["kid"], p["store_id"], now, literal(1))
    guards = [~once.answered(p["principal_id"], p["method"], p["answer_request_id"])]
    if attachment is not None:
        extra = {name: bindparam(f"a_{name}", type_=attachment.table.c[name].type) for name in attachment.columns}
        guards.append(attachment.condition(extra))
    claim_use = (
        update(vouchers)
        .where(
            *conditions(terms, Scope.VOUCHER),
            campaign_allows(terms, Scope.CAMPAIGN, Scope.STOCK),
            *guards,
        )
        .values(uses_made=vouchers.c.uses_made + 1)
        .returning((vouchers.c.uses_allowed - vouchers.c.uses_made).label("remaining"))
    )
    claim_prize = (
        update(campaigns)
        .where(campaigns.c.campaign_id == terms.campaign_id, *conditions(terms, Scope.STOCK))
        .values(redeemed=campaigns.c.redeemed + terms.wanted)
        .returning(campaigns.c.name, campaigns.c.prize_description)
    )
    return _OneByOne(claim_use, claim_prize)


class Compiled(NamedTuple):
    sql: str  # for asyncpg, parameters as $1, $2, ...
    order: tuple[str, ...]  # the parameter named by each $n
    fixed: dict[str, Any]  # the parameters that are constants of the statement, with their values


def group_statement(attachment: Attachment | None) -> Compiled:
    """The PostgreSQL statement for a batch, compiled once for asyncpg."""
    arrays = [bindparam(name, type_=ARRAY(kind)) for name, kind in REQUEST_COLUMNS]
    names = [name for name, _ in REQUEST_COLUMNS]
    if attachment is not None:
        for name in attachment.columns:
            arrays.append(bindparam(f"a_{name}", type_=ARRAY(attachment.table.c[name].type)))
            names.append(f"a_{name}")
    req = select(func.unnest(*arrays).table_valued(*names).render_derived(name="r")).cte("req")
    now = bindparam("now", type_=BigInteger())
    terms = Terms(req.c.voucher_id, req.c.campaign_id, req.c.kid, req.c.store_id, now, literal(1))
    guards = [~once.answered(req.c.principal_id, req.c.method, req.c.answer_request_id)]
    if attachment is not None:
        guards.append(attachment.condition({name: req.c[f"a_{name}"] for name in attachment.columns}))
    v = (
        update(vouchers)
        .where(*conditions(terms, Scope.VOUCHER), campaign_allows(terms, Scope.CAMPAIGN), *guards)
        .values(uses_made=vouchers.c.uses_made + 1)
        .returning(req.c.idx, req.c.campaign_id, (vouchers.c.uses_allowed - vouchers.c.uses_made).label("remaining"))
        .cte("v")
    )
    wanted = select(v.c.campaign_id, func.count().label("n")).group_by(v.c.campaign_id).cte("wanted")
    stock = Terms(req.c.voucher_id, wanted.c.campaign_id, req.c.kid, req.c.store_id, now, wanted.c.n)
    c = (
        update(campaigns)
        .where(campaigns.c.campaign_id == wanted.c.campaign_id, *conditions(stock, Scope.STOCK))
        .values(redeemed=campaigns.c.redeemed + wanted.c.n)
        .returning(campaigns.c.campaign_id, campaigns.c.name, campaigns.c.prize_description)
        .cte("c")
    )
    claimed = v.join(req, req.c.idx == v.c.idx)
    # NULL when the campaign took no prize for it: the NOT NULL column then fails the whole statement.
    remaining = case((exists().where(c.c.campaign_id == v.c.campaign_id), v.c.remaining), else_=null())
    r = insert(redemptions).from_select(
        [
            "redemption_id",
            "voucher_id",
            "campaign_id",
            "store_id",
            "redeemed_by",
            "request_id",
            "request_sha256",
            "redeemed_us",
            "uses_remaining",
        ],
        select(
            req.c.redemption_id,
            req.c.voucher_id,
            req.c.campaign_id,
            req.c.store_id,
            req.c.redeemed_by,
            req.c.request_id,
            req.c.fingerprint,
            now,
            remaining,
        ).select_from(claimed),
    )
    a = insert(first_answers).from_select(
        ["principal_id", "method", "request_id", "request_sha256", "response", "created_us"],
        select(
            req.c.principal_id, req.c.method, req.c.answer_request_id, req.c.fingerprint, req.c.body, now
        ).select_from(claimed),
    )
    ctes = [r.cte("r"), a.cte("a")]
    if attachment is not None:
        columns = [*attachment.columns, *attachment.from_redemption, attachment.time_column]
        s = insert(attachment.table).from_select(
            columns,
            select(
                *(req.c[f"a_{name}"] for name in attachment.columns),
                *(req.c[name] for name in attachment.from_redemption),
                now,
            )
            .select_from(claimed)
            .where(req.c[f"a_{attachment.columns[0]}"].is_not(None)),
        )
        ctes.append(s.cte("s"))
    statement = (
        select(v.c.idx, v.c.remaining, c.c.name, c.c.prize_description)
        .select_from(v.join(c, c.c.campaign_id == v.c.campaign_id))
        .add_cte(*ctes)
    )
    compiled = statement.compile(dialect=make_url("postgresql+asyncpg://").get_dialect()())
    fixed = {name: value for name, value in compiled.params.items() if value is not None}
    return Compiled(str(compiled), tuple(compiled.positiontup or ()), fixed)
