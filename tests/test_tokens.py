"""The voucher code codec: round trip, published vectors, every small corruption refused, pycose agrees."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import base45
import cbor2
import pytest
from clearpoint.formats import voucher_codes
from clearpoint.formats.voucher_codes import (
    BASE45_ALPHABET,
    CAMPAIGN_ID_BYTES,
    KID_BYTES,
    MAX_CODE_CHARS,
    PREFIX,
    VOUCHER_ID_BYTES,
    ParsedCode,
    TokenError,
    VoucherClaims,
    encode_code,
    kid_from_hex,
    kid_hex,
    parse_code,
    verify_signature,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from pycose.algorithms import EdDSA
from pycose.headers import KID as COSE_KID
from pycose.headers import Algorithm
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message

ROOT = Path(__file__).resolve().parent.parent
VECTORS_PATH = ROOT / "tests" / "vectors" / "voucher_codes.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))

# The budget documented in docs/voucher-codes.md, for not_before and expires in [2**16, 2**32).
CODE_COSE_BYTES = 116
CODE_CHARS = 178
QR_7M_ALPHANUMERIC_CHARS = 178  # ISO/IEC 18004, version 7 (45x45 modules), level M

SEEDS = {k["kid_hex"]: bytes.fromhex(k["seed_hex"]) for k in VECTORS["keys"]}
PUBLIC_KEYS = {
    kid: Ed25519PublicKey.from_public_bytes(bytes.fromhex(k["public_key_hex"]))
    for kid, k in ((k["kid_hex"], k) for k in VECTORS["keys"])
}
TYPICAL = VECTORS["valid"][0]
CODE: str = TYPICAL["code"]
KEY = Ed25519PrivateKey.from_private_bytes(SEEDS[TYPICAL["kid_hex"]])
KID = bytes.fromhex(TYPICAL["kid_hex"])
REASONS = {"CODE_MALFORMED", "CODE_TOO_LONG", "VERSION_UNSUPPORTED", "SIGNATURE_INVALID"}


def check(code: Any) -> str:
    """The vector procedure: parse, find the key by kid, verify; the refusal reason, or "ACCEPTED".

    A kid no key has is refused by the caller (KEY_UNKNOWN); the signature must fail under every key
    there is all the same, so a damaged kid that happened to name a real key would not pass either.
    """
    try:
        parsed = parse_code(code)
        if kid_hex(parsed.kid) not in PUBLIC_KEYS:
            for public_key in PUBLIC_KEYS.values():
                with pytest.raises(TokenError, match="SIGNATURE_INVALID"):
                    verify_signature(parsed, public_key)
            return "KEY_UNKNOWN"
        verify_signature(parsed, PUBLIC_KEYS[kid_hex(parsed.kid)])
    except TokenError as exc:
        assert exc.reason in REASONS
        assert exc.message and exc.message[0].isupper() and exc.message.endswith(".")
        return exc.reason
    return "ACCEPTED"


def claims_of(v: dict[str, Any]) -> VoucherClaims:
    c = v["claims"]
    return VoucherClaims(
        voucher_id=bytes.fromhex(c["voucher_id_hex"]),
        campaign_id=bytes.fromhex(c["campaign_id_hex"]),
        not_before=c["not_before"],
        expires=c["expires"],
    )


def with_cose(cose: bytes) -> str:
    return PREFIX + base45.b45encode(cose).decode("ascii")


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_token_vectors", ROOT / "scripts" / "make_token_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Round trip and budget.


def test_round_trip() -> None:
    claims = VoucherClaims(b"\x01" * 8, b"\x02" * 6, 1_767_225_600, 1_798_761_600)
    code = encode_code(claims, KID, KEY)
    parsed = parse_code(code)
    assert parsed.kid == KID
    assert parsed.claims == claims
    assert len(parsed.signature) == 64
    verify_signature(parsed, KEY.public_key())
    assert encode_code(claims, KID, KEY) == code  # Ed25519 is deterministic


def test_code_is_in_the_qr_alphanumeric_alphabet() -> None:
    assert BASE45_ALPHABET == base45.BASE45_CHARSET and len(set(BASE45_ALPHABET)) == 45
    assert set(PREFIX) <= set(BASE45_ALPHABET)
    for v in VECTORS["valid"]:
        assert set(v["code"]) <= set(BASE45_ALPHABET)
        # Never a space at either end, so a reader that trims whitespace cannot damage a code.
        assert v["code"][0] == "C" and v["code"][-1] in "0123456789ABCDEFGHIJKLMNOPQRSTUVW"


@settings(max_examples=200, deadline=None)
@given(
    voucher_id=st.binary(min_size=VOUCHER_ID_BYTES, max_size=VOUCHER_ID_BYTES),
    campaign_id=st.binary(min_size=CAMPAIGN_ID_BYTES, max_size=CAMPAIGN_ID_BYTES),
    not_before=st.integers(2**16, 2**32 - 1),
    expires=st.integers(2**16, 2**32 - 1),
)
def test_code_length_is_the_documented_budget(
    voucher_id: bytes, campaign_id: bytes, not_before: int, expires: int
) -> None:
    code = encode_code(VoucherClaims(voucher_id, campaign_id, not_before, expires), KID, KEY)
    assert len(base45.b45decode(code[len(PREFIX) :])) == CODE_COSE_BYTES
    assert len(code) == CODE_CHARS <= QR_7M_ALPHANUMERIC_CHARS
    assert code[-1] in "0123456789ABCDEFGHIJKLMNOPQRSTUVW"
    assert parse_code(code).claims == VoucherClaims(voucher_id, campaign_id, not_before, expires)


def test_budget_arithmetic() -> None:
    assert CODE_CHARS == len(PREFIX) + CODE_COSE_BYTES // 2 * 3 + CODE_COSE_BYTES % 2 * 2
    assert TYPICAL["cose_bytes"] == CODE_COSE_BYTES and TYPICAL["code_chars"] == CODE_CHARS == len(CODE)


def test_claims_and_kid_are_validated_when_made() -> None:
    with pytest.raises(ValueError):
        VoucherClaims(b"\0" * 7, b"\0" * 6, 0, 0)
    with pytest.raises(ValueError):
        VoucherClaims(b"\0" * 8, b"\0" * 6, -1, 0)
    with pytest.raises(ValueError):
        VoucherClaims(b"\0" * 8, b"\0" * 6, 0, 2**63)
    with pytest.raises(ValueError):
        VoucherClaims(b"\0" * 8, b"\0" * 6, True, 0)
    with pytest.raises(ValueError):
        encode_code(VoucherClaims(b"\0" * 8, b"\0" * 6, 0, 0), b"\0" * 5, KEY)


def test_kid_hex() -> None:
    assert kid_hex(bytes.fromhex("c1a0000f")) == "c1a0000f"
    assert kid_from_hex("c1a0000f") == kid_from_hex("C1A0000F") == bytes.fromhex("c1a0000f")
    assert len(kid_from_hex("00000000")) == KID_BYTES
    for bad in ("", "c1a000", "c1a0000f00", "c1a0 000", " c1a0000", "0xc1a000", "g1a0000f", "c1a0000\n"):
        with pytest.raises(ValueError):
            kid_from_hex(bad)
    with pytest.raises(ValueError):
        kid_hex(b"\0" * 5)


# Published vectors.


@pytest.mark.parametrize("v", VECTORS["valid"], ids=lambda v: v["name"])
def test_valid_vector(v: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["seed_hex"]))
    assert key.public_key().public_bytes_raw().hex() == v["public_key_hex"]
    kid = kid_from_hex(v["kid_hex"])
    assert encode_code(claims_of(v), kid, key) == v["code"]
    assert len(v["code"]) == v["code_chars"]
    assert base45.b45decode(v["code"][len(PREFIX) :]).hex() == v["cose_hex"]
    assert len(bytes.fromhex(v["cose_hex"])) == v["cose_bytes"]
    parsed = parse_code(v["code"])
    assert parsed == ParsedCode(
        kid=kid,
        claims=claims_of(v),
        signed_bytes=bytes.fromhex(v["sig_structure_hex"]),
        signature=bytes.fromhex(v["signature_hex"]),
    )
    verify_signature(parsed, Ed25519PublicKey.from_public_bytes(bytes.fromhex(v["public_key_hex"])))
    assert check(v["code"]) == "ACCEPTED"


@pytest.mark.parametrize("v", VECTORS["invalid"], ids=lambda v: v["name"])
def test_invalid_vector(v: dict[str, Any]) -> None:
    assert check(v["code"]) == v["reason"]
    if v["cose_hex"] is not None:
        assert v["code"] == with_cose(bytes.fromhex(v["cose_hex"]))


def test_vectors_cover_every_reason_and_the_required_cases() -> None:
    assert {v["reason"] for v in VECTORS["invalid"]} == REASONS
    names = {v["name"] for v in VECTORS["invalid"]}
    required = {
        "empty", "prefix_version_2", "body_lowercase_char", "body_char_outside_alphabet",
        "truncated_one_char", "extended_one_byte", "signature_bit_flipped", "payload_voucher_id_changed",
        "kid_of_other_key", "untagged", "unprotected_not_empty", "noncanonical_claim_order", "alg_es256",
    }  # fmt: skip
    assert required <= names
    assert len(names) == len(VECTORS["invalid"])
    assert len({v["kid_hex"] for v in VECTORS["valid"]}) >= 3


def test_vectors_file_is_a_fresh_generation() -> None:
    generator = load_generator()
    assert generator.render() == VECTORS_PATH.read_text(encoding="utf-8")
    assert generator.render() == generator.render()


# Every small corruption of a valid code is refused.

NON_ALPHABET = ["a", "z", "#", "_", "\n", "\t", "\x00", "\u0410", "\uff21", "\u00a0"]


def test_every_single_character_substitution_is_refused() -> None:
    seen: dict[str, int] = {}
    for i, original in enumerate(CODE):
        for c in [*BASE45_ALPHABET, *NON_ALPHABET]:
            if c == original:
                continue
            reason = check(CODE[:i] + c + CODE[i + 1 :])
            assert reason != "ACCEPTED", (i, c)
            seen[reason] = seen.get(reason, 0) + 1
            if i >= len(PREFIX) and c not in BASE45_ALPHABET:
                assert reason == "CODE_MALFORMED"
    # Both the structure checks and the signature check do part of the work.
    assert seen.keys() == {"CODE_MALFORMED", "VERSION_UNSUPPORTED", "SIGNATURE_INVALID", "KEY_UNKNOWN"}
    assert sum(seen.values()) == len(CODE) * (44 + len(NON_ALPHABET))


def test_every_truncation_is_refused() -> None:
    for n in range(len(CODE)):
        assert check(CODE[:n]) == "CODE_MALFORMED", n


@pytest.mark.parametrize(
    "suffix", [*BASE45_ALPHABET, "00", "000", "0000", "00000", "000000", "\n", "\r\n", " ", CODE, CODE[4:]]
)
def test_extensions_are_refused(suffix: str) -> None:
    assert check(CODE + suffix) in {"CODE_MALFORMED", "CODE_TOO_LONG"}


def test_every_bit_flip_in_the_cose_bytes_is_refused() -> None:
    cose = bytes.fromhex(TYPICAL["cose_hex"])
    signature_start = len(cose) - 64
    payload = bytes.fromhex(TYPICAL["payload_hex"])
    payload_start = cose.index(payload)
    for i in range(len(cose)):
        for bit in range(8):
            flipped = cose[:i] + bytes([cose[i] ^ (1 << bit)]) + cose[i + 1 :]
            reason = check(with_cose(flipped))
            assert reason != "ACCEPTED", (i, bit)
            if i >= signature_start:
                assert reason == "SIGNATURE_INVALID", (i, bit)
            if payload_start <= i < payload_start + len(payload):
                assert reason in {"SIGNATURE_INVALID", "CODE_MALFORMED"}


def test_payload_changes_that_stay_well_formed_fail_the_signature() -> None:
    v = TYPICAL
    prot, sig = bytes.fromhex(v["protected_hex"]), bytes.fromhex(v["signature_hex"])
    claims = claims_of(v)
    for changed in (
        VoucherClaims(claims.voucher_id[:-1] + b"\0", claims.campaign_id, claims.not_before, claims.expires),
        VoucherClaims(claims.voucher_id, b"\xff" * 6, claims.not_before, claims.expires),
        VoucherClaims(claims.voucher_id, claims.campaign_id, claims.not_before - 1, claims.expires),
        VoucherClaims(claims.voucher_id, claims.campaign_id, claims.not_before, claims.expires + 1),
    ):
        payload = cbor2.dumps(
            {4: changed.expires, 5: changed.not_before, 7: changed.voucher_id, -65537: changed.campaign_id},
            canonical=True,
        )
        forged = with_cose(cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sig])))
        assert parse_code(forged).claims == changed  # well formed ...
        assert check(forged) == "SIGNATURE_INVALID"  # ... but not signed


def test_a_signature_by_another_key_is_refused() -> None:
    claims = claims_of(TYPICAL)
    other = Ed25519PrivateKey.from_private_bytes(SEEDS["c1a00002"])
    assert check(encode_code(claims, KID, other)) == "SIGNATURE_INVALID"
    with pytest.raises(TokenError) as exc:
        verify_signature(parse_code(CODE), other.public_key())
    assert exc.value.reason == "SIGNATURE_INVALID"


# Hostile input.


def test_a_megabyte_is_refused_before_any_work() -> None:
    for huge in (PREFIX + "0" * 1_000_000, "\u0410" * 1_000_000, "CP2:" + "0" * 1_000_000):
        start = time.perf_counter()
        with pytest.raises(TokenError) as exc:
            parse_code(huge)
        assert time.perf_counter() - start < 0.01
        assert exc.value.reason == "CODE_TOO_LONG"


def test_length_limit_is_inclusive() -> None:
    assert check(PREFIX + "0" * (MAX_CODE_CHARS - len(PREFIX))) == "CODE_MALFORMED"
    assert check(PREFIX + "0" * (MAX_CODE_CHARS - len(PREFIX) + 1)) == "CODE_TOO_LONG"


@pytest.mark.parametrize("value", [None, 0, CODE.encode(), bytearray(CODE.encode()), [CODE]])
def test_only_text_is_a_code(value: Any) -> None:
    with pytest.raises(TokenError) as exc:
        parse_code(value)
    assert exc.value.reason == "CODE_MALFORMED"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("CP1:", "CODE_MALFORMED"),
        ("CP0:" + CODE[4:], "VERSION_UNSUPPORTED"),
        ("CP99:" + CODE[4:], "VERSION_UNSUPPORTED"),
        ("CP:" + CODE[4:], "CODE_MALFORMED"),
        ("CP1" + CODE[4:], "CODE_MALFORMED"),
        ("CP\u0661:" + CODE[4:], "CODE_MALFORMED"),  # ARABIC-INDIC DIGIT ONE is not a version
        (" " + CODE, "CODE_MALFORMED"),
        ("HC1:" + CODE[4:], "CODE_MALFORMED"),
        (CODE.lower(), "CODE_MALFORMED"),
    ],
)
def test_prefix(code: str, reason: str) -> None:
    assert check(code) == reason


def test_cbor_decoder_hazards_are_refused() -> None:
    hazards = [
        b"\xd2\x5b" + b"\xff" * 8,  # byte string of 2**64-1 bytes
        b"\xd2\x9b" + b"\xff" * 8,  # array of 2**64-1 items
        b"\xd2" + b"\x81" * 150 + b"\x80",  # deep nesting
        b"\xd2" * 150 + b"\x80",  # deep tag nesting
        b"\xd2\x84\x40\xa0\x40\xd8\x1c\x81\xd8\x1d\x00",  # shared reference cycle (tags 28/29)
        b"\xd2\x84\x40\xa0\x40\xd8\x23\x66(a+)+$",  # regular expression (tag 35)
        b"\xd2\x84\x40\xa0\x40\xc5\x82\x1b" + (2**62).to_bytes(8, "big") + b"\x01",  # bigfloat
        b"\xd9\xd9\xf7" + bytes.fromhex(TYPICAL["cose_hex"]),  # self-described CBOR (tag 55799)
        b"\xd2\x84\x40\xa0\x40\x7f\x61\x61\xff",  # indefinite text
        b"\xd2\x84\x40\xa0\x40\xf7",  # undefined
        b"\xd2\x84\x40\xa0\x40\xfb" + b"\x7f\xf8" + b"\0" * 6,  # NaN
        b"\xff",  # break without indefinite item
        b"\x1c",  # reserved additional information
    ]
    for cose in hazards:
        assert check(with_cose(cose)) == "CODE_MALFORMED", cose.hex()


def test_the_refused_tags_are_all_the_tags_cbor2_decodes() -> None:
    """If a cbor2 upgrade gives meaning to another tag, the codec's refusal list must learn it."""
    meaningful = set()
    for tag in [*range(70_000), 2**32 - 1, 2**32, 2**64 - 1]:
        try:
            decoded = cbor2.loads(cbor2.dumps(cbor2.CBORTag(tag, 0)))
        except cbor2.CBORDecodeError:
            meaningful.add(tag)
            continue
        if not (isinstance(decoded, cbor2.CBORTag) and decoded.tag == tag):
            meaningful.add(tag)
    assert meaningful == set(voucher_codes._CBOR2_SEMANTIC_TAGS)


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=MAX_CODE_CHARS + 20))
def test_random_text_only_ever_raises_token_error(text: str) -> None:
    for code in (text, PREFIX + text):
        try:
            parse_code(code)
        except TokenError:
            pass


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=BASE45_ALPHABET, max_size=300))
def test_random_base45_text_is_refused(body: str) -> None:
    assert check(PREFIX + body) != "ACCEPTED"


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_verify(data: bytes) -> None:
    assert check(with_cose(data)) != "ACCEPTED"


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=64, max_size=64))
def test_random_signatures_never_verify(signature: bytes) -> None:
    v = TYPICAL
    cose = cbor2.dumps(
        cbor2.CBORTag(18, [bytes.fromhex(v["protected_hex"]), {}, bytes.fromhex(v["payload_hex"]), signature])
    )
    assert check(with_cose(cose)) == ("ACCEPTED" if signature.hex() == v["signature_hex"] else "SIGNATURE_INVALID")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_edits_are_refused(data: st.DataObject) -> None:
    """Several substitutions, insertions and deletions at once, anywhere."""
    code = list(CODE)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(code) - 1))
        op = data.draw(st.sampled_from(["sub", "ins", "del"]))
        c = data.draw(st.sampled_from(BASE45_ALPHABET))
        if op == "sub":
            code[i] = c
        elif op == "ins":
            code.insert(i, c)
        else:
            del code[i]
    edited = "".join(code)
    if edited != CODE:
        assert check(edited) != "ACCEPTED"


# An independent COSE implementation agrees.


def pycose_key(kid: str, private: bool = False) -> OKPKey:
    key = Ed25519PrivateKey.from_private_bytes(SEEDS[kid])
    x = key.public_key().public_bytes_raw()
    return OKPKey(crv=Ed25519, x=x, d=SEEDS[kid]) if private else OKPKey(crv=Ed25519, x=x)


def pycose_decode(cose: bytes) -> Sign1Message:
    """pycose 1.1's Sign1Message.decode() refuses everything under cbor2 >= 6 (tag contents decode as
    tuples, pycose checks for list: pycose issue #141), so decode the tag with cbor2 and hand pycose the
    four elements the way its decode() would."""
    tagged = cbor2.loads(cose)
    assert isinstance(tagged, cbor2.CBORTag) and tagged.tag == 18
    protected, unprotected, payload, signature = tagged.value
    return Sign1Message.from_cose_obj([protected, dict(unprotected), payload, signature], False)


@pytest.mark.parametrize("v", VECTORS["valid"], ids=lambda v: v["name"])
def test_pycose_verifies_our_codes(v: dict[str, Any]) -> None:
    msg = pycose_decode(base45.b45decode(v["code"][len(PREFIX) :]))
    msg.key = pycose_key(v["kid_hex"])
    assert msg.verify_signature()
    assert msg.phdr == {Algorithm: EdDSA, COSE_KID: kid_from_hex(v["kid_hex"])}
    assert msg.uhdr == {}
    claims = claims_of(v)
    assert cbor2.loads(msg.payload) == {
        4: claims.expires,
        5: claims.not_before,
        7: claims.voucher_id,
        -65537: claims.campaign_id,
    }
    msg.key = pycose_key("c1a00002" if v["kid_hex"] != "c1a00002" else "c1a00001")
    assert not msg.verify_signature()


@pytest.mark.parametrize("v", VECTORS["valid"], ids=lambda v: v["name"])
def test_we_accept_what_pycose_signs(v: dict[str, Any]) -> None:
    kid = kid_from_hex(v["kid_hex"])
    msg = Sign1Message(phdr={Algorithm: EdDSA, COSE_KID: kid}, uhdr={}, payload=bytes.fromhex(v["payload_hex"]))
    msg.key = pycose_key(v["kid_hex"], private=True)
    code = with_cose(msg.encode(tag=True))
    parsed = parse_code(code)
    verify_signature(parsed, PUBLIC_KEYS[v["kid_hex"]])
    assert parsed.claims == claims_of(v) and parsed.kid == kid
    assert code == v["code"]  # same bytes: deterministic CBOR and deterministic Ed25519


def test_we_refuse_pycose_messages_outside_the_profile() -> None:
    v = TYPICAL
    payload = bytes.fromhex(v["payload_hex"])
    key = pycose_key(v["kid_hex"], private=True)
    variants = [
        Sign1Message(phdr={COSE_KID: KID, Algorithm: EdDSA}, payload=payload),  # header keys out of order
        Sign1Message(phdr={Algorithm: EdDSA}, uhdr={COSE_KID: KID}, payload=payload),  # kid unprotected
        Sign1Message(phdr={Algorithm: EdDSA, COSE_KID: KID}, payload=cbor2.dumps({5: 1, 4: 2})),  # claims missing
    ]
    for msg in variants:
        msg.key = key
        cose = msg.encode(tag=True)
        assert check(with_cose(cose)) == "CODE_MALFORMED"
        assert check(with_cose(msg.encode(tag=False))) == "CODE_MALFORMED"
