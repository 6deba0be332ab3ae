"""Write tests/vectors/scan_signatures.json: test vectors for the bytes an agent signs per scan.

    python scripts/make_scan_vectors.py          # regenerate the file
    python scripts/make_scan_vectors.py --check  # exit 1 if the committed file differs

The signing key is the RFC 8032 section 7.1 TEST 1 key (public, for tests only); Ed25519 is
deterministic, so the file is the same on every run. The layout is docs/scan-signatures.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from clearpoint.formats.scan_signatures import ScanFields, canonical_bytes, sign_scan, stream_proof_message
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "vectors" / "scan_signatures.json"
SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"

SCANS = (
    (
        "a QR voucher code with its AIM identifier",
        ScanFields(
            "agt_5e6f7a8b9c0d1e2f",
            "till-1",
            1,
            1_795_440_000_123_456,
            "]Q1",
            b"CP1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEMWK4MI$7OQE.6K4NJ3",
        ),
    ),
    (
        "an EAN-13 product barcode",
        ScanFields("agt_5e6f7a8b9c0d1e2f", "till-1", 2, 1_795_440_001_000_000, "]E0", b"4006381333931"),
    ),
    (
        "GS1 element strings with GS separators, no AIM identifier, a UTF-8 scanner id",
        ScanFields(
            "agt_5e6f7a8b9c0d1e2f",
            "Kasse-2 \u00fcber",
            3,
            1_795_440_002_500_000,
            "",
            b"0104012345678901\x1d10ABC123\x1d17261231",
        ),
    ),
    ("every byte value once", ScanFields("agt_00000000000000ff", "s", 2**63 - 1, 0, "]d2", bytes(range(256)))),
)

# (agent id, challenge) pairs for the proof an agent gives when a scan stream opens.
STREAM_PROOFS = (
    ("agt_5e6f7a8b9c0d1e2f", bytes(range(32))),
    ("agt_00000000000000ff", bytes.fromhex("ff" * 32)),
)


def build() -> dict[str, Any]:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEED))
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    vectors = []
    for title, scan in SCANS:
        vectors.append(
            {
                "title": title,
                "agent_id": scan.agent_id,
                "scanner_id": scan.scanner_id,
                "sequence": scan.sequence,
                "time_us": scan.time_us,
                "symbology": scan.symbology,
                "data_hex": scan.data.hex(),
                "canonical_hex": canonical_bytes(scan).hex(),
                "signature_hex": sign_scan(key, scan).hex(),
            }
        )
    proofs = []
    for agent_id, challenge in STREAM_PROOFS:
        message = stream_proof_message(challenge, agent_id)
        proofs.append(
            {
                "agent_id": agent_id,
                "challenge_hex": challenge.hex(),
                "message_hex": message.hex(),
                "signature_hex": key.sign(message).hex(),
            }
        )
    return {
        "description": "Scan signature vectors; layout in docs/scan-signatures.md",
        "private_key_seed_hex": SEED,
        "public_key_hex": public.hex(),
        "vectors": vectors,
        "stream_proofs": proofs,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run python scripts/make_scan_vectors.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
