"""The one exactly-once (core.once): a request's first answer is kept with its change and given
again to a replay; another request under the same key is refused; twins racing apply once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from clearpoint.platform.agents.tables import scan_rejections
from clearpoint.platform.app import Platform
from clearpoint.platform.core import once
from clearpoint.platform.core.clock import ManualClock
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.core.once import RequestKey, check_request_id, run_once
from clearpoint.platform.core.tables import first_answers
from sqlalchemy import func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import MASTER_KEY


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    platform = await Platform.open(database_url, master_key=MASTER_KEY)  # migrated
    yield platform.db
    await platform.close()


class Effect:
    """Work that leaves a row behind (so a count tells how often it was applied) and answers a number."""

    def __init__(self, marker: str, refuse: bool = False) -> None:
        self.marker, self.refuse, self.calls = marker, refuse, 0

    async def __call__(self, conn: AsyncConnection) -> int:
        self.calls += 1
        await conn.execute(
            insert(scan_rejections).values(
                agent_id=self.marker, sequence=self.calls, reason="X", detail="effect", received_us=0
            )
        )
        if self.refuse:
            raise Refusal(Reason.STOCK_EXHAUSTED, "nothing left")
        return 1000 + self.calls

    async def applied(self, db: Database) -> int:
        async with db.read() as conn:
            count = await conn.scalar(select(func.count()).where(scan_rejections.c.agent_id == self.marker))
        return int(count or 0)


def _key() -> RequestKey:
    return RequestKey("ptn_" + secrets.token_hex(6), "Test", secrets.token_hex(8))


def _codec() -> tuple[Callable[[int], bytes], Callable[[bytes], int]]:
    return (lambda n: str(n).encode()), (lambda b: int(b.decode()))


async def test_a_replay_gets_the_first_answer_and_changes_nothing(db: Database) -> None:
    clock, key, effect = ManualClock(), _key(), Effect(secrets.token_hex(4))
    encode, decode = _codec()
    first = await run_once(db, clock, key, b"same fields", effect, encode, decode)
    again = await run_once(db, clock, key, b"same fields", effect, encode, decode)
    assert first == again == 1001 and effect.calls == 1 and await effect.applied(db) == 1


async def test_another_request_under_the_same_key_is_refused(db: Database) -> None:
    clock, key, effect = ManualClock(), _key(), Effect(secrets.token_hex(4))
    encode, decode = _codec()
    await run_once(db, clock, key, b"fields", effect, encode, decode)
    with pytest.raises(Refusal) as refused:
        await run_once(db, clock, key, b"other fields", effect, encode, decode)
    assert refused.value.reason is Reason.REQUEST_ID_REUSED
    assert refused.value.message == "this request_id was already used with different fields"
    custom = Refusal(Reason.ENROLMENT_TOKEN_INVALID, "spent")
    with pytest.raises(Refusal) as clashed:
        await run_once(db, clock, key, b"other", effect, encode, decode, clash=lambda: custom)
    assert clashed.value is custom and await effect.applied(db) == 1


async def test_a_refusal_undoes_the_work_and_is_itself_the_answer(db: Database) -> None:
    clock, key, effect = ManualClock(), _key(), Effect(secrets.token_hex(4), refuse=True)
    encode, decode = _codec()
    with pytest.raises(Refusal) as first:
        await run_once(db, clock, key, b"f", effect, encode, decode)
    with pytest.raises(Refusal) as again:
        await run_once(db, clock, key, b"f", effect, encode, decode)
    assert first.value.reason is again.value.reason is Reason.STOCK_EXHAUSTED
    assert again.value.replayed and not first.value.replayed
    # A replayed refusal says when it was first given (a scan's answer_time is that moment).
    clock.advance(60)
    with pytest.raises(Refusal) as later:
        await run_once(db, clock, key, b"f", effect, encode, decode)
    assert later.value.answered_us == again.value.answered_us == clock() - 60_000_000
    assert effect.calls == 1 and await effect.applied(db) == 0


async def test_a_refusal_not_kept_leaves_the_request_open(db: Database) -> None:
    clock, key, effect = ManualClock(), _key(), Effect(secrets.token_hex(4), refuse=True)
    encode, decode = _codec()
    for _ in range(2):
        with pytest.raises(Refusal):
            await run_once(db, clock, key, b"f", effect, encode, decode, keep_refusals=False)
    effect.refuse = False
    assert await run_once(db, clock, key, b"f", effect, encode, decode) == 1003


async def test_twins_racing_apply_once_and_share_the_answer(db: Database) -> None:
    clock, key, effect = ManualClock(), _key(), Effect(secrets.token_hex(4))
    encode, decode = _codec()
    answers = await asyncio.gather(*(run_once(db, clock, key, b"f", effect, encode, decode) for _ in range(8)))
    assert len(set(answers)) == 1 and await effect.applied(db) == 1


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "tab\t", "é"])
def test_request_ids_are_printable_ascii(bad: str) -> None:
    with pytest.raises(Refusal) as refused:
        check_request_id(bad)
    assert refused.value.reason is Reason.FIELD_INVALID and refused.value.metadata == {"field": "request_id"}
    assert refused.value.message == "request_id must be 1 to 128 printable ASCII characters without spaces"


async def test_a_stored_refusal_keeps_no_body(db: Database) -> None:
    """A refusal's row holds its reason and message; its response column is empty (a replay builds
    the refusal from the reason, never from a body)."""
    clock, key, effect = ManualClock(), _key(), Effect(secrets.token_hex(4), refuse=True)
    encode, decode = _codec()
    with pytest.raises(Refusal):
        await run_once(db, clock, key, b"f", effect, encode, decode)
    async with db.read() as conn:
        stored = await conn.scalar(select(first_answers.c.response).where(first_answers.c.request_id == key.request_id))
    assert stored == b""


async def test_work_that_breaks_a_constraint_is_tried_three_times_then_raises(db: Database) -> None:
    """An IntegrityError is retried (a twin's answer is found on the next round); one that is not a
    twin's comes back after the third try."""
    clock, key = ManualClock(), _key()
    encode, decode = _codec()
    tries = 0

    async def clashing(conn: AsyncConnection) -> int:
        nonlocal tries
        tries += 1
        raise IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed"))

    with pytest.raises(IntegrityError):
        await run_once(db, clock, key, b"f", clashing, encode, decode)
    assert tries == 3


async def test_a_twin_that_answers_while_a_refusal_is_being_kept_wins(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused work, and before its refusal is recorded a twin's success is: the refusal is dropped
    and the twin's answer replayed."""
    clock, key, effect = ManualClock(), _key(), Effect(secrets.token_hex(4), refuse=True)
    encode, decode = _codec()
    real_record = once.record

    async def twin_first(
        db_: Database, conn: AsyncConnection, key_: RequestKey, fp: bytes, now: int, **kw: Any
    ) -> bool:
        await conn.execute(first_answers.insert().values(once.row(key_, fp, now, body=encode(4242))))
        return await real_record(db_, conn, key_, fp, now, **kw)

    monkeypatch.setattr(once, "record", twin_first)
    assert await run_once(db, clock, key, b"f", effect, encode, decode) == 4242


async def test_a_request_counts_as_answered_only_under_its_whole_key(db: Database) -> None:
    """The guard the claim statements put in their WHERE: principal, method and request id all match."""
    clock, key, effect = ManualClock(), _key(), Effect(secrets.token_hex(4))
    encode, decode = _codec()
    await run_once(db, clock, key, b"f", effect, encode, decode)
    asked = [
        ((key.principal_id, key.method, key.request_id), True),
        (("ptn_000000000000", key.method, key.request_id), False),
        ((key.principal_id, "Other", key.request_id), False),
        ((key.principal_id, key.method, "another-id"), False),
    ]
    async with db.read() as conn:
        for (principal, method, request_id), expected in asked:
            found = await conn.scalar(select(once.answered(literal(principal), literal(method), literal(request_id))))
            assert bool(found) is expected, (principal, method, request_id)
