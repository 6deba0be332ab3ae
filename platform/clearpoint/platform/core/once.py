"""Exactly-once for mutating requests: the first answer to a request is kept and given again.

A request is named by a `RequestKey` (whose request, to which method, under which request id) and
fingerprinted by its caller (SHA-256 of its fields). Its first answer, either an answer body that
the caller encodes and the core never reads, or a refusal, is written in the same transaction or
statement as the change it describes, so the two never disagree. A replay with the same fingerprint
gets the stored answer and changes nothing; a different request under the same key is refused
(REQUEST_ID_REUSED, unless the caller names another refusal for such a clash). This is the one
way every capability keeps a request from being applied twice: `run_once` for ordinary calls, and
`answered` and `row` for statements that apply many requests at once.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from clearpoint.platform.core.clock import Clock
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.core.tables import first_answers
from sqlalchemy import ColumnElement, bindparam, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")


def check_request_id(request_id: str) -> None:
    if not _REQUEST_ID.fullmatch(request_id):
        raise field_invalid("request_id", "request_id must be 1 to 128 printable ASCII characters without spaces")


def reused() -> Refusal:
    return Refusal(Reason.REQUEST_ID_REUSED, "this request_id was already used with different fields")


@dataclass(frozen=True, slots=True)
class RequestKey:
    principal_id: str
    method: str
    request_id: str


@dataclass(frozen=True, slots=True)
class FirstAnswer:
    fingerprint: bytes
    body: bytes
    refusal: Refusal | None
    answered_us: int

    def replay(self, fingerprint: bytes, clash: Callable[[], Refusal] = reused) -> bytes:
        """The stored answer's body, or its refusal raised; another request under the same key is refused."""
        if self.fingerprint != fingerprint:
            raise clash()
        if self.refusal is not None:
            self.refusal.answered_us = self.answered_us
            self.refusal.replayed = True
            raise self.refusal
        return self.body


def _first_answer(row: Any) -> FirstAnswer:
    refusal = Refusal.from_json(row.refusal) if row.refusal is not None else None
    return FirstAnswer(bytes(row.request_sha256), bytes(row.response), refusal, row.created_us)


_COLUMNS = (
    first_answers.c.principal_id,
    first_answers.c.method,
    first_answers.c.request_id,
    first_answers.c.request_sha256,
    first_answers.c.response,
    first_answers.c.refusal,
    first_answers.c.created_us,
)
_LOOKUP = select(*_COLUMNS).where(
    first_answers.c.principal_id == bindparam("principal_id"),
    first_answers.c.method == bindparam("method"),
    first_answers.c.request_id == bindparam("request_id"),
)


async def lookup(conn: AsyncConnection, key: RequestKey) -> FirstAnswer | None:
    row = (
        await conn.execute(
            _LOOKUP, {"principal_id": key.principal_id, "method": key.method, "request_id": key.request_id}
        )
    ).first()
    return None if row is None else _first_answer(row)


def answered(principal_id: Any, method: Any, request_id: Any) -> ColumnElement[bool]:
    """SQL: this request has a first answer (a statement that applies requests skips those)."""
    return (
        exists()
        .where(
            first_answers.c.principal_id == principal_id,
            first_answers.c.method == method,
            first_answers.c.request_id == request_id,
        )
        .correlate_except(first_answers)
    )


def row(
    key: RequestKey, fingerprint: bytes, now_us: int, *, body: bytes = b"", refusal: Refusal | None = None
) -> dict[str, Any]:
    """A first answer as a row of the table, for statements that write it alongside their change."""
    return {
        "principal_id": key.principal_id,
        "method": key.method,
        "request_id": key.request_id,
        "request_sha256": fingerprint,
        "response": body,
        "refusal": refusal.to_json() if refusal is not None else None,
        "created_us": now_us,
    }


async def record_many(db: Database, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Store first answers; for each, whether it was stored (False: this key had one already)."""
    if not rows:
        return []
    statement = (
        db.insert(first_answers)
        .on_conflict_do_nothing()
        .returning(first_answers.c.principal_id, first_answers.c.method, first_answers.c.request_id)
    )
    stored = {tuple(r) for r in await conn.execute(statement, list(rows))}
    return [(r["principal_id"], r["method"], r["request_id"]) in stored for r in rows]


async def record(
    db: Database,
    conn: AsyncConnection,
    key: RequestKey,
    fingerprint: bytes,
    now_us: int,
    *,
    refusal: Refusal,
) -> bool:
    """Store a refusal as a request's first answer (an answer with a body is written with its change,
    by `run_once` or the claim statement); False if this key had one already (a concurrent twin
    answered first)."""
    (stored,) = await record_many(db, conn, [row(key, fingerprint, now_us, refusal=refusal)])
    return stored


async def run_once(
    db: Database,
    clock: Clock,
    key: RequestKey,
    fingerprint: bytes,
    work: Callable[[AsyncConnection], Awaitable[T]],
    encode: Callable[[T], bytes],
    decode: Callable[[bytes], T],
    *,
    clash: Callable[[], Refusal] = reused,
    keep_refusals: bool = True,
) -> T:
    """Run `work` in one write transaction, with its answer stored, unless this request was answered before.

    A refusal from `work` undoes what it wrote and (with `keep_refusals`) is itself stored as the
    answer, so a replay is refused the same way. A concurrent twin that commits first wins; this call
    then replays its answer. `clash` is the refusal for another request under the same key.
    """
    check_request_id(key.request_id)
    for attempt in range(3):
        try:
            async with db.write() as conn:
                stored = await lookup(conn, key)
                if stored is not None:
                    return decode(stored.replay(fingerprint, clash))
                try:
                    result = await work(conn)
                except Refusal as refusal:
                    raise _WorkRefused(refusal) from None  # leaves the block, so the work is rolled back
                await conn.execute(first_answers.insert().values(row(key, fingerprint, clock(), body=encode(result))))
                return result
        except _WorkRefused as refused:
            if not keep_refusals:
                raise refused.refusal from None
            async with db.write() as conn:
                if not await record(db, conn, key, fingerprint, clock(), refusal=refused.refusal):
                    continue  # a concurrent twin answered first: replay its answer
            raise refused.refusal from None
        except IntegrityError:
            if attempt == 2:
                raise  # not a twin's answer (that is found on the next round): the work broke a constraint
    raise AssertionError("unreachable")


class _WorkRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
