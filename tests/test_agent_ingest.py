"""The platform's side of agents: enrolment, and signed scans verified, deduplicated and redeemed."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from clearpoint.formats.scan_signatures import stream_proof_message
from clearpoint.platform.agents.tables import agent_scans, scan_rejections
from clearpoint.platform.core.errors import Reason
from clearpoint.v1 import agents_pb2, agents_pb2_grpc, campaigns_pb2, errors_pb2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from tests.agent_helpers import (
    Opener,
    enrol_agent,
    enrol_with,
    enrolment_token,
    open_stream,
    partner_id_of,
    rest_of,
    signed,
    stream_one_by_one,
    stream_scans,
)
from tests.helpers import Client, RunningPlatform, refusal_of, rid

A = agents_pb2


async def _voucher_codes(platform: RunningPlatform, partner: Client, n: int) -> tuple[str, list[str]]:
    campaign = await partner.campaign(platform.clock())
    return campaign.campaign_id, [v.code for v in await partner.issue(campaign.campaign_id, n)]


async def _redeemed(partner: Client, campaign_id: str) -> int:
    got = await partner.campaigns.GetCampaign(
        campaigns_pb2.GetCampaignRequest(campaign_id=campaign_id), metadata=partner.metadata
    )
    return got.progress.redeemed


async def _rejections(platform: RunningPlatform, reason: str, *agent_ids: str) -> int:
    async with platform.server.platform.db.read() as conn:
        return await conn.scalar(
            select(func.count()).where(scan_rejections.c.reason == reason, scan_rejections.c.agent_id.in_(agent_ids))
        )


# -- enrolment -------------------------------------------------------------------------------------


async def test_a_token_enrols_one_agent_once(platform: RunningPlatform, partner: Client) -> None:
    token = await enrolment_token(platform, partner, "store-7")
    key = Ed25519PrivateKey.generate()
    agent = await enrol_with(platform.target, token, key)
    assert agent.agent_id.startswith("agt_") and agent.store_id == "store-7"
    assert agent.partner_id == await partner_id_of(partner) and agent.state == A.AGENT_STATE_ACTIVE
    # A retry by the same key (its answer was lost) gets the same agent back.
    assert (await enrol_with(platform.target, token, key)).agent_id == agent.agent_id
    # Anyone else with the used token is refused.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await enrol_with(platform.target, token, Ed25519PrivateKey.generate())
    assert refusal_of(caught.value).reason == "ENROLMENT_TOKEN_INVALID"


async def test_expired_garbage_and_unproven_enrolments_are_refused(platform: RunningPlatform, partner: Client) -> None:
    token = await enrolment_token(platform, partner, ttl=60)
    platform.clock.advance(61)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await enrol_with(platform.target, token, Ed25519PrivateKey.generate())
    assert refusal_of(caught.value).reason == "ENROLMENT_TOKEN_INVALID"
    fresh = await enrolment_token(platform, partner)
    for bad in ("", "cpe_", fresh[:-1], fresh + "x", "cpe_000000000000_" + "A" * 43, "\x00" * 80):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await enrol_with(platform.target, bad, Ed25519PrivateKey.generate())
        # Text no database can store is refused at the edge, before any token is looked at.
        expected = "FIELD_INVALID" if "\x00" in bad else "ENROLMENT_TOKEN_INVALID"
        assert refusal_of(caught.value).reason == expected, bad
    # A proof signed by another key than the one registered: the caller does not hold the key.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await enrol_with(platform.target, fresh, Ed25519PrivateKey.generate(), proof_key=Ed25519PrivateKey.generate())
    assert refusal_of(caught.value).reason == "SCAN_SIGNATURE_INVALID"
    # The token was not spent by the failed attempts.
    assert (await enrol_with(platform.target, fresh, Ed25519PrivateKey.generate())).agent_id


async def test_only_operators_create_tokens_and_revoke(platform: RunningPlatform, partner: Client) -> None:
    stub = agents_pb2_grpc.AgentServiceStub(partner.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateEnrolmentToken(
            A.CreateEnrolmentTokenRequest(request_id=rid(), partner_id="ptn_000000000000", store_id="s"),
            metadata=partner.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RevokeAgent(A.RevokeAgentRequest(agent_id="agt_0000000000000000"), metadata=partner.metadata)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    op = platform.operator()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await agents_pb2_grpc.AgentServiceStub(op.channel).CreateEnrolmentToken(
            A.CreateEnrolmentTokenRequest(request_id=rid(), partner_id="ptn_000000000000", store_id="s"),
            metadata=op.metadata,
        )
    assert refusal_of(caught.value).reason == "PARTNER_UNKNOWN"


# -- scans -----------------------------------------------------------------------------------------


async def test_scans_are_redeemed_answered_and_recorded(platform: RunningPlatform, partner: Client) -> None:
    campaign_id, codes = await _voucher_codes(platform, partner, 3)
    agent_id, key = await enrol_agent(platform, partner)
    scans = [signed(agent_id, key, i + 1, code.encode(), symbology="]Q1") for i, code in enumerate(codes)]
    scans.append(signed(agent_id, key, 4, b"4006381333931", symbology="]E0"))
    answers = await stream_scans(platform.target, scans, (agent_id, key))
    assert sorted(answers) == [1, 2, 3, 4]
    for seq in (1, 2, 3):
        a = answers[seq]
        assert a.outcome == A.SCAN_OUTCOME_ACCEPTED and a.redemption_id.startswith("rdm_") and not a.replayed
        assert a.claim.campaign_id == campaign_id and a.claim.prize_description == "One free 0.5 l cola"
    assert answers[4].outcome == A.SCAN_OUTCOME_NOT_A_VOUCHER and answers[4].reason == errors_pb2.REASON_NOT_A_VOUCHER
    assert await _redeemed(partner, campaign_id) == 3
    async with platform.server.platform.db.read() as conn:
        rows = (
            await conn.execute(
                select(agent_scans).where(agent_scans.c.agent_id == agent_id).order_by(agent_scans.c.sequence)
            )
        ).all()
    assert [r.outcome for r in rows] == ["accepted"] * 3 + ["not_a_voucher"]
    assert bytes(rows[3].data) == b"4006381333931" and rows[3].symbology == "]E0"


async def test_a_repeated_sequence_gets_the_first_answer_and_is_applied_once(
    platform: RunningPlatform, partner: Client
) -> None:
    campaign_id, codes = await _voucher_codes(platform, partner, 2)
    agent_id, key = await enrol_agent(platform, partner)
    first = signed(agent_id, key, 1, codes[0].encode())
    a1, a2, a3 = await stream_one_by_one(platform.target, [first, first, first], (agent_id, key))
    assert a1.outcome == A.SCAN_OUTCOME_ACCEPTED and not a1.replayed
    for again in (a2, a3):
        assert again.replayed and again.redemption_id == a1.redemption_id and again.outcome == a1.outcome
        assert again.answer_time == a1.answer_time
    # The same number for a different scan (even one correctly signed) is refused, not applied.
    (reused,) = await stream_one_by_one(platform.target, [signed(agent_id, key, 1, codes[1].encode())], (agent_id, key))
    assert reused.outcome == A.SCAN_OUTCOME_REJECTED and reused.reason == errors_pb2.REASON_SEQUENCE_REUSED
    assert await _redeemed(partner, campaign_id) == 1
    assert await _rejections(platform, "SEQUENCE_REUSED", agent_id) == 1


async def test_a_voucher_scanned_twice_is_refused_the_second_time(platform: RunningPlatform, partner: Client) -> None:
    campaign_id, codes = await _voucher_codes(platform, partner, 1)
    agent_id, key = await enrol_agent(platform, partner)
    # Both on the wire at once: the earlier sequence wins, whatever order the work finishes in.
    answers = await stream_scans(
        platform.target, [signed(agent_id, key, seq, codes[0].encode()) for seq in (1, 2, 3)], (agent_id, key)
    )
    assert answers[1].outcome == A.SCAN_OUTCOME_ACCEPTED
    for seq in (2, 3):
        assert answers[seq].outcome == A.SCAN_OUTCOME_REFUSED
        assert answers[seq].reason == errors_pb2.REASON_VOUCHER_ALREADY_REDEEMED
        # The cashier who lost is told where and when it was used.
        assert "at store-1, " in answers[seq].message and " UTC" in answers[seq].message, answers[seq].message
    assert await _redeemed(partner, campaign_id) == 1
    from clearpoint.scanner_agent.console import answer_line
    from clearpoint.scanner_agent.uplink import from_answer

    line = answer_line("till-1", 2, from_answer(answers[2]))
    assert "REFUSED" in line and "at store-1, " in line, line


async def test_forged_unknown_and_revoked_agents_are_refused_with_reasons(
    platform: RunningPlatform, partner: Client
) -> None:
    campaign_id, codes = await _voucher_codes(platform, partner, 4)
    agent_id, key = await enrol_agent(platform, partner)
    other_id, other_key = await enrol_agent(platform, partner)
    forged = signed(agent_id, Ed25519PrivateKey.generate(), 1, codes[0].encode())
    borrowed = signed(agent_id, other_key, 2, codes[1].encode())  # another enrolled agent's key
    tampered = signed(agent_id, key, 3, codes[2].encode())
    tampered.data = codes[3].encode()  # signed for one voucher, carrying another
    truncated = signed(agent_id, key, 4, codes[2].encode())
    truncated.signature = truncated.signature[:40]
    answers = await stream_one_by_one(platform.target, [forged, borrowed, tampered, truncated], (agent_id, key))
    assert [a.reason for a in answers] == [errors_pb2.REASON_SCAN_SIGNATURE_INVALID] * 4
    assert all(a.outcome == A.SCAN_OUTCOME_REJECTED for a in answers)
    # Unproven scans are counted, not stored: anyone could send them.
    assert await _rejections(platform, "SCAN_SIGNATURE_INVALID", agent_id) == 0
    assert platform.server.platform.ingest.unproven[Reason.SCAN_SIGNATURE_INVALID] >= 4
    # Revoked: refused from then on, while what it sent before keeps its first answer.
    sent_before = signed(other_id, other_key, 1, codes[0].encode())
    (before,) = await stream_one_by_one(platform.target, [sent_before], (other_id, other_key))
    assert before.outcome == A.SCAN_OUTCOME_ACCEPTED
    op = platform.operator()
    revoked = await agents_pb2_grpc.AgentServiceStub(op.channel).RevokeAgent(
        A.RevokeAgentRequest(agent_id=other_id), metadata=op.metadata
    )
    assert revoked.agent.state == A.AGENT_STATE_REVOKED
    replay, after = await stream_one_by_one(
        platform.target, [sent_before, signed(other_id, other_key, 2, codes[1].encode())], (other_id, other_key)
    )
    assert replay.replayed and replay.outcome == A.SCAN_OUTCOME_ACCEPTED
    assert after.outcome == A.SCAN_OUTCOME_REJECTED and after.reason == errors_pb2.REASON_AGENT_REVOKED
    assert await _redeemed(partner, campaign_id) == 1


async def test_malformed_scans_are_rejected_and_the_stream_goes_on(platform: RunningPlatform, partner: Client) -> None:
    campaign_id, codes = await _voucher_codes(platform, partner, 1)
    agent_id, key = await enrol_agent(platform, partner)
    oversize = signed(agent_id, key, 1, b"A" * 4096)
    oversize.data = b"A" * 5000
    empty = signed(agent_id, key, 2, b"x")
    empty.data = b""
    zero_seq = signed(agent_id, key, 3, b"x")
    zero_seq.sequence = 0
    nanos = signed(agent_id, key, 4, b"x")
    nanos.scan_time.nanos += 1  # finer than the microseconds the signature covers
    bad_symbology = signed(agent_id, key, 5, b"x")
    bad_symbology.symbology = "Q1"
    good = signed(agent_id, key, 6, codes[0].encode())
    answers = await stream_one_by_one(
        platform.target, [oversize, empty, zero_seq, nanos, bad_symbology, good], (agent_id, key)
    )
    assert [a.reason for a in answers[:5]] == [errors_pb2.REASON_FIELD_INVALID] * 5
    assert answers[5].outcome == A.SCAN_OUTCOME_ACCEPTED
    assert await _redeemed(partner, campaign_id) == 1


async def test_garbage_on_the_stream_ends_it_with_invalid_argument(platform: RunningPlatform) -> None:
    async with grpc.aio.insecure_channel(platform.target) as channel:
        call = channel.stream_stream("/clearpoint.v1.AgentService/StreamScans")()
        await call.write(b"\xff\xff\xff garbage")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in call:
                pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal_of(caught.value).reason == "FIELD_INVALID"


async def test_the_same_scans_on_two_streams_at_once_are_applied_once(
    platform: RunningPlatform, partner: Client
) -> None:
    """An agent that reconnects while its old stream is still being worked on sends its scans twice
    at once: each scan, accepted, refused or not a voucher, has one first answer and is applied once."""
    campaign_id, codes = await _voucher_codes(platform, partner, 10)
    agent_id, key = await enrol_agent(platform, partner)
    scans = [signed(agent_id, key, i + 1, code.encode()) for i, code in enumerate(codes)]
    scans += [signed(agent_id, key, 11 + i, f"400638133393{i}".encode()) for i in range(10)]
    scans += [signed(agent_id, key, 21 + i, codes[i].encode()) for i in range(10)]  # used by then, or not
    first, second = await asyncio.gather(
        stream_scans(platform.target, scans, (agent_id, key)), stream_scans(platform.target, scans, (agent_id, key))
    )
    assert sorted(first) == sorted(second) == list(range(1, 31))
    for seq in range(1, 31):
        a, b = first[seq], second[seq]
        assert (a.outcome, a.reason, a.redemption_id) == (b.outcome, b.reason, b.redemption_id), seq
        assert a.outcome != A.SCAN_OUTCOME_REJECTED, (seq, a.message)
    assert await _redeemed(partner, campaign_id) == 10
    accepted = [first[s] for s in range(1, 31) if first[s].outcome == A.SCAN_OUTCOME_ACCEPTED]
    assert len(accepted) == 10 and len({a.redemption_id for a in accepted}) == 10


# -- several scans a message -----------------------------------------------------------------------


async def _batched(target: str, requests: list[A.StreamScansRequest], agent: Opener) -> list[A.StreamScansResponse]:
    """Every response to `requests` sent on one StreamScans call opened as `agent`, the announcement first."""
    async with grpc.aio.insecure_channel(target) as channel:
        call, announcement = await open_stream(channel, agent)

        async def send() -> None:  # while answers are read: flow control would stall a writer that never reads
            for request in requests:
                await call.write(request)
            await call.done_writing()

        sender = asyncio.create_task(send())
        try:
            return [announcement, *await rest_of(call)]
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)


async def test_several_scans_a_message_are_each_verified_and_answered(
    platform: RunningPlatform, partner: Client
) -> None:
    """A batch is only a way to carry scans: each is checked on its own, so a forged or malformed
    one is rejected while its neighbours are redeemed, and answers come back several a message."""
    campaign_id, codes = await _voucher_codes(platform, partner, 6)
    agent_id, key = await enrol_agent(platform, partner)
    forged = signed(agent_id, Ed25519PrivateKey.generate(), 3, codes[2].encode())
    malformed = signed(agent_id, key, 4, codes[3].encode())
    malformed.symbology = "Q1"
    first = [signed(agent_id, key, 1, codes[0].encode()), signed(agent_id, key, 2, codes[1].encode()), forged]
    second = [malformed, signed(agent_id, key, 5, codes[4].encode()), signed(agent_id, key, 6, codes[0].encode())]
    responses = await _batched(
        platform.target, [A.StreamScansRequest(scans=first), A.StreamScansRequest(scans=second)], (agent_id, key)
    )
    hello, rest = responses[0], responses[1:]
    assert hello.max_in_flight > 0 and hello.max_scans_per_message >= 3 and not hello.answers
    assert all(not r.HasField("answer") and r.answers for r in rest), "a batched stream is answered in `answers`"
    answers = {a.sequence: a for r in rest for a in r.answers}
    assert sorted(answers) == [1, 2, 3, 4, 5, 6]
    assert [answers[s].outcome for s in (1, 2, 5)] == [A.SCAN_OUTCOME_ACCEPTED] * 3
    assert answers[3].reason == errors_pb2.REASON_SCAN_SIGNATURE_INVALID
    assert answers[4].reason == errors_pb2.REASON_FIELD_INVALID
    assert answers[6].reason == errors_pb2.REASON_VOUCHER_ALREADY_REDEEMED  # the same voucher as scan 1
    assert await _redeemed(partner, campaign_id) == 3
    # The whole batch again (a resend after a lost answer): the first answers, nothing applied twice.
    again = await _batched(platform.target, [A.StreamScansRequest(scans=first + second[1:])], (agent_id, key))
    replayed = {a.sequence: a for r in again[1:] for a in r.answers}
    assert replayed[1].replayed and replayed[1].redemption_id == answers[1].redemption_id
    assert replayed[5].replayed and replayed[5].redemption_id == answers[5].redemption_id
    assert await _redeemed(partner, campaign_id) == 3


@pytest.mark.parametrize("shape", ["both fields", "too many", "too many, unsigned"])
async def test_a_request_outside_the_batch_rules_ends_the_stream_with_invalid_argument(
    platform: RunningPlatform, partner: Client, shape: str
) -> None:
    campaign_id, codes = await _voucher_codes(platform, partner, 1)
    agent_id, key = await enrol_agent(platform, partner)
    hello = (await _batched(platform.target, [], (agent_id, key)))[0]
    most = hello.max_scans_per_message
    if shape == "both fields":
        request = A.StreamScansRequest(
            scan=signed(agent_id, key, 1, codes[0].encode()), scans=[signed(agent_id, key, 2, b"4006381333931")]
        )
    elif shape == "too many":
        request = A.StreamScansRequest(scans=[signed(agent_id, key, i + 1, codes[0].encode()) for i in range(most + 1)])
    else:
        request = A.StreamScansRequest(scans=[A.SignedScan() for _ in range(10 * most)])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _batched(platform.target, [request], (agent_id, key))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal_of(caught.value).reason == "FIELD_INVALID"
    assert "scan" in (caught.value.details() or "")
    assert await _redeemed(partner, campaign_id) == 0  # nothing of a refused request is applied


async def test_a_partners_request_id_cannot_collide_with_an_agents_scan(
    platform: RunningPlatform, partner: Client
) -> None:
    """Scans and API calls have request-id spaces of their own: a Redeem whose request id looks like
    a scan's takes nothing from the agent that later sends that scan."""
    campaign_id, codes = await _voucher_codes(platform, partner, 2)
    agent_id, key = await enrol_agent(platform, partner)
    redeemed = await partner.redeem(codes[0], request_id=f"scan:{agent_id}:1")
    assert redeemed.redemption.redemption_id
    (answer,) = await stream_one_by_one(platform.target, [signed(agent_id, key, 1, codes[1].encode())], (agent_id, key))
    assert answer.outcome == A.SCAN_OUTCOME_ACCEPTED, (answer.reason, answer.message)
    assert await _redeemed(partner, campaign_id) == 2


async def test_a_scan_no_database_can_store_is_rejected_alone(platform: RunningPlatform, partner: Client) -> None:
    """A NUL in a signed scanner id (signable, not storable) or in an agent id is rejected for that
    scan only: the same agent's other scans, and another agent's stream at the same time, go on."""
    campaign_id, codes = await _voucher_codes(platform, partner, 6)
    agent_id, key = await enrol_agent(platform, partner)
    other_id, other_key = await enrol_agent(platform, partner)
    poisoned = signed(agent_id, key, 2, codes[1].encode(), scanner_id="till\x00-1")
    mine = [signed(agent_id, key, 1, codes[0].encode()), poisoned, signed(agent_id, key, 3, codes[2].encode())]
    theirs = [signed(other_id, other_key, i + 1, codes[3 + i].encode()) for i in range(2)]
    batched, alone, odd = await asyncio.gather(
        _batched(platform.target, [A.StreamScansRequest(scans=mine)], (agent_id, key)),
        stream_scans(platform.target, theirs, (other_id, other_key)),
        _refused_open(platform.target, "agt_00000000000\x0000", key),
    )
    answers = {a.sequence: a for r in batched[1:] for a in r.answers}
    assert [answers[s].outcome for s in (1, 3)] == [A.SCAN_OUTCOME_ACCEPTED] * 2
    assert answers[2].outcome == A.SCAN_OUTCOME_REJECTED and answers[2].reason == errors_pb2.REASON_FIELD_INVALID
    assert [alone[s].outcome for s in (1, 2)] == [A.SCAN_OUTCOME_ACCEPTED] * 2
    assert odd.code() == grpc.StatusCode.UNAUTHENTICATED  # a stream opened as no agent at all
    assert await _redeemed(partner, campaign_id) == 4


async def test_junk_scans_cost_no_rows_and_a_bounded_log(
    platform: RunningPlatform, partner: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """3,000 scans nobody can vouch for: a thousand on streams that cannot prove an enrolled agent
    (never read: each stream ends at its hello), a thousand forged in an enrolled agent's name and a
    thousand malformed on that agent's own stream (each answered REJECTED). None is written to the
    database, and the log stays a few lines long."""
    agent_id, key = await enrol_agent(platform, partner)
    async with platform.server.platform.db.read() as conn:
        before = await conn.scalar(select(func.count()).select_from(scan_rejections))
    stranger = Ed25519PrivateKey.generate()
    junk = []
    for i in range(2000):
        if i % 2:
            junk.append(signed(agent_id, stranger, i + 1, b"4006381333931"))  # forged in an enrolled agent's name
        else:
            bad = signed(agent_id, key, i + 1, b"x")
            bad.symbology = "??"
            junk.append(bad)
    ingest = platform.server.platform.ingest
    unauthenticated = ingest.unproven[Reason.UNAUTHENTICATED]
    caplog.clear()
    with caplog.at_level("INFO", logger="clearpoint"):
        strangers = []
        for group in range(0, 100, 20):  # 100 streams of 10 scans each, 20 at a time
            strangers += await asyncio.gather(
                *(
                    _refused_open(
                        platform.target,
                        f"agt_{n:016x}",
                        stranger,
                        [
                            A.StreamScansRequest(
                                scans=[signed(f"agt_{n:016x}", stranger, s + 1, b"x") for s in range(10)]
                            )
                        ],
                    )
                    for n in range(group, group + 20)
                )
            )
        responses = await asyncio.wait_for(
            _batched(
                platform.target,
                [A.StreamScansRequest(scans=junk[i : i + 32]) for i in range(0, len(junk), 32)],
                (agent_id, key),
            ),
            120,
        )
    assert {e.code() for e in strangers} == {grpc.StatusCode.UNAUTHENTICATED}
    assert ingest.unproven[Reason.UNAUTHENTICATED] - unauthenticated == 100
    answers = [a for r in responses[1:] for a in r.answers]
    assert len(answers) == len(junk) and {a.outcome for a in answers} == {A.SCAN_OUTCOME_REJECTED}
    async with platform.server.platform.db.read() as conn:
        after = await conn.scalar(select(func.count()).select_from(scan_rejections))
    assert after == before, f"{after - before} rows for junk"
    lines = [r for r in caplog.records if r.name.startswith("clearpoint")]
    assert len(lines) <= 6, [r.getMessage() for r in lines]


# -- opening a stream: the agent proves its key ---------------------------------------------------


async def _refused_open(
    target: str,
    agent_id: str,
    key: Ed25519PrivateKey,
    then: list[A.StreamScansRequest] | None = None,
    *,
    challenge: bytes | None = None,
    first: A.StreamScansRequest | None = None,
) -> grpc.aio.AioRpcError:
    """Open a stream as `agent_id` signing with `key` (over `challenge` instead of the stream's own, or
    sending `first` instead of a hello), send `then`, and return how the stream ended: it must fail."""
    for _ in range(3):
        ended = await _open_once(target, agent_id, key, then, challenge=challenge, first=first)
        # A write racing the platform's end of the stream fails in the client's own gRPC core, which
        # then ends the call INTERNAL itself: the platform's status never reached us. Open again.
        if ended.code() != grpc.StatusCode.INTERNAL or "execute_batch" not in (ended.debug_error_string() or ""):
            return ended
    return ended


async def _open_once(
    target: str,
    agent_id: str,
    key: Ed25519PrivateKey,
    then: list[A.StreamScansRequest] | None,
    *,
    challenge: bytes | None,
    first: A.StreamScansRequest | None,
) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(target) as channel:
        call = agents_pb2_grpc.AgentServiceStub(channel).StreamScans()
        announcement = await call.read()
        if first is None:
            signed_over = announcement.challenge if challenge is None else challenge
            # Built from docs/scan-signatures.md, not by the product's code (which refuses to build bad ones).
            proof = key.sign(b"clearpoint.v1.StreamScans\n" + signed_over + agent_id.encode())
            first = A.StreamScansRequest(hello=A.StreamHello(agent_id=agent_id, signature=proof))
        try:
            for request in [first, *(then or [])]:
                await call.write(request)
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the platform may have ended the stream already
        try:
            responses = await rest_of(call)
        except grpc.aio.AioRpcError as exc:
            return exc
        raise AssertionError(f"a stream that was not proven answered {responses}")


async def test_a_stream_reads_nothing_before_its_agent_proves_its_key(
    platform: RunningPlatform, partner: Client
) -> None:
    """A stream opens with a fresh challenge; one whose first message is not a hello that verifies
    under an enrolled agent's key ends UNAUTHENTICATED, and none of its scans is applied."""
    campaign_id, codes = await _voucher_codes(platform, partner, 1)
    agent_id, key = await enrol_agent(platform, partner)
    scan = A.StreamScansRequest(scan=signed(agent_id, key, 1, codes[0].encode()))
    # A proof seen on another stream: right key, right agent, that stream's challenge.
    async with grpc.aio.insecure_channel(platform.target) as channel:
        seen, announcement = await open_stream(channel, (agent_id, key))
        seen.cancel()
    assert len(announcement.challenge) == 32
    cases = {
        "scans without a hello": dict(first=scan),
        "an empty first message": dict(first=A.StreamScansRequest()),
        "a hello and a scan in one message": dict(
            first=A.StreamScansRequest(hello=A.StreamHello(agent_id=agent_id, signature=b"\x00" * 64), scan=scan.scan)
        ),
        "another key": dict(key=Ed25519PrivateKey.generate()),
        "a replayed proof": dict(challenge=announcement.challenge),
        "a truncated challenge": dict(challenge=announcement.challenge[:31]),
        "an unknown agent": dict(agent_id="agt_00000000000000ff"),
        "not an agent id": dict(agent_id="not an agent"),
        "an oversized agent id": dict(agent_id="agt_" + "0" * 5000),
        "a non-ASCII agent id": dict(agent_id="agt_\u00e9"),
    }
    for name, case in cases.items():
        args = {"agent_id": agent_id, "key": key, **case}
        refused = await _refused_open(
            platform.target,
            str(args.pop("agent_id")),
            args.pop("key"),  # type: ignore[arg-type]
            [scan],
            **args,  # type: ignore[arg-type]
        )
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED, (name, refused)
        assert refusal_of(refused).reason == "UNAUTHENTICATED", name
    assert await _redeemed(partner, campaign_id) == 0
    # A wrong signature length (libsodium would read past a short one) is no proof either.
    for length in (0, 63, 65, 4096):
        first = A.StreamScansRequest(hello=A.StreamHello(agent_id=agent_id, signature=b"\x02" * length))
        refused = await _refused_open(platform.target, agent_id, key, [scan], first=first)
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED, length
    # The honest opener is served.
    (answer,) = await stream_one_by_one(platform.target, [scan.scan], (agent_id, key))
    assert answer.outcome == A.SCAN_OUTCOME_ACCEPTED


async def test_a_stream_that_never_says_hello_is_ended(
    platform: RunningPlatform, partner: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clearpoint.platform.agents import servicer

    monkeypatch.setattr(servicer, "HELLO_SECONDS", 0.3)
    async with grpc.aio.insecure_channel(platform.target) as channel:
        call = agents_pb2_grpc.AgentServiceStub(channel).StreamScans()
        await call.read()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(call.read(), 5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no hello within" in (caught.value.details() or "")


async def test_a_proven_stream_carries_only_its_own_agents_scans(platform: RunningPlatform, partner: Client) -> None:
    """Another enrolled agent's correctly signed scan on this agent's stream ends the stream; a
    hello sent again mid-stream is refused too."""
    campaign_id, codes = await _voucher_codes(platform, partner, 2)
    agent_id, key = await enrol_agent(platform, partner)
    other_id, other_key = await enrol_agent(platform, partner)
    theirs = signed(other_id, other_key, 1, codes[0].encode())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream_one_by_one(platform.target, [theirs], (agent_id, key))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert other_id not in (caught.value.details() or "") and agent_id in (caught.value.details() or "")
    again = A.StreamScansRequest(hello=A.StreamHello(agent_id=agent_id, signature=b"\x00" * 64))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _batched(platform.target, [again], (agent_id, key))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal_of(caught.value).metadata.get("field") == "hello"
    assert await _redeemed(partner, campaign_id) == 0


async def test_an_agent_holds_at_most_so_many_streams(platform: RunningPlatform, partner: Client) -> None:
    streams = platform.server.platform.streams
    streams.per_caller = 2
    agent_id, key = await enrol_agent(platform, partner)
    other = await enrol_agent(platform, partner)

    async def settled(count: int) -> None:  # the platform has taken the hellos sent so far
        for _ in range(100):
            if streams.total == count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{streams.total} streams open, not {count}")

    async with grpc.aio.insecure_channel(platform.target) as channel:
        held = [await open_stream(channel, (agent_id, key)) for _ in range(2)]
        await settled(2)
        third, _ = await open_stream(channel, (agent_id, key))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(third.read(), 5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refusal_of(caught.value).reason == "TOO_MANY_STREAMS"
        # Another agent is not held to this one's count; a place comes back when a stream ends.
        theirs, _ = await open_stream(channel, other)
        await theirs.done_writing()
        assert await rest_of(theirs) == []
        held[0][0].cancel()
        await settled(1)
        again, _ = await open_stream(channel, (agent_id, key))
        await again.done_writing()
        assert await rest_of(again) == []


async def test_streams_waiting_to_prove_their_agent_are_bounded(
    platform: RunningPlatform, partner: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone can open a scan stream; only so many may wait for their hello at once. Past that, a new
    one is refused at once with TOO_MANY_STREAMS; a place comes back when a waiting one proves itself."""
    from clearpoint.platform.agents import servicer

    monkeypatch.setattr(servicer, "MAX_UNPROVEN_STREAMS", 2)
    agent_id, key = await enrol_agent(platform, partner)
    async with grpc.aio.insecure_channel(platform.target) as channel:
        waiting = []
        for _ in range(2):
            call = agents_pb2_grpc.AgentServiceStub(channel).StreamScans()
            waiting.append((call, await asyncio.wait_for(call.read(), 5)))
        refused = agents_pb2_grpc.AgentServiceStub(channel).StreamScans()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(refused.read(), 5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refusal_of(caught.value).reason == "TOO_MANY_STREAMS"
        call, announcement = waiting[0]
        proof = key.sign(stream_proof_message(announcement.challenge, agent_id))
        await call.write(A.StreamScansRequest(hello=A.StreamHello(agent_id=agent_id, signature=proof)))
        await asyncio.sleep(0.2)
        again, _ = await open_stream(channel, (agent_id, key))  # proven streams do not count
        await again.done_writing()
        assert await rest_of(again) == []
