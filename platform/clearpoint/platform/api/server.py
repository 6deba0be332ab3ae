"""The grpc.aio server: the registered services plus standard health checking and reflection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import grpc
from clearpoint.platform.agents.fleet import REVOCATION_POLL_S
from clearpoint.platform.api.guard import GuardInterceptor
from clearpoint.platform.api.listening import ListenError
from clearpoint.platform.api.registry import SERVICES
from clearpoint.platform.app import Platform
from clearpoint.platform.core import metrics
from clearpoint.platform.core.database import DatabaseUnavailable
from clearpoint.platform.core.errors import Refusal
from clearpoint.platform.edge import Access, Service
from clearpoint.platform.exchange import exchanges
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy.exc import IntegrityError

log = logging.getLogger(__name__)

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


# How often health checking asks the database whether it answers.
DATABASE_PROBE_SECONDS = 1.0
# How long stopping waits for a clearing run under way before cutting it off (a killed run resumes).
CLEARING_STOP_SECONDS = 10.0
# How often sides of exchanges past their timeout are looked for and voided.
EXPIRY_SWEEP_SECONDS = 1.0


class PlatformServer:
    def __init__(
        self,
        platform: Platform,
        server: grpc.aio.Server,
        port: int,
        health: health.aio.HealthServicer,
        names: Sequence[str],
    ) -> None:
        self.platform = platform
        self.server = server
        self.port = port
        self._health = health
        self._names = ("", *names)
        self._serving: bool | None = None
        self._probe = asyncio.create_task(self._watch_database())
        self._sweeper = asyncio.create_task(self._void_expired_sides())
        self._revocations = asyncio.create_task(self._end_revoked_streams())
        # Clearing on its schedule; of several processes on one database, the lease holder runs it.
        self._clearing = asyncio.create_task(platform.clearing.scheduled())

    async def _void_expired_sides(self) -> None:
        """Void the sides of exchanges whose channel did not answer in time. Every process may do it:
        a side is resolved once (the ledger's unique resolution), and a loser just looks again."""
        p = self.platform
        while True:
            await asyncio.sleep(EXPIRY_SWEEP_SECONDS)
            try:
                async with p.db.read() as conn:
                    due = await exchanges.overdue(conn, p.clock())
                for exchange_id in due:
                    async with p.db.write() as conn:
                        done = await exchanges.void_overdue(conn, exchange_id, p.clock())
                    for channel_id in (done.from_channel, done.to_channel) if done else ():
                        if channel_id:
                            p.instructions.changed(channel_id)
            except (DatabaseUnavailable, Refusal, IntegrityError) as exc:  # away, or another process was first
                log.debug("expiry sweep: %s", exc)
            except Exception:
                log.exception("expiry sweep failed; trying again in %g s", EXPIRY_SWEEP_SECONDS)

    async def _end_revoked_streams(self) -> None:
        """End the streams here of agents another process revoked (that one ended its own at once)."""
        while True:
            await asyncio.sleep(REVOCATION_POLL_S)
            try:
                await self.platform.fleet.end_revoked()
            except DatabaseUnavailable as exc:
                log.debug("revocation check: %s", exc)
            except Exception:
                log.exception("revocation check failed; trying again in %g s", REVOCATION_POLL_S)

    async def _watch_database(self) -> None:
        """Health follows the database: NOT_SERVING while it does not answer, so a balancer sends
        calls to a platform that can serve them; SERVING again once it does."""
        while True:
            up = await self.platform.db.reachable(within_s=DATABASE_PROBE_SECONDS * 2)
            metrics.DATABASE_UP.set(1 if up else 0)
            if up != self._serving:
                if self._serving is not None:
                    log.warning(
                        "database %s: health %s", "back" if up else "unreachable", "SERVING" if up else "NOT_SERVING"
                    )
                self._serving = up
                status = health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
                for name in self._names:
                    await self._health.set(name, status)
            await asyncio.sleep(DATABASE_PROBE_SECONDS)

    async def stop(self, grace: float = 5.0) -> None:
        """Report NOT_SERVING first so balancers drain us, then finish calls in flight."""
        self.platform.clearing.stop()  # a run under way finishes (bounded), then the schedule ends
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._clearing, CLEARING_STOP_SECONDS)
        for task in (self._probe, self._sweeper, self._revocations):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)


def policy(services: Sequence[Service]) -> dict[str, Access]:
    return {path: access for service in services for path, access in service.policy().items()}


async def start(
    platform: Platform,
    listen: str,
    tls: grpc.ServerCredentials | None = None,
    services: Sequence[Service] = SERVICES,
    *,
    share_port: bool = False,
) -> PlatformServer:
    """Serve `services` on `listen`; with `tls`, only over TLS (API keys travel in call metadata).
    Only the workers of one `serve` share a port (`share_port`; see listening.claim)."""
    guard = GuardInterceptor(platform.auth, platform.db.read, policy(services), platform.streams)
    options = [*SERVER_OPTIONS, ("grpc.so_reuseport", 1 if share_port else 0)]
    server = grpc.aio.server(interceptors=[guard], options=options)
    for service in services:
        service.add_to_server(service.servicer(platform), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [service.name for service in services]
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    try:
        port = server.add_secure_port(listen, tls) if tls is not None else server.add_insecure_port(listen)
    except RuntimeError:  # gRPC says only "failed to bind"; the start-up check names the usual causes first
        port = 0
    if port == 0:
        raise ListenError(f"cannot listen on {listen} (in use, or not an address of this host): correct --listen")
    await server.start()
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("platform listening on port %d (%s)", port, "TLS" if tls is not None else "plaintext")
    return PlatformServer(platform, server, port, health_servicer, names)
