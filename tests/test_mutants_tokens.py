"""Scan fields at the edges of what the canonical form carries, and refusals a person can act on.

The limits are the wire contract (docs/scan-signatures.md): a value exactly at a limit is signable,
one past it is refused by field name, and the refusal's text (shown to the cashier by the agent and
returned by the platform) says which field is wrong.
"""

from __future__ import annotations

import struct

import pytest
from clearpoint.formats.scan_signatures import (
    MAX_DATA_BYTES,
    MAX_ID_BYTES,
    MAX_SEQUENCE,
    ScanFieldError,
    ScanFields,
    canonical_bytes,
    scan_signature_valid,
    sign_scan,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

AGENT = "agt_0011223344556677"


def test_values_exactly_at_each_limit_are_signed_and_verify() -> None:
    key = Ed25519PrivateKey.generate()
    longest_id = "a" * MAX_ID_BYTES
    scan = ScanFields(longest_id, "é" * (MAX_ID_BYTES // 2), MAX_SEQUENCE, MAX_SEQUENCE, "]Q1", b"x" * MAX_DATA_BYTES)
    message = canonical_bytes(scan)
    assert scan_signature_valid(key.public_key(), sign_scan(key, scan), message)
    # The fields are all there, at full length: the two ids, both counters, the AIM id, the data.
    assert bytes((MAX_ID_BYTES,)) + longest_id.encode() in message
    assert bytes((MAX_ID_BYTES,)) + ("é" * (MAX_ID_BYTES // 2)).encode() in message
    assert struct.pack(">QQ", MAX_SEQUENCE, MAX_SEQUENCE) in message
    assert message.endswith(b"\x03]Q1" + struct.pack(">I", MAX_DATA_BYTES) + b"x" * MAX_DATA_BYTES)


@pytest.mark.parametrize(
    ("scan", "field"),
    [
        (ScanFields("a" * (MAX_ID_BYTES + 1), "t", 1, 0, "", b"x"), "agent_id"),
        (ScanFields(AGENT, "é" * (MAX_ID_BYTES // 2) + "t", 1, 0, "", b"x"), "scanner_id"),
        (ScanFields(AGENT, "t", 1, MAX_SEQUENCE + 1, "", b"x"), "scan_time"),
    ],
)
def test_one_past_a_limit_is_refused_by_name(scan: ScanFields, field: str) -> None:
    with pytest.raises(ScanFieldError) as caught:
        canonical_bytes(scan)
    assert caught.value.field == field


@pytest.mark.parametrize("symbology", ["]Qé", "]\u00b91", "\u205dQ1", "]Q\U0001f600"])
def test_a_non_ascii_symbology_is_a_field_error_not_a_crash(symbology: str) -> None:
    """A scanner that garbles its AIM identifier must get the symbology refusal, which the agent
    reports as an unreadable scan; an encoding error would escape as an internal failure."""
    with pytest.raises(ScanFieldError) as caught:
        canonical_bytes(ScanFields(AGENT, "t", 1, 0, symbology, b"x"))
    assert caught.value.field == "symbology"


@pytest.mark.parametrize(
    ("scan", "says"),
    [
        (ScanFields("", "t", 1, 0, "", b"x"), "empty"),
        (ScanFields("agt_é", "t", 1, 0, "", b"x"), "ASCII"),
        (ScanFields(AGENT, "t" * 65, 1, 0, "", b"x"), f"at most {MAX_ID_BYTES}"),
        (ScanFields(AGENT, "t", 0, 0, "", b"x"), str(MAX_SEQUENCE)),
        (ScanFields(AGENT, "t", 1, -1, "", b"x"), "1970"),
        (ScanFields(AGENT, "t", 1, 0, "Q1", b"x"), "AIM"),
        (ScanFields(AGENT, "t", 1, 0, "", b""), str(MAX_DATA_BYTES)),
    ],
)
def test_the_refusal_text_names_the_field_and_what_is_wrong(scan: ScanFields, says: str) -> None:
    """The agent shows `unreadable scan (<text>)` and the platform answers `<field>: <text>`."""
    with pytest.raises(ScanFieldError) as caught:
        canonical_bytes(scan)
    text = str(caught.value)
    assert text.startswith(caught.value.field + " ")
    assert says in text
