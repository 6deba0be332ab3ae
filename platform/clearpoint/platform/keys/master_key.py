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

    @classmethod
    def load(cls, path: Path | None) -> MasterKey:
        """From $CLEARPOINT_MASTER_KEY (base64), else from `path`, creating it (mode 0600) if absent."""
        env = os.environ.get(MASTER_KEY_ENV)
        if env:
            return cls(base64.b64decode(env, validate=True))
        if path is None:
            raise ValueError(f"no master key: set {MASTER_KEY_ENV} or give a master key file")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
            log.info("created master key file %s (mode 0600); keep it with the database's backups", path)
        mode = path.stat().st_mode & 0o077
        if mode:
            log.warning("master key file %s is readable by others (mode %o); chmod 600 it", path, mode)
        return cls(base64.b64decode(path.read_text().strip(), validate=True))
