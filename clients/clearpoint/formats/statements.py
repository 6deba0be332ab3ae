"""The bytes of a settlement statement, shared by the platform (writes and signs) and partners
(verify). Specified in docs/clearing.md; a change here is a change of the contract.

A statement is a JSON object in the JSON Canonicalization Scheme (RFC 8785): one byte form for one
content, which any JCS library reproduces. Every number in it is a string of digits (as int64 is in
protobuf's JSON mapping), so no reader's floating point touches an amount. The content hash is
SHA-256 of those bytes, and the platform's statement key signs the hash (Ed25519, RFC 8032).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import rfc8785
from clearpoint.formats.ed25519 import signature_valid
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

FORMAT = "clearpoint-statement/1"
MAX_BYTES = 1 << 20  # far above a statement's size; a bigger input is refused before it is parsed


class StatementInvalid(ValueError):
    """Bytes that are not a statement the platform signed, and why."""


def canonical(body: Mapping[str, Any]) -> bytes:
    """The one byte form of a statement's content (RFC 8785)."""
    return rfc8785.dumps(dict(body))


def content_hash(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


def key_id(public_key: bytes) -> str:
    """A statement key's short name: the first 8 bytes of SHA-256 of its raw public key, in hex."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def sign(private_key: Ed25519PrivateKey, content: bytes) -> bytes:
    """The platform's signature over the content hash."""
    return private_key.sign(content_hash(content))


def verify(content: bytes, signature: bytes, public_key: bytes) -> dict[str, Any]:
    """The statement in `content`, once its signature, its byte form and its format are checked;
    StatementInvalid says which failed."""
    if len(content) > MAX_BYTES:
        raise StatementInvalid(f"a statement is at most {MAX_BYTES} bytes, not {len(content)}")
    if not signature_valid(public_key, signature, content_hash(content)):
        raise StatementInvalid("the signature does not match these bytes under this key")
    try:
        body = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StatementInvalid(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise StatementInvalid(f"not a {FORMAT} statement")
    if canonical(body) != content:
        raise StatementInvalid("signed, but not in the canonical byte form (RFC 8785)")
    return body
