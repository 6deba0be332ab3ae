"""API keys: created, listed, revoked, and rotated with an overlap.

A key is "cpk_<key_id>_<secret>"; only a hash of the secret is stored. A rotation gives a new key
at once and lets the old one work until the overlap ends, so a partner can move its clients over
without a gap. An operator manages anyone's keys; a partner its own (another's is unknown to it).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.core.principals import Principal
from clearpoint.platform.partners.tables import api_keys, partners
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

MAX_OVERLAP_US = 30 * 86_400 * 1_000_000


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    key_id: str
    partner_id: str
    created_us: int
    revoked_us: int | None
    expires_us: int | None
    replaced_by: str | None

    def active(self, now_us: int) -> bool:
        return self.revoked_us is None and (self.expires_us is None or self.expires_us > now_us)


def _info(row: Any) -> ApiKeyInfo:
    return ApiKeyInfo(row.key_id, row.partner_id, row.created_us, row.revoked_us, row.expires_us, row.replaced_by)


_COLUMNS = (
    api_keys.c.key_id,
    api_keys.c.partner_id,
    api_keys.c.created_us,
    api_keys.c.revoked_us,
    api_keys.c.expires_us,
    api_keys.c.replaced_by,
)


def new_api_key() -> tuple[str, str, bytes]:
    """(full key to hand out, key id, hash of the secret to store)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"cpk_{key_id}_{secret}", key_id, hashlib.sha256(secret.encode()).digest()


async def insert_key(conn: AsyncConnection, partner_id: str, now_us: int) -> tuple[ApiKeyInfo, str]:
    """A new key for `partner_id`; returns it and the key itself (shown once, never kept in clear)."""
    key, key_id, digest = new_api_key()
    await conn.execute(
        insert(api_keys).values(key_id=key_id, partner_id=partner_id, secret_sha256=digest, created_us=now_us)
    )
    return ApiKeyInfo(key_id, partner_id, now_us, None, None, None), key


def whose(caller: Principal, partner_id: str) -> str:
    """The partner a call is about: the caller's own when empty; only an operator may name another."""
    if not partner_id or partner_id == caller.partner_id:
        return caller.partner_id
    if not caller.is_operator:
        raise Refusal(Reason.PARTNER_UNKNOWN, f"no partner {partner_id!r} visible to the caller", field="partner_id")
    return partner_id


async def create(conn: AsyncConnection, caller: Principal, partner_id: str, now_us: int) -> tuple[ApiKeyInfo, str]:
    owner = whose(caller, partner_id)
    if await conn.scalar(select(partners.c.partner_id).where(partners.c.partner_id == owner)) is None:
        raise Refusal(Reason.PARTNER_UNKNOWN, f"no partner {owner!r}", field="partner_id")
    return await insert_key(conn, owner, now_us)


async def list_for(conn: AsyncConnection, caller: Principal, partner_id: str) -> list[ApiKeyInfo]:
    owner = whose(caller, partner_id)
    rows = await conn.execute(
        select(*_COLUMNS).where(api_keys.c.partner_id == owner).order_by(api_keys.c.created_us, api_keys.c.key_id)
    )
    return [_info(r) for r in rows]


async def _visible(conn: AsyncConnection, caller: Principal, key_id: str, *, lock: bool = False) -> ApiKeyInfo:
    query = select(*_COLUMNS).where(api_keys.c.key_id == key_id)
    if not caller.is_operator:
        query = query.where(api_keys.c.partner_id == caller.partner_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise Refusal(Reason.API_KEY_UNKNOWN, f"no API key {key_id!r} visible to the caller", field="key_id")
    return _info(row)


async def revoke(conn: AsyncConnection, caller: Principal, key_id: str, now_us: int) -> ApiKeyInfo:
    """Revoke `key_id`; a key revoked already is returned as it is."""
    found = await _visible(conn, caller, key_id, lock=True)
    if found.revoked_us is not None:
        return found
    await conn.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_us=now_us))
    return await _visible(conn, caller, key_id)


async def rotate(
    conn: AsyncConnection, caller: Principal, key_id: str, overlap_us: int, now_us: int
) -> tuple[ApiKeyInfo, ApiKeyInfo, str]:
    """A new key for the owner of `key_id`; the old one stops `overlap_us` from now."""
    if not 0 <= overlap_us <= MAX_OVERLAP_US:
        raise field_invalid("overlap", "overlap must be 0 to 30 days")
    old = await _visible(conn, caller, key_id, lock=True)
    if not old.active(now_us):
        raise Refusal(Reason.API_KEY_INACTIVE, f"API key {key_id} is revoked or expired", field="key_id")
    new, key = await insert_key(conn, old.partner_id, now_us)
    ends = now_us + overlap_us if old.expires_us is None else min(old.expires_us, now_us + overlap_us)
    await conn.execute(
        update(api_keys).where(api_keys.c.key_id == key_id).values(expires_us=ends, replaced_by=new.key_id)
    )
    return await _visible(conn, caller, key_id), new, key
