"""PointsService over real gRPC: a member registered, two programmes linked, a quote and an
exchange resolved by each channel from its instruction stream; refusals of every class; and a
race of 32 clients over one member's points on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import grpc
import pytest
from clearpoint.platform.exchange.tables import accounts
from clearpoint.v1 import points_pb2 as P
from google.protobuf import timestamp_pb2
from sqlalchemy import select

from tests.helpers import Client, RunningPlatform, refusal_of, rid


def _rule(**kw: object) -> P.Rule:
    fields: dict[str, object] = dict(
        to_platform="1",
        from_platform="1",
        fee_percent="0",
        min_points=1,
        max_points=1_000_000,
        daily_points=10_000_000,
        price="0.5",
        currency="EUR",
    )
    fields.update(kw)
    return P.Rule(**fields)  # type: ignore[arg-type]


@dataclass
class Scheme:
    alpha: Client
    beta: Client
    alpha_id: str
    beta_id: str
    web: Client  # the platform's own member-facing page: an operator key
    member: str


async def _partner_id(client: Client) -> str:
    from tests.agent_helpers import partner_id_of

    return await partner_id_of(client)


async def _scheme(platform: RunningPlatform) -> Scheme:
    alpha, beta, web = await platform.new_partner(), await platform.new_partner(), platform.operator()
    for client, programme, unit, rule in (
        (alpha, "Alpha Miles", "miles", _rule(to_platform="0.25", fee_percent="1.5")),
        (beta, "Beta Stars", "stars", _rule(from_platform="3.333333")),
    ):
        await client.points.RegisterChannel(
            P.RegisterChannelRequest(request_id=rid(), programme=programme, unit_name=unit), metadata=client.metadata
        )
        await client.points.PublishRule(P.PublishRuleRequest(request_id=rid(), rule=rule), metadata=client.metadata)
    alpha_id, beta_id = await _partner_id(alpha), await _partner_id(beta)
    member = (
        await web.points.RegisterMember(
            P.RegisterMemberRequest(request_id=rid(), display_name="Ada"), metadata=web.metadata
        )
    ).member.member_id
    link = await web.points.LinkAccount(
        P.LinkAccountRequest(request_id=rid(), member_id=member, channel_id=alpha_id, account_ref="A-1001"),
        metadata=web.metadata,
    )
    assert not link.link.confirmed  # the web page's word is not Alpha's
    await alpha.points.ConfirmLink(
        P.ConfirmLinkRequest(request_id=rid(), member_id=member, account_ref="A-1001"), metadata=alpha.metadata
    )
    await web.points.LinkAccount(
        P.LinkAccountRequest(request_id=rid(), member_id=member, channel_id=beta_id, account_ref="B-77"),
        metadata=web.metadata,
    )
    # Beta now sees the member (a link waits for it), and confirms by linking the same account itself.
    own = await beta.points.LinkAccount(
        P.LinkAccountRequest(request_id=rid(), member_id=member, channel_id=beta_id, account_ref="B-77"),
        metadata=beta.metadata,
    )
    assert own.link.confirmed
    return Scheme(alpha, beta, alpha_id, beta_id, web, member)


def _terms(s: Scheme, points: int, from_channel: str | None, to_channel: str | None) -> P.ExchangeTerms:
    return P.ExchangeTerms(
        member_id=s.member, from_channel=from_channel or "", to_channel=to_channel or "", points=points
    )


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


async def _refused(call) -> object:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_a_member_exchanges_points_between_two_programmes(platform: RunningPlatform) -> None:
    s = await _scheme(platform)
    web = s.web
    quoted = await web.points.QuoteExchange(
        P.QuoteExchangeRequest(terms=_terms(s, 1000, s.alpha_id, s.beta_id)), metadata=web.metadata
    )
    f = quoted.figures
    assert (f.value_in, f.fee, f.platform_points, f.points_out, f.residue_out_micro) == ("250", 4, 246, 819, 999_918)
    alpha_watch = s.alpha.points.WatchInstructions(P.WatchInstructionsRequest(), metadata=s.alpha.metadata)
    beta_watch = s.beta.points.WatchInstructions(P.WatchInstructionsRequest(), metadata=s.beta.metadata)
    started = await web.points.StartExchange(
        P.StartExchangeRequest(
            request_id=rid(), terms=_terms(s, 1000, s.alpha_id, s.beta_id), quote_token=quoted.quote_token
        ),
        metadata=web.metadata,
    )
    exchange_id = started.exchange.exchange_id
    assert started.exchange.state == P.EXCHANGE_STATE_PENDING_OUT
    debit = (await asyncio.wait_for(alpha_watch.read(), 5)).instruction
    platform.clock.advance(1)  # each step at its own time, as history is in time order
    assert (debit.exchange_id, debit.kind, debit.account_ref, debit.points) == (
        exchange_id,
        P.INSTRUCTION_KIND_DEBIT_MEMBER,
        "A-1001",
        1000,
    )
    await s.alpha.points.ResolveExchange(
        P.ResolveExchangeRequest(request_id=rid(), exchange_id=exchange_id, accept=True), metadata=s.alpha.metadata
    )
    platform.clock.advance(1)
    credit = (await asyncio.wait_for(beta_watch.read(), 5)).instruction
    assert (credit.kind, credit.account_ref, credit.points) == (P.INSTRUCTION_KIND_CREDIT_MEMBER, "B-77", 819)
    done = await s.beta.points.ResolveExchange(
        P.ResolveExchangeRequest(request_id=rid(), exchange_id=exchange_id, accept=True), metadata=s.beta.metadata
    )
    assert done.exchange.state == P.EXCHANGE_STATE_COMPLETED
    assert done.exchange.figures.value_in == "250" and done.exchange.figures.points_out == 819
    alpha_watch.cancel()
    beta_watch.cancel()
    got = await web.points.GetMember(P.GetMemberRequest(member_id=s.member), metadata=web.metadata)
    assert (got.wallet.posted, got.wallet.available) == (0, 0)
    assert sorted((k.channel_id, k.confirmed) for k in got.links) == sorted([(s.alpha_id, True), (s.beta_id, True)])
    # A channel sees only its own link to the member.
    theirs = await s.beta.points.GetMember(P.GetMemberRequest(member_id=s.member), metadata=s.beta.metadata)
    assert [k.channel_id for k in theirs.links] == [s.beta_id]
    # The wallet's history: 246 in (pending, then posted), 246 out (pending, then posted), paged.
    history = await web.points.ListWalletHistory(
        P.ListWalletHistoryRequest(member_id=s.member, page_size=2), metadata=web.metadata
    )
    rest = await web.points.ListWalletHistory(
        P.ListWalletHistoryRequest(member_id=s.member, page_size=2, page_token=history.next_page_token),
        metadata=web.metadata,
    )
    entries = [(e.amount, e.kind) for e in [*history.entries, *rest.entries]]
    assert entries == [(246, "pending"), (246, "post"), (-246, "pending"), (-246, "post")]
    assert rest.next_page_token == ""


async def test_refusals_over_the_wire(platform: RunningPlatform) -> None:
    s = await _scheme(platform)
    web, alpha = s.web, s.alpha
    start = web.points.StartExchange
    cases = [
        (_terms(s, 0, s.alpha_id, s.beta_id), "FIELD_INVALID"),
        (_terms(s, -5, s.alpha_id, s.beta_id), "FIELD_INVALID"),
        (_terms(s, 2**63 - 1, s.alpha_id, s.beta_id), "FIELD_INVALID"),
        (P.ExchangeTerms(member_id="mbr_0000000000000000", from_channel=s.alpha_id, points=100), "MEMBER_UNKNOWN"),
        (_terms(s, 100, s.alpha_id, "ptn_000000000000"), "CHANNEL_UNKNOWN"),
        (_terms(s, 100, None, None), "FIELD_INVALID"),
    ]
    for terms, reason in cases:
        refused = await _refused(start(P.StartExchangeRequest(request_id=rid(), terms=terms), metadata=web.metadata))
        assert refusal_of(refused).reason == reason, (terms, refused)  # type: ignore[arg-type]
    # A points count beyond 2^63, as a generic client could encode it: the varint reads as negative.
    terms = _terms(s, 0, s.alpha_id, s.beta_id).SerializeToString() + b"\x20" + _varint(2**64 - 5)
    huge = P.StartExchangeRequest(request_id=rid()).SerializeToString() + b"\x12" + _varint(len(terms)) + terms
    call = web.channel.unary_unary("/clearpoint.v1.PointsService/StartExchange")
    refused = await _refused(call(huge, metadata=web.metadata))
    assert refusal_of(refused).reason == "FIELD_INVALID"  # type: ignore[arg-type]
    # A request id reused with other fields.
    request_id = rid()
    await start(
        P.StartExchangeRequest(request_id=request_id, terms=_terms(s, 100, s.alpha_id, None)), metadata=web.metadata
    )
    refused = await _refused(
        start(
            P.StartExchangeRequest(request_id=request_id, terms=_terms(s, 101, s.alpha_id, None)), metadata=web.metadata
        )
    )
    assert refusal_of(refused).reason == "REQUEST_ID_REUSED"  # type: ignore[arg-type]
    # A third partner, no channel of the member's, acting on them; and a rule in the past, a bad decimal.
    stranger = await platform.new_partner()
    refused = await _refused(
        stranger.points.GetMember(P.GetMemberRequest(member_id=s.member), metadata=stranger.metadata)
    )
    assert refusal_of(refused).reason == "MEMBER_UNKNOWN"  # type: ignore[arg-type]
    past = timestamp_pb2.Timestamp(seconds=int(time.time()) - 3600)
    for rule, field in (
        (_rule(effective_time=past), "effective_time"),
        (_rule(to_platform="0.1234567"), "rule.to_platform"),
    ):
        refused = await _refused(
            alpha.points.PublishRule(P.PublishRuleRequest(request_id=rid(), rule=rule), metadata=alpha.metadata)
        )
        assert refusal_of(refused).metadata == {"field": field}  # type: ignore[arg-type]
    # A confirm after a void: refused with its reason.
    started = await start(
        P.StartExchangeRequest(request_id=rid(), terms=_terms(s, 100, s.alpha_id, None)), metadata=web.metadata
    )
    exchange_id = started.exchange.exchange_id
    resolve = alpha.points.ResolveExchange
    await resolve(
        P.ResolveExchangeRequest(request_id=rid(), exchange_id=exchange_id, accept=False), metadata=alpha.metadata
    )
    refused = await _refused(
        resolve(
            P.ResolveExchangeRequest(request_id=rid(), exchange_id=exchange_id, accept=True), metadata=alpha.metadata
        )
    )
    assert refusal_of(refused).reason == "TRANSFER_RESOLVED"  # type: ignore[arg-type]
    # Beta cannot answer for Alpha's side, nor see it.
    refused = await _refused(
        s.beta.points.ResolveExchange(
            P.ResolveExchangeRequest(request_id=rid(), exchange_id=exchange_id, accept=True), metadata=s.beta.metadata
        )
    )
    assert refusal_of(refused).reason == "EXCHANGE_UNKNOWN"  # type: ignore[arg-type]


async def test_32_clients_race_over_one_members_points(pg_url: str) -> None:
    """On PostgreSQL, where row locks are taken concurrently: thirty-two clients at once, each on
    its own connection, move 50 of the member's 989 platform points into Beta, four times each:
    exactly nineteen succeed, the rest are refused INSUFFICIENT_BALANCE, the wallet never goes
    below zero, and every unit's books balance."""
    from tests.conftest import start_platform

    platform = await start_platform(pg_url)
    try:
        await _race(platform)
    finally:
        await platform.close()


async def _race(platform: RunningPlatform) -> None:
    s = await _scheme(platform)
    fill = await s.web.points.StartExchange(
        P.StartExchangeRequest(request_id=rid(), terms=_terms(s, 4020, s.alpha_id, None)), metadata=s.web.metadata
    )
    await s.alpha.points.ResolveExchange(
        P.ResolveExchangeRequest(request_id=rid(), exchange_id=fill.exchange.exchange_id, accept=True),
        metadata=s.alpha.metadata,
    )  # 4020 miles x 0.25 = 1005, less a fee of ceil(15.075) = 16: 989 platform points
    got = await s.web.points.GetMember(P.GetMemberRequest(member_id=s.member), metadata=s.web.metadata)
    wallet = got.wallet.posted
    in_flight = 0
    most_in_flight = 0
    outcomes: list[str] = []

    async def client(n: int) -> None:
        nonlocal in_flight, most_in_flight
        async with grpc.aio.insecure_channel(platform.target) as channel:
            stub = type(s.web.points)(channel)
            for _ in range(4):
                in_flight += 1
                most_in_flight = max(most_in_flight, in_flight)
                try:
                    await stub.StartExchange(
                        P.StartExchangeRequest(request_id=rid(), terms=_terms(s, 50, None, s.beta_id)),
                        metadata=s.web.metadata,
                    )
                    outcomes.append("ok")
                except grpc.aio.AioRpcError as exc:
                    outcomes.append(refusal_of(exc).reason)
                finally:
                    in_flight -= 1

    await asyncio.gather(*(client(n) for n in range(32)))
    assert most_in_flight >= 16, "the clients did not overlap"
    assert wallet == 989 and outcomes.count("ok") == wallet // 50
    assert set(outcomes) == {"ok", "INSUFFICIENT_BALANCE"}, set(outcomes)
    got = await s.web.points.GetMember(P.GetMemberRequest(member_id=s.member), metadata=s.web.metadata)
    assert got.wallet.available == wallet % 50 and got.wallet.posted == wallet
    async with platform.server.platform.db.read() as conn:
        rows = (await conn.execute(select(accounts))).all()
        units = {r.unit for r in rows}
        for unit in units:
            total = sum(r.credits_posted - r.debits_posted for r in rows if r.unit == unit)
            pending = sum(r.credits_pending - r.debits_pending for r in rows if r.unit == unit)
            assert (total, pending) == (0, 0), unit


@pytest.mark.parametrize("comes_back", [True, False], ids=["restarted", "never back"])
async def test_a_channel_process_killed_before_it_answers(platform: RunningPlatform, comes_back: bool) -> None:
    """The channel's process gets the instruction and is killed (SIGKILL) before answering. Restarted,
    it gets the instruction again and the exchange completes; never back, the side is voided at its
    timeout. Either way the exchange ends posted or voided, and the books balance: never half."""
    import signal
    import sys
    from pathlib import Path

    s = await _scheme(platform)
    worker = [sys.executable, str(Path(__file__).with_name("channel_worker.py")), platform.target, s.alpha.api_key]
    started = await s.web.points.StartExchange(
        P.StartExchangeRequest(request_id=rid(), terms=_terms(s, 1000, s.alpha_id, None)), metadata=s.web.metadata
    )
    exchange_id = started.exchange.exchange_id
    first = await asyncio.create_subprocess_exec(*worker, "hang", stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(first.stdout.readline(), 30)  # type: ignore[union-attr]
        assert line.decode().strip() == f"got {exchange_id}"
    finally:
        first.send_signal(signal.SIGKILL)  # as the power going: no cleanup, no answer
        await first.wait()
    if comes_back:
        again = await asyncio.create_subprocess_exec(*worker, "answer", stdout=asyncio.subprocess.PIPE)
        try:
            lines = [await asyncio.wait_for(again.stdout.readline(), 30) for _ in range(2)]  # type: ignore[union-attr]
        finally:
            again.send_signal(signal.SIGKILL)
            await again.wait()
        assert [x.decode().strip() for x in lines] == [f"got {exchange_id}", f"answered {exchange_id}"]
        expected = P.EXCHANGE_STATE_COMPLETED
    else:
        platform.clock.now_us += 301_000_000  # past the side's timeout: the serve process's sweep voids it
        expected = P.EXCHANGE_STATE_FAILED
    for _ in range(100):
        got = (
            await s.web.points.GetExchange(P.GetExchangeRequest(exchange_id=exchange_id), metadata=s.web.metadata)
        ).exchange
        if got.state == expected:
            break
        await asyncio.sleep(0.05)
    assert got.state == expected
    member = await s.web.points.GetMember(P.GetMemberRequest(member_id=s.member), metadata=s.web.metadata)
    assert (member.wallet.posted, member.wallet.incoming) == ((246, 0) if comes_back else (0, 0))
    async with platform.server.platform.db.read() as conn:
        rows = (await conn.execute(select(accounts))).all()
    for unit in {r.unit for r in rows}:
        assert sum(r.credits_posted - r.debits_posted for r in rows if r.unit == unit) == 0, unit
        assert sum(r.credits_pending - r.debits_pending for r in rows if r.unit == unit) == 0, unit
