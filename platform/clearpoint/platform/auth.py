"""Principals and API keys: keys are shown once and stored as SHA-256 of their secret part.

The secret is 32 random bytes, so a fast hash is as strong as a slow one here, and it keeps the
check cheap on every call. Verified keys are remembered for a short time to spare a database read
per request; revocation therefore takes effect within CACHE_SECONDS.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from clearpoint.platform.ids import new_id
from clearpoint.platform.schema import api_keys, partners
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

CACHE_SECONDS = 30.0
CACHE_ENTRIES = 10_000
_KEY_RE = re.compile(r"cpk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")

ROLE_PARTNER = "partner"
ROLE_OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Principal:
    partner_id: str
    name: str
    role: str

    @property
    def is_operator(self) -> bool:
        return self.role == ROLE_OPERATOR


current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("current_principal")


def new_api_key() -> tuple[str, str, bytes]:
    """(full key to hand out, key id, hash of the secret to store)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"cpk_{key_id}_{secret}", key_id, hashlib.sha256(secret.encode()).digest()


async def create_partner(conn: AsyncConnection, name: str, role: str, now_us: int) -> tuple[str, str]:
    """Insert a partner with one API key; returns (partner id, API key)."""
    partner_id = new_id("ptn")
    key, key_id, digest = new_api_key()
    await conn.execute(insert(partners).values(partner_id=partner_id, name=name, role=role, created_us=now_us))
    await conn.execute(
        insert(api_keys).values(key_id=key_id, partner_id=partner_id, secret_sha256=digest, created_us=now_us)
    )
    return partner_id, key


class Authenticator:
    def __init__(self) -> None:
        self._cache: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    async def authenticate(self, conn_factory, api_key: str) -> Principal | None:  # type: ignore[no-untyped-def]
        """The principal an API key belongs to, or None. `conn_factory` opens a read transaction."""
        cache_key = hashlib.sha256(api_key.encode()).digest()
        hit = self._cache.get(cache_key)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        match = _KEY_RE.fullmatch(api_key)
        if match is None:
            return None
        key_id, secret = match.groups()
        async with conn_factory() as conn:
            row = (
                await conn.execute(
                    select(api_keys.c.secret_sha256, partners.c.partner_id, partners.c.name, partners.c.role)
                    .join(partners, partners.c.partner_id == api_keys.c.partner_id)
                    .where(api_keys.c.key_id == key_id, api_keys.c.revoked_us.is_(None))
                )
            ).first()
        if row is None or not hmac.compare_digest(bytes(row.secret_sha256), hashlib.sha256(secret.encode()).digest()):
            return None
        principal = Principal(row.partner_id, row.name, row.role)
        self._cache[cache_key] = (now + CACHE_SECONDS, principal)
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return principal
