"""Exchanges: a member's points moved from one channel's programme to another's through platform
points, without minting or losing a point when one side fails halfway (docs/points.md).

A channel's points live in the channel's own system, so each side is a two-phase transfer the
channel resolves. The "out" side (the from-channel debits the member in its system) is a pending
ledger transaction that, once posted, has turned the points into platform points in the member's
wallet; only then is the "in" side (the to-channel credits the member) made, itself pending,
reserving those platform points. A side voided (the channel refused, or did not answer before the
timeout) undoes only itself: a failed out side moves nothing; a failed in side leaves the points as
platform points in the member's wallet ("held"), never lost, never twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.core.fanout import Fanout
from clearpoint.platform.core.ids import new_id
from clearpoint.platform.core.principals import Principal
from clearpoint.platform.exchange import channels, ledger, members
from clearpoint.platform.exchange.channels import MICRO_SUFFIX, PLATFORM, PLATFORM_UNIT
from clearpoint.platform.exchange.ledger import Kind, Leg
from clearpoint.platform.exchange.rules import Quote, Rule, quote
from clearpoint.platform.exchange.tables import exchanges, member_links
from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

DAY_US = 86_400_000_000
# How long a channel has to resolve its side before the side is voided.
DEFAULT_SIDE_TIMEOUT_US = 300_000_000
# How long a quote may be used.
QUOTE_VALID_US = 60_000_000


class State(StrEnum):
    PENDING_OUT = "pending_out"
    PENDING_IN = "pending_in"
    COMPLETED = "completed"
    FAILED = "failed"
    HELD = "held"


@dataclass(frozen=True, slots=True)
class Request:
    """What a member asks: `points` out of `from_channel` (None: their platform points) into
    `to_channel` (None: their platform points)."""

    member_id: str
    from_channel: str | None
    to_channel: str | None
    points: int


@dataclass(frozen=True, slots=True)
class Priced:
    """A request with its exact result under the rule versions in force (or named by a quote)."""

    request: Request
    quote: Quote
    rule_in: Rule | None
    rule_out: Rule | None
    valid_until_us: int


@dataclass(frozen=True, slots=True)
class Exchange:
    exchange_id: str
    member_id: str
    from_channel: str | None
    to_channel: str | None
    points_in: int
    fee: int
    platform_points: int
    residue_in_micro: int
    points_out: int
    residue_out_micro: int
    rule_in_version: int | None
    rule_out_version: int | None
    state: State
    txn_out: str | None
    txn_in: str | None
    timeout_us: int
    created_us: int
    updated_us: int
    expired: bool = False  # this resolution came after the side's timeout: the side was voided


# -- pricing --------------------------------------------------------------------------------------------


async def price(
    conn: AsyncConnection, request: Request, now_us: int, versions: tuple[int, int] | None = None
) -> Priced:
    """The exact result of `request` under the rules in force now (or under the named versions, for
    an exchange made on a quote), with the rules' limits checked. The request's shape and its
    channels were checked by `admissible`."""
    rule_in = await _rule(conn, request.from_channel, now_us, versions and versions[0], "from_channel")
    rule_out = await _rule(conn, request.to_channel, now_us, versions and versions[1], "to_channel")
    made = quote(request.points, rule_in, rule_out)
    if rule_in is not None:
        _within(rule_in, request.points, "points")
    if made.points_out == 0:
        raise field_invalid("points", f"{request.points} points are too few to give one whole point at these rates")
    if rule_out is not None:
        _within(rule_out, made.points_out, "points")
    await _daily(conn, request, made, rule_in, rule_out, now_us)
    return Priced(request, made, rule_in, rule_out, now_us + QUOTE_VALID_US)


def check_request(request: Request) -> None:
    """Refuse (FIELD_INVALID, naming the field) a request no rule could price."""
    if request.from_channel is None and request.to_channel is None:
        raise field_invalid("to_channel", "an exchange moves points out of or into a channel's programme")
    if request.from_channel is not None and request.from_channel == request.to_channel:
        raise field_invalid("to_channel", "an exchange moves points between two different programmes")
    if isinstance(request.points, bool) or not 1 <= request.points <= ledger.MAX_AMOUNT:
        raise field_invalid("points", f"points must be a whole number from 1 to {ledger.MAX_AMOUNT}")


async def _rule(
    conn: AsyncConnection, channel_id: str | None, now_us: int, version: int | None, field: str
) -> Rule | None:
    if channel_id is None:
        return None
    if version is None or version == 0:
        return await channels.in_force(conn, channel_id, now_us, field)
    found = await channels.version(conn, channel_id, version)
    if found is None or found.effective_us > now_us:
        raise Refusal(Reason.QUOTE_EXPIRED, "the quote names a rule that is not in force: ask for a new quote")
    return found


def _within(rule: Rule, points: int, field: str) -> None:
    if not rule.min_points <= points <= rule.max_points:
        raise Refusal(
            Reason.LIMIT_EXCEEDED,
            f"{rule.channel_id} exchanges {rule.min_points} to {rule.max_points} of its points at a time, not {points}",
            field=field,
            limit="per_exchange",
            allowed=f"{rule.min_points}-{rule.max_points}",
        )


# The hot statements, built once: building a statement costs more CPU than the database spends on it.
_USED_TODAY = select(
    func.coalesce(func.sum(case((exchanges.c.from_channel == bindparam("c"), exchanges.c.points_in))), 0).label(
        "used_out"
    ),
    func.coalesce(func.sum(case((exchanges.c.to_channel == bindparam("c"), exchanges.c.points_out))), 0).label(
        "used_in"
    ),
).where(
    exchanges.c.member_id == bindparam("m"),
    exchanges.c.created_us >= bindparam("since"),
    exchanges.c.state != State.FAILED.value,
)
_INSERT_EXCHANGE = insert(exchanges)
_ADVANCE = (
    update(exchanges)
    .where(exchanges.c.exchange_id == bindparam("x"), exchanges.c.state == bindparam("was"))
    .values(
        state=bindparam("state"),
        updated_us=bindparam("now"),
        txn_in=bindparam("txn_in"),
        timeout_us=bindparam("timeout"),
    )
    .returning(exchanges.c.exchange_id)
)
_BY_ID = select(exchanges).where(exchanges.c.exchange_id == bindparam("x"))
_BY_ID_OF_CHANNEL = _BY_ID.where(
    or_(exchanges.c.from_channel == bindparam("p"), exchanges.c.to_channel == bindparam("p"))
)


async def _daily(
    conn: AsyncConnection, request: Request, made: Quote, rule_in: Rule | None, rule_out: Rule | None, now_us: int
) -> None:
    """A member moves at most a rule's daily_points of a channel's points a UTC day, out and in together."""
    day_start = now_us - now_us % DAY_US
    for rule, points in ((rule_in, request.points), (rule_out, made.points_out)):
        if rule is None:
            continue
        found = (
            await conn.execute(_USED_TODAY, {"m": request.member_id, "since": day_start, "c": rule.channel_id})
        ).one()
        used = int(found.used_out or 0) + int(found.used_in or 0)
        if used + points > rule.daily_points:
            raise Refusal(
                Reason.LIMIT_EXCEEDED,
                f"member {request.member_id} may move {rule.daily_points} points of {rule.channel_id} a day;"
                f" {used} moved today",
                field="points",
                limit="per_member_per_day",
                allowed=str(max(0, rule.daily_points - used)),
            )


# -- quotes as tokens -------------------------------------------------------------------------------------


class QuoteTokens:
    """A quote handed to the caller as an opaque token: the request, the rule versions and the time it
    is valid until, under an HMAC only this platform can make. Nothing is stored for it."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def issue(self, priced: Priced) -> str:
        r = priced.request
        body = json.dumps(
            [
                r.member_id,
                r.from_channel,
                r.to_channel,
                r.points,
                priced.rule_in.version if priced.rule_in else 0,
                priced.rule_out.version if priced.rule_out else 0,
                priced.valid_until_us,
            ],
            separators=(",", ":"),
        ).encode()
        mac = hmac.new(self._secret, body, hashlib.sha256).hexdigest()[:32]
        return f"{body.hex()}.{mac}"

    def versions(self, token: str, request: Request, now_us: int) -> tuple[int, int]:
        """The rule versions a valid token for exactly this request names; QUOTE_EXPIRED otherwise."""
        expired = Refusal(Reason.QUOTE_EXPIRED, "the quote has expired or was made for another exchange: ask again")
        body_hex, _, mac = token.partition(".")
        try:
            body = bytes.fromhex(body_hex)
            fields = json.loads(body)
        except ValueError:
            raise expired from None
        good = hmac.new(self._secret, body, hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(good, mac) or not isinstance(fields, list) or len(fields) != 7:
            raise expired
        member_id, from_channel, to_channel, points, v_in, v_out, until = fields
        if [member_id, from_channel, to_channel, points] != [
            request.member_id,
            request.from_channel,
            request.to_channel,
            request.points,
        ]:
            raise expired
        if now_us >= until:
            raise expired
        return int(v_in), int(v_out)


# -- the exchange -------------------------------------------------------------------------------------------


async def admissible(
    conn: AsyncConnection,
    principal: Principal,
    request: Request,
    now_us: int,
    versions: tuple[int, int] | None = None,
) -> Priced:
    """The request priced, once the caller may ask it for this member and both accounts are linked."""
    check_request(request)
    await members.get(conn, request.member_id, principal)
    if not principal.is_operator and principal.partner_id not in (request.from_channel, request.to_channel):
        raise Refusal(
            Reason.PERMISSION_DENIED, "a partner starts exchanges out of or into its own programme, not others'"
        )
    for channel_id, field in ((request.from_channel, "from_channel"), (request.to_channel, "to_channel")):
        if channel_id is not None:
            await channels.known(conn, channel_id, field)
            await members.confirmed_link(conn, request.member_id, channel_id, field)
    return await price(conn, request, now_us, versions)


async def start(
    conn: AsyncConnection,
    principal: Principal,
    request: Request,
    now_us: int,
    *,
    versions: tuple[int, int] | None = None,
    side_timeout_us: int = DEFAULT_SIDE_TIMEOUT_US,
) -> Exchange:
    """Check who asks and for whom, price the request, and open its first side."""
    priced = await admissible(conn, principal, request, now_us, versions)
    q = priced.quote
    timeout_us = now_us + side_timeout_us
    wallet = members.wallet(request.member_id)
    txn_out = txn_in = None
    if request.from_channel is not None:
        txn_out, state = ledger.new_id("txn"), State.PENDING_OUT
    else:
        txn_in, state = ledger.new_id("txn"), State.PENDING_IN
    made = Exchange(
        new_id("xch"),
        request.member_id,
        request.from_channel,
        request.to_channel,
        q.points_in,
        q.fee,
        q.platform,
        q.residue_in_micro,
        q.points_out,
        q.residue_out_micro,
        priced.rule_in.version if priced.rule_in else None,
        priced.rule_out.version if priced.rule_out else None,
        state,
        txn_out,
        txn_in,
        timeout_us,
        now_us,
        now_us,
    )
    # The exchange's row first and the ledger last: the accounts every exchange updates (the
    # channel's, the treasury) are then locked only from the ledger's updates to the commit.
    await conn.execute(_INSERT_EXCHANGE, {**_row(made), "requested_by": principal.partner_id})
    if request.from_channel is not None:
        legs = _out_legs(request.from_channel, wallet, q, made.rule_in_version)
        await ledger.transact(conn, legs, code="exchange", now_us=now_us, pending_until_us=timeout_us, txn_id=txn_out)
    else:
        assert request.to_channel is not None and txn_in is not None
        await _open_in_side(conn, request.to_channel, wallet, q, now_us, timeout_us, txn_in, made.rule_out_version)
    return made


async def resolve(
    conn: AsyncConnection,
    principal: Principal,
    exchange_id: str,
    accept: bool,
    now_us: int,
    *,
    side_timeout_us: int = DEFAULT_SIDE_TIMEOUT_US,
) -> Exchange:
    """A channel's answer for its side: the from-channel debited (or could not debit) the member,
    the to-channel credited (or could not credit) them. Asked again, the same answer changes
    nothing; the other answer is refused TRANSFER_RESOLVED."""
    found = await get(conn, principal, exchange_id)
    me = principal.partner_id
    if found.from_channel == me and found.state is State.PENDING_OUT:
        return await _resolve_out(conn, found, accept, now_us, side_timeout_us)
    if found.to_channel == me and found.state is State.PENDING_IN:
        return await _resolve_in(conn, found, accept, now_us)
    side = "out" if found.from_channel == me else "in"
    done = _side_outcome(found, side)
    if done is None:
        raise Refusal(
            Reason.FIELD_INVALID,
            f"exchange {exchange_id} does not wait for your answer yet (it is {found.state})",
            field="exchange_id",
        )
    if done != accept:
        raise Refusal(
            Reason.TRANSFER_RESOLVED,
            f"your side of exchange {exchange_id} was already {'posted' if done else 'voided'}",
            resolution="post" if done else "void",
        )
    return found


def _side_outcome(found: Exchange, side: str) -> bool | None:
    """Whether a side was posted (True) or voided (False), or None while it is open or not begun."""
    if side == "out":
        if found.state is State.PENDING_OUT:
            return None
        return found.state is not State.FAILED
    if found.state in (State.PENDING_OUT, State.PENDING_IN):
        return None
    return found.state is State.COMPLETED


async def _resolve_out(
    conn: AsyncConnection, found: Exchange, accept: bool, now_us: int, side_timeout_us: int
) -> Exchange:
    assert found.txn_out is not None
    posted, expired = _outcome(found, accept, now_us)
    changes: dict[str, Any] = {"updated_us": now_us}
    if not posted:
        changes["state"] = State.FAILED
    elif found.to_channel is None:
        changes["state"] = State.COMPLETED
    else:
        changes["txn_in"] = ledger.new_id("txn")
        changes["state"], changes["timeout_us"] = State.PENDING_IN, now_us + side_timeout_us
    advanced = await _advance(conn, found, State.PENDING_OUT, changes, expired=expired)
    await _resolve_side(conn, found.txn_out, accept, posted, now_us)
    if advanced.state is State.PENDING_IN:
        assert advanced.to_channel is not None and advanced.txn_in is not None
        wallet = members.wallet(found.member_id)
        await _open_in_side(
            conn,
            advanced.to_channel,
            wallet,
            _quote_of(found),
            now_us,
            advanced.timeout_us,
            advanced.txn_in,
            found.rule_out_version,
        )
    return advanced


async def _resolve_in(conn: AsyncConnection, found: Exchange, accept: bool, now_us: int) -> Exchange:
    assert found.txn_in is not None
    posted, expired = _outcome(found, accept, now_us)
    state = State.COMPLETED if posted else State.HELD
    advanced = await _advance(conn, found, State.PENDING_IN, {"state": state, "updated_us": now_us}, expired=expired)
    await _resolve_side(conn, found.txn_in, accept, posted, now_us)
    return advanced


def _outcome(found: Exchange, accept: bool, now_us: int) -> tuple[bool, bool]:
    """Whether the open side will be posted, and whether an accept came too late (it voids instead):
    the side's ledger transaction has the exchange's timeout."""
    expired = accept and ledger.past_timeout(found.timeout_us, now_us)
    return accept and not expired, expired


async def _resolve_side(conn: AsyncConnection, txn_id: str, accept: bool, posted: bool, now_us: int) -> None:
    """The side's ledger transaction resolved as the exchange's row now says (the row was moved on
    first, so a concurrent resolver waits on it, not on the ledger's hot accounts)."""
    done = await ledger.resolve(conn, txn_id, post=accept, now_us=now_us)
    if (done.kind is Kind.POST) != posted or not done.now:
        raise RuntimeError(f"transaction {txn_id} was {done.kind} already, but its exchange still waited for it")


async def _advance(
    conn: AsyncConnection, found: Exchange, was: State, changes: dict[str, Any], *, expired: bool
) -> Exchange:
    """Move the exchange on from `was`, only if it is still there (a concurrent resolver rolls back)."""
    after = {"txn_in": found.txn_in, "timeout_us": found.timeout_us, **changes}
    moved = await conn.execute(
        _ADVANCE,
        {
            "x": found.exchange_id,
            "was": was.value,
            "state": State(after["state"]).value,
            "now": after["updated_us"],
            "txn_in": after["txn_in"],
            "timeout": after["timeout_us"],
        },
    )
    if moved.first() is None:
        raise Refusal(Reason.TRANSFER_RESOLVED, f"exchange {found.exchange_id} was resolved meanwhile: ask again")
    fields = {name: getattr(found, name) for name in Exchange.__slots__}
    fields.update(changes)
    fields["state"] = State(fields["state"])
    fields["expired"] = expired
    return Exchange(**fields)


async def overdue(conn: AsyncConnection, now_us: int, limit: int = 100) -> list[str]:
    """Exchanges whose open side waits past its timeout, oldest first (a read, before any write)."""
    rows = await conn.execute(
        select(exchanges.c.exchange_id)
        .where(
            exchanges.c.state.in_([State.PENDING_OUT.value, State.PENDING_IN.value]),
            exchanges.c.timeout_us <= now_us,
        )
        .order_by(exchanges.c.timeout_us)
        .limit(limit)
    )
    return [r.exchange_id for r in rows]


async def void_overdue(conn: AsyncConnection, exchange_id: str, now_us: int) -> Exchange | None:
    """Void one exchange's open side if it is still waiting past its timeout. One exchange a
    transaction: its accounts are locked in order, so it never waits in a cycle with another."""
    row = (await conn.execute(_BY_ID, {"x": exchange_id})).first()
    if row is None:
        return None
    found = _exchange(row)
    if found.timeout_us > now_us or found.state not in (State.PENDING_OUT, State.PENDING_IN):
        return None
    if found.state is State.PENDING_OUT:
        return await _resolve_out(conn, found, False, now_us, 0)
    return await _resolve_in(conn, found, False, now_us)


async def get(conn: AsyncConnection, principal: Principal, exchange_id: str) -> Exchange:
    """An exchange the caller may see: an operator, or one of its two channels."""
    if principal.is_operator:
        row = (await conn.execute(_BY_ID, {"x": exchange_id})).first()
    else:
        row = (await conn.execute(_BY_ID_OF_CHANNEL, {"x": exchange_id, "p": principal.partner_id})).first()
    if row is None:
        raise Refusal(Reason.EXCHANGE_UNKNOWN, f"no exchange {exchange_id}", field="exchange_id")
    return _exchange(row)


@dataclass(frozen=True, slots=True)
class Instruction:
    """A side waiting for a channel: what to do in its own system, for whom, by when."""

    exchange_id: str
    debit: bool  # take the points from the member's account (else give them)
    account_ref: str
    member_id: str
    points: int
    expire_us: int
    created_us: int


async def instructions(
    conn: AsyncConnection, channel_ids: Collection[str], limit: int = 500
) -> dict[str, tuple[Instruction, ...]]:
    """The sides waiting for each channel, oldest first, in one query for all of them."""
    side_channel = case(
        (exchanges.c.state == State.PENDING_OUT.value, exchanges.c.from_channel), else_=exchanges.c.to_channel
    )
    rows = await conn.execute(
        select(exchanges, member_links.c.account_ref, side_channel.label("side_channel"))
        .join(
            member_links,
            and_(member_links.c.member_id == exchanges.c.member_id, member_links.c.channel_id == side_channel),
        )
        .where(
            or_(
                and_(exchanges.c.from_channel.in_(channel_ids), exchanges.c.state == State.PENDING_OUT.value),
                and_(exchanges.c.to_channel.in_(channel_ids), exchanges.c.state == State.PENDING_IN.value),
            )
        )
        .order_by(exchanges.c.created_us, exchanges.c.exchange_id)
    )
    found: dict[str, list[Instruction]] = {channel_id: [] for channel_id in channel_ids}
    for r in rows:
        waiting = found[r.side_channel]
        if len(waiting) < limit:
            debit = r.state == State.PENDING_OUT.value
            points = r.points_in if debit else r.points_out
            waiting.append(
                Instruction(r.exchange_id, debit, r.account_ref, r.member_id, points, r.timeout_us, r.created_us)
            )
    return {channel_id: tuple(waiting) for channel_id, waiting in found.items()}


def instruction_feed(db: Database, poll_seconds: float) -> Fanout[tuple[Instruction, ...]]:
    """The sides waiting for the channels watched in this process, read together by one task."""

    async def read(channel_ids: Collection[str]) -> dict[str, tuple[Instruction, ...]]:
        async with db.read() as conn:
            return await instructions(conn, channel_ids)

    return Fanout(read, poll_seconds=poll_seconds)


async def waiting_for(conn: AsyncConnection, channel_id: str, limit: int = 500) -> list[Exchange]:
    """The exchanges whose open side is this channel's to resolve, oldest first."""
    rows = await conn.execute(
        select(exchanges)
        .where(
            or_(
                and_(exchanges.c.from_channel == channel_id, exchanges.c.state == State.PENDING_OUT.value),
                and_(exchanges.c.to_channel == channel_id, exchanges.c.state == State.PENDING_IN.value),
            )
        )
        .order_by(exchanges.c.created_us, exchanges.c.exchange_id)
        .limit(limit)
    )
    return [_exchange(r) for r in rows]


# -- legs ---------------------------------------------------------------------------------------------------


# Accounts the channel's registration made (the transaction's own statements find a missing one).
_account = ledger.account_named


def _out_legs(channel_id: str, wallet: str, q: Quote, version: int | None) -> list[Leg]:
    """The channel's points into the platform's position (priced at the channel's rule `version`),
    platform points into the member's wallet, the fee to the platform's fees, the fraction to its
    rounding account."""
    unit = channels.unit_of(channel_id)
    legs = [Leg(_account(unit, channel_id, "channel"), _account(unit, PLATFORM, "hub"), q.points_in, version)]
    treasury = _account(PLATFORM_UNIT, PLATFORM, "treasury")
    if q.platform:
        legs.append(Leg(treasury, wallet, q.platform))
    if q.fee:
        legs.append(Leg(treasury, _account(PLATFORM_UNIT, PLATFORM, "fees"), q.fee))
    if q.residue_in_micro:
        micro = PLATFORM_UNIT + MICRO_SUFFIX
        legs.append(
            Leg(
                _account(micro, PLATFORM, "residue-src"),
                _account(micro, PLATFORM, "rounding"),
                q.residue_in_micro,
            )
        )
    return legs


async def _open_in_side(
    conn: AsyncConnection,
    channel_id: str,
    wallet: str,
    q: Quote,
    now_us: int,
    timeout_us: int,
    txn_id: str,
    version: int | None,
) -> None:
    """Reserve the member's platform points and the points the channel is to credit (priced at the
    channel's rule `version`), pending."""
    unit = channels.unit_of(channel_id)
    treasury = _account(PLATFORM_UNIT, PLATFORM, "treasury")
    legs = [
        Leg(wallet, treasury, q.platform),
        Leg(_account(unit, PLATFORM, "hub"), _account(unit, channel_id, "channel"), q.points_out, version),
    ]
    if q.residue_out_micro:
        micro = unit + MICRO_SUFFIX
        legs.append(
            Leg(
                _account(micro, PLATFORM, "residue-src"),
                _account(micro, PLATFORM, "rounding"),
                q.residue_out_micro,
            )
        )
    await ledger.transact(conn, legs, code="exchange", now_us=now_us, pending_until_us=timeout_us, txn_id=txn_id)


def _quote_of(found: Exchange) -> Quote:
    """The figures an exchange was made with (its in side is built from them, never re-priced)."""
    return Quote(
        found.points_in,
        Decimal(0),
        found.fee,
        found.platform_points,
        found.residue_in_micro,
        found.points_out,
        found.residue_out_micro,
        None,
        None,
    )


def _row(e: Exchange) -> dict[str, Any]:
    fields = {name: getattr(e, name) for name in Exchange.__slots__ if name != "expired"}
    fields["state"] = e.state.value
    return fields


def _exchange(r: Row[Any]) -> Exchange:
    return Exchange(
        r.exchange_id,
        r.member_id,
        r.from_channel,
        r.to_channel,
        r.points_in,
        r.fee,
        r.platform_points,
        r.residue_in_micro,
        r.points_out,
        r.residue_out_micro,
        r.rule_in_version,
        r.rule_out_version,
        State(r.state),
        r.txn_out,
        r.txn_in,
        r.timeout_us,
        r.created_us,
        r.updated_us,
    )
