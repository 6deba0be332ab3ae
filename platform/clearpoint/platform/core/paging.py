"""Paging: opaque, tamper-evident page tokens bound to the query they continue.

A list is read one row past the page; if that row exists there is a next page, and its token
names the last row shown (time and id), so a page never repeats or skips a row that existed
when the first page was read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from clearpoint.platform.core.errors import Reason, Refusal, field_invalid

T = TypeVar("T")

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
        bad = Refusal(Reason.PAGE_TOKEN_INVALID, "page_token is not one this server issued for this query")
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


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: read `limit + 1` rows after `after`, then `cut` them."""

    tokens: PageTokens
    scope: str
    limit: int
    after: tuple[int, str] | None

    def cut(self, rows: Sequence[T], position: Callable[[T], tuple[int, str]]) -> tuple[Sequence[T], str]:
        """The rows to show and the token of the next page ("" when this is the last)."""
        if len(rows) <= self.limit:
            return rows, ""
        shown = rows[: self.limit]
        return shown, self.tokens.make(self.scope, position(shown[-1]))


def next_page(tokens: PageTokens, scope: str, requested_size: int, token: str) -> Page:
    return Page(tokens, scope, page_size(requested_size), tokens.read(scope, token))
