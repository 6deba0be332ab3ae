"""Ingesting signed scans from store agents: verify, deduplicate, then redeem through the same core.

Delivery from an agent is at-least-once; (agent_id, sequence) makes it exactly-once. The first
answer to a scan is stored with it, so a resend (after a lost answer, a reconnect, an agent
restart) gets that answer again and changes nothing. Scans that are not applied at all (forged,
unknown or revoked agent, reused sequence, malformed) are kept in scan_rejections as evidence.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from clearpoint.formats.scan_signatures import ScanFieldError, ScanFields, canonical_bytes, scan_signature_valid
from clearpoint.platform import ids
from clearpoint.platform.agents import REVOKED
from clearpoint.platform.auth import Principal
from clearpoint.platform.clock import Clock
from clearpoint.platform.coalesce import Coalescer
from clearpoint.platform.db import Database
from clearpoint.platform.errors import Refusal
from clearpoint.platform.records import Claim
from clearpoint.platform.redemption import Redeemer
from clearpoint.platform.schema import agent_scans, agents, scan_rejections
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import and_, bindparam, insert, select

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
REFUSED = "refused"
NOT_A_VOUCHER = "not_a_voucher"
REJECTED = "rejected"
# A voucher code announces itself ("CP1:..."); anything else scanned at the till is some other barcode.
_VOUCHER_PREFIX = re.compile(rb"CP[0-9]+:")
_REJECTION_MESSAGES = {
    "AGENT_UNKNOWN": "this agent is not enrolled with the platform",
    "AGENT_REVOKED": "this agent was revoked; its scans are refused",
    "SCAN_SIGNATURE_INVALID": "the scan's signature does not verify under the agent's key",
    "SEQUENCE_REUSED": "this sequence number was used before for a different scan",
}


# Agents (key, state, store) with the first answers to the given sequences, if any: one read for a
# whole burst of scans (one row per answered sequence, or one with empty answer columns).
_LOOKUP = (
    select(
        agents.c.agent_id.label("a_agent_id"),
        agents.c.public_key,
        agents.c.state,
        agents.c.partner_id,
        agents.c.store_id,
        agents.c.display_name,
        agent_scans,
    )
    .select_from(
        agents.outerjoin(
            agent_scans,
            and_(
                agent_scans.c.agent_id == agents.c.agent_id,
                agent_scans.c.sequence.in_(bindparam("sequences", expanding=True)),
            ),
        )
    )
    .where(agents.c.agent_id.in_(bindparam("agent_ids", expanding=True)))
)


_STORED_COLUMNS = (agent_scans.c.agent_id, agent_scans.c.sequence)


@dataclass(frozen=True, slots=True)
class ScanAnswer:
    sequence: int
    outcome: str
    reason: str | None
    message: str
    claim: Claim | None
    redemption_id: str | None
    replayed: bool
    answered_us: int


def is_voucher_code(data: bytes) -> bool:
    return _VOUCHER_PREFIX.match(data) is not None


class ScanIngest:
    def __init__(self, db: Database, redeemer: Redeemer, clock: Clock) -> None:
        self.db = db
        self.redeemer = redeemer
        self.clock = clock
        # Agent keys never change (a new key is a new enrolment), so parsed keys are kept.
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._lookup: Coalescer[tuple[str, int], Any] = Coalescer(self._lookup_batch)
        self._store_batch: Coalescer[dict[str, Any], bool] = Coalescer(self._insert_batch)
        if db.is_postgres:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        # All columns every time, so the statement's SQL never changes; a conflict means a twin won.
        self._insert = dialect_insert(agent_scans).on_conflict_do_nothing().returning(*_STORED_COLUMNS)

    async def ingest(self, scan: ScanFields, signature: bytes, received_us: int | None = None) -> ScanAnswer:
        """Verify, deduplicate and apply one scan; `received_us` is when it came off the wire."""
        received_us = self.clock() if received_us is None else received_us
        try:
            message = canonical_bytes(scan)
        except ScanFieldError as exc:
            return await self._reject(scan, "FIELD_INVALID", f"{exc.field}: {exc}", None)
        digest = hashlib.sha256(message).digest()
        row = await self._agent_and_first_answer(scan)
        if row is None:
            return await self._reject(scan, "AGENT_UNKNOWN", f"agent {scan.agent_id!r} is not enrolled", digest)
        public = self._keys.get(scan.agent_id)
        if public is None:
            public = self._keys[scan.agent_id] = Ed25519PublicKey.from_public_bytes(bytes(row.public_key))
        if not scan_signature_valid(public, signature, message):
            return await self._reject(scan, "SCAN_SIGNATURE_INVALID", f"{len(signature)}-byte signature", digest)
        if row.outcome is not None:
            if bytes(row.scan_sha256) == digest:
                return _stored_answer(scan.sequence, row)
            return await self._reject(scan, "SEQUENCE_REUSED", "same sequence, different scan", digest)
        if row.state == REVOKED:
            return await self._reject(scan, "AGENT_REVOKED", "revoked agent", digest)
        answer = await self._decide(scan, digest, Principal(row.partner_id, row.display_name, "agent"), row.store_id)
        return await self._store(scan, digest, answer, received_us)

    async def _agent_and_first_answer(self, scan: ScanFields):  # type: ignore[no-untyped-def]
        if not ids.is_id("agt", scan.agent_id):
            return None
        return await self._lookup((scan.agent_id, scan.sequence))

    async def _lookup_batch(self, keys: list[tuple[str, int]]) -> list[Any]:
        params = {"agent_ids": sorted({a for a, _ in keys}), "sequences": sorted({s for _, s in keys})}
        async with self.db.autocommit() if self.db.is_postgres else self.db.read() as conn:
            rows = (await conn.execute(_LOOKUP, params)).all()
        agent_rows = {r.a_agent_id: r for r in rows}
        answered = {(r.agent_id, r.sequence): r for r in rows if r.outcome is not None}
        return [answered.get(key) or _unanswered(agent_rows.get(key[0])) for key in keys]

    async def _insert_batch(self, rows: list[dict[str, Any]]) -> list[bool]:
        """Insert answers; for each, whether it was stored (False: a twin's answer was there first)."""
        async with self.db.autocommit() if self.db.is_postgres else self.db.write() as conn:
            stored = {tuple(r) for r in await conn.execute(self._insert.values(rows))}
        return [(r["agent_id"], r["sequence"]) in stored for r in rows]

    async def _decide(self, scan: ScanFields, digest: bytes, principal: Principal, store_id: str) -> ScanAnswer:
        now = self.clock()
        if not is_voucher_code(scan.data):
            return ScanAnswer(
                scan.sequence, NOT_A_VOUCHER, "NOT_A_VOUCHER", "not a voucher code", None, None, False, now
            )
        request_id = f"scan:{scan.agent_id}:{scan.sequence}"
        try:
            outcome = await self.redeemer.redeem(
                principal, request_id, digest, scan.data.decode("ascii", "replace"), store_id
            )
        except Refusal as refused:
            return ScanAnswer(scan.sequence, REFUSED, refused.reason, refused.message, None, None, False, now)
        return ScanAnswer(
            scan.sequence,
            ACCEPTED,
            None,
            f"prize: {outcome.claim.prize_description}",
            outcome.claim,
            outcome.redemption.redemption_id,
            False,
            outcome.redemption.redeemed_us,
        )

    async def _store(self, scan: ScanFields, digest: bytes, answer: ScanAnswer, received_us: int) -> ScanAnswer:
        claim = answer.claim
        row = {
            "agent_id": scan.agent_id,
            "sequence": scan.sequence,
            "scanner_id": scan.scanner_id,
            "scan_us": scan.time_us,
            "symbology": scan.symbology,
            "data": scan.data,
            "scan_sha256": digest,
            "received_us": received_us,
            "answered_us": answer.answered_us,
            "outcome": answer.outcome,
            "reason": answer.reason,
            "message": answer.message,
            "redemption_id": answer.redemption_id,
            "campaign_id": claim.campaign_id if claim else None,
            "campaign_name": claim.campaign_name if claim else None,
            "prize_description": claim.prize_description if claim else None,
            "voucher_id": claim.voucher_id if claim else None,
            "uses_remaining": claim.uses_remaining if claim else None,
        }
        if await self._store_batch(row):
            return answer
        # The same sequence arrived twice at once (two streams of one agent): the first stored wins,
        # and the redemption core already made sure the scan was applied once.
        first = await self._agent_and_first_answer(scan)
        if first is None or first.outcome is None or bytes(first.scan_sha256) != digest:
            return await self._reject(scan, "SEQUENCE_REUSED", "same sequence, different scan", digest)
        return _stored_answer(scan.sequence, first)

    async def _reject(self, scan: ScanFields, reason: str, detail: str, digest: bytes | None) -> ScanAnswer:
        now = self.clock()
        log.warning(
            "rejected scan %s#%s: %s (%s)", scan.agent_id[:64], scan.sequence, reason, detail, extra={"reason": reason}
        )
        async with self.db.write() as conn:
            if self.db.is_postgres:
                await conn.exec_driver_sql("SET LOCAL synchronous_commit = off")  # evidence, not state
            await conn.execute(
                insert(scan_rejections).values(
                    agent_id=scan.agent_id[:64],
                    sequence=min(max(scan.sequence, 0), 2**63 - 1),
                    reason=reason,
                    detail=detail[:500],
                    scan_sha256=digest,
                    received_us=now,
                )
            )
        message = _REJECTION_MESSAGES.get(reason, detail)
        return ScanAnswer(scan.sequence, REJECTED, reason, message, None, None, False, now)


class _Unanswered:
    """An agent's row with no answer yet for the sequence asked about."""

    outcome = None
    scan_sha256 = b""

    def __init__(self, agent) -> None:  # type: ignore[no-untyped-def]
        self.public_key = agent.public_key
        self.state = agent.state
        self.partner_id = agent.partner_id
        self.store_id = agent.store_id
        self.display_name = agent.display_name


def _unanswered(agent):  # type: ignore[no-untyped-def]
    return None if agent is None else _Unanswered(agent)


def _stored_answer(sequence: int, row) -> ScanAnswer:  # type: ignore[no-untyped-def]
    claim = None
    if row.outcome == ACCEPTED:
        claim = Claim(row.campaign_id, row.campaign_name, row.prize_description, row.voucher_id, row.uses_remaining)
    return ScanAnswer(sequence, row.outcome, row.reason, row.message, claim, row.redemption_id, True, row.answered_us)
