"""Store agents: single-use enrolment tokens, enrolment by device key, revocation.

A token is shown once and stored as the SHA-256 of its secret (like API keys). Spending it is one
conditional UPDATE, so two agents racing with one token cannot both enrol: the database decides.
An enrolment is a request keyed by its token (core.once): the same token and key again (an answer
lost on the way) get the same agent back; any other key is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clearpoint.formats.scan_signatures import enrol_proof_message, scan_signature_valid
from clearpoint.platform.agents.tables import agents, enrolment_tokens
from clearpoint.platform.campaigns.rules import check_store_id
from clearpoint.platform.core import ids
from clearpoint.platform.core.clock import Clock
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.core.once import RequestKey, run_once
from clearpoint.platform.partners.tables import partners
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

DEFAULT_TOKEN_TTL_S = 86_400
MAX_TOKEN_TTL_S = 7 * 86_400
ENROL = "EnrolAgent"
_TOKEN_RE = re.compile(r"cpe_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


class AgentState(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Agent:
    agent_id: str
    partner_id: str
    store_id: str
    display_name: str
    public_key: bytes
    state: AgentState
    enrolled_us: int
    revoked_us: int | None


@dataclass(frozen=True, slots=True)
class EnrolmentToken:
    token_id: str
    token: str  # empty on a replay: the secret is shown once
    expires_us: int


def _bad_token() -> Refusal:
    return Refusal(
        Reason.ENROLMENT_TOKEN_INVALID,
        "the enrolment token is not valid: unknown, already used or expired; ask the operator for a new one",
    )


def agent_of(row: Any) -> Agent:
    return Agent(
        row.agent_id,
        row.partner_id,
        row.store_id,
        row.display_name,
        bytes(row.public_key),
        AgentState(row.state),
        row.enrolled_us,
        row.revoked_us,
    )


async def create_token(
    conn: AsyncConnection, partner_id: str, store_id: str, ttl_s: int, now_us: int
) -> EnrolmentToken:
    check_store_id(store_id)
    ttl_s = ttl_s or DEFAULT_TOKEN_TTL_S
    if not 60 <= ttl_s <= MAX_TOKEN_TTL_S:
        raise field_invalid("ttl_seconds", f"ttl_seconds must be 60 to {MAX_TOKEN_TTL_S}, or 0 for a day")
    if await conn.scalar(select(partners.c.role).where(partners.c.partner_id == partner_id)) is None:
        raise Refusal(Reason.PARTNER_UNKNOWN, f"there is no partner {partner_id}")
    token_id = ids.new_id("enr")
    secret = secrets.token_urlsafe(32)
    expires_us = now_us + ttl_s * 1_000_000
    await conn.execute(
        insert(enrolment_tokens).values(
            token_id=token_id,
            secret_sha256=hashlib.sha256(secret.encode()).digest(),
            partner_id=partner_id,
            store_id=store_id,
            created_us=now_us,
            expires_us=expires_us,
        )
    )
    return EnrolmentToken(token_id, f"cpe_{token_id[4:]}_{secret}", expires_us)


def _public_key(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != 32:
        raise field_invalid("public_key", f"public_key must be a 32-byte Ed25519 key, not {len(raw)} bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise field_invalid("public_key", "public_key is not an Ed25519 public key") from None


async def enrol(db: Database, clock: Clock, token: str, public_key: bytes, display_name: str, proof: bytes) -> Agent:
    """Spend the token on this key; the same token and key again return the same agent."""
    if not 1 <= len(display_name) <= 200 or not display_name.isprintable():
        raise field_invalid("display_name", "display_name must be 1 to 200 printable characters")
    public = _public_key(public_key)
    if not scan_signature_valid(public, proof, enrol_proof_message(token, display_name)):
        raise Refusal(
            Reason.SCAN_SIGNATURE_INVALID,
            "proof_signature does not verify under public_key: the caller must hold its key",
        )
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        raise _bad_token()
    token_id = f"enr_{match.group(1)}"
    async with db.read() as conn:
        secret_sha256 = await conn.scalar(
            select(enrolment_tokens.c.secret_sha256).where(enrolment_tokens.c.token_id == token_id)
        )
    if secret_sha256 is None or not hmac.compare_digest(
        bytes(secret_sha256), hashlib.sha256(match.group(2).encode()).digest()
    ):
        raise _bad_token()

    async def spend(conn: AsyncConnection) -> str:
        now_us = clock()
        agent_id = ids.new_id("agt")
        spent = (
            await conn.execute(
                update(enrolment_tokens)
                .where(
                    enrolment_tokens.c.token_id == token_id,
                    enrolment_tokens.c.used_us.is_(None),
                    enrolment_tokens.c.expires_us > now_us,
                )
                .values(used_us=now_us, agent_id=agent_id)
                .returning(enrolment_tokens.c.partner_id, enrolment_tokens.c.store_id)
            )
        ).first()
        if spent is None:
            raise _bad_token()
        if await conn.scalar(select(agents.c.agent_id).where(agents.c.public_key == public_key)) is not None:
            raise field_invalid("public_key", "this public key is already enrolled; every agent needs its own key")
        await conn.execute(
            insert(agents).values(
                agent_id=agent_id,
                partner_id=spent.partner_id,
                store_id=spent.store_id,
                display_name=display_name,
                public_key=public_key,
                state=AgentState.ACTIVE.value,
                token_id=token_id,
                enrolled_us=now_us,
            )
        )
        return agent_id

    # The token's single use is its request: a refusal spends nothing, so it is not kept as the answer.
    agent_id = await run_once(
        db,
        clock,
        RequestKey(token_id, ENROL, token_id),
        hashlib.sha256(public_key).digest(),
        spend,
        str.encode,
        bytes.decode,
        clash=_bad_token,
        keep_refusals=False,
    )
    async with db.read() as conn:
        return agent_of((await conn.execute(select(agents).where(agents.c.agent_id == agent_id))).one())


async def revoke(conn: AsyncConnection, agent_id: str, now_us: int) -> Agent:
    """Revoke an agent (a no-op on one already revoked): its scans are refused from now on."""
    await conn.execute(
        update(agents)
        .where(agents.c.agent_id == agent_id, agents.c.state == AgentState.ACTIVE.value)
        .values(state=AgentState.REVOKED.value, revoked_us=now_us)
    )
    return await get(conn, agent_id)


async def get(conn: AsyncConnection, agent_id: str) -> Agent:
    row = (await conn.execute(select(agents).where(agents.c.agent_id == agent_id))).first()
    if row is None:
        raise Refusal(Reason.AGENT_UNKNOWN, f"there is no agent {agent_id}")
    return agent_of(row)


async def list_all(conn: AsyncConnection) -> list[Agent]:
    rows = await conn.execute(select(agents).order_by(agents.c.enrolled_us, agents.c.agent_id))
    return [agent_of(r) for r in rows]
