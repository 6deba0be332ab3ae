"""With a certificate the platform serves only over TLS; a TLS client that trusts it gets through."""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from pathlib import Path

import grpc
import pytest
from clearpoint.platform.api import listening, server
from clearpoint.platform.app import Platform
from clearpoint.platform.core.principals import Role
from clearpoint.platform.partners import accounts
from clearpoint.v1 import partners_pb2, partners_pb2_grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import MASTER_KEY


def self_signed(tmp: Path) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for localhost and its key, as PEM files in `tmp`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp / "cert.pem").write_bytes(pem)
    (tmp / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tmp / "cert.pem", tmp / "key.pem", pem


async def test_tls_only(tmp_path: Path) -> None:
    cert, key, pem = self_signed(tmp_path)
    platform = await Platform.open(f"sqlite:///{tmp_path / 'db.sqlite3'}", master_key=MASTER_KEY)
    running = await server.start(platform, "127.0.0.1:0", listening.tls_credentials(str(cert), str(key)))
    async with platform.db.write() as conn:
        _, api_key = await accounts.create(conn, f"op-{secrets.token_hex(3)}", Role.OPERATOR, platform.clock())
    target = f"localhost:{running.port}"
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=pem)
        async with grpc.aio.secure_channel(target, creds) as channel:
            me = await partners_pb2_grpc.PartnerServiceStub(channel).WhoAmI(
                partners_pb2.WhoAmIRequest(), metadata=(("x-api-key", api_key),), timeout=10
            )
            assert me.partner.role == partners_pb2.ROLE_OPERATOR
        async with grpc.aio.insecure_channel(target) as plain:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await partners_pb2_grpc.PartnerServiceStub(plain).WhoAmI(
                    partners_pb2.WhoAmIRequest(), metadata=(("x-api-key", api_key),), timeout=5
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(0)
        await platform.close()
