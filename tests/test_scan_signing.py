"""Scan signatures against the committed vectors and an independent build of the signed bytes."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from clearpoint.formats.scan_signatures import (
    ScanFieldError,
    ScanFields,
    canonical_bytes,
    scan_signature_valid,
    sign_scan,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "tests" / "vectors" / "scan_signatures.json").read_text())


def from_the_table(v: dict) -> bytes:
    """docs/scan-signatures.md's table, written out with struct rather than the product's code."""
    agent, scanner, sym = v["agent_id"].encode(), v["scanner_id"].encode(), v["symbology"].encode()
    data = bytes.fromhex(v["data_hex"])
    return (
        b"clearpoint.v1.SignedScan\n"
        + struct.pack("B", len(agent))
        + agent
        + struct.pack("B", len(scanner))
        + scanner
        + struct.pack(">Q", v["sequence"])
        + struct.pack(">Q", v["time_us"])
        + struct.pack("B", len(sym))
        + sym
        + struct.pack(">I", len(data))
        + data
    )


def fields(v: dict) -> ScanFields:
    return ScanFields(
        v["agent_id"], v["scanner_id"], v["sequence"], v["time_us"], v["symbology"], bytes.fromhex(v["data_hex"])
    )


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=lambda v: v["title"])
def test_vectors(v: dict) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTORS["private_key_seed_hex"]))
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(VECTORS["public_key_hex"]))
    message = canonical_bytes(fields(v))
    assert message.hex() == v["canonical_hex"] == from_the_table(v).hex()
    assert sign_scan(key, fields(v)).hex() == v["signature_hex"]
    assert scan_signature_valid(public, bytes.fromhex(v["signature_hex"]), message)
    assert not scan_signature_valid(
        Ed25519PrivateKey.generate().public_key(), bytes.fromhex(v["signature_hex"]), message
    )


def test_the_committed_vectors_are_current() -> None:
    done = subprocess.run([sys.executable, "scripts/make_scan_vectors.py", "--check"], cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_every_field_is_covered() -> None:
    key = Ed25519PrivateKey.generate()
    base = ScanFields("agt_0011223344556677", "till-1", 7, 1_000_000, "]Q1", b"CP1:ABC")
    signature = sign_scan(key, base)
    changes = [
        base.__class__("agt_0011223344556678", "till-1", 7, 1_000_000, "]Q1", b"CP1:ABC"),
        base.__class__("agt_0011223344556677", "till-2", 7, 1_000_000, "]Q1", b"CP1:ABC"),
        base.__class__("agt_0011223344556677", "till-1", 8, 1_000_000, "]Q1", b"CP1:ABC"),
        base.__class__("agt_0011223344556677", "till-1", 7, 1_000_001, "]Q1", b"CP1:ABC"),
        base.__class__("agt_0011223344556677", "till-1", 7, 1_000_000, "]Q0", b"CP1:ABC"),
        base.__class__("agt_0011223344556677", "till-1", 7, 1_000_000, "", b"CP1:ABC"),
        base.__class__("agt_0011223344556677", "till-1", 7, 1_000_000, "]Q1", b"CP1:ABD"),
    ]
    for changed in changes:
        assert not scan_signature_valid(key.public_key(), signature, canonical_bytes(changed)), changed


@given(
    st.text(min_size=1, max_size=20).filter(lambda s: len(s.encode()) <= 64),
    st.text(min_size=1, max_size=20).filter(lambda s: len(s.encode()) <= 64),
    st.binary(min_size=1, max_size=64),
    st.binary(min_size=1, max_size=64),
)
def test_length_prefixes_keep_fields_apart(s1: str, s2: str, d1: bytes, d2: bytes) -> None:
    """Two different scans never share signed bytes (no shifting bytes between fields)."""
    a = canonical_bytes(ScanFields("agt_0011223344556677", s1, 1, 5, "", d1))
    b = canonical_bytes(ScanFields("agt_0011223344556677", s2, 1, 5, "", d2))
    assert (a == b) == (s1 == s2 and d1 == d2)


@pytest.mark.parametrize(
    ("scan", "field"),
    [
        (ScanFields("", "t", 1, 0, "", b"x"), "agent_id"),
        (ScanFields("agt_é", "t", 1, 0, "", b"x"), "agent_id"),
        (ScanFields("a", "", 1, 0, "", b"x"), "scanner_id"),
        (ScanFields("a", "t" * 65, 1, 0, "", b"x"), "scanner_id"),
        (ScanFields("a", "t", 0, 0, "", b"x"), "sequence"),
        (ScanFields("a", "t", 2**63, 0, "", b"x"), "sequence"),
        (ScanFields("a", "t", 1, -1, "", b"x"), "scan_time"),
        (ScanFields("a", "t", 1, 0, "Q1", b"x"), "symbology"),
        (ScanFields("a", "t", 1, 0, "]Q1x", b"x"), "symbology"),
        (ScanFields("a", "t", 1, 0, "]\x00\x01", b"x"), "symbology"),
        (ScanFields("a", "t", 1, 0, "", b""), "data"),
        (ScanFields("a", "t", 1, 0, "", b"x" * 4097), "data"),
    ],
)
def test_out_of_range_fields_are_refused_by_name(scan: ScanFields, field: str) -> None:
    with pytest.raises(ScanFieldError) as caught:
        canonical_bytes(scan)
    assert caught.value.field == field
