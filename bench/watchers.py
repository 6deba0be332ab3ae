#!/usr/bin/env python3
"""Redemptions while 1,000 progress streams are open, half of them never read.

Live progress must not cost the callers who redeem. In one run, against one `clearpoint platform
serve` process:

1. redemptions alone: the same load generator as bench/redeem_throughput.py (its own process,
   fixed concurrency, a request count and a time cap, an uncounted warm-up);
2. 1,000 WatchCampaignProgress streams opened from another process: half by the partner whose
   campaign is being redeemed, on that campaign (the server's per-caller limit is set to that
   half, and one stream more is opened to check that it is refused, with its reason); half by four
   other partners, on campaigns nobody touches. Half of each are read as messages come, half are
   never read after their first message;
3. the same redemption load again with those streams open.

It prints both rates and their ratio (the target is at least 0.8), the server's CPU per redemption,
its resident memory before the streams, with them open, and after the second load (bounded: an
unread stream holds one pending message, not a backlog), and what the watchers received.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from benchutil import (
    campaign_request,
    clearpoint_command,
    cpu_seconds,
    free_port,
    say,
    stop_process,
    wait_serving,
)
from clearpoint.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    issuer_keys_pb2,
    issuer_keys_pb2_grpc,
    partners_pb2,
    partners_pb2_grpc,
)
from redeem_throughput import DEFAULT_DATABASE_URL, LoadSpec, Phase, clearpoint, create_db, db_url, drive, drop_db

PARTNERS = 5
QUIET_CAMPAIGNS_PER_PARTNER = 4
WATCH_CHANNELS = 10  # connections the watcher process spreads its streams over


@dataclass(frozen=True)
class Fleet:
    """Who exists: the partners' keys, the campaign being redeemed (partner 0's) and quiet ones."""

    keys: list[str]
    busy_campaign: str
    quiet_campaigns: list[list[str]]  # by partner
    codes: list[str]


async def bootstrap(target: str, operator_key: str, codes_needed: int) -> Fleet:
    options = [("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        as_operator = (("x-api-key", operator_key),)
        await issuer_keys_pb2_grpc.IssuerKeyServiceStub(channel).CreateIssuerKey(
            issuer_keys_pb2.CreateIssuerKeyRequest(request_id="bench-key"), metadata=as_operator
        )
        partners = partners_pb2_grpc.PartnerServiceStub(channel)
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)
        keys: list[str] = []
        quiet: list[list[str]] = []
        for n in range(PARTNERS):
            made = await partners.CreatePartner(
                partners_pb2.CreatePartnerRequest(request_id=f"bench-partner-{n}", name=f"bench-partner-{n}"),
                metadata=as_operator,
            )
            keys.append(made.api_key)
            ids = []
            for c in range(QUIET_CAMPAIGNS_PER_PARTNER + (1 if n == 0 else 0)):
                created = await campaigns.CreateCampaign(
                    campaign_request(f"bench-campaign-{c}", f"bench {n}/{c}", 10**12),
                    metadata=(("x-api-key", made.api_key),),
                )
                ids.append(created.campaign.campaign_id)
            quiet.append(ids)
        busy = quiet[0].pop(0)
        codes: list[str] = []
        while len(codes) < codes_needed:
            issued = await campaigns.IssueVouchers(
                campaigns_pb2.IssueVouchersRequest(
                    request_id=f"bench-issue-{len(codes)}",
                    campaign_id=busy,
                    count=min(10_000, codes_needed - len(codes)),
                ),
                metadata=(("x-api-key", keys[0]),),
                timeout=300,
            )
            codes.extend(v.code for v in issued.vouchers)
    return Fleet(keys, busy, quiet, codes)


# -- the watcher process ---------------------------------------------------------------------------------


@dataclass
class WatchReport:
    opened: int = 0
    failed_to_open: dict[str, int] | None = None
    limit_refusal: str = ""  # what the stream beyond a caller's limit was told
    read_messages_busy: int = 0  # received by the read streams of the busy campaign, after the first
    read_messages_quiet: int = 0
    last_redeemed_seen: int = 0
    ended_early: int = 0  # read streams that ended while they should have been open


async def _watch_all(target: str, fleet: Fleet, streams: int, ready: Any, stop: Any) -> WatchReport:
    report = WatchReport(failed_to_open={})
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(WATCH_CHANNELS)
    ]
    calls: list[tuple[Any, bool, bool]] = []  # (call, read as messages come, watches the busy campaign)
    # Half the streams are partner 0's, on the campaign being redeemed (partner 0 then holds the
    # most it may); the other partners share the other half, on their own quiet campaigns.
    plan = [(0, fleet.busy_campaign)] * (streams // 2)
    others = PARTNERS - 1
    for i in range(streams - streams // 2):
        p = 1 + i % others
        plan.append((p, fleet.quiet_campaigns[p][i // others % QUIET_CAMPAIGNS_PER_PARTNER]))
    for i, (p, campaign) in enumerate(plan):
        stub = campaigns_pb2_grpc.CampaignServiceStub(channels[i % WATCH_CHANNELS])
        call = stub.WatchCampaignProgress(
            campaigns_pb2.WatchCampaignProgressRequest(campaign_id=campaign), metadata=(("x-api-key", fleet.keys[p]),)
        )
        calls.append((call, i % 2 == 0, p == 0))
    firsts = await asyncio.gather(*(call.read() for call, _, _ in calls), return_exceptions=True)
    for first in firsts:
        if isinstance(first, grpc.aio.AioRpcError):
            report.failed_to_open[first.code().name] = report.failed_to_open.get(first.code().name, 0) + 1  # type: ignore[index]
        else:
            report.opened += 1
    # One more for partner 0, who now holds its limit: it must be refused, with its reason.
    extra = campaigns_pb2_grpc.CampaignServiceStub(channels[0]).WatchCampaignProgress(
        campaigns_pb2.WatchCampaignProgressRequest(campaign_id=fleet.busy_campaign),
        metadata=(("x-api-key", fleet.keys[0]),),
    )
    try:
        await asyncio.wait_for(extra.read(), 10)
        report.limit_refusal = "not refused"
    except grpc.aio.AioRpcError as exc:
        report.limit_refusal = f"{exc.code().name}: {exc.details()}"
    ready.set()

    async def reader(call: Any, busy: bool) -> None:
        try:
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    report.ended_early += 1
                    return
                if busy:
                    report.read_messages_busy += 1
                    report.last_redeemed_seen = max(report.last_redeemed_seen, message.progress.redeemed)
                else:
                    report.read_messages_quiet += 1
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError:
            report.ended_early += 1

    readers = [asyncio.create_task(reader(call, busy)) for call, reads, busy in calls if reads]
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, stop.wait)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for call, _, _ in calls:
        call.cancel()
    for channel in channels:
        await channel.close()
    return report


def run_watchers(target: str, fleet: Fleet, streams: int, ready: Any, stop: Any, out: Any) -> None:
    """Entry point of the watcher process."""
    out.put(asdict(asyncio.run(_watch_all(target, fleet, streams, ready, stop))))


# -- the run ----------------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def measure(args: argparse.Namespace) -> dict[str, Any]:
    env = {
        **os.environ,
        "CLEARPOINT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "CLEARPOINT_LOG_LEVEL": "warning",
    }
    cleanup: list[Callable[[], object]] = []
    results: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "load_average": os.getloadavg()[0],
    }
    scratch = tempfile.TemporaryDirectory(prefix="clearpoint-watchers-")
    cleanup.append(scratch.cleanup)
    if args.database_url.startswith("sqlite"):
        url = f"sqlite:///{scratch.name}/platform.sqlite3"
    else:
        name = f"clearpoint_bench_{os.getpid()}_watchers"
        create_db(args.database_url, name)
        cleanup.append(lambda: drop_db(args.database_url, name))
        url = db_url(args.database_url, name)
    results["database"] = url.split(":", 1)[0]
    try:
        operator_key = clearpoint(env, "platform", "create-operator", "--name", "bench-op", "--database", url)
        target = f"127.0.0.1:{free_port()}"
        log_file = tempfile.TemporaryFile()
        cleanup.append(log_file.close)
        limit = ["--max-streams-per-caller", str(args.streams // 2)]
        platform = subprocess.Popen(
            [clearpoint_command(), "platform", "serve", "--listen", target, "--database", url, *limit],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        cleanup.insert(0, lambda: stop_process(platform))
        asyncio.run(wait_serving(target, lambda: platform.poll() is None))
        per_load = args.warmup + args.requests
        say(
            f"platform: {PARTNERS} partners, {PARTNERS * QUIET_CAMPAIGNS_PER_PARTNER + 1} campaigns,"
            f" {2 * per_load} codes"
        )
        fleet = asyncio.run(bootstrap(target, operator_key.strip(), 2 * per_load))

        def load(name: str, first: int) -> Phase:
            spec = LoadSpec(
                target=target,
                api_key=fleet.keys[0],
                codes=fleet.codes[first : first + per_load],
                warmup=args.warmup,
                requests=args.requests,
                concurrency=args.concurrency,
                seconds=args.seconds,
                channels=1,
                run_id=name,
            )
            cpu_before = cpu_seconds(platform.pid)
            warm, measured = drive(spec)
            cpu_after = cpu_seconds(platform.pid)
            calls = warm.ok + measured.ok + sum(warm.failed.values()) + sum(measured.failed.values())
            if cpu_before is not None and cpu_after is not None and calls:
                results[f"{name}_server_cpu_ms_per_call"] = round(1000 * (cpu_after - cpu_before) / calls, 3)
            results[name] = asdict(measured)
            say(f"{name}: {measured.rate:.0f} redemptions/s, failed {measured.failed or 0}")
            return measured

        results["rss_mb_start"] = rss_mb(platform.pid)
        alone = load("alone", 0)
        results["rss_mb_before_streams"] = rss_mb(platform.pid)

        say(f"watchers: opening {args.streams} streams from {PARTNERS} partners over {WATCH_CHANNELS} connections")
        context = multiprocessing.get_context("spawn")
        ready, stop, out = context.Event(), context.Event(), context.Queue()
        watcher = context.Process(target=run_watchers, args=(target, fleet, args.streams, ready, stop, out))
        watcher.start()
        cleanup.insert(0, lambda: (stop.set(), watcher.join(30), watcher.kill()))
        if not ready.wait(120):
            raise RuntimeError("the watchers did not open in time")
        time.sleep(2.0)  # let the first round of reads settle
        results["rss_mb_streams_open"] = rss_mb(platform.pid)
        cpu_idle = cpu_seconds(platform.pid)
        time.sleep(5.0)
        cpu_idle_after = cpu_seconds(platform.pid)
        if cpu_idle is not None and cpu_idle_after is not None:
            results["idle_server_cpu_percent_with_streams"] = round(100 * (cpu_idle_after - cpu_idle) / 5.0, 1)
        watched = load("watched", per_load)
        results["rss_mb_after_load"] = rss_mb(platform.pid)
        time.sleep(3.0)  # the last changes reach the reading watchers
        stop.set()
        results["watchers"] = out.get(timeout=60)
        watcher.join(30)
        results["ratio_watched_to_alone"] = round(watched.rate / alone.rate, 3) if alone.rate else None
    finally:
        for step in cleanup:
            try:
                step()
            except Exception as exc:
                say(f"cleanup: {exc!r}")
    return results


def report(results: dict[str, Any]) -> str:
    alone, watched, w = results["alone"], results["watched"], results["watchers"]
    s = results["settings"]
    lines = [
        f"redemptions on {results['database']}: {s['concurrency']} in flight, {s['requests']} counted per load, "
        f"{os.cpu_count()} CPUs (load average {results['load_average']:.1f} at start)",
        f"{'':34}{'per s':>8}{'ok':>7}{'failed':>8}{'p50 ms':>8}{'p99 ms':>8}{'server CPU ms':>15}",
    ]
    for label, key, phase in (
        ("alone", "alone", alone),
        (f"with {s['streams']} streams open", "watched", watched),
    ):
        lines.append(
            f"{label:34}{phase['rate']:8.0f}{phase['ok']:7d}{sum(phase['failed'].values()):8d}"
            f"{phase['p50_ms']:8.1f}{phase['p99_ms']:8.1f}{results.get(f'{key}_server_cpu_ms_per_call', '-'):>15}"
        )
    ratio = results["ratio_watched_to_alone"]
    lines += [
        "",
        f"with streams / alone: {ratio}  (target at least 0.8: {'met' if ratio and ratio >= 0.8 else 'NOT met'})",
        f"streams opened {w['opened']}, failed to open {w['failed_to_open'] or 0}; the next one of a caller "
        f"at its limit: {w['limit_refusal']}",
        "server CPU while the streams sat open, nothing redeemed: "
        f"{results.get('idle_server_cpu_percent_with_streams')}%",
        f"server memory (RSS MB): start {results['rss_mb_start']}, after the first load "
        f"{results['rss_mb_before_streams']}, streams open {results['rss_mb_streams_open']}, after the "
        f"second load {results['rss_mb_after_load']}",
        f"read streams received {w['read_messages_busy']} updates of the redeemed campaign (last seen "
        f"{w['last_redeemed_seen']} redeemed) and {w['read_messages_quiet']} of the quiet ones; "
        f"{w['ended_early']} ended early",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Redemptions per second alone and with 1,000 progress streams open (half unread), in one "
        "run against one `clearpoint platform serve`, with the ratio, the server's memory and CPU.",
        epilog="examples:\n  python bench/watchers.py --quick\n"
        "  python bench/watchers.py --database-url sqlite://   # on an SQLite file in a scratch directory",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--streams", type=int, default=1000, help="streams to open, a multiple of 10 (default 1000)")
    parser.add_argument("--seconds", type=float, help="each load's time cap (default 20; 5 with --quick)")
    parser.add_argument("--requests", type=int, help="redemptions counted per load (default 3000; 600 with --quick)")
    parser.add_argument("--warmup", type=int, default=200, help="uncounted redemptions first, per load (default 200)")
    parser.add_argument("--concurrency", type=int, default=32, help="redemptions in flight (default 32)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CLEARPOINT_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a PostgreSQL server URL whose user may create databases (a scratch one is made and dropped), "
        f"or sqlite:// for a scratch SQLite file (default $CLEARPOINT_BENCH_DATABASE_URL or {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table", help="table (default) or json")
    args = parser.parse_args(argv)
    args.seconds = args.seconds if args.seconds is not None else (5.0 if args.quick else 20.0)
    args.requests = args.requests if args.requests is not None else (600 if args.quick else 3000)
    if args.streams <= 0 or args.streams % (2 * PARTNERS):
        parser.error(f"--streams must be a positive multiple of {2 * PARTNERS}")
    if min(args.seconds, args.requests, args.concurrency) <= 0 or args.warmup < 0:
        parser.error("--seconds, --requests and --concurrency must be positive, --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    results = measure(args)
    print(json.dumps(results, indent=2) if args.output == "json" else report(results))
    ratio = results["ratio_watched_to_alone"]
    return 0 if ratio is not None and ratio >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
