"""Helpers for tests of agents: enrolment over real gRPC, hand-signed scans, one-shot streams."""

from __future__ import annotations

import asyncio
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from clearpoint.formats.scan_signatures import ScanFields, enrol_proof_message, sign_scan, stream_proof_message
from clearpoint.scanner_agent.agent import Agent
from clearpoint.scanner_agent.config import AgentConfig
from clearpoint.scanner_agent.config import load as load_config
from clearpoint.scanner_agent.console import Console
from clearpoint.scanner_agent.enrol import enrol
from clearpoint.scanner_agent.identity import load_identity, load_key
from clearpoint.scanner_agent.journal import ClaimBookEntry, Journal, read_claims
from clearpoint.scanner_agent.virtual_scanner import VirtualScanner
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


Opener = tuple[str, Ed25519PrivateKey]  # the agent a stream is opened as, and its key


async def open_stream(
    channel: grpc.aio.Channel, agent: Opener
) -> tuple[grpc.aio.StreamStreamCall, agents_pb2.StreamScansResponse]:  # type: ignore[type-arg]
    """A StreamScans call opened as `agent`: the platform's first message read, its challenge signed."""
    call = agents_pb2_grpc.AgentServiceStub(channel).StreamScans()
    first = await call.read()
    agent_id, key = agent
    proof = key.sign(stream_proof_message(first.challenge, agent_id))
    await call.write(agents_pb2.StreamScansRequest(hello=agents_pb2.StreamHello(agent_id=agent_id, signature=proof)))
    return call, first


async def rest_of(call: grpc.aio.StreamStreamCall) -> list[agents_pb2.StreamScansResponse]:  # type: ignore[type-arg]
    """Every further message of a call read with read() (grpc.aio does not mix it with iteration)."""
    out = []
    while (response := await call.read()) is not grpc.aio.EOF:
        out.append(response)
    return out


async def stream_scans(
    target: str, scans: list[agents_pb2.SignedScan], agent: Opener
) -> dict[int, agents_pb2.ScanAnswer]:
    """Send scans on one StreamScans call opened as `agent`; collect one answer per scan, by sequence."""
    answers: dict[int, agents_pb2.ScanAnswer] = {}
    async with grpc.aio.insecure_channel(target) as channel:
        call, _ = await open_stream(channel, agent)
        for scan in scans:
            await call.write(agents_pb2.StreamScansRequest(scan=scan))
        await call.done_writing()
        for response in await rest_of(call):
            if response.HasField("answer"):
                answers[response.answer.sequence] = response.answer
    return answers


async def stream_one_by_one(
    target: str, scans: list[agents_pb2.SignedScan], agent: Opener
) -> list[agents_pb2.ScanAnswer]:
    """Send each scan only after the previous one was answered (order of answers = order of scans)."""
    out = []
    async with grpc.aio.insecure_channel(target) as channel:
        call, _ = await open_stream(channel, agent)
        for scan in scans:
            await call.write(agents_pb2.StreamScansRequest(scan=scan))
            while True:
                response = await call.read()
                if response.HasField("answer"):
                    out.append(response.answer)
                    break
        await call.done_writing()
    return out


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def write_config(directory: Path, target: str, scanners: list[dict[str, object]], **agent: object) -> Path:
    """An agent TOML config in `directory` (data_dir beside it unless given)."""
    lines = ["[agent]", f"platform = {toml_value(target)}"]
    lines += [f"{k} = {toml_value(v)}" for k, v in {"data_dir": "agent-data", **agent}.items()]
    for scanner in scanners:
        lines += ["", "[[scanner]]"] + [f"{k} = {toml_value(v)}" for k, v in scanner.items()]
    path = directory / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def till_config(directory: Path, target: str, scanner: VirtualScanner, baud: int, **agent: object) -> Path:
    """An agent with one serial scanner, "till-1", on a virtual scanner's port."""
    till = {"id": "till-1", "type": "serial", "path": scanner.port, "baud": baud}
    return write_config(directory, target, [till], **agent)


@dataclass
class RunningAgent:
    agent: Agent
    console: io.StringIO
    stop: asyncio.Event
    task: asyncio.Task[None]
    config: AgentConfig

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)
        await self.agent.journal.close()

    async def wait_ready(self, within: float = 10.0) -> None:
        """Until every scanner is open (bytes sent before would be flushed, as on real hardware) and the link is up."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            drivers = self.agent.drivers.values()
            if self.agent.uplink.connected and all(getattr(d, "connected", True) for d in drivers):
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the agent did not get ready")

    def claims(self) -> list[ClaimBookEntry]:
        return read_claims(self.config.journal_path)

    async def wait_answered(self, count: int, within: float = 30.0) -> list[ClaimBookEntry]:
        """Wait until the claim book holds `count` answered scans."""
        deadline = time.monotonic() + within
        while True:
            claims = [c for c in self.claims() if c.answered_us is not None]
            if len(claims) >= count or time.monotonic() > deadline:
                return claims
            await asyncio.sleep(0.05)


async def start_agent(config_path: Path, token: str = "") -> RunningAgent:
    """A real agent (drivers, journal, uplink) on this loop, enrolled with `token` if not yet."""
    config = load_config(config_path)
    if token and not (config.data_dir / "identity.json").exists():
        await enrol(config.uplink(), config.data_dir, token, "test-till")
    identity = load_identity(config.data_dir)
    key = load_key(config.data_dir)
    journal = await Journal.open(config.journal_path, identity.agent_id, key, config.max_backlog)
    console = io.StringIO()
    agent = Agent(
        identity, key, journal, config.drivers(), config.uplink(), Console(console, config.answer_wait_seconds)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    return RunningAgent(agent, console, stop, task, config)


async def agent_on_pty(
    tmp_path: Path, platform: RunningPlatform, partner: Client, store_id: str = "store-1", baud: int = 115200
) -> tuple[VirtualScanner, RunningAgent]:
    """A real agent, enrolled for `store_id`, reading a virtual serial scanner (a pty): ready to scan."""
    scanner = VirtualScanner(tmp_path / "usb-Virtual_Scanner_0001-if00")
    config = write_config(
        tmp_path,
        platform.target,
        [{"id": "till-1", "type": "serial", "path": scanner.port, "baud": baud}],
        reconnect_initial_seconds=0.05,
        reconnect_max_seconds=0.5,
    )
    agent = await start_agent(config, await enrolment_token(platform, partner, store_id=store_id))
    await agent.wait_ready()
    return scanner, agent
