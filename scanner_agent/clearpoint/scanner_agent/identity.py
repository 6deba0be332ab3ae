"""The agent's device key and its enrolment: who the platform knows this agent to be.

The Ed25519 private key lives in a PKCS#8 PEM file that only the agent's user may read; the agent
refuses to use a key file that others can read, because anyone holding it can sign scans.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_FILE = "device-key.pem"
IDENTITY_FILE = "identity.json"


class IdentityError(Exception):
    """The key or enrolment is missing or unusable; the message says what to do."""


@dataclass(frozen=True)
class Identity:
    agent_id: str
    partner_id: str
    store_id: str
    display_name: str
    platform: str


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def create_key(data_dir: Path) -> Ed25519PrivateKey:
    """Generate the device key, written with mode 0600 from the first byte (never widened later)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = key_path(data_dir)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise IdentityError(f"{path} exists already; an agent keeps its key (delete it to start over)") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    return key


def load_key(data_dir: Path) -> Ed25519PrivateKey:
    path = key_path(data_dir)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise IdentityError(f"no device key at {path}: enrol first with `clearpoint agent enrol`") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise IdentityError(
            f"{path} can be read by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"anyone who reads it can sign scans as this agent. Run: chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise IdentityError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def save_identity(data_dir: Path, identity: Identity) -> None:
    path = data_dir / IDENTITY_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(identity), indent=2) + "\n")
    os.replace(tmp, path)


def load_identity(data_dir: Path) -> Identity:
    path = data_dir / IDENTITY_FILE
    try:
        raw = json.loads(path.read_text())
        return Identity(**raw)
    except FileNotFoundError:
        raise IdentityError(
            f"this agent is not enrolled ({path} is missing): run `clearpoint agent enrol --config FILE --token TOKEN` "
            "with a token from the platform operator"
        ) from None
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"{path} is damaged: {exc}") from None
