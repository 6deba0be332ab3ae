"""A fleet of store agents on one platform process: how much memory each connected agent costs,
what its heartbeats cost the database, and whether an operator still gets answers meanwhile.

    python bench/fleet.py                      # 2000 agents, heartbeats every 15 s, held 45 s
    python bench/fleet.py --agents 500 --quick

One `platform serve` process (PostgreSQL, a fresh database) and, as the baseline, a bare grpc.aio
server that takes the same streams and answers the same heartbeats with no database and no checks,
both driven by one load process: N StreamScans streams (as real agents open them, a hello signing
the challenge, then a heartbeat at the interval the server announced, first ones spread over the
interval), kept open for --hold-seconds. Measured on each, in the same run:

- memory: the server's RSS with every stream open, less its RSS before, per stream;
- the heartbeat write load: transactions and rows the platform's database committed per second
  while the streams were held (pg_stat_database), and the heartbeats per write (group commit);
- the operator's view: ListAgents (every agent with its status) and a health check, timed from
  another client before the streams open and while they are held.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from benchutil import clearpoint_command, cpu_seconds, free_port, say, stop_process, wait_serving
from clearpoint.formats.scan_signatures import CHALLENGE_BYTES, enrol_proof_message, stream_proof_message
from clearpoint.v1 import agents_pb2, agents_pb2_grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

A = agents_pb2
STREAMS_PER_CHANNEL = (
    100  # agents share connections in the load process, as no real fleet would; the server sees streams
)


# -- the bare baseline server ------------------------------------------------------------------------


class BareAgents(agents_pb2_grpc.AgentServiceServicer):
    """Takes StreamScans streams and acknowledges heartbeats: no database, no signature checks."""

    def __init__(self, heartbeat_s: float) -> None:
        self.interval = duration_pb2.Duration(seconds=int(heartbeat_s))

    async def StreamScans(self, request_iterator: Any, context: Any) -> Any:
        yield A.StreamScansResponse(challenge=secrets.token_bytes(CHALLENGE_BYTES), heartbeat_interval=self.interval)
        async for request in request_iterator:
            if request.HasField("heartbeat"):
                ack = A.HeartbeatAck(send_time=request.heartbeat.send_time)
                ack.platform_time.GetCurrentTime()
                yield A.StreamScansResponse(heartbeat_ack=ack)


async def _bare_server(port: int, heartbeat_s: float) -> None:
    from grpc_health.v1 import health

    server = grpc.aio.server()
    agents_pb2_grpc.add_AgentServiceServicer_to_server(BareAgents(heartbeat_s), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


# -- the load: many agents' streams ------------------------------------------------------------------


@dataclass
class LoadReport:
    opened: int = 0
    failed: int = 0
    heartbeats: int = 0
    acks: int = 0
    open_seconds: float = 0.0


async def _agent_stream(
    channel: grpc.aio.Channel,
    agent: tuple[str, bytes],
    heartbeat_s: float,
    until: float,
    report: LoadReport,
    opened: asyncio.Event,
    opening: asyncio.Semaphore,
) -> None:
    agent_id, raw = agent
    key = Ed25519PrivateKey.from_private_bytes(raw)
    await opening.acquire()  # a few hundred proving at once, as a fleet reconnecting after an outage would
    call = agents_pb2_grpc.AgentServiceStub(channel).StreamScans()
    try:
        try:
            first = await call.read()
            proof = key.sign(stream_proof_message(first.challenge, agent_id))
            await call.write(A.StreamScansRequest(hello=A.StreamHello(agent_id=agent_id, signature=proof)))
            beat = A.AgentHeartbeat(version="bench", backlog=0)
            beat.send_time.GetCurrentTime()
            await call.write(A.StreamScansRequest(heartbeat=beat))  # answered only once the hello verified
            await call.read()
        finally:
            opening.release()
        report.opened += 1
        opened.set()
        await asyncio.sleep(secrets.randbelow(int(heartbeat_s * 1000)) / 1000)  # spread, as agents started at random
        while time.monotonic() < until:
            beat = A.AgentHeartbeat(version="bench", backlog=0)
            beat.send_time.GetCurrentTime()
            beat.scanners.add(scanner_id="till-1", kind="serial", path="/dev/ttyUSB0", connected=True)
            await call.write(A.StreamScansRequest(heartbeat=beat))
            report.heartbeats += 1
            reply = await call.read()
            if isinstance(reply, A.StreamScansResponse) and reply.HasField("heartbeat_ack"):
                report.acks += 1
            await asyncio.sleep(min(heartbeat_s, max(0.0, until - time.monotonic())))
        await call.done_writing()
    except grpc.aio.AioRpcError as exc:
        report.failed += 1
        if report.failed <= 3:
            say(f"a stream failed: {exc.code().name}: {exc.details()} ({exc.debug_error_string()})")
    finally:
        opened.set()  # opened, or failed: either way no longer waited for
        call.cancel()


async def _load(
    target: str, agents: list[tuple[str, bytes]], heartbeat_s: float, hold_s: float, ready: Any
) -> LoadReport:
    report = LoadReport()
    started = time.monotonic()
    until = started + hold_s + 60  # streams outlive the hold; the parent stops this process when done
    channels = [grpc.aio.insecure_channel(target) for _ in range(0, len(agents), STREAMS_PER_CHANNEL)]
    events = [asyncio.Event() for _ in agents]
    opening = asyncio.Semaphore(200)
    tasks = [
        asyncio.create_task(
            _agent_stream(channels[i // STREAMS_PER_CHANNEL], agent, heartbeat_s, until, report, events[i], opening)
        )
        for i, agent in enumerate(agents)
    ]
    for event in events:
        await event.wait()
    report.open_seconds = time.monotonic() - started
    ready.put(asdict(report))
    await asyncio.gather(*tasks, return_exceptions=True)
    return report


def run_load(target: str, agents: list[tuple[str, bytes]], heartbeat_s: float, hold_s: float, ready: Any) -> None:
    asyncio.run(_load(target, agents, heartbeat_s, hold_s, ready))


# -- measuring ---------------------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no RSS for {pid}")


async def _latencies(target: str, operator_key: str | None, calls: int) -> dict[str, float]:
    """p50 and p99 (ms) of ListAgents (with a key) or a health check, one at a time."""
    times: list[float] = []
    async with grpc.aio.insecure_channel(target) as channel:
        for _ in range(calls):
            started = time.perf_counter()
            if operator_key:
                await agents_pb2_grpc.AgentServiceStub(channel).ListAgents(
                    A.ListAgentsRequest(), metadata=(("x-api-key", operator_key),), timeout=30
                )
            else:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
    }


async def _pg_counts(url: str) -> tuple[int, int]:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
    )
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        row = await conn.fetchrow(
            "SELECT xact_commit, tup_updated + tup_inserted AS rows FROM pg_stat_database WHERE datname = $1",
            parsed.database,
        )
        return int(row["xact_commit"]), int(row["rows"])
    finally:
        await conn.close()


async def _seed(url: str, master: bytes, n: int) -> tuple[str, list[tuple[str, bytes]]]:
    """An operator and n enrolled agents (their keys kept for the load process)."""
    from clearpoint.platform.agents import enrolment
    from clearpoint.platform.app import Platform
    from clearpoint.platform.core.principals import Role
    from clearpoint.platform.keys.master_key import MasterKey
    from clearpoint.platform.partners import accounts

    platform = await Platform.open(url, master_key=MasterKey(master))
    try:
        async with platform.db.write() as conn:
            _, operator_key = await accounts.create(conn, "bench-ops", Role.OPERATOR, platform.clock())
            partner, _ = await accounts.create(conn, "bench-partner", Role.PARTNER, platform.clock())
        agents = []
        for i in range(n):
            async with platform.db.write() as conn:
                token = await enrolment.create_token(conn, partner.partner_id, f"store-{i:05d}", 3600, platform.clock())
            key = Ed25519PrivateKey.generate()
            raw = key.private_bytes_raw()
            name = f"till-{i:05d}"
            agent = await enrolment.enrol(
                platform.db,
                platform.clock,
                token.token,
                key.public_key().public_bytes_raw(),
                name,
                key.sign(enrol_proof_message(token.token, name)),
            )
            agents.append((agent.agent_id, raw))
            if (i + 1) % 500 == 0:
                say(f"enrolled {i + 1} of {n} agents")
        return operator_key, agents
    finally:
        await platform.close()


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _hold(
    name: str,
    target: str,
    pid: int,
    agents: list[tuple[str, bytes]],
    args: argparse.Namespace,
    operator_key: str | None,
    database_url: str | None,
) -> dict[str, Any]:
    """Open every agent's stream on the server `pid` answers at `target`, hold them, measure."""
    ops = asyncio.run(_latencies(target, operator_key, args.ops_calls))
    rss_before = rss_mib(pid)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    load = ctx.Process(
        target=run_load, args=(target, agents, args.heartbeat_seconds, args.hold_seconds, ready), daemon=True
    )
    load.start()
    try:
        opened = ready.get(timeout=300)
        say(f"{name}: {opened['opened']} streams open in {opened['open_seconds']:.1f} s ({opened['failed']} failed)")
        time.sleep(min(5.0, args.hold_seconds / 4))  # settle: first heartbeats in
        rss_loaded = rss_mib(pid)
        cpu_start = cpu_seconds(pid) or 0.0
        counts_start = asyncio.run(_pg_counts(database_url)) if database_url else None
        window_start = time.monotonic()
        ops_loaded = asyncio.run(_latencies(target, operator_key, args.ops_calls))
        time.sleep(max(0.0, args.hold_seconds - (time.monotonic() - window_start)))
        window = time.monotonic() - window_start
        counts_end = asyncio.run(_pg_counts(database_url)) if database_url else None
        cpu = (cpu_seconds(pid) or 0.0) - cpu_start
        rss_held = rss_mib(pid)
    finally:
        load.terminate()
        load.join(10)
    result: dict[str, Any] = {
        "streams": opened["opened"],
        "failed": opened["failed"],
        "rss_before_mib": round(rss_before, 1),
        "rss_held_mib": round(max(rss_loaded, rss_held), 1),
        "kib_per_stream": round((max(rss_loaded, rss_held) - rss_before) * 1024 / max(1, opened["opened"]), 1),
        "cpu_percent_held": round(100 * cpu / window, 1),
        "ops_before": ops,
        "ops_held": ops_loaded,
    }
    if counts_start and counts_end:
        result["db_commits_per_s"] = round((counts_end[0] - counts_start[0]) / window, 1)
        result["db_rows_per_s"] = round((counts_end[1] - counts_start[1]) / window, 1)
    return result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    admin = args.postgres
    name = f"clearpoint_bench_fleet_{secrets.token_hex(4)}"
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    master = secrets.token_bytes(32)
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    results: dict[str, Any] = {"agents": args.agents, "heartbeat_seconds": args.heartbeat_seconds}
    try:
        say(f"seeding {args.agents} enrolled agents in {name}")
        operator_key, agents = asyncio.run(_seed(url, master, args.agents))

        port = free_port()
        bare = subprocess.Popen(
            [sys.executable, __file__, "--bare-server", str(port), "--heartbeat-seconds", str(args.heartbeat_seconds)]
        )
        try:
            asyncio.run(wait_serving(f"127.0.0.1:{port}", lambda: bare.poll() is None))
            say("baseline: a bare grpc.aio server (no database, no checks)")
            results["bare"] = _hold("bare", f"127.0.0.1:{port}", bare.pid, agents, args, None, None)
        finally:
            stop_process(bare)

        port, metrics_port = free_port(), free_port()
        env = dict(os.environ, CLEARPOINT_MASTER_KEY=base64.b64encode(master).decode(), CLEARPOINT_LOG_LEVEL="warning")
        serve = subprocess.Popen(
            [
                clearpoint_command(),
                "platform",
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--database",
                url,
                "--agent-heartbeat-seconds",
                str(args.heartbeat_seconds),
                "--agent-stale-after-seconds",
                str(args.heartbeat_seconds * 4),
                "--metrics-listen",
                f"127.0.0.1:{metrics_port}",
            ],
            env=env,
        )
        try:
            asyncio.run(wait_serving(f"127.0.0.1:{port}", lambda: serve.poll() is None))
            say("the platform (one process, PostgreSQL)")
            results["platform"] = _hold("platform", f"127.0.0.1:{port}", serve.pid, agents, args, operator_key, url)
            results["platform"]["heartbeat_writes"] = _batches(metrics_port)
        finally:
            stop_process(serve)
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    b, p = results["bare"], results["platform"]
    results["ratios"] = {
        "kib_per_stream": round(p["kib_per_stream"] / max(0.1, b["kib_per_stream"]), 2),
        "list_agents_p50_held_over_idle": round(p["ops_held"]["p50_ms"] / max(0.01, p["ops_before"]["p50_ms"]), 2),
    }
    return results


def _batches(metrics_port: int) -> dict[str, float]:
    """Heartbeats written and the writes they took, from the platform's own metrics."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        families = text_string_to_metric_families(page.read().decode())
    samples = {(s.name, s.labels.get("batcher")): s.value for f in families for s in f.samples}
    writes = samples.get(("clearpoint_batch_items_count", "heartbeats"), 0.0)
    beats = samples.get(("clearpoint_batch_items_sum", "heartbeats"), 0.0)
    return {"heartbeats": beats, "writes": writes, "heartbeats_per_write": round(beats / writes, 2) if writes else 0.0}


def report(r: dict[str, Any]) -> str:
    b, p = r["bare"], r["platform"]
    rows = [
        ("streams held", b["streams"], p["streams"]),
        (
            "RSS before / held (MiB)",
            f"{b['rss_before_mib']} / {b['rss_held_mib']}",
            f"{p['rss_before_mib']} / {p['rss_held_mib']}",
        ),
        ("memory per stream (KiB)", b["kib_per_stream"], p["kib_per_stream"]),
        ("server CPU while held (%)", b["cpu_percent_held"], p["cpu_percent_held"]),
        ("ops call p50, no streams (ms)", b["ops_before"]["p50_ms"], p["ops_before"]["p50_ms"]),
        (
            "ops call p50 / p99, held (ms)",
            f"{b['ops_held']['p50_ms']} / {b['ops_held']['p99_ms']}",
            f"{p['ops_held']['p50_ms']} / {p['ops_held']['p99_ms']}",
        ),
        ("database commits/s, rows/s", "-", f"{p.get('db_commits_per_s')} / {p.get('db_rows_per_s')}"),
        ("heartbeats per database write", "-", p["heartbeat_writes"]["heartbeats_per_write"]),
    ]
    width = max(len(str(label)) for label, _, _ in rows)
    lines = [f"{r['agents']} agents, a heartbeat every {r['heartbeat_seconds']} s", ""]
    lines.append(f"{'':<{width}}  {'bare':>16}  {'platform':>20}")
    lines += [f"{label:<{width}}  {bare!s:>16}  {plat!s:>20}" for label, bare, plat in rows]
    lines.append("")
    lines.append(f"memory per stream, platform / bare: {r['ratios']['kib_per_stream']}")
    lines.append(f"ListAgents p50, streams held / none: {r['ratios']['list_agents_p50_held_over_idle']}")
    lines.append("(ops call: a health check on the bare server, ListAgents with every agent's status on the platform)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=2000, help="agents, each with one stream (default 2000)")
    parser.add_argument("--heartbeat-seconds", type=float, default=15.0, help="heartbeat interval (default 15)")
    parser.add_argument("--hold-seconds", type=float, default=45.0, help="how long the streams are held (default 45)")
    parser.add_argument("--ops-calls", type=int, default=20, help="ListAgents calls timed each time (default 20)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CLEARPOINT_BENCH_POSTGRES", "postgresql://root@127.0.0.1:5432/postgres"),
        help="a PostgreSQL database to create the bench's own from [env CLEARPOINT_BENCH_POSTGRES]",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run: 200 agents, 2 s heartbeats, 10 s")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.agents, args.heartbeat_seconds, args.hold_seconds, args.ops_calls = 200, 2.0, 10.0, 5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_server:
        asyncio.run(_bare_server(args.bare_server, args.heartbeat_seconds))
        return 0
    results = measure(args)
    print(json.dumps(results, indent=2) if args.output == "json" else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
