"""Who an API key belongs to. Keys are stored as SHA-256 of their secret part.

The secret is 32 random bytes, so a fast hash is as strong as a slow one here, and it keeps the
check cheap on every call. Verified keys are remembered for a short time to spare a database read
per request; a revocation therefore takes effect within CACHE_SECONDS on every process (at once
on the one that revoked it), and a rotated key stops at its expiry to the microsecond.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from clearpoint.platform.core.clock import Clock
from clearpoint.platform.core.principals import Principal, Role
from clearpoint.platform.partners.tables import api_keys, partners
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

CACHE_SECONDS = 5.0
CACHE_ENTRIES = 10_000
_KEY_RE = re.compile(r"cpk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")

_KEY_HOLDER = (
    select(api_keys.c.secret_sha256, api_keys.c.expires_us, partners.c.partner_id, partners.c.name, partners.c.role)
    .join(partners, partners.c.partner_id == api_keys.c.partner_id)
    .where(api_keys.c.revoked_us.is_(None))
)


class Authenticator:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        # sha256(key) -> (monotonic time the entry lapses, the key's expiry in clock µs or None, key id, principal)
        self._cache: OrderedDict[bytes, tuple[float, int | None, str, Principal]] = OrderedDict()

    def forget(self, key_id: str) -> None:
        """Drop a key from this process's cache (it was just revoked or rotated here)."""
        for cache_key in [k for k, entry in self._cache.items() if entry[2] == key_id]:
            del self._cache[cache_key]

    async def authenticate(
        self, read: Callable[[], AbstractAsyncContextManager[AsyncConnection]], api_key: str
    ) -> Principal | None:
        """The principal an API key belongs to, or None. `read` opens a read transaction."""
        cache_key = hashlib.sha256(api_key.encode()).digest()
        hit = self._cache.get(cache_key)
        now = time.monotonic()
        if hit and hit[0] > now and (hit[1] is None or hit[1] > self._clock()):
            return hit[3]
        match = _KEY_RE.fullmatch(api_key)
        if match is None:
            return None
        key_id, secret = match.groups()
        async with read() as conn:
            row = (await conn.execute(_KEY_HOLDER.where(api_keys.c.key_id == key_id))).first()
        if row is None or not hmac.compare_digest(bytes(row.secret_sha256), hashlib.sha256(secret.encode()).digest()):
            return None
        if row.expires_us is not None and row.expires_us <= self._clock():
            return None
        principal = Principal(row.partner_id, row.name, Role(row.role))
        self._cache[cache_key] = (now + CACHE_SECONDS, row.expires_us, key_id, principal)
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return principal
