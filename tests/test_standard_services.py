"""Health checking and server reflection answer generic clients, with no API key and no project code."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.helpers import RunningPlatform


async def test_health_serving(platform: RunningPlatform) -> None:
    async with grpc.aio.insecure_channel(platform.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "clearpoint.v1.RedemptionService"):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_and_describes_services(platform: RunningPlatform) -> None:
    async with grpc.aio.insecure_channel(platform.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def ask(**kw):  # type: ignore[no-untyped-def]
            call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**kw)]))
            return await anext(aiter(call))

        listed = await ask(list_services="")
        names = {s.name for s in listed.list_services_response.service}
        assert {
            "clearpoint.v1.IssuerKeyService",
            "clearpoint.v1.PartnerService",
            "clearpoint.v1.CampaignService",
            "clearpoint.v1.RedemptionService",
            "grpc.health.v1.Health",
        } <= names
        described = await ask(file_containing_symbol="clearpoint.v1.RedemptionService")
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in described.file_descriptor_response.file_descriptor_proto
        ]
        methods = {m.name for f in files for s in f.service for m in s.method}
        assert {"Redeem", "ValidateCode", "RollbackRedemption", "ListRedemptions", "GetVoucher"} <= methods
