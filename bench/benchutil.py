"""Pieces both benchmarks use: progress lines, the `clearpoint` command, ports, processes, CPU time."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from clearpoint.v1 import campaigns_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

_T0 = time.monotonic()


def say(message: str) -> None:
    """Progress for the person watching; stdout stays clean for the table or JSON."""
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def clearpoint_command() -> str:
    """The venv's `clearpoint` (beside this interpreter) even when the venv is not activated."""
    beside = Path(sys.executable).with_name("clearpoint")
    found = str(beside) if beside.exists() else shutil.which("clearpoint")
    if not found:
        raise SystemExit("cannot find the `clearpoint` command: install the project (pip install -e .)")
    return found


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time a process and its direct children have used (Linux /proc): tells a CPU-bound server
    from a waiting one, with `--workers` too. None where that cannot be read."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0.0
        for one in (str(pid), *children):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total
    except (OSError, IndexError, ValueError):
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(int(seconds * 1_000_000))
    return stamp


def campaign_request(
    request_id: str, name: str, total_stock: int, started_seconds_ago: float = 60.0
) -> campaigns_pb2.CreateCampaignRequest:
    """A campaign open from a little while ago until tomorrow, one use a voucher, at every store."""
    return campaigns_pb2.CreateCampaignRequest(
        request_id=request_id,
        name=name,
        prize_description="a bench prize",
        valid_from=timestamp(time.time() - started_seconds_ago),
        valid_until=timestamp(time.time() + 86_400),
        total_stock=total_stock,
        uses_per_voucher=1,
    )


async def wait_serving(target: str, alive: Callable[[], bool], limit: float = 60.0) -> None:
    """Until `target` answers health checks with SERVING (or, with no health service, answers at all)."""
    deadline = time.monotonic() + limit
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError(f"the server for {target} exited before serving")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # no health service (a no-op server): it is up
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing served on {target} in time")
