"""Issuer keys as clearpoint.v1 messages (public halves only: a private key has no wire form)."""

from __future__ import annotations

from clearpoint.platform.edge import to_timestamp
from clearpoint.platform.keys.keystore import IssuerKeyInfo, KeyState
from clearpoint.v1 import issuer_keys_pb2

STATES = {
    KeyState.ACTIVE: issuer_keys_pb2.ISSUER_KEY_STATE_ACTIVE,
    KeyState.STANDBY: issuer_keys_pb2.ISSUER_KEY_STATE_STANDBY,
    KeyState.ROTATED: issuer_keys_pb2.ISSUER_KEY_STATE_ROTATED,
    KeyState.RETIRED: issuer_keys_pb2.ISSUER_KEY_STATE_RETIRED,
}


def issuer_key(info: IssuerKeyInfo) -> issuer_keys_pb2.IssuerKey:
    return issuer_keys_pb2.IssuerKey(
        key_id=info.kid,
        state=STATES[info.state],
        public_key=info.public_key,
        create_time=to_timestamp(info.created_us),
        retire_time=to_timestamp(info.retired_us),
    )
