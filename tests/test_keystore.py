"""Issuer private keys never leave the key store: sealed at rest, absent from answers and logs."""

from __future__ import annotations

import base64
import logging

import grpc
import pytest
from clearpoint.platform.keys.tables import issuer_keys
from clearpoint.v1 import issuer_keys_pb2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from tests.conftest import MASTER_KEY
from tests.helpers import Client, RunningPlatform, refusal_of, rid


async def test_private_keys_sealed_and_never_logged(
    platform: RunningPlatform, partner: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    op = platform.operator()
    rotated = await op.keys.RotateIssuerKey(
        issuer_keys_pb2.RotateIssuerKeyRequest(request_id=rid()), metadata=op.metadata
    )
    campaign = await partner.campaign(platform.clock())
    await partner.issue(campaign.campaign_id, 3)
    listed = await op.keys.ListIssuerKeys(issuer_keys_pb2.ListIssuerKeysRequest(), metadata=op.metadata)

    async with platform.server.platform.db.read() as conn:
        rows = (await conn.execute(select(issuer_keys))).all()
    for row in rows:
        raw = MASTER_KEY.unseal(bytes(row.private_key_sealed), row.kid.encode())
        private = Ed25519PrivateKey.from_private_bytes(raw)
        # The sealed form is not the key, and the unsealed key matches the published public half.
        assert raw not in bytes(row.private_key_sealed)
        assert private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == bytes(row.public_key)
        for form in (raw.hex(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
            assert form not in caplog.text
            assert form.encode() not in listed.SerializeToString()
    assert {k.key_id for k in listed.keys} >= {rotated.active_key.key_id}
    assert all(len(k.public_key) == 32 for k in listed.keys)


async def test_active_key_cannot_be_retired(platform: RunningPlatform) -> None:
    op = platform.operator()
    listed = await op.keys.ListIssuerKeys(issuer_keys_pb2.ListIssuerKeysRequest(), metadata=op.metadata)
    active = next(k for k in listed.keys if k.state == issuer_keys_pb2.ISSUER_KEY_STATE_ACTIVE)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await op.keys.RetireIssuerKey(
            issuer_keys_pb2.RetireIssuerKeyRequest(request_id=rid(), key_id=active.key_id), metadata=op.metadata
        )
    assert refusal_of(err.value).reason == "ISSUER_KEY_STATE"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await op.keys.RetireIssuerKey(
            issuer_keys_pb2.RetireIssuerKeyRequest(request_id=rid(), key_id="ffffffff"), metadata=op.metadata
        )
    assert refusal_of(err.value).reason == "ISSUER_KEY_UNKNOWN"
