"""Double-entry arithmetic on the ledger's tables: transactions of several legs applied together or
not at all, two-phase transfers resolved exactly once, balances and history.

Every function takes the caller's open write transaction (`Database.write()`): a refusal raised
here leaves the caller to roll back, so a transaction that fails on its third leg leaves no trace
of the first two. Accounts are updated once each per transaction, in account-id order, so two
transactions over the same accounts never wait for each other in a cycle (no deadlocks on
PostgreSQL). The guard against overdraft is a CHECK constraint on the accounts, which the database
applies to each row as it is when an update lands, so it holds under any concurrency without a
Python lock; a transaction's updates go together, last, so its hot rows are held for least time.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.exchange.tables import accounts, transfers, units
from sqlalchemy import Row, bindparam, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

# The most one transfer may move: far above any programme's balances, and far enough below 2^63
# that no account's running totals can overflow a 64-bit integer in practice.
MAX_AMOUNT = 10**15
MAX_LEGS = 16


class Kind(StrEnum):
    POSTED = "posted"
    PENDING = "pending"
    POST = "post"
    VOID = "void"


@dataclass(frozen=True, slots=True)
class Leg:
    """Move `amount` from `debit` to `credit` (two accounts of one unit)."""

    debit: str
    credit: str
    amount: int
    rule_version: int | None = None  # a channel's leg of an exchange: the rule version it is priced at


@dataclass(frozen=True, slots=True)
class Balance:
    account_id: str
    unit: str
    owner: str
    purpose: str
    guarded: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    @property
    def posted(self) -> int:
        """What the account holds, counting only what is final."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What may still be debited: the posted balance less what pending transfers reserve."""
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass(frozen=True, slots=True)
class Transfer:
    transfer_id: str
    txn_id: str
    leg: int
    debit_account: str
    credit_account: str
    unit: str
    amount: int
    kind: Kind
    pending_id: str | None
    timeout_us: int | None
    code: str
    created_us: int
    seq: int = 0  # the order it was written in; 0 until it is
    rule_version: int | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    """What became of a pending transaction: posted or voided, when, whether only now, and whether
    it was voided because a post came after its timeout (the caller reports TRANSFER_EXPIRED)."""

    txn_id: str
    kind: Kind
    resolved_us: int
    now: bool
    expired: bool = False


_ACCOUNT_EXISTS = select(accounts.c.account_id).where(accounts.c.account_id == bindparam("a"))


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


async def add_unit(conn: AsyncConnection, unit: str, name: str, now_us: int) -> None:
    """Make `unit` known (a second call for the same unit changes nothing)."""
    found = await conn.scalar(select(units.c.unit).where(units.c.unit == unit))
    if found is None:
        await conn.execute(insert(units).values(unit=unit, name=name, created_us=now_us))


def account_named(unit: str, owner: str, purpose: str) -> str:
    """An account's id, named by what it is: (owner, unit, purpose) never changes for an account, so
    the hot paths compute the ids they need instead of looking them up."""
    digest = hashlib.sha256(f"{unit}\n{owner}\n{purpose}".encode()).hexdigest()
    return f"acc_{digest[:24]}"


async def open_account(
    conn: AsyncConnection, unit: str, owner: str, purpose: str, *, guarded: bool, now_us: int
) -> str:
    """The account of `owner` in `unit` for `purpose`, made if it does not exist yet."""
    made = account_named(unit, owner, purpose)
    if await conn.scalar(_ACCOUNT_EXISTS, {"a": made}) is not None:
        return made
    await conn.execute(
        insert(accounts).values(
            account_id=made, unit=unit, owner=owner, purpose=purpose, guarded=int(guarded), created_us=now_us
        )
    )
    return made


def check_legs(legs: Sequence[Leg]) -> None:
    """Refuse (FIELD_INVALID, naming the leg) what no ledger could apply, before anything is read."""
    if not 1 <= len(legs) <= MAX_LEGS:
        raise field_invalid("legs", f"a transaction has 1 to {MAX_LEGS} legs, not {len(legs)}")
    for n, leg in enumerate(legs):
        if isinstance(leg.amount, bool) or not isinstance(leg.amount, int) or not 1 <= leg.amount <= MAX_AMOUNT:
            raise field_invalid(f"legs[{n}].amount", f"an amount is a whole number from 1 to {MAX_AMOUNT}")
        if leg.debit == leg.credit:
            raise field_invalid(f"legs[{n}]", "a leg moves points between two different accounts")


async def transact(
    conn: AsyncConnection,
    legs: Sequence[Leg],
    *,
    code: str,
    now_us: int,
    pending_until_us: int | None = None,
    txn_id: str | None = None,
) -> list[Transfer]:
    """Apply every leg or none: posted at once, or (with `pending_until_us`) reserved until posted or
    voided by `resolve`, and voided by `expire` once that time has passed. `txn_id` names the
    transaction, for a caller that wrote it down before (a new one otherwise)."""
    check_legs(legs)
    known = await _accounts_of(conn, {a for leg in legs for a in (leg.debit, leg.credit)})
    for n, leg in enumerate(legs):
        if known[leg.debit].unit != known[leg.credit].unit:
            raise Refusal(
                Reason.UNIT_MISMATCH,
                f"leg {n} moves {known[leg.debit].unit} into an account of {known[leg.credit].unit}:"
                " a leg stays in one unit",
                field=f"legs[{n}]",
            )
    pending = pending_until_us is not None
    txn_id = txn_id or new_id("txn")
    made = [
        Transfer(
            new_id("trf"),
            txn_id,
            n,
            leg.debit,
            leg.credit,
            known[leg.debit].unit,
            leg.amount,
            Kind.PENDING if pending else Kind.POSTED,
            None,
            pending_until_us,
            code,
            now_us,
            rule_version=leg.rule_version,
        )
        for n, leg in enumerate(legs)
    ]
    await conn.execute(_INSERT_TRANSFERS, [_row(t) for t in made])
    await _move(conn, known, legs, pending=pending)
    return made


async def resolve(conn: AsyncConnection, txn_id: str, *, post: bool, now_us: int) -> Resolution:
    """Post or void every leg of a pending transaction, exactly once. Asking again for what was done
    gets that resolution back (`now` False); asking for the other is refused TRANSFER_RESOLVED. A
    post at or after the timeout voids the transaction instead (`expired`): the void is kept, so the
    caller commits and then tells its client TRANSFER_EXPIRED."""
    legs, done = await _legs_and_resolution(conn, txn_id)
    if not legs:
        raise Refusal(Reason.TRANSFER_UNKNOWN, f"no pending transaction {txn_id}", txn_id=txn_id)
    wanted = Kind.POST if post else Kind.VOID
    if done is not None:
        if done.kind is wanted:
            return done
        raise Refusal(
            Reason.TRANSFER_RESOLVED,
            f"transaction {txn_id} was already {'posted' if done.kind is Kind.POST else 'voided'}",
            txn_id=txn_id,
            resolution=done.kind.value,
        )
    if post and past_timeout(legs[0].timeout_us, now_us):
        await _apply_resolution(conn, legs, Kind.VOID, now_us)
        return Resolution(txn_id, Kind.VOID, now_us, True, expired=True)
    await _apply_resolution(conn, legs, wanted, now_us)
    return Resolution(txn_id, wanted, now_us, True)


def past_timeout(timeout_us: int | None, now_us: int) -> bool:
    """Whether a pending transaction with this timeout can no longer be posted (a post voids it)."""
    return timeout_us is not None and now_us >= timeout_us


async def expired(conn: AsyncConnection, now_us: int, limit: int = 100) -> list[str]:
    """Pending transactions past their timeout and not yet resolved, oldest first."""
    resolving = transfers.alias("resolving")
    rows = await conn.execute(
        select(transfers.c.txn_id)
        .where(
            transfers.c.kind == Kind.PENDING.value,
            transfers.c.leg == 0,
            transfers.c.timeout_us <= now_us,
            ~exists().where(resolving.c.pending_id == transfers.c.transfer_id),
        )
        .order_by(transfers.c.timeout_us)
        .limit(limit)
    )
    return [r.txn_id for r in rows]


async def balances(conn: AsyncConnection, account_ids: Iterable[str]) -> dict[str, Balance]:
    rows = await conn.execute(select(accounts).where(accounts.c.account_id.in_(list(account_ids))))
    return {
        r.account_id: Balance(
            r.account_id,
            r.unit,
            r.owner,
            r.purpose,
            bool(r.guarded),
            r.debits_pending,
            r.debits_posted,
            r.credits_pending,
            r.credits_posted,
        )
        for r in rows
    }


async def history(
    conn: AsyncConnection, account_id: str, limit: int, after: tuple[int, str] | None = None
) -> list[Transfer]:
    """The transfers on one account in the order they were written, after the (seq, transfer_id) of
    the last seen."""
    query = select(transfers).where(
        or_(transfers.c.debit_account == account_id, transfers.c.credit_account == account_id)
    )
    if after is not None:
        query = query.where(transfers.c.seq > after[0])
    rows = await conn.execute(query.order_by(transfers.c.seq).limit(limit))
    return [_transfer(r) for r in rows]


# -- inside ------------------------------------------------------------------------------------------


# The hot statements, built once: building a statement costs more CPU than the database spends on it.
_ACCOUNTS = select(
    accounts.c.account_id,
    accounts.c.unit,
    accounts.c.guarded,
    accounts.c.debits_pending,
    accounts.c.debits_posted,
    accounts.c.credits_posted,
).where(accounts.c.account_id.in_(bindparam("ids", expanding=True)))
_INSERT_TRANSFERS = insert(transfers)
# A transaction's legs, and the legs of its resolution ("<txn>:r") if it has one, in one read.
_LEGS_AND_RESOLUTION = select(transfers).where(
    or_(transfers.c.txn_id == bindparam("txn"), transfers.c.txn_id == bindparam("resolution"))
)
_RESOLVE_TOTALS = (
    update(accounts)
    .where(accounts.c.account_id == bindparam("a"))
    .values(
        debits_pending=accounts.c.debits_pending - bindparam("d"),
        debits_posted=accounts.c.debits_posted + bindparam("dp"),
        credits_pending=accounts.c.credits_pending - bindparam("c"),
        credits_posted=accounts.c.credits_posted + bindparam("cp"),
    )
)
# No guard in the WHERE: the not_overdrawn CHECK refuses an overdraft of a guarded account on the
# row as it is when the update lands (after any concurrent writer), so the updates of a transaction
# can go to the database together, in one round trip, and its hot rows are held for less time.
_MOVE = {
    pending: update(accounts)
    .where(accounts.c.account_id == bindparam("a"))
    .values(
        {
            (accounts.c.debits_pending if pending else accounts.c.debits_posted): (
                (accounts.c.debits_pending if pending else accounts.c.debits_posted) + bindparam("d")
            ),
            (accounts.c.credits_pending if pending else accounts.c.credits_posted): (
                (accounts.c.credits_pending if pending else accounts.c.credits_posted) + bindparam("c")
            ),
        }
    )
    for pending in (False, True)
}
_OVERDRAWN = "not_overdrawn"  # the CHECK constraint's name, in the database's error


@dataclass(frozen=True, slots=True)
class _Seen:
    """An account as read before the transaction's updates: its unit, and enough to name the one
    that cannot pay should the database refuse an overdraft."""

    unit: str
    guarded: bool
    available: int


async def _accounts_of(conn: AsyncConnection, account_ids: set[str]) -> dict[str, _Seen]:
    rows = await conn.execute(_ACCOUNTS, {"ids": sorted(account_ids)})
    found = {
        r.account_id: _Seen(r.unit, bool(r.guarded), r.credits_posted - r.debits_posted - r.debits_pending)
        for r in rows
    }
    missing = sorted(account_ids - set(found))
    if missing:
        raise Refusal(Reason.ACCOUNT_UNKNOWN, f"no account {missing[0]}", account_id=missing[0])
    return found


async def _move(conn: AsyncConnection, known: dict[str, _Seen], legs: Sequence[Leg], *, pending: bool) -> None:
    """Add a transaction's debits and credits to its accounts, in account-id order, in one round trip;
    an overdraft of a guarded account (pending credits do not count until posted) is refused."""
    debits: defaultdict[str, int] = defaultdict(int)
    credits: defaultdict[str, int] = defaultdict(int)
    for leg in legs:
        debits[leg.debit] += leg.amount
        credits[leg.credit] += leg.amount
    try:
        await conn.execute(_MOVE[pending], [{"a": a, "d": debits[a], "c": credits[a]} for a in sorted(known)])
    except IntegrityError as exc:
        if _OVERDRAWN not in str(exc.orig):
            raise
        short = _short(known, debits, {} if pending else credits)
        raise Refusal(
            Reason.INSUFFICIENT_BALANCE,
            f"account {short} holds too little for this transaction",
            account_id=short,
        ) from None


def _short(known: dict[str, _Seen], debits: dict[str, int], credits: dict[str, int]) -> str:
    """The guarded account the refused transaction overdraws, by what was read before it (or, had a
    concurrent writer spent it since, the first guarded account it debits)."""
    debited = [a for a in sorted(debits) if known[a].guarded and debits[a]]
    for account in debited:
        if known[account].available + credits.get(account, 0) < debits[account]:
            return account
    return (debited or sorted(known))[0]


async def _legs_and_resolution(conn: AsyncConnection, txn_id: str) -> tuple[list[Transfer], Resolution | None]:
    """A pending transaction's legs in order, and what resolved it, if anything has."""
    resolution_id = f"{txn_id}:r"
    rows = (await conn.execute(_LEGS_AND_RESOLUTION, {"txn": txn_id, "resolution": resolution_id})).all()
    legs = sorted((_transfer(r) for r in rows if r.txn_id == txn_id and r.kind == Kind.PENDING.value), key=_leg)
    done = next((r for r in rows if r.txn_id == resolution_id and r.leg == 0), None)
    return legs, None if done is None else Resolution(txn_id, Kind(done.kind), done.created_us, False)


def _leg(t: Transfer) -> int:
    return t.leg


async def _apply_resolution(conn: AsyncConnection, legs: Sequence[Transfer], kind: Kind, now_us: int) -> None:
    """The resolving transfers first (their unique pending_id stops a second resolver, which then
    rolls back), then the accounts in one round trip: pending totals released, and posted ones
    raised by a post."""
    made = [
        Transfer(
            new_id("trf"),
            f"{leg.txn_id}:r",
            leg.leg,
            leg.debit_account,
            leg.credit_account,
            leg.unit,
            leg.amount,
            kind,
            leg.transfer_id,
            None,
            leg.code,
            now_us,
            rule_version=leg.rule_version,
        )
        for leg in legs
    ]
    await conn.execute(_INSERT_TRANSFERS, [_row(t) for t in made])
    debits: defaultdict[str, int] = defaultdict(int)
    credits: defaultdict[str, int] = defaultdict(int)
    for leg in legs:
        debits[leg.debit_account] += leg.amount
        credits[leg.credit_account] += leg.amount
    posting = int(kind is Kind.POST)
    totals = [
        {"a": a, "d": debits[a], "dp": debits[a] * posting, "c": credits[a], "cp": credits[a] * posting}
        for a in sorted(set(debits) | set(credits))
    ]
    await conn.execute(_RESOLVE_TOTALS, totals)


def _row(t: Transfer) -> dict[str, object]:
    return {  # seq is the database's to give
        "transfer_id": t.transfer_id,
        "txn_id": t.txn_id,
        "leg": t.leg,
        "debit_account": t.debit_account,
        "credit_account": t.credit_account,
        "unit": t.unit,
        "amount": t.amount,
        "kind": t.kind.value,
        "pending_id": t.pending_id,
        "timeout_us": t.timeout_us,
        "code": t.code,
        "created_us": t.created_us,
        "rule_version": t.rule_version,
    }


def _transfer(r: Row[Any]) -> Transfer:
    return Transfer(
        r.transfer_id,
        r.txn_id,
        r.leg,
        r.debit_account,
        r.credit_account,
        r.unit,
        r.amount,
        Kind(r.kind),
        r.pending_id,
        r.timeout_us,
        r.code,
        r.created_us,
        r.seq,
        r.rule_version,
    )
