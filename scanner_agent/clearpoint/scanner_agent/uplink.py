"""The agent's side of StreamScans: journaled scans out, answers in, across any number of outages.

The journal is the only queue. A session opens by proving the agent's key (the platform's
challenge signed, in `hello`), then sends unanswered scans in sequence order, keeping at
most `window` unanswered on the wire, several to a message when there is a backlog and the
platform reads them (catching up after an outage then pays the per-message cost once for several
scans); each answer is written to the journal before the cashier hears it. When the stream
breaks, every scan without an answer is simply sent again on the next session: the platform
deduplicates by (agent, sequence), so at-least-once here is exactly-once there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from clearpoint.formats.scan_signatures import stream_proof_message
from clearpoint.reasons import reason_of
from clearpoint.scanner_agent.backoff import Backoff
from clearpoint.scanner_agent.journal import Answer, Journal, JournaledScan
from clearpoint.scanner_agent.outcomes import Outcome
from clearpoint.v1 import agents_pb2, agents_pb2_grpc, errors_pb2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import timestamp_pb2

log = logging.getLogger(__name__)

OUTCOMES: dict[agents_pb2.ScanOutcome, Outcome] = {
    agents_pb2.SCAN_OUTCOME_ACCEPTED: Outcome.ACCEPTED,
    agents_pb2.SCAN_OUTCOME_REFUSED: Outcome.REFUSED,
    agents_pb2.SCAN_OUTCOME_NOT_A_VOUCHER: Outcome.NOT_A_VOUCHER,
    agents_pb2.SCAN_OUTCOME_REJECTED: Outcome.REJECTED,
}


@dataclass(frozen=True)
class UplinkSettings:
    target: str
    window: int = 32
    # The most scans in one request, to a platform that reads several (max_scans_per_message); also at
    # most a quarter of the window, so answers to earlier messages come back while later ones go out.
    scans_per_message: int = 8
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    keepalive_s: float = 20.0
    # A scan on the wire this long without an answer means the session is stuck: start a new one.
    answer_timeout_s: float = 30.0
    tls_ca_file: str | None = None


def channel_options(keepalive_s: float) -> list[tuple[str, int]]:
    return [
        # Pings find a dead link (a pulled cable, a NAT that forgot us) long before TCP would.
        ("grpc.keepalive_time_ms", int(keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Reconnects are paced by our own backoff; keep the channel's own short.
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]


def make_channel(settings: UplinkSettings) -> grpc.aio.Channel:
    """A channel to the platform: TLS when a CA file is configured, keepalive always."""
    options = channel_options(settings.keepalive_s)
    if settings.tls_ca_file:
        with open(settings.tls_ca_file, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        return grpc.aio.secure_channel(settings.target, creds, options=options)
    return grpc.aio.insecure_channel(settings.target, options=options)


def signed_scan(agent_id: str, scan: JournaledScan) -> agents_pb2.SignedScan:
    ts = timestamp_pb2.Timestamp()
    ts.FromMicroseconds(scan.scan_us)
    return agents_pb2.SignedScan(
        agent_id=agent_id,
        scanner_id=scan.scanner_id,
        sequence=scan.sequence,
        scan_time=ts,
        symbology=scan.symbology,
        data=scan.data,
        signature=scan.signature,
    )


def to_request(agent_id: str, scan: JournaledScan) -> agents_pb2.StreamScansRequest:
    """One scan a message: what every platform reads."""
    return agents_pb2.StreamScansRequest(scan=signed_scan(agent_id, scan))


def to_batch(agent_id: str, scans: list[JournaledScan]) -> agents_pb2.StreamScansRequest:
    """Several scans in one message, for a platform that announced max_scans_per_message."""
    return agents_pb2.StreamScansRequest(scans=[signed_scan(agent_id, scan) for scan in scans])


def hello(agent_id: str, key: Ed25519PrivateKey, challenge: bytes) -> agents_pb2.StreamScansRequest:
    """A stream's first message: the platform's challenge signed with the agent's device key."""
    return agents_pb2.StreamScansRequest(
        hello=agents_pb2.StreamHello(agent_id=agent_id, signature=key.sign(stream_proof_message(challenge, agent_id)))
    )


# Reason names without the REASON_ prefix; a reason newer than this agent keeps its number.
_REASONS = {number: name.removeprefix("REASON_") for name, number in errors_pb2.Reason.items()}


def from_answer(a: agents_pb2.ScanAnswer) -> Answer:
    return Answer(
        sequence=a.sequence,
        outcome=OUTCOMES.get(a.outcome, Outcome.REFUSED),
        reason="" if a.reason == 0 else _REASONS.get(a.reason, str(a.reason)),
        message=a.message,
        campaign_id=a.claim.campaign_id,
        campaign_name=a.claim.campaign_name,
        prize=a.claim.prize_description,
        voucher_id=a.claim.voucher_id,
        redemption_id=a.redemption_id,
        uses_remaining=a.claim.uses_remaining if a.HasField("claim") else None,
    )


class Uplink:
    def __init__(
        self,
        settings: UplinkSettings,
        agent_id: str,
        journal: Journal,
        on_answer: Callable[[JournaledScan | None, Answer, bool], Awaitable[None]],
        key: Ed25519PrivateKey,
        backoff: Backoff | None = None,
        report: Callable[[], Awaitable[agents_pb2.AgentHeartbeat]] | None = None,
        on_revoked: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.agent_id = agent_id
        self._key = key
        self.journal = journal
        self.on_answer = on_answer
        self.backoff = backoff or Backoff(settings.reconnect_initial_s, settings.reconnect_max_s)
        self.connected = False
        self.sent = 0
        self.answered = 0
        self.sessions = 0
        self._wake = asyncio.Event()
        # Heartbeats: what the agent reports (built by its owner), and what the last ack measured.
        self._report = report
        self._on_revoked = on_revoked
        self._status_changed = asyncio.Event()
        self.last_answer_us: int | None = None
        self.round_trip_us: int | None = None
        self.clock_offset_us: int | None = None
        self.heartbeats = 0
        self.revoked = False

    def status_changed(self) -> None:
        """A scanner connected or went away: send a heartbeat now rather than at the next beat."""
        self._status_changed.set()

    def notify(self) -> None:
        """A scan was journaled: wake the sender."""
        self._wake.set()

    async def run(self) -> None:
        """Keep a session up until cancelled, backing off (with jitter) between attempts; stop for
        good if the platform says this agent is revoked (no session could succeed again)."""
        async with make_channel(self.settings) as channel:
            stub = agents_pb2_grpc.AgentServiceStub(channel)
            while True:
                try:
                    await self._session(stub)
                    reason = "the platform ended the stream"
                except grpc.aio.AioRpcError as exc:
                    reason = f"{exc.code().name}: {exc.details()}"
                    if reason_of(exc) == "AGENT_REVOKED":
                        self.connected = False
                        self.revoked = True
                        log.critical(
                            "this agent was revoked by the platform's operator (%s); scans are still journaled "
                            "but will not be sent: enrol again with a new token",
                            exc.details(),
                        )
                        if self._on_revoked is not None:
                            self._on_revoked(exc.details() or "revoked")
                        return
                except _Stuck as exc:
                    reason = str(exc)
                except Exception as exc:  # a write on a call that just failed, say: never stop the uplink
                    if isinstance(exc.__cause__, grpc.aio.AioRpcError):
                        reason = f"{exc.__cause__.code().name}: {exc.__cause__.details()}"
                    else:
                        reason = f"{type(exc).__name__}: {exc}"
                    log.debug("session ended by %r", exc, exc_info=exc)
                delay = self.backoff.next_delay()
                # One warning when the link goes down; the retries after it are quieter.
                level = logging.WARNING if self.connected or self.sessions == 1 else logging.INFO
                self.connected = False
                log.log(
                    level,
                    "platform link down (%s); %d scans waiting; next try in %.1f s",
                    reason,
                    self.journal.backlog,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _session(self, stub: agents_pb2_grpc.AgentServiceAsyncStub) -> None:
        call = stub.StreamScans()
        in_flight: dict[int, tuple[float, JournaledScan]] = {}
        window = self.settings.window
        per_message = 0  # scans one request may carry in `scans`; 0 until the platform says it reads them
        room = asyncio.Event()
        announced = asyncio.Event()  # the platform's first message, with its challenge and limits
        challenge = b""
        heartbeat_s = 0.0  # how often the platform wants a heartbeat; 0: it wants none
        writing = asyncio.Lock()  # one write at a time on the call: scans and heartbeats share it
        hello_sent = asyncio.Event()
        # A session's first heartbeat goes before its scans: the platform hears the backlog it is about to get.
        first_beat = asyncio.Event()
        self.sessions += 1

        async def write(request: agents_pb2.StreamScansRequest) -> None:
            async with writing:
                try:
                    await call.write(request)
                except asyncio.InvalidStateError:
                    # The call already ended; its status comes out of the read side. Wait to be cancelled.
                    await asyncio.get_running_loop().create_future()

        async def beat() -> None:
            """A heartbeat every heartbeat_s, and at once when a scanner connects or goes away."""
            await hello_sent.wait()
            if heartbeat_s <= 0 or self._report is None:
                first_beat.set()
                return
            while True:
                self._status_changed.clear()
                report = await self._report()
                report.send_time.FromMicroseconds(time.time_ns() // 1000)
                if self.round_trip_us is not None and self.clock_offset_us is not None:
                    report.round_trip.FromMicroseconds(self.round_trip_us)
                    report.clock_offset.FromMicroseconds(self.clock_offset_us)
                await write(agents_pb2.StreamScansRequest(heartbeat=report))
                self.heartbeats += 1
                first_beat.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._status_changed.wait(), heartbeat_s)

        async def send() -> None:
            # Nothing is sent before the platform's challenge is answered with the agent's proof. Then scans
            # are read from the journal a window at a time, ahead of the room to send them; a backlog goes
            # several a message (UplinkSettings.scans_per_message) once the platform said it reads them.
            wait_s = self.settings.answer_timeout_s
            try:
                await asyncio.wait_for(announced.wait(), wait_s)
            except TimeoutError:
                raise _Stuck(f"the platform did not open the stream in {wait_s:.0f} s") from None
            await write(hello(self.agent_id, self._key, challenge))
            hello_sent.set()
            await first_beat.wait()
            ahead: deque[JournaledScan] = deque()
            fetched = 0
            while True:
                while len(in_flight) < window:
                    most = min(per_message, self.settings.scans_per_message, window // 4)
                    group_size = min(max(1, most), window - len(in_flight))
                    if len(ahead) < group_size:
                        more = await self.journal.unanswered(fetched, window)
                        if more:
                            ahead.extend(more)
                            fetched = more[-1].sequence
                        if not ahead:
                            break
                    group = [ahead.popleft() for _ in range(min(group_size, len(ahead)))]
                    sent_at = time.monotonic()
                    for scan in group:
                        in_flight[scan.sequence] = (sent_at, scan)
                    several = per_message and self.settings.scans_per_message > 1
                    request = to_batch(self.agent_id, group) if several else to_request(self.agent_id, group[0])
                    await write(request)
                    self.sent += len(group)
                self._wake.clear()
                room.clear()
                # Re-check after clearing, so a scan journaled in between is not left waiting.
                if len(in_flight) < window and (ahead or await self.journal.unanswered(fetched, 1)):
                    continue
                waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(room.wait())]
                try:
                    await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
                oldest = min((t for t, _ in in_flight.values()), default=None)
                if oldest is not None and time.monotonic() - oldest > self.settings.answer_timeout_s:
                    raise _Stuck(f"no answer for {self.settings.answer_timeout_s:.0f} s")

        answers: asyncio.Queue[Answer] = asyncio.Queue()

        async def record() -> None:
            """Answers that arrived together are journaled in one commit, then told to the cashier."""
            while True:
                batch = [await answers.get()]
                while not answers.empty():
                    batch.append(answers.get_nowait())
                firsts = await self.journal.record_answers(batch)
                self.last_answer_us = time.time_ns() // 1000
                for answer, first in zip(batch, firsts, strict=True):
                    sent = in_flight.pop(answer.sequence, None)
                    self.answered += 1
                    await self.on_answer(sent[1] if sent else None, answer, first)
                room.set()

        # The session reads the stream itself; a sender or recorder that fails stops it with its error.
        session = asyncio.current_task()
        failed: list[BaseException] = []
        # A helper's failure is told by a callback the loop runs later: one that arrives after the session
        # ended must not cancel the caller, which by then is backing off or in its next session.
        ended = False

        def stop_on_failure(task: asyncio.Task[None]) -> None:
            error = None if task.cancelled() else task.exception()
            if error is not None and ended:
                log.debug("a session's helper failed after the session ended: %r", error)
            elif error is not None and session is not None:
                failed.append(error)
                session.cancel()

        sender = asyncio.create_task(send())
        recorder = asyncio.create_task(record())
        beater = asyncio.create_task(beat())
        for task in (sender, recorder, beater):
            task.add_done_callback(stop_on_failure)
        try:
            while True:
                response = await call.read()
                if not isinstance(response, agents_pb2.StreamScansResponse):
                    return  # grpc.aio.EOF: the platform ended the stream
                if not self.connected:
                    self.connected = True
                    self.backoff.reset()
                    log.info("platform link up (%s); %d scans to send", self.settings.target, self.journal.backlog)
                if response.max_in_flight:
                    window = max(1, min(self.settings.window, response.max_in_flight))
                if response.max_scans_per_message > 0:
                    per_message = response.max_scans_per_message
                if response.challenge:
                    challenge = response.challenge
                if response.HasField("heartbeat_interval"):
                    heartbeat_s = max(0.1, response.heartbeat_interval.ToMicroseconds() / 1e6)
                if response.HasField("heartbeat_ack"):
                    self._measure(response.heartbeat_ack)
                announced.set()
                if response.HasField("answer"):
                    answers.put_nowait(from_answer(response.answer))
                for answer in response.answers:
                    answers.put_nowait(from_answer(answer))
        except asyncio.CancelledError:
            if failed and session is not None:
                session.uncancel()  # the cancel was ours, to stop reading: the failure is the outcome
                raise failed[0] from None
            raise
        finally:
            ended = True  # stop_on_failure stays on the helpers: it still collects a late failure
            for task in (sender, recorder, beater):
                task.cancel()
            call.cancel()

    def _measure(self, ack: agents_pb2.HeartbeatAck) -> None:
        """Round trip and clock offset from a heartbeat's ack (NTP's way: the platform read its clock
        half a round trip after the agent read its own)."""
        now_us = time.time_ns() // 1000
        sent_us = ack.send_time.ToMicroseconds()
        self.round_trip_us = max(0, now_us - sent_us)
        self.clock_offset_us = ack.platform_time.ToMicroseconds() - (sent_us + self.round_trip_us // 2)


class _Stuck(Exception):
    pass
