"""Write tests/vectors/voucher_codes.json: voucher code test vectors from fixed Ed25519 seeds.

    python scripts/make_token_vectors.py          # regenerate the file
    python scripts/make_token_vectors.py --check  # exit 1 if the committed file differs

Ed25519 signatures are deterministic, so the same seeds always give the same file. The seeds are the
RFC 8032 section 7.1 test keys: public, for tests only. Each valid vector is also rebuilt here from
first principles (plain cbor2 calls) and must equal what the codec produces; tests/test_tokens.py
checks that the committed file equals a fresh generation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import base45
import cbor2
from clearpoint.formats import voucher_codes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "vectors" / "voucher_codes.json"

# (kid hex, seed hex): RFC 8032 section 7.1, TEST 1, TEST 2 and TEST 3.
KEYS = (
    ("c1a00001", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
    ("c1a00002", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
    ("c1a00003", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"),
)

JAN_2026 = 1767225600  # 2026-01-01T00:00:00Z
JAN_2027 = 1798761600  # 2027-01-01T00:00:00Z

# Ed25519 group order; S + L is the classic malleable variant of a valid signature.
ED25519_L = 2**252 + 27742317777372353535851937790883648493


def _key(kid: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(dict(KEYS)[kid]))


def _hdr(kid: bytes) -> bytes:
    return cbor2.dumps({1: -8, 4: kid}, canonical=True)


def _claims_map(claims: voucher_codes.VoucherClaims) -> dict[int, Any]:
    return {4: claims.expires, 5: claims.not_before, 7: claims.voucher_id, -65537: claims.campaign_id}


def _sign(kid: str, protected: Any, payload: bytes) -> bytes:
    return _key(kid).sign(cbor2.dumps(["Signature1", protected, b"", payload]))


def _text(cose: bytes) -> str:
    return voucher_codes.PREFIX + base45.b45encode(cose).decode("ascii")


VALID_CASES = (
    (
        "typical",
        "A voucher valid for calendar year 2026, signed with the first key.",
        "c1a00001",
        voucher_codes.VoucherClaims(
            bytes.fromhex("0123456789abcdef"), bytes.fromhex("c0ffee000001"), JAN_2026, JAN_2027
        ),
    ),
    (
        "second_key",
        "Another voucher of another campaign, signed with the second key.",
        "c1a00002",
        voucher_codes.VoucherClaims(
            bytes.fromhex("fedcba9876543210"), bytes.fromhex("c0ffee000002"), 1780000000, 1790000000
        ),
    ),
    (
        "third_key_one_day",
        "A voucher valid for one day (2026-06-01), signed with the third key.",
        "c1a00003",
        voucher_codes.VoucherClaims(
            bytes.fromhex("00000000000000ff"), bytes.fromhex("000000000003"), 1780272000, 1780358400
        ),
    ),
    (
        "smallest_times",
        "not_before and expires 0: one-byte integers, so the code is 8 bytes and 12 characters shorter.",
        "c1a00002",
        voucher_codes.VoucherClaims(b"\0" * 8, b"\0" * 6, 0, 0),
    ),
    (
        "largest_times",
        "not_before and expires 2**63-1, the largest accepted: nine-byte integers, so the code is 8 bytes "
        "and 12 characters longer.",
        "c1a00003",
        voucher_codes.VoucherClaims(b"\xff" * 8, b"\xff" * 6, 2**63 - 1, 2**63 - 1),
    ),
)


def _valid_vector(name: str, description: str, kid: str, claims: voucher_codes.VoucherClaims) -> dict[str, Any]:
    protected = _hdr(bytes.fromhex(kid))
    payload = cbor2.dumps(_claims_map(claims), canonical=True)
    sig_structure = cbor2.dumps(["Signature1", protected, b"", payload])
    signature = _key(kid).sign(sig_structure)
    cose = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, signature]))
    code = _text(cose)
    if voucher_codes.encode_code(claims, bytes.fromhex(kid), _key(kid)) != code:
        raise SystemExit(f"{name}: the codec disagrees with the vector built here")
    return {
        "name": name,
        "description": description,
        "seed_hex": dict(KEYS)[kid],
        "public_key_hex": _key(kid).public_key().public_bytes_raw().hex(),
        "kid_hex": kid,
        "claims": {
            "voucher_id_hex": claims.voucher_id.hex(),
            "campaign_id_hex": claims.campaign_id.hex(),
            "not_before": claims.not_before,
            "expires": claims.expires,
        },
        "protected_hex": protected.hex(),
        "payload_hex": payload.hex(),
        "sig_structure_hex": sig_structure.hex(),
        "signature_hex": signature.hex(),
        "cose_hex": cose.hex(),
        "cose_bytes": len(cose),
        "code": code,
        "code_chars": len(code),
    }


MALFORMED, TOO_LONG, VERSION, BAD_SIG = (
    "CODE_MALFORMED",
    "CODE_TOO_LONG",
    "VERSION_UNSUPPORTED",
    "SIGNATURE_INVALID",
)


class _Drop:
    """Marks a claim to leave out."""


DROP = _Drop()


def _invalid_vectors(base: dict[str, Any]) -> list[dict[str, Any]]:
    """Each case differs from the first valid vector in one way, so the expected reason is unambiguous.

    "Correctly signed" means the signature over the altered protected header and payload is valid,
    so only their shape can be the reason for refusal.
    """
    kid1, kid2 = bytes.fromhex("c1a00001"), bytes.fromhex("c1a00002")
    code: str = base["code"]
    n = len(voucher_codes.PREFIX)
    body = code[n:]
    cose = bytes.fromhex(base["cose_hex"])
    prot = bytes.fromhex(base["protected_hex"])
    payload = bytes.fromhex(base["payload_hex"])
    sig = bytes.fromhex(base["signature_hex"])
    claims = cbor2.loads(payload)
    out: list[dict[str, Any]] = []

    def add(name: str, reason: str, value: str | bytes, description: str) -> None:
        """value is the code text, or the COSE bytes to prefix and Base45-encode."""
        text = value if isinstance(value, str) else _text(value)
        cose_hex = None if isinstance(value, str) else value.hex()
        out.append({"name": name, "code": text, "reason": reason, "description": description, "cose_hex": cose_hex})

    def sign1(p: Any, u: Any, pl: bytes, s: bytes, tag: int | None = 18) -> bytes:
        arr = [p, u, pl, s]
        return cbor2.dumps(arr if tag is None else cbor2.CBORTag(tag, arr))

    def signed(p: bytes, pl: bytes, u: Any = None, kid: str = "c1a00001") -> bytes:
        return sign1(p, {} if u is None else u, pl, _sign(kid, p, pl))

    def claims_with(label: int, value: Any) -> bytes:
        changed = {**claims, label: value}
        return cbor2.dumps({k: v for k, v in changed.items() if v is not DROP}, canonical=True)

    def hdr(m: dict[int, Any]) -> bytes:
        return cbor2.dumps(m, canonical=True)

    # Text form.
    add("empty", MALFORMED, "", "The empty string.")
    add(
        "too_long",
        TOO_LONG,
        voucher_codes.PREFIX + "0" * (voucher_codes.MAX_CODE_CHARS + 1 - n),
        "513 characters, one more than MAX_CODE_CHARS; refused before decoding.",
    )
    add("prefix_version_2", VERSION, "CP2:" + body, "Version 2 prefix on an otherwise valid code.")
    add("prefix_version_10", VERSION, "CP10:" + body, "Version 10 prefix on an otherwise valid code.")
    add("prefix_missing", MALFORMED, body, "The Base45 text of a valid code without its prefix.")
    add("prefix_lowercase", MALFORMED, "cp1:" + body, "Lowercase prefix; input is never case-folded.")
    i = next(j for j, c in enumerate(body) if c.isalpha())
    add(
        "body_lowercase_char",
        MALFORMED,
        code[: n + i] + body[i].lower() + body[i + 1 :],
        f"Character {n + i} lowercased: lowercase letters are outside the Base45 alphabet.",
    )
    add("body_char_outside_alphabet", MALFORMED, code[:-1] + "#", "Last character replaced by '#'.")
    add(
        "body_non_ascii",
        MALFORMED,
        code[:-1] + "\u0410",
        "Last character replaced by U+0410, a Cyrillic 'A'.",
    )
    add("body_trailing_newline", MALFORMED, code + "\n", "A valid code followed by a line feed.")
    add(
        "body_trailing_space",
        MALFORMED,
        code + " ",
        "A valid code followed by a space (in the alphabet, but the Base45 length becomes invalid).",
    )
    add("base45_bad_length", MALFORMED, code + "0", "One character appended: length 1 modulo 3 is not Base45.")
    add(
        "base45_triple_overflow",
        MALFORMED,
        code[:-3] + "GGW",
        "Last three characters 'GGW' = 16 + 16*45 + 32*45^2 = 65536, more than two bytes hold.",
    )
    add("prefix_only", MALFORMED, voucher_codes.PREFIX, "The prefix and nothing else.")
    add("truncated_one_char", MALFORMED, code[:-1], "Last character cut off.")
    add("truncated_one_group", MALFORMED, code[:-3], "Last three characters (two bytes) cut off.")
    add("truncated_half", MALFORMED, code[: len(code) // 2], "Only the first half of a valid code.")
    add("extended_one_byte", MALFORMED, code + "00", "A zero byte (Base45 '00') after the COSE_Sign1.")
    add("extended_two_bytes", MALFORMED, code + "000", "Two zero bytes (Base45 '000') after the COSE_Sign1.")

    # Well-formed codes whose signature must not verify.
    add(
        "signature_bit_flipped",
        BAD_SIG,
        sign1(prot, {}, payload, bytes([sig[0] ^ 1]) + sig[1:]),
        "Lowest bit of the first signature byte flipped.",
    )
    s_plus_l = (int.from_bytes(sig[32:], "little") + ED25519_L).to_bytes(32, "little")
    add(
        "signature_s_plus_l",
        BAD_SIG,
        sign1(prot, {}, payload, sig[:32] + s_plus_l),
        "Signature scalar S replaced by S + L: the malleable twin that RFC 8032 verifiers refuse.",
    )
    add(
        "payload_voucher_id_changed",
        BAD_SIG,
        sign1(prot, {}, claims_with(7, bytes.fromhex("0123456789abcdee")), sig),
        "Last byte of the voucher id changed, claims re-encoded, original signature kept.",
    )
    add(
        "payload_expiry_extended",
        BAD_SIG,
        sign1(prot, {}, claims_with(4, JAN_2027 + 365 * 86400), sig),
        "Expiry moved a year later, claims re-encoded, original signature kept.",
    )
    add(
        "kid_of_other_key",
        BAD_SIG,
        signed(_hdr(kid1), payload, kid="c1a00002"),
        "Names key c1a00001 but is signed by key c1a00002.",
    )
    add(
        "kid_swapped",
        BAD_SIG,
        sign1(_hdr(kid2), {}, payload, sig),
        "Signed by key c1a00001, then the kid in the protected header changed to c1a00002.",
    )

    # COSE structure.
    add("untagged", MALFORMED, sign1(prot, {}, payload, sig, tag=None), "The valid COSE_Sign1 without tag 18.")
    add("tag_cose_sign", MALFORMED, sign1(prot, {}, payload, sig, tag=98), "Tag 98 (COSE_Sign) instead of 18.")
    add(
        "tag_cwt_wrapped",
        MALFORMED,
        b"\xd8\x3d" + cose,
        "The valid COSE_Sign1 inside the optional CWT tag 61, which this format does not use.",
    )
    add("array_of_three", MALFORMED, cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload])), "No signature.")
    add(
        "array_of_five",
        MALFORMED,
        cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sig, b""])),
        "A fifth array element.",
    )
    add(
        "unprotected_not_empty",
        MALFORMED,
        signed(prot, payload, u={4: kid1}),
        "Correctly signed; the kid is also in the unprotected header.",
    )
    add(
        "protected_not_wrapped",
        MALFORMED,
        sign1({1: -8, 4: kid1}, {}, payload, sig),
        "Protected header as a map, not a byte string holding the map.",
    )
    add(
        "protected_empty",
        MALFORMED,
        signed(b"", payload, u={1: -8, 4: kid1}),
        "Correctly signed; empty protected header, alg and kid unprotected.",
    )
    add(
        "protected_missing_kid",
        MALFORMED,
        signed(hdr({1: -8}), payload, u={4: kid1}),
        "Correctly signed; kid only in the unprotected header.",
    )
    add(
        "protected_extra_param",
        MALFORMED,
        signed(hdr({1: -8, 3: 61, 4: kid1}), payload),
        "Correctly signed; an extra content-type (3) header parameter.",
    )
    add("kid_wrong_length", MALFORMED, signed(_hdr(kid1 + kid1), payload), "Correctly signed; an 8-byte kid.")
    add(
        "alg_es256",
        MALFORMED,
        signed(hdr({1: -7, 4: kid1}), payload),
        "Correctly signed with Ed25519, but the header says alg -7 (ES256).",
    )
    add(
        "alg_as_text",
        MALFORMED,
        signed(hdr({1: "EdDSA", 4: kid1}), payload),
        "Correctly signed; alg as the text 'EdDSA' instead of -8.",
    )
    add("signature_short", MALFORMED, sign1(prot, {}, payload, sig[:63]), "A 63-byte signature.")
    add(
        "payload_not_map",
        MALFORMED,
        signed(prot, cbor2.dumps([JAN_2027, JAN_2026])),
        "Correctly signed; the payload is an array.",
    )
    add(
        "payload_trailing_byte",
        MALFORMED,
        signed(prot, payload + b"\0"),
        "Correctly signed; a byte after the claims map inside the payload.",
    )

    # Claims.
    add(
        "claim_missing_campaign",
        MALFORMED,
        signed(prot, claims_with(-65537, DROP)),
        "Correctly signed; no campaign claim.",
    )
    add(
        "claim_extra_iat",
        MALFORMED,
        signed(prot, claims_with(6, JAN_2026)),
        "Correctly signed; an extra iat (6) claim.",
    )
    add("voucher_id_short", MALFORMED, signed(prot, claims_with(7, bytes(7))), "Correctly signed; 7-byte cti.")
    add(
        "campaign_id_text",
        MALFORMED,
        signed(prot, claims_with(-65537, "c0ffee")),
        "Correctly signed; campaign id as a text string.",
    )
    add("exp_negative", MALFORMED, signed(prot, claims_with(4, -1)), "Correctly signed; exp = -1.")
    add("exp_too_large", MALFORMED, signed(prot, claims_with(4, 2**63)), "Correctly signed; exp = 2**63.")
    add(
        "exp_float",
        MALFORMED,
        signed(prot, claims_with(4, float(JAN_2027))),
        "Correctly signed; exp as a floating-point number.",
    )
    add("exp_bool", MALFORMED, signed(prot, claims_with(4, True)), "Correctly signed; exp = true.")
    add(
        "exp_date_tag",
        MALFORMED,
        signed(prot, claims_with(4, cbor2.CBORTag(1, JAN_2027))),
        "Correctly signed; exp inside tag 1 (epoch date/time).",
    )

    # Other encodings of the same values: each must be refused, or one voucher would have many codes.
    reordered = cbor2.dumps({5: JAN_2026, 4: JAN_2027, 7: claims[7], -65537: claims[-65537]})
    add(
        "noncanonical_claim_order",
        MALFORMED,
        signed(prot, reordered),
        "Correctly signed; claims map keys in the order 5, 4, 7, -65537.",
    )
    exp4, exp8 = b"\x04\x1a" + JAN_2027.to_bytes(4, "big"), b"\x04\x1b" + JAN_2027.to_bytes(8, "big")
    add(
        "noncanonical_int",
        MALFORMED,
        signed(prot, payload.replace(exp4, exp8)),
        "Correctly signed; exp as an 8-byte integer instead of a 4-byte one.",
    )
    add(
        "noncanonical_alg",
        MALFORMED,
        signed(bytes.fromhex("a2013807") + b"\x04\x44" + kid1, payload),
        "Correctly signed; alg -8 in two bytes (38 07) instead of one (27).",
    )
    add(
        "duplicate_claim",
        MALFORMED,
        signed(prot, b"\xa5" + exp4 + payload[1:]),
        "Correctly signed; exp twice in a map of five entries.",
    )
    if cose[-66:-64] != b"\x58\x40" or cose[2] != 0x40 + len(prot):
        raise SystemExit("the first valid vector does not have the expected layout")
    add(
        "noncanonical_signature_length",
        MALFORMED,
        cose[:-66] + b"\x59\x00\x40" + sig,
        "Signature length in three bytes (59 0040) instead of two; the signature itself still verifies.",
    )
    add(
        "noncanonical_protected_length",
        MALFORMED,
        cose[:2] + bytes([0x58, len(prot)]) + cose[3:],
        "Protected header length in two bytes (58 09) instead of one; the signature still verifies.",
    )
    add(
        "indefinite_array",
        MALFORMED,
        b"\xd2\x9f" + cose[2:] + b"\xff",
        "The COSE_Sign1 array in indefinite-length form.",
    )

    # Decoder hazards.
    add(
        "deep_nesting",
        MALFORMED,
        sign1(prot, {1: cbor2.loads(b"\x81" * 40 + b"\x80")}, payload, sig),
        "Unprotected header holding 41 nested arrays.",
    )
    add(
        "huge_declared_length",
        MALFORMED,
        cose[:2] + b"\x5b" + b"\xff" * 8,
        "Protected header declared 2**64-1 bytes long.",
    )
    add(
        "bigfloat_claim",
        MALFORMED,
        signed(prot, claims_with(4, cbor2.CBORTag(5, [2**62, 1]))),
        "Correctly signed; exp as a bigfloat (tag 5) with exponent 2**62.",
    )
    return out


def build() -> dict[str, Any]:
    valid = [_valid_vector(*case) for case in VALID_CASES]
    return {
        "description": "Clearpoint voucher code (CP1) test vectors; see docs/voucher-codes.md.",
        "regenerate": "python scripts/make_token_vectors.py",
        "procedure": (
            "valid: decoding code gives kid_hex and claims, the signature verifies with public_key_hex, "
            "and encoding claims under kid_hex with the key from seed_hex gives code exactly. "
            "invalid: decode code, then verify its signature with the key of 'keys' whose kid_hex the "
            "code names; the first step that fails must fail with 'reason'."
        ),
        "keys": [
            {
                "kid_hex": kid,
                "seed_hex": seed,
                "public_key_hex": _key(kid).public_key().public_bytes_raw().hex(),
            }
            for kid, seed in KEYS
        ],
        "valid": valid,
        "invalid": _invalid_vectors(valid[0]),
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is not current")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            sys.exit(f"{OUT.relative_to(ROOT)} is out of date: run python scripts/make_token_vectors.py")
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
