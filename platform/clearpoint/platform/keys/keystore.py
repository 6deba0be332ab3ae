"""The key store: issuer keys created, rotated and retired; the active one unsealed to sign.

Private keys are stored only as AES-256-GCM ciphertext under the platform's master key (bound to
their key id as associated data), are unsealed in memory only to sign, and have no printable form.
Public halves never change, so they are cached for verifying codes.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clearpoint.platform.core.clock import Clock
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.keys.master_key import MasterKey
from clearpoint.platform.keys.tables import issuer_keys
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)


class KeyState(StrEnum):
    ACTIVE = "active"  # signs new vouchers; at most one
    STANDBY = "standby"  # created while another was active; becomes active by a rotation
    ROTATED = "rotated"  # signs nothing new; the codes it signed stay valid
    RETIRED = "retired"  # the codes it signed are refused


@dataclass(frozen=True, slots=True)
class IssuerKeyInfo:
    """The public view of a key."""

    kid: str
    state: KeyState
    public_key: bytes
    created_us: int
    retired_us: int | None


@dataclass(frozen=True, slots=True, repr=False)
class Signer:
    """The active key, unsealed, for signing. No repr, so it cannot reach a log line by accident."""

    kid: str
    private_key: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"Signer(kid={self.kid!r}, private_key=<hidden>)"


def _info(row: Any) -> IssuerKeyInfo:
    return IssuerKeyInfo(row.kid, KeyState(row.state), bytes(row.public_key), row.created_us, row.retired_us)


class KeyStore:
    def __init__(self, master: MasterKey, clock: Clock) -> None:
        self._master = master
        self._clock = clock
        self._public: dict[str, Ed25519PublicKey] = {}
        self._signer: Signer | None = None

    async def _insert(self, conn: AsyncConnection, state: KeyState) -> IssuerKeyInfo:
        private = Ed25519PrivateKey.generate()
        raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        kid = secrets.token_hex(4)
        now = self._clock()
        await conn.execute(
            insert(issuer_keys).values(
                kid=kid,
                state=state.value,
                public_key=public,
                private_key_sealed=self._master.seal(raw_private, kid.encode()),
                created_us=now,
            )
        )
        log.info("issuer key %s created (%s)", kid, state.value)
        return IssuerKeyInfo(kid, state, public, now, None)

    async def create(self, conn: AsyncConnection) -> IssuerKeyInfo:
        active = await conn.scalar(select(issuer_keys.c.kid).where(issuer_keys.c.state == KeyState.ACTIVE))
        return await self._insert(conn, KeyState.STANDBY if active else KeyState.ACTIVE)

    async def rotate(self, conn: AsyncConnection) -> tuple[IssuerKeyInfo, IssuerKeyInfo | None]:
        previous = (
            await conn.execute(
                update(issuer_keys)
                .where(issuer_keys.c.state == KeyState.ACTIVE)
                .values(state=KeyState.ROTATED.value)
                .returning(*issuer_keys.c)
            )
        ).first()
        try:
            new = await self._insert(conn, KeyState.ACTIVE)
        except IntegrityError as exc:  # another rotation won the race for the single active slot
            raise Refusal(Reason.ISSUER_KEY_STATE, "another key rotation happened at the same time; retry") from exc
        self._signer = None
        return new, (_info(previous) if previous else None)

    async def retire(self, conn: AsyncConnection, kid: str) -> IssuerKeyInfo:
        row = (await conn.execute(select(issuer_keys).where(issuer_keys.c.kid == kid))).first()
        if row is None:
            raise Refusal(Reason.ISSUER_KEY_UNKNOWN, f"no issuer key {kid!r}")
        if row.state == KeyState.ACTIVE:
            raise Refusal(Reason.ISSUER_KEY_STATE, f"key {kid} is the active key: rotate to a new key first")
        if row.state == KeyState.RETIRED:
            return _info(row)
        row = (
            await conn.execute(
                update(issuer_keys)
                .where(issuer_keys.c.kid == kid)
                .values(state=KeyState.RETIRED.value, retired_us=self._clock())
                .returning(*issuer_keys.c)
            )
        ).one()
        log.info("issuer key %s retired", kid)
        return _info(row)

    async def list(self, conn: AsyncConnection) -> list[IssuerKeyInfo]:
        rows = await conn.execute(select(issuer_keys).order_by(issuer_keys.c.created_us.desc(), issuer_keys.c.kid))
        return [_info(r) for r in rows]

    async def signer(self, conn: AsyncConnection) -> Signer:
        """The active key, unsealed once and kept until a rotation in this process (or a failed check)."""
        row = (
            await conn.execute(
                select(issuer_keys.c.kid, issuer_keys.c.private_key_sealed).where(
                    issuer_keys.c.state == KeyState.ACTIVE
                )
            )
        ).first()
        if row is None:
            raise Refusal(Reason.NO_ACTIVE_KEY, "the platform has no active issuer key; an operator must create one")
        if self._signer is None or self._signer.kid != row.kid:
            raw = self._unseal(row.kid, bytes(row.private_key_sealed))
            self._signer = Signer(row.kid, Ed25519PrivateKey.from_private_bytes(raw))
        return self._signer

    async def signer_for(self, conn: AsyncConnection, kid: str) -> Signer:
        """A not-retired key by id, unsealed: to sign again a code it signed before."""
        row = (
            await conn.execute(
                select(issuer_keys.c.state, issuer_keys.c.private_key_sealed).where(issuer_keys.c.kid == kid)
            )
        ).first()
        if row is None:
            raise Refusal(Reason.ISSUER_KEY_UNKNOWN, f"no issuer key {kid!r}")
        if row.state == KeyState.RETIRED:
            raise Refusal(Reason.KEY_RETIRED, f"issuer key {kid} was retired: the codes it signed are no longer valid")
        return Signer(kid, Ed25519PrivateKey.from_private_bytes(self._unseal(kid, bytes(row.private_key_sealed))))

    def _unseal(self, kid: str, sealed: bytes) -> bytes:
        try:
            return self._master.unseal(sealed, kid.encode())
        except InvalidTag:
            raise RuntimeError(
                f"the master key does not unseal issuer key {kid}: is this the master key file "
                "the key store was created with?"
            ) from None

    async def public_key(self, conn: AsyncConnection, kid: str) -> tuple[Ed25519PublicKey, KeyState] | None:
        """A key's public half and its state now; public halves are immutable, so they are cached."""
        row = (
            await conn.execute(select(issuer_keys.c.public_key, issuer_keys.c.state).where(issuer_keys.c.kid == kid))
        ).first()
        if row is None:
            return None
        key = self._public.get(kid)
        if key is None:
            key = self._public[kid] = Ed25519PublicKey.from_public_bytes(bytes(row.public_key))
        return key, KeyState(row.state)

    def cached_public_key(self, kid: str) -> Ed25519PublicKey | None:
        return self._public.get(kid)

    async def load_public_keys(self, conn: AsyncConnection) -> dict[str, KeyState]:
        """Fill the public-key cache; returns each key's state."""
        states: dict[str, KeyState] = {}
        for row in await conn.execute(select(issuer_keys.c.kid, issuer_keys.c.public_key, issuer_keys.c.state)):
            if row.kid not in self._public:
                self._public[row.kid] = Ed25519PublicKey.from_public_bytes(bytes(row.public_key))
            states[row.kid] = KeyState(row.state)
        return states
