"""The bytes of a settlement statement, shared by the platform (writes and signs) and partners
(verify). Specified in docs/clearing.md; a change here is a change of the contract.

A statement is a JSON object in the JSON Canonicalization Scheme (RFC 8785): one byte form for one
content, which any JCS library reproduces. Every number in it is a string of digits (as int64 is in
protobuf's JSON mapping), so no reader's floating point touches an amount. The content hash is
SHA-256 of those bytes, and the platform's statement key signs the hash (Ed25519, RFC 8032).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
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
    try:
        again = canonical(body)
    except ValueError:  # a number JCS cannot carry exactly
        again = b""
    if again != content:
        raise StatementInvalid("signed, but not in the canonical byte form (RFC 8785)")
    return body


# -- exports ------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "statement_id",
    "channel",
    "period_start",
    "period_end",
    "row",
    "direction",
    "rule_version",
    "points",
    "transfers",
    "price",
    "currency",
    "exact_amount",
    "amount",
    "owed_by_channel",
    "owed_to_channel",
    "net_to_channel",
)


def to_csv(body: Mapping[str, Any]) -> str:
    """A verified statement as CSV (RFC 4180): one row per line, then one per currency's total."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    common = {
        "statement_id": body["statement_id"],
        "channel": body["channel"]["id"],
        "period_start": body["period"]["start"],
        "period_end": body["period"]["end"],
    }
    for line in body["lines"]:
        writer.writerow({**common, "row": "line", **{k: line[k] for k in CSV_COLUMNS if k in line}})
    for total in body["totals"]:
        writer.writerow({**common, "row": "total", **total})
    return out.getvalue()


def to_envelope(content: bytes, signature: bytes, signed_by: str) -> dict[str, Any]:
    """A statement as one JSON document that keeps everything needed to verify it later: the
    statement, its signature (base64) and the key's id. Its `statement` re-encodes (RFC 8785) to
    the signed bytes."""
    return {
        "statement": json.loads(content),
        "content_sha256": content_hash(content).hex(),
        "signature": base64.b64encode(signature).decode(),
        "key_id": signed_by,
    }


def from_envelope(envelope: Mapping[str, Any]) -> tuple[bytes, bytes, str]:
    """The signed bytes, the signature and the key id of an exported statement."""
    try:
        return (
            canonical(envelope["statement"]),
            base64.b64decode(envelope["signature"], validate=True),
            str(envelope["key_id"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StatementInvalid(f"not an exported statement: {exc}") from None
