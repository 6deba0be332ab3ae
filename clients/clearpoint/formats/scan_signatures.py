"""The bytes an agent signs for each scan, shared by the agent (signs) and the platform (verifies).

The layout is specified in docs/scan-signatures.md, with test vectors in
tests/vectors/scan_signatures.json; a change here is a change of the wire contract.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from clearpoint.formats.ed25519 import signature_valid
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SCAN_CONTEXT = b"clearpoint.v1.SignedScan\n"
ENROL_CONTEXT = "clearpoint.v1.EnrolAgent\n"
STREAM_CONTEXT = b"clearpoint.v1.StreamScans\n"
CHALLENGE_BYTES = 32
MAX_ID_BYTES = 64
MAX_DATA_BYTES = 4096
MAX_SEQUENCE = 2**63 - 1
_SYMBOLOGY_CHARS = frozenset(b"]ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


class ScanFieldError(ValueError):
    """A scan field outside what the canonical form can carry; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class ScanFields:
    """Everything a scan signature covers."""

    agent_id: str
    scanner_id: str
    sequence: int
    time_us: int
    symbology: str
    data: bytes


def _short(field: str, value: str, allow_empty: bool = False) -> bytes:
    raw = value.encode("utf-8")
    if not raw and not allow_empty:
        raise ScanFieldError(field, f"{field} must not be empty")
    if len(raw) > MAX_ID_BYTES:
        raise ScanFieldError(field, f"{field} is {len(raw)} bytes; at most {MAX_ID_BYTES}")
    return bytes((len(raw),)) + raw


def canonical_bytes(scan: ScanFields) -> bytes:
    """The exact bytes signed: a context string, then each field length-prefixed or fixed-width."""
    if not scan.agent_id.isascii():
        raise ScanFieldError("agent_id", "agent_id must be ASCII")
    if not 1 <= scan.sequence <= MAX_SEQUENCE:
        raise ScanFieldError("sequence", f"sequence must be 1 to {MAX_SEQUENCE}")
    if not 0 <= scan.time_us <= MAX_SEQUENCE:
        raise ScanFieldError("scan_time", "scan_time must be at or after 1970-01-01T00:00:00Z")
    symbology = scan.symbology.encode("ascii", "replace")
    if symbology and (len(symbology) != 3 or symbology[0] != 0x5D or not set(symbology) <= _SYMBOLOGY_CHARS):
        raise ScanFieldError("symbology", "symbology must be empty or an AIM identifier like ]Q1")
    if not 1 <= len(scan.data) <= MAX_DATA_BYTES:
        raise ScanFieldError("data", f"data must be 1 to {MAX_DATA_BYTES} bytes, not {len(scan.data)}")
    return b"".join(
        (
            SCAN_CONTEXT,
            _short("agent_id", scan.agent_id),
            _short("scanner_id", scan.scanner_id),
            struct.pack(">QQ", scan.sequence, scan.time_us),
            bytes((len(symbology),)) + symbology,
            struct.pack(">I", len(scan.data)),
            scan.data,
        )
    )


def sign_scan(key: Ed25519PrivateKey, scan: ScanFields) -> bytes:
    return key.sign(canonical_bytes(scan))


def scan_signature_valid(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is the key's signature over `message` (the canonical bytes)."""
    return signature_valid(public, signature, message)


def stream_proof_message(challenge: bytes, agent_id: str) -> bytes:
    """What the agent signs when a scan stream opens: the platform's fresh challenge, so a proof
    seen on one stream is worth nothing on another. Raises ScanFieldError for what cannot be one."""
    if len(challenge) != CHALLENGE_BYTES:
        raise ScanFieldError("challenge", f"challenge must be {CHALLENGE_BYTES} bytes, not {len(challenge)}")
    if not agent_id.isascii() or not 1 <= len(agent_id) <= MAX_ID_BYTES:
        raise ScanFieldError("agent_id", f"agent_id must be 1 to {MAX_ID_BYTES} ASCII characters")
    return STREAM_CONTEXT + challenge + agent_id.encode("ascii")


def enrol_proof_message(token: str, display_name: str) -> bytes:
    """What the agent signs to prove, at enrolment, that it holds the key it registers."""
    return f"{ENROL_CONTEXT}{token}\n{display_name}".encode()
