"""Real processes for outage tests: `clearpoint platform serve` and `clearpoint agent run`, each
killable with SIGKILL, their output collected as it comes."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from clearpoint.platform.api import server
from clearpoint.platform.app import Platform
from clearpoint.platform.core.clock import system_clock
from clearpoint.platform.core.principals import Role
from clearpoint.platform.keys.master_key import MasterKey
from clearpoint.platform.partners import accounts
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.agent_helpers import enrolment_token
from tests.helpers import Client, RunningPlatform

CLI = [sys.executable, "-m", "clearpoint.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Seeded:
    campaign_id: str
    codes: list[str]
    token: str
    master_key_b64: str
    partner_key: str


async def seed(database_url: str, vouchers: int) -> Seeded:
    """A campaign with vouchers and an enrolment token, made through a short-lived in-process server."""
    from tests.conftest import MASTER_KEY_RAW as raw  # one master key per session, as the database is shared

    platform = await Platform.open(database_url, master_key=MasterKey(raw), clock=system_clock)
    running = await server.start(platform, "127.0.0.1:0")
    async with platform.db.write() as conn:
        _, operator_key = await accounts.create(conn, f"ops-{secrets.token_hex(4)}", Role.OPERATOR, system_clock())
    handle = RunningPlatform(running, None, f"127.0.0.1:{running.port}", operator_key)  # type: ignore[arg-type]
    try:
        await handle.operator().create_key_if_none()
        partner: Client = await handle.new_partner()
        campaign = await partner.campaign(system_clock(), total_stock=vouchers)
        codes: list[str] = []
        while len(codes) < vouchers:
            codes += [v.code for v in await partner.issue(campaign.campaign_id, min(1000, vouchers - len(codes)))]
        token = await enrolment_token(handle, partner)
    finally:
        await handle.close()
    return Seeded(campaign.campaign_id, codes, token, base64.b64encode(raw).decode(), partner.api_key)


@dataclass
class Proc:
    """A child process whose stdout and stderr are collected line by line in the background."""

    argv: list[str]
    env: dict[str, str]
    popen: subprocess.Popen[str] | None = None
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.popen = subprocess.Popen(
            self.argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        for stream, sink in ((self.popen.stdout, self.out), (self.popen.stderr, self.err)):
            threading.Thread(target=_drain, args=(stream, sink), daemon=True).start()

    def wait_for(self, text: str, within: float = 30.0, stream: str = "err") -> None:
        lines = self.err if stream == "err" else self.out
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if any(text in line for line in list(lines)):
                return
            if self.popen is not None and self.popen.poll() is not None:
                raise AssertionError(f"{self.argv[3:5]} exited {self.popen.returncode}:\n{''.join(self.err)}")
            time.sleep(0.05)
        raise AssertionError(f"{text!r} did not appear within {within} s:\n{''.join(lines[-40:])}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, exactly like a power cut for this process."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> int:
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else 0
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(10)


def _drain(stream, sink: list[str]) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        sink.append(line)


def platform_process(database_url: str, master_key_b64: str, port: int) -> Proc:
    env = dict(
        os.environ,
        CLEARPOINT_DATABASE_URL=database_url,
        CLEARPOINT_MASTER_KEY=master_key_b64,
        CLEARPOINT_LISTEN=f"127.0.0.1:{port}",
    )
    return Proc([*CLI, "platform", "serve"], env)


def start_platform_process(database_url: str, master_key_b64: str, port: int) -> Proc:
    proc = platform_process(database_url, master_key_b64, port)
    proc.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    return proc


def agent_process(config: Path, token: str = "") -> Proc:
    env = dict(os.environ, CLEARPOINT_ENROLMENT_TOKEN=token, PYTHONUNBUFFERED="1")
    return Proc([*CLI, "agent", "run", "--config", str(config)], env)
