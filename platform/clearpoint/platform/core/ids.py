"""Identifiers: a type prefix and random hex, so an id says what it names and cannot be guessed."""

from __future__ import annotations

import re
import secrets

# Raw byte lengths; campaign and voucher ids travel inside voucher codes as these raw bytes.
CAMPAIGN_BYTES = 6
VOUCHER_BYTES = 8
_LENGTHS = {
    "ptn": 6,
    "cmp": CAMPAIGN_BYTES,
    "vch": VOUCHER_BYTES,
    "rdm": 8,
    "key": 6,
    "agt": 8,
    "enr": 6,
    "mbr": 8,
    "xch": 8,
    "adj": 8,
    "str": 8,  # an agent's scan stream (the fleet tells a reconnect from the stream it replaces)
}


def new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(_LENGTHS[kind])}"


def is_id(kind: str, value: str) -> bool:
    return re.fullmatch(rf"{kind}_[0-9a-f]{{{2 * _LENGTHS[kind]}}}", value) is not None


def to_bytes(kind: str, value: str) -> bytes:
    if not is_id(kind, value):
        raise ValueError(f"not a {kind} id: {value!r}")
    return bytes.fromhex(value[len(kind) + 1 :])


def from_bytes(kind: str, raw: bytes) -> str:
    if len(raw) != _LENGTHS[kind]:
        raise ValueError(f"a {kind} id has {_LENGTHS[kind]} bytes, not {len(raw)}")
    return f"{kind}_{raw.hex()}"
