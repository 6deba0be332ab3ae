"""The one Ed25519 check (formats/ed25519.py): RFC 8032's vectors, and strictness where OpenSSL is lax."""

from __future__ import annotations

import pytest
from clearpoint.formats.ed25519 import signature_valid
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

# RFC 8032, section 7.1, TEST 1 (empty message) and TEST 3 (two bytes).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]
L = 2**252 + 27742317777372353535851937790883648493  # the order of the base point
IDENTITY = bytes([1]) + bytes(31)  # the neutral element, a small-order point


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors_verify_and_one_flipped_bit_does_not(
    secret: str, public: str, message: str, signature: str
) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    assert key.public_key().public_bytes_raw().hex() == public
    assert key.sign(bytes.fromhex(message)).hex() == signature  # Ed25519 is deterministic
    pub, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert signature_valid(pub, sig, msg)
    assert signature_valid(Ed25519PublicKey.from_public_bytes(pub), sig, msg)
    for i in (0, 31, 32, 63):
        bent = bytearray(sig)
        bent[i] ^= 0x01
        assert not signature_valid(pub, bytes(bent), msg)
    assert not signature_valid(pub, sig, msg + b"\x00")


def test_the_identity_key_forges_nothing() -> None:
    """(R = identity, S = 0) satisfies the verification equation under the identity key for any
    message; OpenSSL accepts it, the strict check must not."""
    forged = IDENTITY + bytes(32)
    laxly = Ed25519PublicKey.from_public_bytes(IDENTITY)
    laxly.verify(forged, b"any scan at all")  # the reason this module exists: no exception
    for message in (b"", b"any scan at all", b"another one"):
        assert not signature_valid(IDENTITY, forged, message)


def test_a_non_canonical_s_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    signature = key.sign(b"scan")
    s = int.from_bytes(signature[32:], "little")
    stretched = signature[:32] + (s + L).to_bytes(32, "little")  # same point arithmetic, S >= L
    assert signature_valid(key.public_key(), signature, b"scan")
    assert not signature_valid(key.public_key(), stretched, b"scan")


@pytest.mark.parametrize("length", [0, 1, 32, 63, 65, 128])
def test_a_signature_of_the_wrong_length_is_refused_not_misread(length: int) -> None:
    """libsodium reads signature+message; a short signature must not borrow the message's bytes."""
    key = Ed25519PrivateKey.generate()
    message = b"x" * 200
    good = key.sign(message)
    candidate = (good + message)[:length]
    assert not signature_valid(key.public_key(), candidate, message[length - 64 :] if length > 64 else message)
    assert not signature_valid(key.public_key(), candidate, message)


@given(st.binary(max_size=300), st.binary(min_size=64, max_size=64), st.integers(0, 511))
def test_agrees_with_openssl_on_honest_keys(message: bytes, junk: bytes, bit: int) -> None:
    """For keys made the ordinary way, strict and lax agree: real signatures pass, tampered and
    random ones fail."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    signature = key.sign(message)
    bent = bytearray(signature)
    bent[bit // 8] ^= 1 << (bit % 8)
    for candidate in (signature, bytes(bent), junk):
        try:
            public.verify(candidate, message)
            lax = True
        except InvalidSignature:
            lax = False
        assert signature_valid(public, candidate, message) is lax
