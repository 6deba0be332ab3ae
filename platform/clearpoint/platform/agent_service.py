"""AgentService: enrolment (operator tokens, agents' keys) and the scan stream, kept thin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from clearpoint.platform import agents, wire
from clearpoint.platform.app import Platform
from clearpoint.platform.auth import current_principal
from clearpoint.platform.idempotency import run_once
from clearpoint.v1 import agents_pb2, agents_pb2_grpc

log = logging.getLogger(__name__)

# Unanswered scans read from one stream at once; the agent's own window should be no larger.
MAX_IN_FLIGHT = 64
# Ingest tasks outlive a stream that drops mid-scan (their answer is stored for the resend).
_finishing: set[asyncio.Task[Any]] = set()


class Agents(agents_pb2_grpc.AgentServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p

    async def CreateEnrolmentToken(self, request, context):  # type: ignore[no-untyped-def]
        shown: dict[str, str] = {}

        async def work(conn):  # type: ignore[no-untyped-def]
            token = await agents.create_token(
                conn, request.partner_id, request.store_id, request.ttl_seconds, self.p.clock()
            )
            shown["token"] = token.token
            # The stored answer leaves the secret out: it is shown once, never kept in clear.
            return agents_pb2.CreateEnrolmentTokenResponse(
                token_id=token.token_id, expire_time=wire.to_timestamp(token.expires_us)
            )

        response = await run_once(
            self.p.db,
            self.p.clock,
            current_principal.get().partner_id,
            "CreateEnrolmentToken",
            request,
            agents_pb2.CreateEnrolmentTokenResponse,
            work,
        )
        response.token = shown.get("token", "")
        return response

    async def EnrolAgent(self, request, context):  # type: ignore[no-untyped-def]
        async with self.p.db.write() as conn:
            agent = await agents.enrol(
                conn, request.token, request.public_key, request.display_name, request.proof_signature, self.p.clock()
            )
        log.info("agent %s enrolled for store %s (%s)", agent.agent_id, agent.store_id, agent.display_name)
        return agents_pb2.EnrolAgentResponse(agent=wire.agent(agent))

    async def RevokeAgent(self, request, context):  # type: ignore[no-untyped-def]
        async with self.p.db.write() as conn:
            agent = await agents.revoke(conn, request.agent_id, self.p.clock())
        log.warning("agent %s revoked", agent.agent_id)
        return agents_pb2.RevokeAgentResponse(agent=wire.agent(agent))

    async def ListAgents(self, request, context):  # type: ignore[no-untyped-def]
        async with self.p.db.read() as conn:
            found = await agents.list_all(conn)
        return agents_pb2.ListAgentsResponse(agents=[wire.agent(a) for a in found])

    async def StreamScans(
        self, request_iterator: AsyncIterator[agents_pb2.StreamScansRequest], context: Any
    ) -> AsyncIterator[agents_pb2.StreamScansResponse]:
        """Read scans while answering earlier ones; at most MAX_IN_FLIGHT are being worked on.

        Scans of the same barcode are applied in sequence order (a later one waits for the earlier),
        so "the first scan wins" holds even though different barcodes are redeemed concurrently.
        """
        answers: asyncio.Queue[agents_pb2.StreamScansResponse | BaseException | None] = asyncio.Queue()
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        latest: dict[bytes, asyncio.Task[Any]] = {}

        async def one(scan: agents_pb2.SignedScan, received_us: int, before: asyncio.Task[Any] | None) -> None:
            try:
                if before is not None:
                    await asyncio.wait([before])
                answer = await self.p.ingest.ingest(wire.scan_fields(scan), scan.signature, received_us)
                await answers.put(agents_pb2.StreamScansResponse(answer=wire.scan_answer(answer)))
            except BaseException as exc:  # the stream ends with it; the agent reconnects and resends
                await answers.put(exc)
                raise
            finally:
                slots.release()

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await slots.acquire()
                    scan = request.scan
                    task = asyncio.create_task(one(scan, self.p.clock(), latest.get(scan.data)))
                    latest[scan.data] = task
                    _finishing.add(task)
                    task.add_done_callback(_finishing.discard)
                    task.add_done_callback(lambda t, d=scan.data: latest.get(d) is t and latest.pop(d))
                pending = list(latest.values())
                if pending:
                    await asyncio.wait(pending)
                await answers.put(None)
            except BaseException as exc:
                await answers.put(exc)

        reader = asyncio.create_task(read())
        try:
            yield agents_pb2.StreamScansResponse(max_in_flight=MAX_IN_FLIGHT)
            while True:
                item = await answers.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            reader.cancel()
