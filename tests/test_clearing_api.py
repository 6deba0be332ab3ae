"""ClearingService over real gRPC: a partner gets, lists and watches its own statements only (another
channel's looks like one that does not exist), verifies each with the platform's statement key,
and garbage input is refused with its reason."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from clearpoint.formats import statements as form
from clearpoint.platform.core.clock import ManualClock
from clearpoint.v1 import clearing_pb2 as C

from tests.clearing_helpers import Books, at, open_books
from tests.conftest import start_platform
from tests.helpers import Client, RunningPlatform, refusal_of
from tests.processes import CLI


@pytest.fixture
async def cleared(own_database_url: str) -> AsyncIterator[tuple[Books, RunningPlatform]]:
    """Period 1 closed (09:00 to 10:00 on 1 December 2026) and a platform serving the database."""
    books = await open_books(own_database_url)
    books.clock.now_us = at(9, 31)
    await books.exchange(books.a, books.b, 1000, True, True)
    books.clock.now_us = at(10, 0, 30)
    await books.clearing.run()
    running = await start_platform(own_database_url, ManualClock(at(10, 0, 30)))
    yield books, running
    await running.close()
    await books.db.dispose()


def as_partner(books: Books, running: RunningPlatform, partner_id: str) -> Client:
    return running.client(books.keys[partner_id])


async def test_a_partner_reads_its_own_statements_and_verifies_them(
    cleared: tuple[Books, RunningPlatform],
) -> None:
    books, running = cleared
    alpha = as_partner(books, running, books.a.partner_id)
    key = await alpha.clearing.GetStatementKey(C.GetStatementKeyRequest(), metadata=alpha.metadata)
    assert len(key.public_key) == 32 and key.key_id == form.key_id(key.public_key)

    listed = await alpha.clearing.ListStatements(C.ListStatementsRequest(), metadata=alpha.metadata)
    (mine,) = listed.statements
    assert mine.channel_id == books.a.partner_id and mine.period_number == 1 and not listed.next_page_token
    assert mine.period_start.ToMicroseconds() == at(9, 0) and mine.period_end.ToMicroseconds() == at(10, 0)
    content = form.verify(mine.content, mine.signature, key.public_key)
    assert mine.content_sha256 == form.content_hash(mine.content) and mine.key_id == key.key_id
    assert [(t.currency, t.owed_by_channel, t.net_to_channel) for t in mine.totals] == [("EUR", 500, -500)]
    assert content["totals"] == [
        {"currency": "EUR", "owed_by_channel": "500", "owed_to_channel": "0", "net_to_channel": "-500"}
    ]
    got = await alpha.clearing.GetStatement(
        C.GetStatementRequest(statement_id=mine.statement_id), metadata=alpha.metadata
    )
    assert got.statement == mine

    # Another channel's statement is, to Alpha, a statement that does not exist.
    beta_list = await running.operator().clearing.ListStatements(
        C.ListStatementsRequest(channel_id=books.b.partner_id), metadata=running.operator().metadata
    )
    (betas,) = beta_list.statements
    for statement_id in (betas.statement_id, "stm_0000000000000000", "", "x" * 300):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await alpha.clearing.GetStatement(C.GetStatementRequest(statement_id=statement_id), metadata=alpha.metadata)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert refusal_of(err.value).reason == "STATEMENT_UNKNOWN"
    # Naming another channel in a list gets the caller's own.
    named = await alpha.clearing.ListStatements(
        C.ListStatementsRequest(channel_id=books.b.partner_id), metadata=alpha.metadata
    )
    assert [s.channel_id for s in named.statements] == [books.a.partner_id]


async def test_an_operator_pages_through_every_channels_statements(cleared: tuple[Books, RunningPlatform]) -> None:
    books, running = cleared
    books.clock.now_us = at(12, 0, 30)
    await books.clearing.run()  # periods 2 and 3: nine statements in all
    op = running.operator()
    seen: list[tuple[int, str]] = []
    token = ""
    while True:
        page = await op.clearing.ListStatements(
            C.ListStatementsRequest(page_size=2, page_token=token), metadata=op.metadata
        )
        seen += [(s.period_number, s.channel_id) for s in page.statements]
        token = page.next_page_token
        if not token:
            break
    channels = sorted((books.a.partner_id, books.b.partner_id, books.c.partner_id))
    assert seen == [(n, c) for n in (3, 2, 1) for c in channels]
    for bad in (C.ListStatementsRequest(page_token="garbage"), C.ListStatementsRequest(page_size=-1)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await op.clearing.ListStatements(bad, metadata=op.metadata)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A token is bound to its query: Alpha cannot continue the operator's listing.
    first = await op.clearing.ListStatements(C.ListStatementsRequest(page_size=1), metadata=op.metadata)
    alpha = as_partner(books, running, books.a.partner_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await alpha.clearing.ListStatements(
            C.ListStatementsRequest(page_token=first.next_page_token), metadata=alpha.metadata
        )
    assert refusal_of(err.value).reason == "PAGE_TOKEN_INVALID"


async def test_a_watcher_gets_what_it_missed_then_each_period_as_it_closes(
    cleared: tuple[Books, RunningPlatform],
) -> None:
    books, running = cleared
    beta = as_partner(books, running, books.b.partner_id)
    call = beta.clearing.WatchStatements(C.WatchStatementsRequest(after_period_number=0), metadata=beta.metadata)
    first = await asyncio.wait_for(call.read(), 10)
    assert first.statement.period_number == 1 and first.statement.channel_id == books.b.partner_id
    # Period 2 closes in the platform's own process: its watcher hears at once.
    running.server.platform.clock.now_us = at(11, 0, 30)  # type: ignore[attr-defined]
    running.server.platform.clearing.schedule = books.clearing.schedule  # hourly, as the books were cleared
    assert [c.period.number for c in await running.server.platform.clearing.run()] == [2]
    second = await asyncio.wait_for(call.read(), 10)
    assert second.statement.period_number == 2
    assert json.loads(second.statement.content)["channel"]["id"] == books.b.partner_id
    call.cancel()

    later = beta.clearing.WatchStatements(C.WatchStatementsRequest(after_period_number=1), metadata=beta.metadata)
    assert (await asyncio.wait_for(later.read(), 10)).statement.period_number == 2
    later.cancel()

    for request, reason in ((C.WatchStatementsRequest(after_period_number=-1), "FIELD_INVALID"),):
        refused = beta.clearing.WatchStatements(request, metadata=beta.metadata)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await refused.read()
        assert refusal_of(err.value).reason == reason
    op = running.operator()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await op.clearing.WatchStatements(C.WatchStatementsRequest(), metadata=op.metadata).read()
    assert refusal_of(err.value).reason == "PERMISSION_DENIED"
    anonymous = running.client("")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await anonymous.clearing.GetStatementKey(C.GetStatementKeyRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def _cli(*argv: str, api_key: str = "", target: str = "") -> tuple[int, str, str]:
    """`clearpoint ...` in a child process (the platform answers on this test's event loop meanwhile)."""
    env = dict(os.environ, CLEARPOINT_API_KEY=api_key, CLEARPOINT_PLATFORM=target)
    child = await asyncio.create_subprocess_exec(
        *CLI, *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()


async def test_a_partner_exports_a_statement_as_csv_and_json_and_verifies_it_later(
    cleared: tuple[Books, RunningPlatform], tmp_path: Path
) -> None:
    books, running = cleared
    key, target = books.keys[books.a.partner_id], running.target
    code, out, _ = await _cli("statements", "list", "-o", "json", api_key=key, target=target)
    assert code == 0
    (listed,) = json.loads(out)
    statement_id = listed["statement_id"]
    assert listed["net_to_channel"] == {"EUR": -500}

    code, out, err = await _cli("statements", "export", statement_id, "--format", "csv", api_key=key, target=target)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["row"], r["direction"], r["points"], r["amount"], r["net_to_channel"]) for r in rows] == [
        ("line", "out_of_channel", "1000", "500", ""),
        ("total", "", "", "", "-500"),
    ]
    saved = tmp_path / "statement.json"
    code, _, err = await _cli("statements", "export", statement_id, "--out", str(saved), api_key=key, target=target)
    assert code == 0 and "verified and written" in err
    public_key = running.server.platform.clearing.key.public_key.hex()
    code, out, _ = await _cli("statements", "verify", str(saved), "--public-key", public_key)
    assert code == 0 and f"valid: statement {statement_id}" in out

    # The saved statement altered, or checked under another key: refused, saying why.
    envelope = json.loads(saved.read_text())
    envelope["statement"]["lines"][0]["points"] = "1001"
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(envelope))
    code, _, err = await _cli("statements", "verify", str(altered), "--public-key", public_key)
    assert code == 1 and "the signature does not match" in err
    for bad_key, says in (("00" * 32, "the signature does not match"), ("xyz", "64 hex digits")):
        code, _, err = await _cli("statements", "verify", str(saved), "--public-key", bad_key)
        assert code == 1 and says in err
    (tmp_path / "garbage.json").write_text("[1, 2")
    code, _, err = await _cli("statements", "verify", str(tmp_path / "garbage.json"), "--public-key", public_key)
    assert code == 1 and err.startswith("error:")

    # Another channel's statement, no key, a pinned key that is not the platform's.
    beta = await running.operator().clearing.ListStatements(
        C.ListStatementsRequest(channel_id=books.b.partner_id), metadata=running.operator().metadata
    )
    code, _, err = await _cli("statements", "export", beta.statements[0].statement_id, api_key=key, target=target)
    assert code == 1 and "STATEMENT_UNKNOWN" in err
    code, _, err = await _cli("statements", "export", statement_id, target=target)
    assert code == 2 and "an API key is needed" in err
    code, _, err = await _cli(
        "statements", "export", statement_id, "--public-key", "11" * 32, api_key=key, target=target
    )
    assert code == 1 and "the signature does not match" in err


async def test_an_operator_corrects_a_closed_statement_in_a_later_period(
    cleared: tuple[Books, RunningPlatform],
) -> None:
    books, running = cleared
    op = running.operator()
    alpha = as_partner(books, running, books.a.partner_id)
    (closed,) = (await alpha.clearing.ListStatements(C.ListStatementsRequest(), metadata=alpha.metadata)).statements
    good = C.RecordAdjustmentRequest(
        request_id="fix-1",
        channel_id=books.a.partner_id,
        statement_id=closed.statement_id,
        direction="out_of_channel",
        points=-100,
        rule_version=2,
        reason="100 miles refunded by Alpha",
    )
    refusals = [
        ({"points": 0}, "FIELD_INVALID", "points"),
        ({"points": 10**16}, "FIELD_INVALID", "points"),
        ({"direction": "sideways"}, "FIELD_INVALID", "direction"),
        ({"statement_id": "stm_0000000000000000"}, "STATEMENT_UNKNOWN", "statement_id"),
        ({"channel_id": books.b.partner_id}, "FIELD_INVALID", "channel_id"),
        ({"rule_version": 9}, "FIELD_INVALID", "rule_version"),
        ({"reason": ""}, "FIELD_INVALID", "reason"),
        ({"reason": "nul\x00"}, "FIELD_INVALID", "reason"),
    ]
    for n, (changes, reason, field) in enumerate(refusals):
        bad = C.RecordAdjustmentRequest()
        bad.CopyFrom(good)
        bad.request_id = f"bad-{n}"
        for name, value in changes.items():
            setattr(bad, name, value)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await op.clearing.RecordAdjustment(bad, metadata=op.metadata)
        refused = refusal_of(err.value)
        assert (refused.reason, refused.metadata.get("field")) == (reason, field), changes
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await alpha.clearing.RecordAdjustment(good, metadata=alpha.metadata)
    assert refusal_of(err.value).reason == "PERMISSION_DENIED"

    made = await op.clearing.RecordAdjustment(good, metadata=op.metadata)
    assert made.corrects_period_id == "prd_20261201T100000Z"
    assert await op.clearing.RecordAdjustment(good, metadata=op.metadata) == made  # a replay
    other = C.RecordAdjustmentRequest()
    other.CopyFrom(good)
    other.points = -99
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await op.clearing.RecordAdjustment(other, metadata=op.metadata)
    assert refusal_of(err.value).reason == "REQUEST_ID_REUSED"

    platform = running.server.platform
    platform.clock.now_us = at(11, 0, 30)  # type: ignore[attr-defined]
    platform.clearing.schedule = books.clearing.schedule
    await platform.clearing.run()
    page = await alpha.clearing.ListStatements(C.ListStatementsRequest(page_size=1), metadata=alpha.metadata)
    (second,) = page.statements
    assert second.period_number == 2
    (fix,) = json.loads(second.content)["adjustments"]
    assert (fix["adjustment_id"], fix["corrects"]["statement_id"], fix["amount"]) == (
        made.adjustment_id,
        closed.statement_id,
        "-35",
    )
    assert [(t.owed_by_channel, t.net_to_channel) for t in second.totals] == [(-35, 35)]
