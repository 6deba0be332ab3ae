"""Voucher codes: ``CP1:`` + Base45 (RFC 9285) of a tagged COSE_Sign1 (RFC 9052) carrying CWT claims.

The codec is a security boundary, so decoding is deliberately narrower than COSE allows: exactly one
header layout, exactly four claims, and exactly one byte sequence per voucher (the deterministic
encoding of RFC 8949 section 4.2.1). Anything else is refused with a ``TokenError`` naming a
``clearpoint.v1.Reason``. The time window and the key lookup belong to the caller; this module only
knows bytes. ``docs/voucher-codes.md`` is the format specification.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import base45
import cbor2
from clearpoint.formats.ed25519 import signature_valid
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "CP1:"
MAX_CODE_CHARS = 512
KID_BYTES = 4
VOUCHER_ID_BYTES = 8
CAMPAIGN_ID_BYTES = 6

# COSE and CWT registry numbers (IANA "COSE Header Parameters", "COSE Algorithms", "CWT Claims").
COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_KID = 4
ALG_EDDSA = -8
CLAIM_EXP = 4
CLAIM_NBF = 5
CLAIM_CTI = 7
CLAIM_CAMPAIGN = -65537  # private-use range of the CWT Claims registry (less than -65536)
SIGNATURE_BYTES = 64
MAX_TIME = 2**63 - 1

BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_BODY_RE = re.compile(r"[0-9A-Z $%*+\-./:]*")
# Something that names a code format version, just not ours: refused as "unsupported", not "malformed".
_OTHER_VERSION_RE = re.compile(r"CP[0-9]+:")

# cbor2 counts a level for a tag's content and for each container's items: tag 18 -> array ->
# unprotected map -> its entries is 3. The protected header and the claims are flat maps (1).
# Deeper input is refused before it can cost anything.
_MAX_DEPTH = 3
# Every tag cbor2 gives a meaning to (dates, bignums, regular expressions, MIME, shared and string
# references, sets, ...). A voucher uses none of them; decoding them would only run code on hostile
# input, so each is refused instead. Unknown tags reach _tag_hook, which keeps only tag 18.
# fmt: off
_CBOR2_SEMANTIC_TAGS = (
    0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 43000, 55799,
)
# fmt: on


class TokenError(ValueError):
    """A code that cannot be accepted; .reason is a clearpoint.v1.Reason name without REASON_."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class VoucherClaims:
    """What an issuer vouches for; validated on construction so a bad value fails where it is made."""

    voucher_id: bytes
    campaign_id: bytes
    not_before: int
    expires: int

    def __post_init__(self) -> None:
        _check_bytes("voucher_id", self.voucher_id, VOUCHER_ID_BYTES)
        _check_bytes("campaign_id", self.campaign_id, CAMPAIGN_ID_BYTES)
        _check_time("not_before", self.not_before)
        _check_time("expires", self.expires)


@dataclass(frozen=True, slots=True)
class ParsedCode:
    """A structurally valid code whose signature has not been checked yet (the key comes from kid)."""

    kid: bytes
    claims: VoucherClaims
    signed_bytes: bytes
    signature: bytes


def _check_bytes(name: str, value: object, size: int) -> None:
    if type(value) is not bytes or len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")


def _check_time(name: str, value: object) -> None:
    # bool is an int subclass; a True here is a bug, not a timestamp.
    if type(value) is not int or not 0 <= value <= MAX_TIME:
        raise ValueError(f"{name} must be an int in [0, 2**63)")


def kid_hex(kid: bytes) -> str:
    """The form people see and type: 8 lowercase hex characters."""
    _check_bytes("kid", kid, KID_BYTES)
    return kid.hex()


def kid_from_hex(s: str) -> bytes:
    """Inverse of kid_hex; either case is accepted, nothing else (no spaces, no 0x)."""
    if not isinstance(s, str) or re.fullmatch(r"[0-9a-fA-F]{8}", s) is None:
        raise ValueError("a key id is 8 hex characters")
    return bytes.fromhex(s)


def _cbor_bstr(value: bytes) -> bytes:
    """A CBOR byte string, head and content (RFC 8949 major type 2, shortest head)."""
    n = len(value)
    if n < 24:
        return bytes((0x40 | n,)) + value
    if n < 256:
        return bytes((0x58, n)) + value
    return b"\x59" + n.to_bytes(2, "big") + value


# The fixed parts of the one deterministic layout, written out once (RFC 8949 section 4.2.1):
# {1: -8, 4: h'<kid>'} is a2 01 27 04 44 <kid>; "Signature1" is 6a + its ASCII; tag 18 + array(4) is d2 84.
_PROTECTED_HEAD = bytes.fromhex("a201270444")
_SIG1_HEAD = bytes.fromhex("846a") + b"Signature1"
_COSE_SIGN1_HEAD = bytes.fromhex("d284")
_EMPTY_MAP = b"\xa0"
_EMPTY_BSTR = b"\x40"


def _protected_bytes(kid: bytes) -> bytes:
    return _PROTECTED_HEAD + kid


def _payload_bytes(claims: VoucherClaims) -> bytes:
    return cbor2.dumps(
        {
            CLAIM_EXP: claims.expires,
            CLAIM_NBF: claims.not_before,
            CLAIM_CTI: claims.voucher_id,
            CLAIM_CAMPAIGN: claims.campaign_id,
        },
        canonical=True,
    )


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    """RFC 9052 section 4.4: what Ed25519 signs (context "Signature1", empty external_aad)."""
    return _SIG1_HEAD + _cbor_bstr(protected) + _EMPTY_BSTR + _cbor_bstr(payload)


def _cose_bytes(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    return _COSE_SIGN1_HEAD + _cbor_bstr(protected) + _EMPTY_MAP + _cbor_bstr(payload) + _cbor_bstr(signature)


def encode_code(claims: VoucherClaims, kid: bytes, private_key: Ed25519PrivateKey) -> str:
    """Sign claims under the issuer key named kid; Ed25519 is deterministic, so the code is too."""
    _check_bytes("kid", kid, KID_BYTES)
    protected = _protected_bytes(kid)
    payload = _payload_bytes(claims)
    signature = private_key.sign(_sig_structure(protected, payload))
    text: bytes = base45.b45encode(_cose_bytes(protected, payload, signature))
    return PREFIX + text.decode("ascii")


def _malformed(detail: str) -> NoReturn:
    raise TokenError("CODE_MALFORMED", f"This is not a valid Clearpoint voucher code ({detail}).")


def _malformed_from(cause: Exception, detail: str) -> NoReturn:
    raise TokenError("CODE_MALFORMED", f"This is not a valid Clearpoint voucher code ({detail}).") from cause


def _refuse_tag(*_: object) -> NoReturn:
    raise ValueError("CBOR tag not allowed in a voucher code")


def _tag_hook(tag: cbor2.CBORTag, _immutable: bool) -> cbor2.CBORTag:
    if tag.tag != COSE_SIGN1_TAG:
        raise ValueError("CBOR tag not allowed in a voucher code")
    return tag


_SEMANTIC_REFUSALS = dict.fromkeys(_CBOR2_SEMANTIC_TAGS, _refuse_tag)


def _cbor_item(data: bytes, what: str) -> Any:
    """Exactly one CBOR item, nothing after it; every decoder failure becomes CODE_MALFORMED."""
    stream = io.BytesIO(data)
    try:
        decoder = cbor2.CBORDecoder(
            stream,
            tag_hook=_tag_hook,
            semantic_decoders=_SEMANTIC_REFUSALS,
            max_depth=_MAX_DEPTH,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        )
        item = decoder.decode()
    except Exception as exc:  # a hostile input must never surface as anything but TokenError
        _malformed_from(exc, f"the {what} is not CBOR of the form a voucher code uses")
    if stream.tell() != len(data):
        _malformed(f"the {what} has bytes after its end")
    return item


def _int_keyed_map(value: object, keys: set[int], what: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        _malformed(f"the {what} is not a map")
    # type() rather than isinstance(): True == 1 as a dict key, and a bool key is not the label 1.
    if len(value) != len(keys) or any(type(k) is not int for k in value) or set(value) != keys:
        _malformed(f"the {what} does not have exactly the expected entries")
    return value


def _bstr(value: object, size: int, what: str) -> bytes:
    if type(value) is not bytes or len(value) != size:
        _malformed(f"the {what} is not a {size}-byte string")
    return value


def _time(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_TIME:
        _malformed(f"the {what} is not a time in seconds")
    return value


def parse_code(code: str) -> ParsedCode:
    """Check everything but the signature; the result names the key (kid) that must verify it."""
    if not isinstance(code, str):
        _malformed("a voucher code is text")
    # Length first, before any other work, so an oversized input costs nothing.
    if len(code) > MAX_CODE_CHARS:
        raise TokenError("CODE_TOO_LONG", f"This is too long to be a voucher code (over {MAX_CODE_CHARS} characters).")
    if not code:
        _malformed("the code is empty")
    if not code.startswith(PREFIX):
        if _OTHER_VERSION_RE.match(code):
            raise TokenError(
                "VERSION_UNSUPPORTED",
                f"This voucher code version is not accepted here (only {PREFIX} codes).",
            )
        _malformed(f"the code does not start with {PREFIX}")
    body = code[len(PREFIX) :]
    if _BODY_RE.fullmatch(body) is None:
        _malformed("the code has a character outside the Base45 alphabet")
    try:
        raw = base45.b45decode(body)
    except Exception as exc:
        _malformed_from(exc, "the code is not valid Base45")
    # Base45 has one encoding per byte string once out-of-range groups are refused (the decoder
    # refuses them, and the alphabet check above leaves it nothing to strip), so no re-encoding here.

    message = _cbor_item(raw, "code")
    if type(message) is not cbor2.CBORTag or message.tag != COSE_SIGN1_TAG:
        _malformed("the code is not a tagged COSE_Sign1")
    parts = message.value
    if not isinstance(parts, list | tuple) or len(parts) != 4:
        _malformed("the COSE_Sign1 is not an array of four")
    protected, unprotected, payload, signature = parts
    if type(protected) is not bytes or type(payload) is not bytes:
        _malformed("the protected header or payload is not a byte string")
    _int_keyed_map(unprotected, set(), "unprotected header")
    signature = _bstr(signature, SIGNATURE_BYTES, "signature")

    header = _int_keyed_map(_cbor_item(protected, "protected header"), {HEADER_ALG, HEADER_KID}, "protected header")
    alg = header[HEADER_ALG]
    if type(alg) is not int or alg != ALG_EDDSA:
        _malformed("the code is not signed with EdDSA")
    kid = _bstr(header[HEADER_KID], KID_BYTES, "key id")

    claims_map = _int_keyed_map(
        _cbor_item(payload, "payload"), {CLAIM_EXP, CLAIM_NBF, CLAIM_CTI, CLAIM_CAMPAIGN}, "claims set"
    )
    claims = VoucherClaims(
        voucher_id=_bstr(claims_map[CLAIM_CTI], VOUCHER_ID_BYTES, "voucher id"),
        campaign_id=_bstr(claims_map[CLAIM_CAMPAIGN], CAMPAIGN_ID_BYTES, "campaign id"),
        not_before=_time(claims_map[CLAIM_NBF], "not-before time"),
        expires=_time(claims_map[CLAIM_EXP], "expiry time"),
    )

    # One voucher, one byte sequence: rebuilding from the values read must give back the input
    # exactly, which refuses non-minimal lengths and integers, unsorted maps and any other variant.
    if (
        _protected_bytes(kid) != protected
        or _payload_bytes(claims) != payload
        or _cose_bytes(protected, payload, signature) != raw
    ):
        _malformed("the code is not in deterministic CBOR encoding")
    return ParsedCode(kid=kid, claims=claims, signed_bytes=_sig_structure(protected, payload), signature=signature)


def verify_signature(parsed: ParsedCode, public_key: Ed25519PublicKey) -> None:
    """The issuer signature over the Sig_structure; the caller picks public_key by parsed.kid."""
    if not signature_valid(public_key, parsed.signature, parsed.signed_bytes):
        raise TokenError("SIGNATURE_INVALID", "The voucher code's signature does not match: it is forged or damaged.")
