"""Helpers for tests of agents: enrolment over real gRPC, hand-signed scans, one-shot streams."""

from __future__ import annotations

import time

import grpc
from clearpoint.scan_signing import ScanFields, enrol_proof_message, sign_scan
from clearpoint.v1 import agents_pb2, agents_pb2_grpc, partners_pb2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import timestamp_pb2

from tests.helpers import Client, RunningPlatform, rid


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


async def partner_id_of(client: Client) -> str:
    me = await client.partners.WhoAmI(partners_pb2.WhoAmIRequest(), metadata=client.metadata)
    return me.partner.partner_id


async def enrolment_token(platform: RunningPlatform, partner: Client, store_id: str = "store-1", ttl: int = 0) -> str:
    op = platform.operator()
    stub = agents_pb2_grpc.AgentServiceStub(op.channel)
    response = await stub.CreateEnrolmentToken(
        agents_pb2.CreateEnrolmentTokenRequest(
            request_id=rid(), partner_id=await partner_id_of(partner), store_id=store_id, ttl_seconds=ttl
        ),
        metadata=op.metadata,
    )
    return response.token


async def enrol_with(
    target: str, token: str, key: Ed25519PrivateKey, name: str = "till-pc", proof_key: Ed25519PrivateKey | None = None
) -> agents_pb2.Agent:
    async with grpc.aio.insecure_channel(target) as channel:
        response = await agents_pb2_grpc.AgentServiceStub(channel).EnrolAgent(
            agents_pb2.EnrolAgentRequest(
                token=token,
                public_key=raw_public(key),
                display_name=name,
                proof_signature=(proof_key or key).sign(enrol_proof_message(token, name)),
            )
        )
    return response.agent


async def enrol_agent(
    platform: RunningPlatform, partner: Client, store_id: str = "store-1"
) -> tuple[str, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    agent = await enrol_with(platform.target, await enrolment_token(platform, partner, store_id), key)
    return agent.agent_id, key


def signed(
    agent_id: str,
    key: Ed25519PrivateKey,
    sequence: int,
    data: bytes,
    scanner_id: str = "till-1",
    symbology: str = "",
    time_us: int | None = None,
) -> agents_pb2.SignedScan:
    time_us = time.time_ns() // 1000 if time_us is None else time_us
    fields = ScanFields(agent_id, scanner_id, sequence, time_us, symbology, data)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(time_us)
    return agents_pb2.SignedScan(
        agent_id=agent_id,
        scanner_id=scanner_id,
        sequence=sequence,
        scan_time=stamp,
        symbology=symbology,
        data=data,
        signature=sign_scan(key, fields),
    )


async def stream_scans(target: str, scans: list[agents_pb2.SignedScan]) -> dict[int, agents_pb2.ScanAnswer]:
    """Send scans on one StreamScans call and collect one answer per scan, by sequence."""
    answers: dict[int, agents_pb2.ScanAnswer] = {}
    async with grpc.aio.insecure_channel(target) as channel:
        call = agents_pb2_grpc.AgentServiceStub(channel).StreamScans()
        for scan in scans:
            await call.write(agents_pb2.StreamScansRequest(scan=scan))
        await call.done_writing()
        async for response in call:
            if response.HasField("answer"):
                answers[response.answer.sequence] = response.answer
    return answers


async def stream_one_by_one(target: str, scans: list[agents_pb2.SignedScan]) -> list[agents_pb2.ScanAnswer]:
    """Send each scan only after the previous one was answered (order of answers = order of scans)."""
    out = []
    async with grpc.aio.insecure_channel(target) as channel:
        call = agents_pb2_grpc.AgentServiceStub(channel).StreamScans()
        for scan in scans:
            await call.write(agents_pb2.StreamScansRequest(scan=scan))
            while True:
                response = await call.read()
                if response.HasField("answer"):
                    out.append(response.answer)
                    break
        await call.done_writing()
    return out
