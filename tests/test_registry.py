"""One declaration per service is all it takes: a throwaway service, declared the way every room
declares its own and added to the registry's list, is served, reflected, health-reported, policed by
the guard and reachable from the test client, with no other line changed."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from clearpoint.platform.api import server
from clearpoint.platform.api.registry import SERVICES
from clearpoint.platform.app import Platform
from clearpoint.platform.core.clock import ManualClock
from clearpoint.platform.core.principals import Role, current_principal
from clearpoint.platform.edge import OPERATORS, PARTNERS, Service
from clearpoint.platform.partners import accounts
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.conftest import MASTER_KEY
from tests.helpers import Client, refusal_of

PROTO = """
syntax = "proto3";
package throwaway.v1;
service EchoService {
  rpc Echo(EchoRequest) returns (EchoResponse);
  rpc WhoCalls(EchoRequest) returns (EchoResponse);
}
message EchoRequest { string text = 1; }
message EchoResponse { string text = 1; }
"""


@pytest.fixture(scope="module")
def echo_modules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, ModuleType]]:
    """The throwaway service's generated modules, built from PROTO with grpcio-tools."""
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("echo")
    (out / "throwaway_echo.proto").write_text(PROTO)
    assert (
        protoc.main(
            ["protoc", f"-I{out}", f"--python_out={out}", f"--grpc_python_out={out}", str(out / "throwaway_echo.proto")]
        )
        == 0
    )
    sys.path.insert(0, str(out))
    try:
        import throwaway_echo_pb2
        import throwaway_echo_pb2_grpc

        yield throwaway_echo_pb2, throwaway_echo_pb2_grpc
    finally:
        sys.path.remove(str(out))


def echo_service(pb2: ModuleType, pb2_grpc: ModuleType) -> Service:
    class EchoServicer(pb2_grpc.EchoServiceServicer):
        def __init__(self, p: Platform) -> None:
            self.p = p

        async def Echo(self, request: Any, context: Any) -> Any:
            return pb2.EchoResponse(text=f"{current_principal.get().name}: {request.text}")

        async def WhoCalls(self, request: Any, context: Any) -> Any:
            return pb2.EchoResponse(text=current_principal.get().role.value)

    return Service(
        descriptor=pb2.DESCRIPTOR.services_by_name["EchoService"],
        servicer=EchoServicer,
        add_to_server=pb2_grpc.add_EchoServiceServicer_to_server,
        stub=pb2_grpc.EchoServiceStub,
        client_name="echo",
        access=OPERATORS,
        overrides={"Echo": PARTNERS},
    )


@pytest.fixture
async def running(
    echo_modules: tuple[ModuleType, ModuleType], tmp_path: Path
) -> AsyncIterator[tuple[server.PlatformServer, Service, str, str]]:
    services = (*SERVICES, echo_service(*echo_modules))
    clock = ManualClock()
    platform = await Platform.open(f"sqlite:///{tmp_path / 'db.sqlite3'}", master_key=MASTER_KEY, clock=clock)
    async with platform.db.write() as conn:
        _, operator_key = await accounts.create(conn, f"op-{secrets.token_hex(3)}", Role.OPERATOR, clock())
        _, partner_key = await accounts.create(conn, "Echo Partner", Role.PARTNER, clock())
    running = await server.start(platform, "127.0.0.1:0", services=services)
    yield running, services[-1], operator_key, partner_key
    await running.stop(0)
    await platform.close()


async def test_a_registered_service_is_served_reflected_health_reported_and_policed(
    running: tuple[server.PlatformServer, Service, str, str], echo_modules: tuple[ModuleType, ModuleType]
) -> None:
    platform_server, echo, operator_key, partner_key = running
    pb2, _ = echo_modules
    target = f"127.0.0.1:{platform_server.port}"
    services = (*SERVICES, echo)
    partner, operator, anonymous = (Client(target, key, services) for key in (partner_key, operator_key, ""))
    try:
        # Served, and the test client reaches it by its declared name.
        said = await partner.echo.Echo(pb2.EchoRequest(text="hello"), metadata=partner.metadata)
        assert said.text == "Echo Partner: hello"
        # Policed by the guard: the declared access, the declared override, and no key at all.
        assert (await operator.echo.WhoCalls(pb2.EchoRequest(), metadata=operator.metadata)).text == "operator"
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await partner.echo.WhoCalls(pb2.EchoRequest(), metadata=partner.metadata)
        assert refusal_of(denied.value).reason == "PERMISSION_DENIED"
        with pytest.raises(grpc.aio.AioRpcError) as anonymous_call:
            await anonymous.echo.Echo(pb2.EchoRequest(text="x"))
        assert refusal_of(anonymous_call.value).reason == "UNAUTHENTICATED"

        # Health-reported and reflected, for generic clients.
        health = health_pb2_grpc.HealthStub(partner.channel)
        status = await health.Check(health_pb2.HealthCheckRequest(service="throwaway.v1.EchoService"))
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(partner.channel)

        async def ask(**kw: str) -> Any:
            call = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**kw)]))
            return await anext(aiter(call))

        listed = await ask(list_services="")
        assert "throwaway.v1.EchoService" in {s.name for s in listed.list_services_response.service}
        described = await ask(file_containing_symbol="throwaway.v1.EchoService")
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in described.file_descriptor_response.file_descriptor_proto
        ]
        assert {m.name for f in files for s in f.service for m in s.method} == {"Echo", "WhoCalls"}
    finally:
        for client in (partner, operator, anonymous):
            await client.close()


def test_a_declaration_names_only_methods_its_service_has(echo_modules: tuple[ModuleType, ModuleType]) -> None:
    pb2, pb2_grpc = echo_modules
    with pytest.raises(ValueError, match="no method Ecoh"):
        Service(
            descriptor=pb2.DESCRIPTOR.services_by_name["EchoService"],
            servicer=object,
            add_to_server=pb2_grpc.add_EchoServiceServicer_to_server,
            stub=pb2_grpc.EchoServiceStub,
            client_name="echo",
            access=OPERATORS,
            overrides={"Ecoh": PARTNERS},
        )


def test_every_registered_method_has_a_policy() -> None:
    """The guard refuses any method without one; every method of every registered service has one."""
    policy = server.policy(SERVICES)
    methods = {f"/{s.name}/{m.name}" for s in SERVICES for m in s.descriptor.methods}
    assert set(policy) == methods
    assert len({s.client_name for s in SERVICES}) == len(SERVICES)
