"""The fleet of store agents as operators watch it: `clearpoint ops agents` (a table, `--watch` to
keep it updated in place, `-o json`), `describe` for one agent, and `check` for cron and monitoring
systems (exit status 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, as Nagios-style checks report).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any

import grpc
from clearpoint import connection, tables
from clearpoint.commands import duration_seconds, plain
from clearpoint.connection import Target
from clearpoint.v1 import agents_pb2, agents_pb2_grpc

A = agents_pb2
COLUMNS = ("agent_id", "store", "status", "scanners", "backlog", "last_seen", "version")
HEALTH = {
    A.AGENT_HEALTH_ONLINE: "online",
    A.AGENT_HEALTH_STALE: "stale",
    A.AGENT_HEALTH_NEVER_SEEN: "never seen",
}
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3


def span(seconds: int) -> str:
    """'4s', '3m12s', '2h05m', '3d': as precise as a person reading a table needs."""
    seconds = max(0, seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86_400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86_400}d"


def ago(stamp: Any, now_s: float) -> str:
    """How long before now a Timestamp was: '4s ago'."""
    return f"{span(int(now_s - stamp.seconds))} ago"


def status_word(agent: A.Agent) -> str:
    if agent.state == A.AGENT_STATE_REVOKED:
        return "revoked"
    return HEALTH.get(agent.status.health, "unknown")


def row(agent: A.Agent, now_s: float) -> dict[str, Any]:
    """One agent as the table shows it."""
    beat = agent.status.heartbeat
    has_beat = agent.status.HasField("heartbeat")
    scanners = f"{sum(s.connected for s in beat.scanners)}/{len(beat.scanners)}" if has_beat else ""
    return {
        "agent_id": agent.agent_id,
        "store": agent.store_id,
        "status": status_word(agent),
        "scanners": scanners,
        "backlog": beat.backlog if has_beat else "",
        "last_seen": ago(agent.status.last_seen_time, now_s) if agent.status.HasField("last_seen_time") else "",
        "version": beat.version,
    }


def detail(agent: A.Agent) -> dict[str, Any]:
    """One agent for scripts: every field, with words for the enums."""
    out = plain(agent)
    out["state"] = A.AgentState.Name(agent.state).removeprefix("AGENT_STATE_").lower()
    out["public_key"] = agent.public_key.hex()
    status = out.setdefault("status", {})
    status["health"] = status_word(agent) if agent.state != A.AGENT_STATE_REVOKED else "revoked"
    return out


async def _agents(ch: grpc.aio.Channel, t: Target) -> list[A.Agent]:
    found = await agents_pb2_grpc.AgentServiceStub(ch).ListAgents(A.ListAgentsRequest(), metadata=t.metadata)
    return list(found.agents)


# --- agents (list / watch) ------------------------------------------------------------------------


def list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--watch", "-w", action="store_true", help="keep the table on screen, updated in place")
    p.add_argument("--interval", type=duration_seconds, default=2, help="with --watch: seconds between updates [2]")
    p.add_argument("--store", default="", help="only this store's agents")


def _table(agents: list[A.Agent], store: str) -> str:
    now = time.time()
    rows = [row(a, now) for a in agents if not store or a.store_id == store]
    if not rows:
        return "(no agents)"
    return tables.render(rows, COLUMNS)


def run_list(args: argparse.Namespace) -> int:
    if args.output == "json":
        agents = connection.call(args, _agents)
        print(tables.as_json([detail(a) for a in agents if not args.store or a.store_id == args.store]))
        return OK
    if not args.watch:
        print(_table(connection.call(args, _agents), args.store))
        return OK
    return _watch(args)


def _watch(args: argparse.Namespace) -> int:
    """Redraw in place (cursor home, clear to the end) on a terminal; elsewhere, one table per update."""
    where = connection.target(args)
    in_place = sys.stdout.isatty()

    async def loop() -> None:
        async with where.channel() as channel:
            while True:
                try:
                    body = _table(await _agents(channel, where), args.store)
                except grpc.aio.AioRpcError as exc:
                    body = f"(cannot list agents: {connection.refusal_line(exc)})"
                stamp = datetime.now(UTC).strftime("%H:%M:%S")
                header = f"Every {args.interval}s: clearpoint ops agents  {where.platform}  {stamp} UTC"
                if in_place:
                    sys.stdout.write(f"\x1b[H{header}\x1b[K\n\n" + body.replace("\n", "\x1b[K\n") + "\x1b[K\n\x1b[J")
                else:
                    sys.stdout.write(f"{header}\n\n{body}\n\n")
                sys.stdout.flush()
                await asyncio.sleep(args.interval)

    if in_place:
        sys.stdout.write("\x1b[2J")
    try:
        asyncio.run(loop())
    except KeyboardInterrupt:
        return OK
    return OK


# --- describe -------------------------------------------------------------------------------------


def run_describe(args: argparse.Namespace) -> int:
    async def work(ch: grpc.aio.Channel, t: Target) -> A.Agent:
        got = await agents_pb2_grpc.AgentServiceStub(ch).GetAgent(
            A.GetAgentRequest(agent_id=args.agent_id), metadata=t.metadata
        )
        return got.agent

    agent = connection.call(args, work)
    if args.output == "json":
        print(tables.as_json(detail(agent)))
        return OK
    print(describe_text(agent, time.time()))
    return OK


def describe_text(agent: A.Agent, now_s: float) -> str:
    s, beat = agent.status, agent.status.heartbeat
    lines = [
        f"Agent:        {agent.agent_id}",
        f"Name:         {agent.display_name}",
        f"Partner:      {agent.partner_id}",
        f"Store:        {agent.store_id}",
        f"Status:       {status_word(agent)}" + ("" if s.connected else " (no stream open)"),
        f"Enrolled:     {agent.enrol_time.ToDatetime(UTC).isoformat()}",
    ]
    if agent.HasField("revoke_time"):
        lines.append(f"Revoked:      {agent.revoke_time.ToDatetime(UTC).isoformat()}")
    if s.HasField("last_seen_time"):
        lines.append(f"Last seen:    {ago(s.last_seen_time, now_s)}  (stale after {s.stale_after.seconds}s of silence)")
    if s.HasField("heartbeat"):
        lines += [
            f"Version:      {beat.version}",
            f"Uptime:       {span(beat.uptime.seconds)}",
            f"Backlog:      {beat.backlog} scans"
            + (
                f", oldest {ago(beat.oldest_unanswered_time, now_s)}" if beat.HasField("oldest_unanswered_time") else ""
            ),
            "Last answer:  " + (ago(beat.last_answer_time, now_s) if beat.HasField("last_answer_time") else "never"),
        ]
        if beat.HasField("round_trip"):
            lines.append(f"Round trip:   {beat.round_trip.ToMicroseconds() / 1000:.1f} ms")
            lines.append(f"Clock offset: {beat.clock_offset.ToMicroseconds() / 1000:+.1f} ms (platform minus agent)")
        lines.append("Scanners:")
        for sc in beat.scanners:
            state = "connected" if sc.connected else "DISCONNECTED"
            last = ago(sc.last_scan_time, now_s) if sc.HasField("last_scan_time") else "no scan yet"
            lines.append(f"  {sc.scanner_id:<12} {sc.kind:<8} {state:<12} last scan {last}  {sc.path}")
            if sc.device:
                lines.append(f"  {'':<12} device: {sc.device}")
            if sc.last_error:
                when = f" ({ago(sc.last_error_time, now_s)})" if sc.HasField("last_error_time") else ""
                lines.append(f"  {'':<12} last error: {sc.last_error}{when}")
    return "\n".join(lines)


# --- check ----------------------------------------------------------------------------------------


def check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-backlog", type=int, default=100, help="an agent with more unanswered scans than this is a WARNING [100]"
    )
    p.add_argument("--store", default="", help="only this store's agents")
    p.add_argument(
        "--include-never-seen",
        action="store_true",
        help="count agents enrolled but never heard from as stale (by default they are not checked)",
    )


def run_check(args: argparse.Namespace) -> int:
    """One line and an exit status: stale agents are CRITICAL, backlogged ones a WARNING."""
    try:
        agents = connection.call(args, _agents)
    except connection.CallFailed as exc:
        print(f"UNKNOWN: {exc}")
        return UNKNOWN
    now = time.time()
    watched = [a for a in agents if a.state == A.AGENT_STATE_ACTIVE and (not args.store or a.store_id == args.store)]
    stale = [
        a
        for a in watched
        if a.status.health == A.AGENT_HEALTH_STALE
        or (args.include_never_seen and a.status.health == A.AGENT_HEALTH_NEVER_SEEN)
    ]
    backlogged = [a for a in watched if a.status.heartbeat.backlog > args.max_backlog and a not in stale]
    if stale:
        named = ", ".join(
            f"{a.agent_id} ({a.store_id}, "
            + (
                f"silent {span(int(now - a.status.last_seen_time.seconds))})"
                if a.status.HasField("last_seen_time")
                else "never seen)"
            )
            for a in stale
        )
        print(f"CRITICAL: {len(stale)} of {len(watched)} agents stale: {named}")
        return CRITICAL
    if backlogged:
        named = ", ".join(f"{a.agent_id} ({a.store_id}, {a.status.heartbeat.backlog} scans)" for a in backlogged)
        print(f"WARNING: {len(backlogged)} of {len(watched)} agents backlogged over {args.max_backlog}: {named}")
        return WARNING
    print(f"OK: {len(watched)} agents online, none backlogged over {args.max_backlog}")
    return OK
