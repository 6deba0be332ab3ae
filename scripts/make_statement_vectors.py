"""Write tests/vectors/statements.json: test vectors for settlement statements' bytes and signatures.

    python scripts/make_statement_vectors.py          # regenerate the file
    python scripts/make_statement_vectors.py --check  # exit 1 if the committed file differs

The statement key is the RFC 8032 section 7.1 TEST 1 key (public, for tests only); Ed25519 is
deterministic, so the file is the same on every run. The byte form is docs/clearing.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from clearpoint.formats.statements import content_hash
from clearpoint.platform.clearing.settlement import Correction, Direction, Movement, Price, settle
from clearpoint.platform.clearing.statements import PeriodInfo, StatementKey, make, period_id
from clearpoint.platform.exchange.channels import Channel
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "vectors" / "statements.json"
SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"

END = 1_796_119_200_000_000  # 2026-12-01T10:00:00Z
PERIOD = PeriodInfo(period_id(END), 1, END - 3_600_000_000, END)
CHANNELS = (
    Channel("ptn_a1b2c3d4e5f6", "pts_a1b2c3d4e5f6", "Alpha Miles", "miles", 0),
    Channel("ptn_0f1e2d3c4b5a", "pts_0f1e2d3c4b5a", "Beta Stars ★", "stars", 0),
    Channel("ptn_99aa88bb77cc", "pts_99aa88bb77cc", 'Gamma "Gems"', "gems", 0),
)
MOVEMENTS = (
    Movement("ptn_a1b2c3d4e5f6", Direction.OUT_OF_CHANNEL, 1, 1000, 1),
    Movement("ptn_a1b2c3d4e5f6", Direction.OUT_OF_CHANNEL, 2, 701, 2),
    Movement("ptn_a1b2c3d4e5f6", Direction.INTO_CHANNEL, 2, 5, 1),
    Movement("ptn_0f1e2d3c4b5a", Direction.INTO_CHANNEL, 1, 1155, 2),
)
CORRECTIONS = (
    Correction(
        "adj_5a5a5a5a5a5a5a5a",
        "ptn_a1b2c3d4e5f6",
        "stm_0123456789abcdef",
        "prd_20261201T090000Z",
        Direction.OUT_OF_CHANNEL,
        1,
        -3,
        "3 miles of an exchange counted twice",
    ),
)
PRICES = {
    ("ptn_a1b2c3d4e5f6", 1): Price(Decimal("0.5"), "EUR"),
    ("ptn_a1b2c3d4e5f6", 2): Price(Decimal("0.35"), "EUR"),
    ("ptn_0f1e2d3c4b5a", 1): Price(Decimal("0.125"), "EUR"),
}
TITLES = {
    "ptn_a1b2c3d4e5f6": (
        "two rule versions out of the channel, one line into it, rounded half to even;"
        " a correction of an earlier statement (-1.5 rounds to -2)"
    ),
    "ptn_0f1e2d3c4b5a": "one line into the channel; non-ASCII text in the programme's name",
    "ptn_99aa88bb77cc": "a channel that moved nothing: no lines, no totals; a quote in its name",
}


def vectors() -> dict[str, Any]:
    key = StatementKey(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEED)))
    by_id = {c.partner_id: c for c in CHANNELS}
    made = [make(PERIOD, by_id[s.channel_id], s, key) for s in settle(by_id, MOVEMENTS, PRICES, CORRECTIONS)]
    return {
        "about": "Settlement statements (docs/clearing.md): content is the UTF-8 bytes of an RFC 8785 JSON "
        "object; content_sha256 = SHA-256(content); signature = Ed25519(statement key, content_sha256); "
        "key_id = hex of the first 8 bytes of SHA-256(public_key). Key: RFC 8032 7.1 TEST 1 (tests only).",
        "public_key": key.public_key.hex(),
        "key_id": key.key_id,
        "vectors": [
            {
                "title": TITLES[s.channel_id],
                "content": s.content.decode("utf-8"),
                "content_sha256": content_hash(s.content).hex(),
                "signature": s.signature.hex(),
            }
            for s in made
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is not current")
    args = parser.parse_args()
    text = json.dumps(vectors(), indent=2, ensure_ascii=False) + "\n"
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is not current: python scripts/make_statement_vectors.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(vectors()['vectors'])} vectors to {OUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
