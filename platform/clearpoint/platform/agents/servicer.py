"""AgentService: operators make enrolment tokens and revoke agents; agents enrol and stream scans."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from clearpoint.formats.scan_signatures import CHALLENGE_BYTES
from clearpoint.platform.agents import enrolment, wire
from clearpoint.platform.agents.ingest import ScanAnswer, ScanOutcome
from clearpoint.platform.core import metrics
from clearpoint.platform.core.database import DatabaseUnavailable
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.core.ids import new_id
from clearpoint.platform.edge import OPERATORS, OWN_PROOF, Context, Service, once, to_duration, to_timestamp
from clearpoint.v1 import agents_pb2, agents_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from clearpoint.platform.app import Platform

log = logging.getLogger(__name__)
A = agents_pb2

# Unanswered scans read from one stream at once; the agent's own window should be no larger.
MAX_IN_FLIGHT = 64
# Scans one request may carry; a backlog goes several a message, so the per-message cost is shared.
MAX_SCANS_PER_MESSAGE = 32
# How long a new stream may take to prove its agent before it is ended, and how many may be waiting
# to at once in this process (anyone can open one; past this, new ones are refused until some prove
# themselves or time out).
HELLO_SECONDS = 10.0
MAX_UNPROVEN_STREAMS = 1000
# Ingest tasks outlive a stream that drops mid-scan (their answer is stored for the resend).
_finishing: set[asyncio.Task[Any]] = set()


class AgentServicer(agents_pb2_grpc.AgentServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p
        self.unproven_streams = 0

    async def CreateEnrolmentToken(
        self, request: A.CreateEnrolmentTokenRequest, context: Context
    ) -> A.CreateEnrolmentTokenResponse:
        shown: list[str] = []

        async def work(conn: AsyncConnection) -> A.CreateEnrolmentTokenResponse:
            token = await enrolment.create_token(
                conn, request.partner_id, request.store_id, request.ttl_seconds, self.p.clock()
            )
            shown.append(token.token)
            # The stored answer leaves the secret out: it is shown once, never kept in clear.
            return A.CreateEnrolmentTokenResponse(token_id=token.token_id, expire_time=to_timestamp(token.expires_us))

        response = await once(self.p, "CreateEnrolmentToken", request, A.CreateEnrolmentTokenResponse, work)
        response.token = shown[0] if shown else ""
        return response

    async def EnrolAgent(self, request: A.EnrolAgentRequest, context: Context) -> A.EnrolAgentResponse:
        agent = await enrolment.enrol(
            self.p.db, self.p.clock, request.token, request.public_key, request.display_name, request.proof_signature
        )
        log.info("agent %s enrolled for store %s (%s)", agent.agent_id, agent.store_id, agent.display_name)
        return A.EnrolAgentResponse(agent=wire.agent(agent))

    async def RevokeAgent(self, request: A.RevokeAgentRequest, context: Context) -> A.RevokeAgentResponse:
        async with self.p.db.write() as conn:
            agent = await enrolment.revoke(conn, request.agent_id, self.p.clock())
        ended = self.p.fleet.end_streams(agent.agent_id)  # other processes end theirs within a second
        log.warning("agent %s revoked; %d of its streams here ended", agent.agent_id, ended)
        return A.RevokeAgentResponse(agent=wire.agent(agent))

    async def ListAgents(self, request: A.ListAgentsRequest, context: Context) -> A.ListAgentsResponse:
        async with self.p.db.read() as conn:
            found = await enrolment.list_all(conn)
            statuses = await self.p.fleet.statuses(conn)
        fleet = self.p.fleet
        return A.ListAgentsResponse(
            agents=[wire.agent(a, statuses.get(a.agent_id) or fleet.never_seen(a.agent_id)) for a in found]
        )

    async def GetAgent(self, request: A.GetAgentRequest, context: Context) -> A.GetAgentResponse:
        async with self.p.db.read() as conn:
            agent = await enrolment.get(conn, request.agent_id)
            statuses = await self.p.fleet.statuses(conn, [request.agent_id])
        status = statuses.get(request.agent_id) or self.p.fleet.never_seen(request.agent_id)
        return A.GetAgentResponse(agent=wire.agent(agent, status))

    async def StreamScans(
        self, request_iterator: AsyncIterator[A.StreamScansRequest], context: Context
    ) -> AsyncIterator[A.StreamScansResponse]:
        """Prove the agent, then read its scans while answering earlier ones; at most MAX_IN_FLIGHT
        are being worked on.

        The stream opens with a challenge; nothing is read before the agent's hello signs it, and
        the stream then counts among the agent's open streams (core.streams).

        Scans of the same barcode are applied in sequence order (a later one waits for the earlier),
        so "the first scan wins" holds even though different barcodes are redeemed concurrently.
        An agent that sends several scans a message (`scans`) gets the answers settled together in
        one message (`answers`); one that sends `scan` gets one answer a message.
        """
        if self.unproven_streams >= MAX_UNPROVEN_STREAMS:
            raise Refusal(
                Reason.TOO_MANY_STREAMS,
                f"{MAX_UNPROVEN_STREAMS} scan streams are waiting to prove their agent: try again in a few seconds",
                limit=str(MAX_UNPROVEN_STREAMS),
            )
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        self.unproven_streams += 1
        try:
            yield A.StreamScansResponse(
                max_in_flight=MAX_IN_FLIGHT,
                max_scans_per_message=MAX_SCANS_PER_MESSAGE,
                challenge=challenge,
                heartbeat_interval=to_duration(self.p.fleet.heartbeat_us),
            )
            try:
                first = await asyncio.wait_for(anext(request_iterator), HELLO_SECONDS)
            except StopAsyncIteration:
                return  # the agent went away before saying who it is
            except TimeoutError:
                raise Refusal(
                    Reason.UNAUTHENTICATED, f"no hello within {HELLO_SECONDS:g} s of the stream opening"
                ) from None
            agent_id, signature = wire.hello_of(first)
            await self.p.ingest.prove(agent_id, challenge, signature)
        finally:
            self.unproven_streams -= 1
        with self.p.streams.hold(("agent", agent_id), f"agent {agent_id}"):
            answers: asyncio.Queue[_Out] = asyncio.Queue()
            stream_id = new_id("str")

            def end() -> None:  # revoked: the stream ends with the reason, after answers already settled
                answers.put_nowait(Refusal(Reason.AGENT_REVOKED, f"agent {agent_id} was revoked by an operator"))

            try:
                await self.p.fleet.opened(agent_id, stream_id, end)
                async with contextlib.aclosing(self._scans(agent_id, request_iterator, answers)) as responses:
                    async for response in responses:
                        yield response
            finally:  # a task of its own: a cancelled stream (the agent gone mid-call) still records its end
                _keep(
                    asyncio.create_task(
                        _quietly(self.p.fleet.closed(agent_id, stream_id), f"agent {agent_id}'s stream end")
                    )
                )

    async def _scans(
        self, agent_id: str, request_iterator: AsyncIterator[A.StreamScansRequest], answers: asyncio.Queue[_Out]
    ) -> AsyncGenerator[A.StreamScansResponse]:
        """The scans (and heartbeats) of a proven agent's stream in, their answers out."""
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        latest: dict[bytes, asyncio.Task[Any]] = {}
        batched = False

        async def one(scan: A.SignedScan, received_us: int, before: asyncio.Task[Any] | None) -> None:
            arrived = time.perf_counter()
            try:
                if before is not None:
                    await asyncio.wait([before])
                answer = await self.p.ingest.ingest(wire.scan_fields(scan), scan.signature, received_us)
                if not answer.replayed:
                    _count(answer, time.perf_counter() - arrived)
                answers.put_nowait(wire.scan_answer(answer))
            except BaseException as exc:  # the stream ends with it; the agent reconnects and resends
                answers.put_nowait(exc)
                raise
            finally:
                slots.release()

        def forget(data: bytes) -> Callable[[asyncio.Task[Any]], None]:
            """Once a scan is done, a later scan of the same barcode no longer waits for it."""

            def done(task: asyncio.Task[Any]) -> None:
                if latest.get(data) is task:
                    del latest[data]

            return done

        async def read() -> None:
            nonlocal batched
            try:
                async for request in request_iterator:
                    if request.HasField("heartbeat") and not (request.HasField("scan") or request.scans):
                        received_us = self.p.clock()
                        beat = wire.heartbeat_of(agent_id, request.heartbeat, received_us)
                        _keep(asyncio.create_task(_quietly(self.p.fleet.heard(beat), f"agent {agent_id}'s heartbeat")))
                        answers.put_nowait(wire.heartbeat_ack(request.heartbeat, received_us))
                        continue
                    scans = wire.scans_of(request, MAX_SCANS_PER_MESSAGE)
                    batched = batched or len(request.scans) > 0
                    received_us = self.p.clock()
                    for scan in scans:
                        if scan.agent_id != agent_id:
                            raise Refusal(
                                Reason.PERMISSION_DENIED,
                                f"this stream is agent {agent_id}'s: it carries no other agent's scans",
                            )
                        await slots.acquire()
                        task = asyncio.create_task(one(scan, received_us, latest.get(scan.data)))
                        latest[scan.data] = task
                        _keep(task)
                        task.add_done_callback(forget(scan.data))
                pending = list(latest.values())
                if pending:
                    await asyncio.wait(pending)
                answers.put_nowait(None)
            except BaseException as exc:
                answers.put_nowait(exc)

        reader = asyncio.create_task(read())
        try:
            while True:
                item = await answers.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, A.HeartbeatAck):
                    yield A.StreamScansResponse(heartbeat_ack=item)
                    continue
                if not batched:
                    yield A.StreamScansResponse(answer=item)
                    continue
                settled = [item]  # with whatever else is settled by now
                ending: list[_Out] = []  # the end of the stream (or an ack), met while gathering
                while not answers.empty() and len(settled) < MAX_IN_FLIGHT:
                    more = answers.get_nowait()
                    if not isinstance(more, A.ScanAnswer):
                        ending.append(more)
                        break
                    settled.append(more)
                yield A.StreamScansResponse(answers=settled)
                if ending:  # None (all answered), an error or an ack: after the answers gathered before it
                    answers.put_nowait(ending[0])
        finally:
            reader.cancel()


# What a stream's answer queue carries: an answer, a heartbeat's ack, the error that ends the
# stream, or None once everything read is answered.
_Out = A.ScanAnswer | A.HeartbeatAck | BaseException | None


def _count(answer: ScanAnswer, seconds: float) -> None:
    """A first answer in the metrics: the scan's outcome, and a redemption's where it was a voucher."""
    metrics.SCANS.labels(answer.outcome.value).inc()
    metrics.SCAN_SECONDS.observe(seconds)
    if answer.outcome is ScanOutcome.ACCEPTED:
        metrics.REDEMPTIONS.labels("scan", "accepted").inc()
    elif answer.outcome is ScanOutcome.REFUSED:
        metrics.REDEMPTIONS.labels("scan", answer.reason.value.lower() if answer.reason else "refused").inc()


def _keep(task: asyncio.Task[Any]) -> None:
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


async def _quietly(work: Awaitable[None], what: str) -> None:
    """Fleet bookkeeping never ends a stream or a call: a database away costs a stale row at worst."""
    try:
        await work
    except DatabaseUnavailable as exc:
        log.debug("%s not recorded: %s", what, exc)
    except Exception:
        log.exception("%s not recorded", what)


SERVICE = Service(
    descriptor=A.DESCRIPTOR.services_by_name["AgentService"],
    servicer=AgentServicer,
    add_to_server=agents_pb2_grpc.add_AgentServiceServicer_to_server,
    stub=agents_pb2_grpc.AgentServiceStub,
    client_name="agents",
    access=OPERATORS,
    overrides={"EnrolAgent": OWN_PROOF, "StreamScans": OWN_PROOF},
)
