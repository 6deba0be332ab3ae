"""The master key: the key-encryption key that seals issuer private keys at rest.

Every platform process sharing one database needs the same master key; it comes from the
environment (base64) or from a file created mode 0600 on first start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

MASTER_KEY_ENV = "CLEARPOINT_MASTER_KEY"


class MasterKey:
    """The key-encryption key. Its repr never shows the key."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(raw)
        self._derive_base = hashlib.sha256(b"clearpoint-derive\0" + raw).digest()

    def derive(self, label: bytes) -> bytes:
        """A separate key for another purpose (page tokens, say), so the master key is used for one thing."""
        return hmac.new(self._derive_base, label, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "MasterKey(<hidden>)"

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def unseal(self, sealed: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], aad)

    def check_value(self) -> bytes:
        """What the database keeps to recognise this key at the next start (not the key, nor a way to it)."""
        return self.derive(b"master-key-check")

    @classmethod
    def load(cls, path: Path | None, *, create: bool = True) -> MasterKey:
        """From $CLEARPOINT_MASTER_KEY (base64), else from `path`, creating it (mode 0600) if absent
        and `create` (a database already set up with a key must be given that key, not a new one)."""
        env = os.environ.get(MASTER_KEY_ENV)
        if env:
            return cls(_decode(env, f"${MASTER_KEY_ENV}"))
        if path is None:
            raise MasterKeyError(f"no master key: set {MASTER_KEY_ENV} or give --master-key-file")
        if not path.exists():
            if not create:
                raise MasterKeyError(
                    f"master key file {path} does not exist, and this database was set up with a master key: "
                    f"give its file with --master-key-file (or ${MASTER_KEY_ENV}); "
                    "a new key could not open the issuer keys"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
            log.info("created master key file %s (mode 0600); keep it with the database's backups", path)
        try:
            mode = path.stat().st_mode & 0o777
            text = path.read_text()
        except OSError as exc:
            raise MasterKeyError(f"cannot read master key file {path} ({exc.strerror})") from None
        if mode & 0o077:
            raise MasterKeyError(
                f"master key file {path} is readable by others (mode {mode:03o}): chmod 600 {path}, "
                "and consider whether the key must be replaced"
            )
        return cls(_decode(text.strip(), f"master key file {path}"))


class MasterKeyError(Exception):
    """The master key is missing, unreadable, exposed, malformed, or not the database's."""


def _decode(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise MasterKeyError(f"{where} does not hold a master key (32 bytes, base64)")
    return raw
