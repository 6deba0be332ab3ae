"""Ed25519 verification: the one check behind every signature the project verifies.

Scan signatures, voucher codes' issuer signatures and enrolment proofs all go through
`signature_valid`. It uses libsodium (PyNaCl) rather than OpenSSL (cryptography) for two reasons:

- libsodium is strict. It refuses small-order public keys and R points and non-canonical
  encodings. OpenSSL's verify accepts the signature (identity, 0) under the identity public key
  for *every* message, so an agent enrolled with that key would sign whatever anyone sends in its
  name.
- It is faster (about 86 µs against 136 µs a check on the reference machine), and each scan needs
  two checks on the platform's event loop.

Keys are still made, stored and used to sign with `cryptography`; only verification is here.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_sign_BYTES, crypto_sign_open
from nacl.exceptions import BadSignatureError

SIGNATURE_BYTES = crypto_sign_BYTES  # 64: R (32) then S (32)


def signature_valid(public: Ed25519PublicKey | bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is the holder of `public`'s signature over `message` (RFC 8032, strict)."""
    if len(signature) != SIGNATURE_BYTES:
        return False  # libsodium reads the first 64 bytes of signature+message as the signature
    raw = public if isinstance(public, bytes) else public.public_bytes_raw()
    try:
        crypto_sign_open(signature + message, raw)
    except BadSignatureError:
        return False
    return True
