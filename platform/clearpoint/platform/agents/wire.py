"""Agents, signed scans and scan answers as clearpoint.v1 messages."""

from __future__ import annotations

from typing import Any

from clearpoint.formats.scan_signatures import ScanFields
from clearpoint.platform.agents.enrolment import Agent, AgentState
from clearpoint.platform.agents.fleet import Health, Heartbeat, ScannerState, Status
from clearpoint.platform.agents.ingest import ScanAnswer, ScanOutcome
from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.edge import reason_enum, to_duration, to_timestamp
from clearpoint.platform.redemption.wire import claim
from clearpoint.v1 import agents_pb2

A = agents_pb2
STATES = {AgentState.ACTIVE: A.AGENT_STATE_ACTIVE, AgentState.REVOKED: A.AGENT_STATE_REVOKED}
OUTCOMES = {
    ScanOutcome.ACCEPTED: A.SCAN_OUTCOME_ACCEPTED,
    ScanOutcome.REFUSED: A.SCAN_OUTCOME_REFUSED,
    ScanOutcome.NOT_A_VOUCHER: A.SCAN_OUTCOME_NOT_A_VOUCHER,
    ScanOutcome.REJECTED: A.SCAN_OUTCOME_REJECTED,
}


def agent(a: Agent, status: Status | None = None) -> A.Agent:
    return A.Agent(
        agent_id=a.agent_id,
        partner_id=a.partner_id,
        store_id=a.store_id,
        display_name=a.display_name,
        public_key=a.public_key,
        state=STATES[a.state],
        enrol_time=to_timestamp(a.enrolled_us),
        revoke_time=to_timestamp(a.revoked_us),
        status=agent_status(status) if status is not None else None,
    )


HEALTH = {
    Health.ONLINE: A.AGENT_HEALTH_ONLINE,
    Health.STALE: A.AGENT_HEALTH_STALE,
    Health.NEVER_SEEN: A.AGENT_HEALTH_NEVER_SEEN,
}


def agent_status(s: Status) -> A.AgentStatus:
    return A.AgentStatus(
        health=HEALTH[s.health],
        connected=s.connected,
        last_seen_time=to_timestamp(s.last_seen_us),
        connect_time=to_timestamp(s.connect_us),
        heartbeat=heartbeat(s.heartbeat) if s.heartbeat else None,
        stale_after=to_duration(s.stale_after_us),
    )


def _duration(us: int | None) -> Any:
    return None if us is None else to_duration(us)


def heartbeat(h: Heartbeat) -> A.AgentHeartbeat:
    return A.AgentHeartbeat(
        version=h.version,
        uptime=to_duration(h.uptime_us),
        scanners=[
            A.ScannerStatus(
                scanner_id=sc.scanner_id,
                kind=sc.kind,
                path=sc.path,
                connected=sc.connected,
                last_scan_time=to_timestamp(sc.last_scan_us),
                last_error=sc.last_error,
                last_error_time=to_timestamp(sc.last_error_us),
                device=sc.device,
            )
            for sc in h.scanners
        ],
        backlog=h.backlog,
        oldest_unanswered_time=to_timestamp(h.oldest_unanswered_us),
        last_answer_time=to_timestamp(h.last_answer_us),
        round_trip=_duration(h.round_trip_us),
        clock_offset=_duration(h.clock_offset_us),
        send_time=to_timestamp(h.sent_us),
    )


# What one heartbeat may carry: more is refused, since every process stores it for every agent.
MAX_SCANNERS = 64
MAX_TEXT = 256


def heartbeat_of(agent_id: str, h: A.AgentHeartbeat, received_us: int) -> Heartbeat:
    """An agent's heartbeat as the fleet keeps it; refused (FIELD_INVALID) past the bounds above."""
    if len(h.scanners) > MAX_SCANNERS:
        raise field_invalid("heartbeat.scanners", f"at most {MAX_SCANNERS} scanners a heartbeat")
    texts = [h.version] + [t for sc in h.scanners for t in (sc.scanner_id, sc.kind, sc.path, sc.last_error, sc.device)]
    if any(len(t) > MAX_TEXT for t in texts):
        raise field_invalid("heartbeat", f"a heartbeat's texts are at most {MAX_TEXT} characters each")
    if h.backlog < 0:
        raise field_invalid("heartbeat.backlog", "backlog cannot be negative")

    return Heartbeat(
        agent_id=agent_id,
        received_us=received_us,
        version=h.version,
        uptime_us=h.uptime.ToMicroseconds(),
        scanners=tuple(
            ScannerState(
                sc.scanner_id,
                sc.kind,
                sc.path,
                sc.connected,
                _us(sc, "last_scan_time"),
                sc.last_error,
                _us(sc, "last_error_time"),
                sc.device,
            )
            for sc in h.scanners
        ),
        backlog=h.backlog,
        oldest_unanswered_us=_us(h, "oldest_unanswered_time"),
        last_answer_us=_us(h, "last_answer_time"),
        round_trip_us=_us(h, "round_trip"),
        clock_offset_us=_us(h, "clock_offset"),
        sent_us=h.send_time.ToMicroseconds(),
    )


def _us(message: Any, field: str) -> int | None:
    """A Timestamp or Duration field in microseconds; None where it is unset."""
    return getattr(message, field).ToMicroseconds() if message.HasField(field) else None


def heartbeat_ack(h: A.AgentHeartbeat, received_us: int) -> A.HeartbeatAck:
    return A.HeartbeatAck(send_time=h.send_time, platform_time=to_timestamp(received_us))


def hello_of(request: A.StreamScansRequest) -> tuple[str, bytes]:
    """(agent id, signature) of a stream's first message, which must be a hello and nothing else."""
    if not request.HasField("hello") or request.HasField("scan") or request.scans:
        raise Refusal(
            Reason.UNAUTHENTICATED,
            "a scan stream opens with hello alone: the agent id and the stream's challenge signed with the"
            " agent's key (docs/scan-signatures.md); nothing else is read before it",
        )
    return request.hello.agent_id, request.hello.signature


def scans_of(request: A.StreamScansRequest, most: int) -> list[A.SignedScan]:
    """The scans a request carries: `scan`, or up to `most` in `scans`, never both."""
    if request.HasField("hello"):
        raise field_invalid("hello", "hello comes once, as the first message of a stream")
    if request.HasField("heartbeat"):
        raise field_invalid("heartbeat", "a StreamScansRequest carries a heartbeat or scans, not both")
    if not request.scans:
        return [request.scan]  # an empty request is a scan with no fields: answered FIELD_INVALID
    if request.HasField("scan"):
        raise field_invalid("scan", "a StreamScansRequest carries scan or scans, not both")
    if len(request.scans) > most:
        carried = len(request.scans)
        raise field_invalid("scans", f"at most {most} scans a request (max_scans_per_message), not {carried}")
    return list(request.scans)


def scan_fields(scan: A.SignedScan) -> ScanFields:
    """The signed fields of a scan; a scan_time finer than a microsecond cannot be signed, so it is -1."""
    t = scan.scan_time
    time_us = t.seconds * 1_000_000 + t.nanos // 1000 if t.nanos % 1000 == 0 else -1
    return ScanFields(scan.agent_id, scan.scanner_id, scan.sequence, time_us, scan.symbology, scan.data)


def scan_answer(a: ScanAnswer) -> A.ScanAnswer:
    return A.ScanAnswer(
        sequence=a.sequence,
        outcome=OUTCOMES[a.outcome],
        reason=reason_enum(a.reason),
        message=a.message,
        claim=claim(a.claim) if a.claim else None,
        redemption_id=a.redemption_id or "",
        replayed=a.replayed,
        answer_time=to_timestamp(a.answered_us),
    )
