"""The grpc.aio server: clearpoint.v1 services plus standard health checking and reflection."""

from __future__ import annotations

import logging

import grpc
from clearpoint.platform.agent_service import Agents
from clearpoint.platform.app import Platform
from clearpoint.platform.interceptors import GuardInterceptor
from clearpoint.platform.services import POLICY, Campaigns, IssuerKeys, Partners, Redemptions
from clearpoint.v1 import (
    agents_pb2,
    agents_pb2_grpc,
    campaigns_pb2,
    campaigns_pb2_grpc,
    issuer_keys_pb2,
    issuer_keys_pb2_grpc,
    partners_pb2,
    partners_pb2_grpc,
    redemption_pb2,
    redemption_pb2_grpc,
)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    issuer_keys_pb2.DESCRIPTOR.services_by_name["IssuerKeyService"].full_name,
    partners_pb2.DESCRIPTOR.services_by_name["PartnerService"].full_name,
    campaigns_pb2.DESCRIPTOR.services_by_name["CampaignService"].full_name,
    redemption_pb2.DESCRIPTOR.services_by_name["RedemptionService"].full_name,
    agents_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
)

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


class PlatformServer:
    def __init__(self, platform: Platform, server: grpc.aio.Server, port: int, health: health.aio.HealthServicer):
        self.platform = platform
        self.server = server
        self.port = port
        self._health = health

    async def stop(self, grace: float = 5.0) -> None:
        """Report NOT_SERVING first so balancers drain us, then finish calls in flight."""
        await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)


def tls_credentials(cert_file: str, key_file: str) -> grpc.ServerCredentials:
    """Server TLS from PEM files (the certificate chain and its private key)."""
    with open(cert_file, "rb") as cert, open(key_file, "rb") as key:
        return grpc.ssl_server_credentials([(key.read(), cert.read())])


async def start(platform: Platform, listen: str, tls: grpc.ServerCredentials | None = None) -> PlatformServer:
    """Serve on `listen`; with `tls`, only over TLS (API keys travel in call metadata)."""
    guard = GuardInterceptor(platform.auth, platform.db.read, POLICY)
    server = grpc.aio.server(interceptors=[guard], options=SERVER_OPTIONS)
    issuer_keys_pb2_grpc.add_IssuerKeyServiceServicer_to_server(IssuerKeys(platform), server)
    partners_pb2_grpc.add_PartnerServiceServicer_to_server(Partners(platform), server)
    campaigns_pb2_grpc.add_CampaignServiceServicer_to_server(Campaigns(platform), server)
    redemption_pb2_grpc.add_RedemptionServiceServicer_to_server(Redemptions(platform), server)
    agents_pb2_grpc.add_AgentServiceServicer_to_server(Agents(platform), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    port = server.add_secure_port(listen, tls) if tls is not None else server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("platform listening on port %d (%s)", port, "TLS" if tls is not None else "plaintext")
    return PlatformServer(platform, server, port, health_servicer)
