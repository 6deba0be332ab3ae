"""Voucher codes checked before anything is written: parsed, and their issuer signature verified.

Only a code that verifies is trusted to name its voucher and campaign; every refusal says why
(malformed, too long, unknown version, unknown key, bad signature, outside its window).
"""

from __future__ import annotations

from dataclasses import dataclass

from clearpoint.formats import voucher_codes
from clearpoint.platform.core import ids
from clearpoint.platform.core.clock import SECOND_US
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.keys.keystore import KeyStore

MESSAGES = {
    Reason.VOUCHER_UNKNOWN: "this voucher was never issued",
    Reason.CAMPAIGN_MISMATCH: "this voucher belongs to another campaign",
    Reason.KEY_RETIRED: "this voucher was signed by a retired issuer key and is no longer valid",
    Reason.VOUCHER_NOT_YET_VALID: "this voucher is not valid yet",
    Reason.VOUCHER_EXPIRED: "this voucher has expired",
    Reason.STORE_NOT_ALLOWED: "this voucher cannot be redeemed at this store",
    Reason.VOUCHER_ALREADY_REDEEMED: "this voucher has already been redeemed",
    Reason.STOCK_EXHAUSTED: "no prizes are left in this campaign",
}


def refusal(reason: Reason) -> Refusal:
    return Refusal(reason, MESSAGES[reason])


@dataclass(frozen=True, slots=True)
class CheckedCode:
    """A code whose issuer signature verified: its claims can be trusted."""

    kid: str
    voucher_id: str
    campaign_id: str
    not_before_us: int
    expires_us: int

    def check_window(self, now_us: int) -> None:
        if now_us < self.not_before_us:
            raise refusal(Reason.VOUCHER_NOT_YET_VALID)
        if now_us >= self.expires_us:
            raise refusal(Reason.VOUCHER_EXPIRED)


class CodeChecker:
    def __init__(self, db: Database, keys: KeyStore) -> None:
        self._db = db
        self._keys = keys

    async def check(self, code: object) -> CheckedCode:
        """Parse and verify a code's signature; refuse with a specific reason otherwise."""
        if not isinstance(code, str):
            raise Refusal(Reason.CODE_MALFORMED, "a voucher code is text")
        try:
            parsed = voucher_codes.parse_code(code)
        except voucher_codes.TokenError as exc:
            raise Refusal(exc.reason, exc.message) from None
        kid = parsed.kid.hex()
        public = self._keys.cached_public_key(kid)
        if public is None:
            async with self._db.read() as conn:
                found = await self._keys.public_key(conn, kid)
            if found is None:
                raise Refusal(Reason.KEY_UNKNOWN, f"this code names issuer key {kid}, which the platform does not know")
            public = found[0]
        try:
            voucher_codes.verify_signature(parsed, public)
        except voucher_codes.TokenError as exc:
            raise Refusal(exc.reason, exc.message) from None
        claims = parsed.claims
        return CheckedCode(
            kid=kid,
            voucher_id=ids.from_bytes("vch", claims.voucher_id),
            campaign_id=ids.from_bytes("cmp", claims.campaign_id),
            not_before_us=claims.not_before * SECOND_US,
            expires_us=claims.expires * SECOND_US,
        )
