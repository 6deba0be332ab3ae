"""`clearpoint platform serve` as an operator runs it: a real process, options from the environment,
health answered, an operator created with `create-operator` able to call the API, clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from clearpoint.v1 import partners_pb2, partners_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        CLEARPOINT_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CLEARPOINT_MASTER_KEY_FILE=str(tmp_path / "master.key"),
        CLEARPOINT_LISTEN=f"127.0.0.1:{_free_port()}",
    )
    cli = [sys.executable, "-m", "clearpoint.cli", "platform"]
    made = subprocess.run([*cli, "create-operator", "--name", "ops"], env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("cpk_")
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600

    server = subprocess.Popen([*cli, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        with grpc.insecure_channel(env["CLEARPOINT_LISTEN"]) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            me = partners_pb2_grpc.PartnerServiceStub(channel).WhoAmI(
                partners_pb2.WhoAmIRequest(), metadata=(("x-api-key", key),), timeout=5
            )
            assert me.partner.name == "ops" and me.partner.role == partners_pb2.ROLE_OPERATOR
    finally:
        server.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert time.monotonic() - started < 15
    assert "serving on" in err and "stopping" in err
    assert key not in err


def test_serve_with_workers(tmp_path: Path) -> None:
    """Two worker processes share one port; both answer; SIGTERM stops them all."""
    env = dict(
        os.environ,
        CLEARPOINT_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CLEARPOINT_MASTER_KEY_FILE=str(tmp_path / "master.key"),
        CLEARPOINT_LISTEN=f"127.0.0.1:{_free_port()}",
        CLEARPOINT_WORKERS="2",
    )
    cli = [sys.executable, "-m", "clearpoint.cli", "platform"]
    key = subprocess.run(
        [*cli, "create-operator", "--name", "ops"], env=env, capture_output=True, text=True
    ).stdout.strip()
    parent = subprocess.Popen([*cli, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        children: list[str] = []
        while time.monotonic() < deadline and len(children) < 2:
            time.sleep(0.2)
            children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
        assert len(children) == 2
        # Separate connections land on either worker; every one of them is served.
        for _ in range(6):
            with grpc.insecure_channel(env["CLEARPOINT_LISTEN"], options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
                grpc.channel_ready_future(ch).result(timeout=30)
                me = partners_pb2_grpc.PartnerServiceStub(ch).WhoAmI(
                    partners_pb2.WhoAmIRequest(), metadata=(("x-api-key", key),), timeout=5
                )
                assert me.partner.name == "ops"
    finally:
        parent.send_signal(signal.SIGTERM)
        _, err = parent.communicate(timeout=30)
    assert parent.returncode == 0, err
    assert err.count("serving on") >= 1
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)


def test_bad_limits_are_refused_before_anything_starts(tmp_path: Path) -> None:
    env = dict(os.environ, CLEARPOINT_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    cli = [sys.executable, "-m", "clearpoint.cli", "platform", "serve"]
    for flag, value, said in (
        ("--max-streams-per-caller", "0", "--max-streams-per-caller must be at least 1"),
        ("--workers", "0", "--workers must be at least 1"),
    ):
        done = subprocess.run([*cli, flag, value], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and said in done.stderr, done.stderr
    assert not (tmp_path / "db.sqlite3").exists()
    shown = subprocess.run([*cli, "--help"], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "--max-streams-per-caller" in shown and "TOO_MANY_STREAMS" in shown
