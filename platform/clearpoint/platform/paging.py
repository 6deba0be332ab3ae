"""Opaque, tamper-evident page tokens bound to the query they continue."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from clearpoint.platform.errors import Refusal, field_invalid

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def page_size(requested: int) -> int:
    if requested < 0 or requested > MAX_PAGE:
        raise field_invalid("page_size", f"page_size must be 0 to {MAX_PAGE}")
    return requested or DEFAULT_PAGE


class PageTokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:12]

    def make(self, scope: str, after: tuple[int, str]) -> str:
        body = json.dumps([scope, after[0], after[1]], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(self._mac(body) + body).decode().rstrip("=")

    def read(self, scope: str, token: str) -> tuple[int, str] | None:
        if not token:
            return None
        bad = Refusal("PAGE_TOKEN_INVALID", "page_token is not one this server issued for this query")
        if len(token) > 512:
            raise bad
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, body = raw[:12], raw[12:]
            if not hmac.compare_digest(mac, self._mac(body)):
                raise bad
            got_scope, us, key = json.loads(body)
        except (ValueError, TypeError):
            raise bad from None
        if got_scope != scope or not isinstance(us, int) or not isinstance(key, str):
            raise bad
        return us, key
