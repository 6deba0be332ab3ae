"""Agents, signed scans and scan answers as clearpoint.v1 messages."""

from __future__ import annotations

from clearpoint.formats.scan_signatures import ScanFields
from clearpoint.platform.agents.enrolment import Agent, AgentState
from clearpoint.platform.agents.ingest import ScanAnswer, ScanOutcome
from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.edge import reason_enum, to_timestamp
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


def agent(a: Agent) -> A.Agent:
    return A.Agent(
        agent_id=a.agent_id,
        partner_id=a.partner_id,
        store_id=a.store_id,
        display_name=a.display_name,
        public_key=a.public_key,
        state=STATES[a.state],
        enrol_time=to_timestamp(a.enrolled_us),
        revoke_time=to_timestamp(a.revoked_us),
    )


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
