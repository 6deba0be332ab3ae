"""Ingesting signed scans from store agents: verify the agent's signature, then redeem.

Delivery from an agent is at-least-once; each scan is a request keyed by (agent, sequence) with
its signed bytes as fingerprint (core.once), so a resend (after a lost answer, a reconnect, an
agent restart) gets the first answer again and changes nothing. A voucher scan goes through the
redemption room's one claim statement, which writes the scan's row in the store's scan log (the
attachment below) with the redemption and its answer; a scan that is not a voucher is answered
NOT_A_VOUCHER. Scans that are not applied at all are answered REJECTED: those from a proven,
enrolled agent (revoked since, a reused sequence) are kept in scan_rejections as evidence; those
anyone could send (forged, unknown agent, malformed) are only counted and sampled in the log, so
junk costs no rows and no unbounded log.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

from clearpoint.formats.scan_signatures import (
    ScanFieldError,
    ScanFields,
    canonical_bytes,
    scan_signature_valid,
    stream_proof_message,
)
from clearpoint.platform.agents.enrolment import AgentState
from clearpoint.platform.agents.tables import agent_scans, agents, scan_rejections
from clearpoint.platform.core import ids
from clearpoint.platform.core.batching import Batcher
from clearpoint.platform.core.clock import Clock
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.core.once import RequestKey
from clearpoint.platform.core.principals import Principal, Role
from clearpoint.platform.redemption.records import PrizeClaim
from clearpoint.platform.redemption.redeemer import Redeemer, RedeemRequest
from clearpoint.platform.redemption.statements import Attachment
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import ColumnElement, bindparam, exists, insert, select

log = logging.getLogger(__name__)

STREAM_SCANS = "StreamScans"
# A voucher code announces itself ("CP1:..."); anything else scanned at the till is some other barcode.
_VOUCHER_PREFIX = re.compile(rb"CP[0-9]+:")
_REJECTION_MESSAGES = {
    Reason.AGENT_UNKNOWN: "this agent is not enrolled with the platform",
    Reason.AGENT_REVOKED: "this agent was revoked; its scans are refused",
    Reason.SCAN_SIGNATURE_INVALID: "the scan's signature does not verify under the agent's key",
    Reason.SEQUENCE_REUSED: "this sequence number was used before for a different scan",
}
# Rejections before the sender proved it is an enrolled agent: anyone can cause them, so they are
# counted and sampled in the log, never written to the database one by one.
_UNPROVEN = frozenset({Reason.FIELD_INVALID, Reason.AGENT_UNKNOWN, Reason.SCAN_SIGNATURE_INVALID})
_KNOWN_AGENTS = 100_000  # parsed keys kept; more agents than this just cost a read now and then
_AGENTS = select(
    agents.c.agent_id, agents.c.public_key, agents.c.partner_id, agents.c.store_id, agents.c.display_name
).where(agents.c.agent_id.in_(bindparam("agent_ids", expanding=True)))


class ScanOutcome(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    NOT_A_VOUCHER = "not_a_voucher"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ScanAnswer:
    sequence: int
    outcome: ScanOutcome
    reason: Reason | None
    message: str
    claim: PrizeClaim | None
    redemption_id: str | None
    replayed: bool
    answered_us: int


@dataclass(frozen=True, slots=True)
class KnownAgent:
    """What never changes about an enrolled agent (a new key is a new enrolment); its state is read
    by the statement that applies each scan, so a revocation takes effect at once."""

    public_key: Ed25519PublicKey
    principal: Principal
    store_id: str


def _storable(text: str) -> str:
    """Evidence from an untrusted sender, made storable: a NUL shown as U+2400, not refused."""
    return text.replace("\x00", "\u2400")


def is_voucher_code(data: bytes) -> bool:
    return _VOUCHER_PREFIX.match(data) is not None


def _not_revoked(columns: Mapping[str, ColumnElement[Any]]) -> ColumnElement[bool]:
    """SQL: the agent that sent the scan (if one did) is not revoked. Only enrolled agents' scans get
    this far, so this asks the one index probe whether the agent was revoked since."""
    revoked = (
        exists()
        .where(agents.c.agent_id == columns["agent_id"], agents.c.state != AgentState.ACTIVE.value)
        .correlate_except(agents)
    )
    return ~revoked


def _refused_row(row: Mapping[str, Any], reason: Reason) -> dict[str, Any]:
    outcome = ScanOutcome.NOT_A_VOUCHER if reason is Reason.NOT_A_VOUCHER else ScanOutcome.REFUSED
    return {**row, "outcome": outcome.value, "reason": reason.value, "redemption_id": None}


# A scan's row in the scan log, written with its redemption (or its refusal), never without it.
SCAN_LOG = Attachment(
    table=agent_scans,
    columns=(
        "agent_id",
        "sequence",
        "scanner_id",
        "scan_us",
        "symbology",
        "data",
        "data_sha256",
        "scan_sha256",
        "received_us",
        "outcome",
        "reason",
    ),
    from_redemption=("redemption_id", "campaign_id", "voucher_id"),
    condition=_not_revoked,
    unmet=Reason.AGENT_REVOKED,
    time_column="answered_us",
    refused=_refused_row,
)


class ScanIngest:
    def __init__(self, db: Database, redeemer: Redeemer, clock: Clock) -> None:
        self.db = db
        self.redeemer = redeemer
        self.clock = clock
        self._known: dict[str, KnownAgent] = {}
        # Rejections of scans not proven to come from an enrolled agent, by reason (not stored).
        self.unproven: Counter[Reason] = Counter()
        self._sampled = _Sampled(clock)
        self._lookups: Batcher[str, KnownAgent | None] = Batcher(
            self._read_agents, max_batch=128, max_in_flight=2, name="agent lookups"
        )

    async def prove(self, agent_id: str, challenge: bytes, signature: bytes) -> KnownAgent:
        """The enrolled agent whose key signed this stream's challenge (revoked or not: it proved who
        it is, and its scans are then refused one by one as evidence). Anything else is refused
        UNAUTHENTICATED, counted and sampled, with nothing written."""
        try:
            message = stream_proof_message(challenge, agent_id)
        except ScanFieldError as exc:
            return self._unproven_stream(agent_id, str(exc))
        agent = await self._agent(agent_id)
        if agent is None:
            return self._unproven_stream(agent_id, "not an enrolled agent")
        if not scan_signature_valid(agent.public_key, signature, message):
            return self._unproven_stream(agent_id, f"{len(signature)}-byte signature does not verify")
        return agent

    def _unproven_stream(self, agent_id: str, detail: str) -> NoReturn:
        self.unproven[Reason.UNAUTHENTICATED] += 1
        self._sampled.note(Reason.UNAUTHENTICATED, f"stream opened as {_storable(agent_id[:64])!r}: {detail}")
        raise Refusal(
            Reason.UNAUTHENTICATED,
            "the stream's hello does not prove an enrolled agent: its signature over this stream's"
            " challenge must verify under the key the agent enrolled with",
        )

    async def ingest(self, scan: ScanFields, signature: bytes, received_us: int | None = None) -> ScanAnswer:
        """Verify, deduplicate and apply one scan; `received_us` is when it came off the wire."""
        received_us = self.clock() if received_us is None else received_us
        try:
            message = canonical_bytes(scan)
        except ScanFieldError as exc:
            return await self._reject(scan, Reason.FIELD_INVALID, f"{exc.field}: {exc}", None)
        if "\x00" in scan.scanner_id:  # signable, but no database text column can hold it
            return await self._reject(scan, Reason.FIELD_INVALID, "scanner_id: contains a NUL character", None)
        digest = hashlib.sha256(message).digest()
        agent = await self._agent(scan.agent_id)
        if agent is None:
            return await self._reject(scan, Reason.AGENT_UNKNOWN, f"agent {scan.agent_id!r} is not enrolled", digest)
        if not scan_signature_valid(agent.public_key, signature, message):
            return await self._reject(scan, Reason.SCAN_SIGNATURE_INVALID, f"{len(signature)}-byte signature", digest)
        request = RedeemRequest(
            principal=agent.principal,
            key=RequestKey(scan.agent_id, STREAM_SCANS, str(scan.sequence)),
            fingerprint=digest,
            request_id=f"scan:{scan.agent_id}:{scan.sequence}",
            code=scan.data.decode("ascii", "replace"),
            store_id=agent.store_id,
            attached={
                "agent_id": scan.agent_id,
                "sequence": scan.sequence,
                "scanner_id": scan.scanner_id,
                "scan_us": scan.time_us,
                "symbology": scan.symbology,
                "data": None if is_voucher_code(scan.data) else scan.data,  # never a code at rest
                "data_sha256": hashlib.sha256(scan.data).digest(),
                "scan_sha256": digest,
                "received_us": received_us,
                "outcome": ScanOutcome.ACCEPTED.value,
                "reason": None,
            },
        )
        try:
            if is_voucher_code(scan.data):
                outcome = await self.redeemer.redeem(request)
            else:
                outcome = await self.redeemer.refuse(request, Refusal(Reason.NOT_A_VOUCHER, "not a voucher code"))
        except Refusal as refused:
            if refused.reason is Reason.REQUEST_ID_REUSED:
                return await self._reject(scan, Reason.SEQUENCE_REUSED, "same sequence, different scan", digest)
            if refused.reason is Reason.AGENT_REVOKED:
                return await self._reject(scan, Reason.AGENT_REVOKED, "revoked agent", digest)
            kind = ScanOutcome.NOT_A_VOUCHER if refused.reason is Reason.NOT_A_VOUCHER else ScanOutcome.REFUSED
            answered = refused.answered_us if refused.answered_us is not None else self.clock()
            return ScanAnswer(
                scan.sequence, kind, refused.reason, refused.message, None, None, refused.replayed, answered
            )
        claim = outcome.claim
        return ScanAnswer(
            scan.sequence,
            ScanOutcome.ACCEPTED,
            None,
            f"prize: {claim.prize_description}",
            claim,
            outcome.redemption.redemption_id,
            outcome.replayed,
            outcome.redemption.redeemed_us,
        )

    async def _agent(self, agent_id: str) -> KnownAgent | None:
        known = self._known.get(agent_id)
        if known is not None:
            return known
        if not ids.is_id("agt", agent_id):
            return None
        return await self._lookups.submit(agent_id)

    async def _read_agents(self, agent_ids: Sequence[str]) -> list[KnownAgent | None]:
        """The agents of a burst of scans, in one read; their keys parsed once and kept."""
        async with self.db.autocommit() if self.db.is_postgres else self.db.read() as conn:
            rows = await conn.execute(_AGENTS, {"agent_ids": sorted(set(agent_ids))})
            found = {r.agent_id: r for r in rows}
        if len(self._known) > _KNOWN_AGENTS:
            self._known.clear()
        for agent_id, row in found.items():
            if agent_id not in self._known:
                self._known[agent_id] = KnownAgent(
                    Ed25519PublicKey.from_public_bytes(bytes(row.public_key)),
                    Principal(row.partner_id, row.display_name, Role.AGENT),
                    row.store_id,
                )
        return [self._known.get(agent_id) for agent_id in agent_ids]

    async def _reject(self, scan: ScanFields, reason: Reason, detail: str, digest: bytes | None) -> ScanAnswer:
        now = self.clock()
        message = _REJECTION_MESSAGES.get(reason, detail)
        answer = ScanAnswer(scan.sequence, ScanOutcome.REJECTED, reason, message, None, None, False, now)
        who = _storable(scan.agent_id[:64])
        if reason in _UNPROVEN:
            # Anyone can send these, as fast as they like: counted and sampled, never a row or a line each.
            self.unproven[reason] += 1
            self._sampled.note(reason, f"{who}#{scan.sequence}: {_storable(detail)}")
            return answer
        log.warning(
            "rejected scan %s#%s: %s (%s)", who, scan.sequence, reason, _storable(detail), extra={"reason": reason}
        )
        async with self.db.write() as conn:
            if self.db.is_postgres:
                await conn.exec_driver_sql("SET LOCAL synchronous_commit = off")  # evidence, not state
            await conn.execute(
                insert(scan_rejections).values(
                    agent_id=who,
                    sequence=min(max(scan.sequence, 0), 2**63 - 1),
                    reason=reason.value,
                    detail=_storable(detail[:500]),
                    scan_sha256=digest,
                    received_us=now,
                )
            )
        return answer


class _Sampled:
    """Log lines for events anyone can cause: the first of each kind at once, then at most one line
    a period per kind, with how many came since. Bounded whatever the rate."""

    def __init__(self, clock: Clock, period_s: float = 60.0) -> None:
        self._clock = clock
        self._period_us = int(period_s * 1_000_000)
        self._next: dict[Reason, int] = {}
        self._since: Counter[Reason] = Counter()

    def note(self, reason: Reason, example: str) -> None:
        now = self._clock()
        self._since[reason] += 1
        if now < self._next.get(reason, 0):
            return
        count, self._since[reason] = self._since[reason], 0
        self._next[reason] = now + self._period_us
        log.warning(
            "rejected %d unproven scan(s) or stream(s) (%s) in the last %d s; e.g. %s",
            count,
            reason,
            self._period_us // 1_000_000,
            example,
            extra={"reason": reason},
        )
