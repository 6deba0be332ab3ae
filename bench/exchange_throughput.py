#!/usr/bin/env python3
"""Exchanges per second: the real platform beside pgbench running an exchange's SQL, and beside the
platform's own redemption rate, measured in one run.

One exchange here is the whole of a one-sided exchange, as a channel's integration drives it: a
member's 100 points of channel A into their platform points (StartExchange, the out side pending)
and channel A's answer (ResolveExchange, accept: the side posted). Members are many, channel A one,
so every exchange updates A's accounts, the platform's treasury and fees, as in production.

1. pgbench runs the rows both transactions write (the accounts' totals, the transfers, the exchange
   row and its answers in the first-answer store) on the platform's schema, seeded alike;
2. `clearpoint platform serve` is driven over gRPC by a load generator in its own process (fixed
   concurrency, an exchange count and a time cap, an uncounted warm-up);
3. the same process's Redeem rate, by bench/redeem_throughput.py's load generator.

Progress goes to stderr; the table (or `-o json`) to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import grpc
from benchutil import clearpoint_command, cpu_seconds, free_port, say, stop_process, wait_serving
from clearpoint.v1 import partners_pb2, partners_pb2_grpc, points_pb2, points_pb2_grpc
from redeem_throughput import (
    DEFAULT_DATABASE_URL,
    LoadSpec,
    Phase,
    _sql,
    bootstrap,
    clearpoint,
    create_db,
    db_url,
    drive,
    drop_db,
)

POINTS = 100
CALL_TIMEOUT = 30.0


# -- the platform: members, a channel, and the load -------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    web_key: str  # the platform's member page: an operator key
    channel_key: str
    channel_id: str
    members: list[str]


async def seed(target: str, operator_key: str, members: int) -> Fleet:
    op = (("x-api-key", operator_key),)
    async with grpc.aio.insecure_channel(target) as channel:
        points = points_pb2_grpc.PointsServiceStub(channel)
        made = await partners_pb2_grpc.PartnerServiceStub(channel).CreatePartner(
            partners_pb2.CreatePartnerRequest(request_id="bench-channel", name="bench-channel"), metadata=op
        )
        chan = (("x-api-key", made.api_key),)
        await points.RegisterChannel(
            points_pb2.RegisterChannelRequest(request_id="bench", programme="Bench Miles", unit_name="miles"),
            metadata=chan,
        )
        rule = points_pb2.Rule(
            to_platform="0.25",
            from_platform="4",
            fee_percent="1.5",
            min_points=1,
            max_points=1_000_000,
            daily_points=10**12,
            price="0.5",
            currency="EUR",
        )
        await points.PublishRule(points_pb2.PublishRuleRequest(request_id="bench", rule=rule), metadata=chan)
        ids = []
        for n in range(members):
            member = (
                await points.RegisterMember(
                    points_pb2.RegisterMemberRequest(request_id=f"m{n}", display_name=f"member {n}"), metadata=op
                )
            ).member.member_id
            await points.LinkAccount(
                points_pb2.LinkAccountRequest(
                    request_id=f"l{n}", member_id=member, channel_id=made.partner.partner_id, account_ref=f"A-{n}"
                ),
                metadata=op,
            )
            await points.ConfirmLink(
                points_pb2.ConfirmLinkRequest(request_id=f"c{n}", member_id=member, account_ref=f"A-{n}"),
                metadata=chan,
            )
            ids.append(member)
    return Fleet(operator_key, made.api_key, made.partner.partner_id, ids)


@dataclass(frozen=True)
class ExchangeLoad:
    target: str
    fleet: Fleet
    warmup: int
    count: int
    concurrency: int
    seconds: float


async def _exchanges(load: ExchangeLoad, first: int, count: int, cap: float) -> Phase:
    web, chan = (("x-api-key", load.fleet.web_key),), (("x-api-key", load.fleet.channel_key),)
    result, failed, latencies = Phase(), Counter[str](), list[float]()
    next_index, end, deadline = first, first + count, time.monotonic() + cap
    async with grpc.aio.insecure_channel(load.target) as channel:
        stub = points_pb2_grpc.PointsServiceStub(channel)

        async def worker() -> None:
            nonlocal next_index
            while next_index < end and time.monotonic() < deadline:
                i, next_index = next_index, next_index + 1
                member = load.fleet.members[i % len(load.fleet.members)]
                terms = points_pb2.ExchangeTerms(member_id=member, from_channel=load.fleet.channel_id, points=POINTS)
                started = time.perf_counter()
                try:
                    made = await stub.StartExchange(
                        points_pb2.StartExchangeRequest(request_id=f"s{i}", terms=terms),
                        metadata=web,
                        timeout=CALL_TIMEOUT,
                    )
                    await stub.ResolveExchange(
                        points_pb2.ResolveExchangeRequest(
                            request_id=f"r{i}", exchange_id=made.exchange.exchange_id, accept=True
                        ),
                        metadata=chan,
                        timeout=CALL_TIMEOUT,
                    )
                    result.ok += 1
                except grpc.aio.AioRpcError as exc:
                    failed[exc.code().name] += 1
                    result.first_error = result.first_error or f"{exc.code().name}: {exc.details()}"
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(load.concurrency)))
    result.elapsed = time.perf_counter() - began
    result.failed = dict(failed)
    result.rate = result.ok / result.elapsed if result.elapsed else 0.0
    if latencies:
        latencies.sort()
        result.mean_ms = 1000 * sum(latencies) / len(latencies)
        result.p50_ms = 1000 * latencies[len(latencies) // 2]
        result.p99_ms = 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return result


def run_exchanges(load: ExchangeLoad) -> dict[str, Any]:
    """Entry point of the load process."""

    async def both() -> dict[str, Any]:
        warm = await _exchanges(load, 0, load.warmup, min(load.seconds, 10.0))
        measured = await _exchanges(load, load.warmup, load.count, load.seconds)
        return {"warmup": asdict(warm), "measured": asdict(measured)}

    return asyncio.run(both())


# -- pgbench: the rows an exchange writes --------------------------------------------------------------------

_SEED = """
INSERT INTO partners (partner_id, name, role, created_us) VALUES ('ptn_00000000000a', 'bench', 'partner', 0);
INSERT INTO ledger_units (unit, name, created_us) VALUES ('PTS', 'platform points', 0), ('PTS.u', 'micro', 0),
  ('pts_00000000000a', 'miles', 0), ('pts_00000000000a.u', 'micro miles', 0);
INSERT INTO channels (partner_id, unit, programme, unit_name, created_us)
  VALUES ('ptn_00000000000a', 'pts_00000000000a', 'Bench Miles', 'miles', 0);
INSERT INTO ledger_accounts (account_id, unit, owner, purpose, guarded, created_us) VALUES
  ('acc_channel', 'pts_00000000000a', 'ptn_00000000000a', 'channel', 0, 0),
  ('acc_hub', 'pts_00000000000a', 'platform', 'hub', 0, 0),
  ('acc_treasury', 'PTS', 'platform', 'treasury', 0, 0),
  ('acc_fees', 'PTS', 'platform', 'fees', 0, 0);
INSERT INTO members (member_id, display_name, registered_by, created_us)
  SELECT 'mbr_' || lpad(to_hex(i), 16, '0'), 'member', 'ptn_00000000000a', 0 FROM generate_series(1, {members}) AS i;
INSERT INTO ledger_accounts (account_id, unit, owner, purpose, guarded, created_us)
  SELECT 'acw_' || lpad(to_hex(i), 16, '0'), 'PTS', 'mbr_' || lpad(to_hex(i), 16, '0'), 'wallet', 1, 0
  FROM generate_series(1, {members}) AS i;
"""
# 100 miles x 0.25 = 25 platform points; fee ceil(0.375) = 1; 24 to the wallet; nothing rounded.
_NOW = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
_MEMBER = "'mbr_' || lpad(to_hex(:m::bigint), 16, '0')"
_WALLET = "'acw_' || lpad(to_hex(:m::bigint), 16, '0')"
_PEND = f"{_NOW} + 300000000"
_PTS_A = "'pts_00000000000a'"


def _resolve(account: str, side: str, amount: int) -> str:
    return (
        f"UPDATE ledger_accounts SET {side}_pending = {side}_pending - {amount},\n"
        f"  {side}_posted = {side}_posted + {amount} WHERE account_id = {account};\n"
    )


PGBENCH_SCRIPT = (
    f"""\\set m random(1, :members)
\\set r random(1, 9000000000000000000)
BEGIN;
SELECT member_id FROM members WHERE member_id = {_MEMBER};
UPDATE ledger_accounts SET debits_pending = debits_pending + 100 WHERE account_id = 'acc_channel';
UPDATE ledger_accounts SET debits_pending = debits_pending + 25 WHERE account_id = 'acc_treasury';
UPDATE ledger_accounts SET credits_pending = credits_pending + 100 WHERE account_id = 'acc_hub';
UPDATE ledger_accounts SET credits_pending = credits_pending + 1 WHERE account_id = 'acc_fees';
UPDATE ledger_accounts SET credits_pending = credits_pending + 24
  WHERE account_id = {_WALLET} AND (guarded = 0 OR debits_pending + debits_posted <= credits_posted);
INSERT INTO ledger_transfers (transfer_id, txn_id, leg, debit_account, credit_account, unit, amount, kind,
                              timeout_us, code, created_us) VALUES
  ('t' || :r || 'a', 'x' || :r, 0, 'acc_channel', 'acc_hub', {_PTS_A}, 100, 'pending',
   {_PEND}, 'exchange', {_NOW}),
  ('t' || :r || 'b', 'x' || :r, 1, 'acc_treasury', {_WALLET}, 'PTS', 24, 'pending',
   {_PEND}, 'exchange', {_NOW}),
  ('t' || :r || 'c', 'x' || :r, 2, 'acc_treasury', 'acc_fees', 'PTS', 1, 'pending',
   {_PEND}, 'exchange', {_NOW});
INSERT INTO exchanges (exchange_id, member_id, from_channel, points_in, fee, platform_points, residue_in_micro,
                       points_out, residue_out_micro, rule_in_version, state, txn_out, timeout_us, requested_by,
                       created_us, updated_us)
  VALUES ('e' || :r, {_MEMBER}, 'ptn_00000000000a', 100, 1, 24, 0, 24, 0, 1, 'pending_out', 'x' || :r,
          {_PEND}, 'ptn_00000000000a', {_NOW}, {_NOW});
INSERT INTO idempotency (principal_id, method, request_id, request_sha256, response, created_us)
  VALUES ('ptn_00000000000a', 'StartExchange', 's' || :r, decode(repeat('ab', 32), 'hex'),
          convert_to('e' || :r, 'UTF8'), {_NOW});
COMMIT;
BEGIN;
INSERT INTO ledger_transfers (transfer_id, txn_id, leg, debit_account, credit_account, unit, amount, kind,
                              pending_id, code, created_us) VALUES
  ('p' || :r || 'a', 'x' || :r || 'R', 0, 'acc_channel', 'acc_hub', {_PTS_A}, 100, 'post',
   't' || :r || 'a', 'exchange', {_NOW}),
  ('p' || :r || 'b', 'x' || :r || 'R', 1, 'acc_treasury', {_WALLET}, 'PTS', 24, 'post',
   't' || :r || 'b', 'exchange', {_NOW}),
  ('p' || :r || 'c', 'x' || :r || 'R', 2, 'acc_treasury', 'acc_fees', 'PTS', 1, 'post',
   't' || :r || 'c', 'exchange', {_NOW});
"""
    + _resolve("'acc_channel'", "debits", 100)
    + _resolve("'acc_treasury'", "debits", 25)
    + _resolve("'acc_hub'", "credits", 100)
    + _resolve("'acc_fees'", "credits", 1)
    + _resolve(_WALLET, "credits", 24)
    + f"""UPDATE exchanges SET state = 'completed', updated_us = {_NOW}
  WHERE exchange_id = 'e' || :r AND state = 'pending_out';
INSERT INTO idempotency (principal_id, method, request_id, request_sha256, response, created_us)
  VALUES ('ptn_00000000000a', 'ResolveExchange', 'r' || :r, decode(repeat('ab', 32), 'hex'),
          convert_to('e' || :r, 'UTF8'), {_NOW});
COMMIT;
"""
)


def run_pgbench(url: str, clients: int, seconds: float, members: int) -> dict[str, Any]:
    asyncio.run(_sql(url, _SEED.format(members=members), "VACUUM ANALYZE"))
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="exchange-") as script:
        script.write(PGBENCH_SCRIPT)
        script.flush()
        command = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(2, clients))]
        command += ["-T", str(max(1, round(seconds))), "-D", f"members={members}", "-f", script.name, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stderr[-2000:]}")

    def number(pattern: str) -> float:
        found = re.search(pattern, done.stdout)
        return float(found.group(1)) if found else 0.0

    return {
        "tps": number(r"tps = ([\d.]+) \(without initial connection time\)"),  # one exchange = one script run
        "exchanges": int(number(r"actually processed: (\d+)")),
        "failed": int(number(r"number of failed transactions: (\d+)")),
        "latency_ms": number(r"latency average = ([\d.]+) ms"),
        "clients": clients,
    }


# -- the run ---------------------------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = args.database_url
    sql_db, platform_db = f"clearpoint_bench_{os.getpid()}_xsql", f"clearpoint_bench_{os.getpid()}_xplatform"
    env = {
        **os.environ,
        "CLEARPOINT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "CLEARPOINT_LOG_LEVEL": "warning",
    }
    results: dict[str, Any] = {"settings": {k: v for k, v in vars(args).items() if k != "output"}}
    results["load_average"] = os.getloadavg()[0]
    cleanup: list[Any] = []
    try:
        say(f"pgbench: an exchange's rows on the platform's schema, {args.pgbench_clients} clients, {args.seconds:g} s")
        create_db(base, sql_db)
        cleanup.append(lambda: drop_db(base, sql_db))
        clearpoint(env, "platform", "migrate", "--database", db_url(base, sql_db))
        results["pgbench"] = run_pgbench(db_url(base, sql_db), args.pgbench_clients, args.seconds, args.members)
        say(f"pgbench: {results['pgbench']['tps']:.0f} exchanges/s")

        create_db(base, platform_db)
        cleanup.append(lambda: drop_db(base, platform_db))
        url = db_url(base, platform_db)
        operator_key = clearpoint(env, "platform", "create-operator", "--name", "bench-op", "--database", url).strip()
        target = f"127.0.0.1:{free_port()}"
        platform = subprocess.Popen(
            [clearpoint_command(), "platform", "serve", "--listen", target, "--database", url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cleanup.insert(0, lambda: stop_process(platform))
        asyncio.run(wait_serving(target, lambda: platform.poll() is None))
        say(f"platform: {args.members} members linked to one channel")
        fleet = asyncio.run(seed(target, operator_key, args.members))
        load = ExchangeLoad(target, fleet, args.warmup, args.requests, args.concurrency, args.seconds)
        say(f"platform: {args.requests} exchanges, {args.concurrency} in flight, cap {args.seconds:g} s")
        context = multiprocessing.get_context("spawn")
        cpu_before = cpu_seconds(platform.pid)
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            raw = pool.submit(run_exchanges, load).result(timeout=2 * args.seconds + 120)
        cpu_after = cpu_seconds(platform.pid)
        warm, measured = Phase(**raw["warmup"]), Phase(**raw["measured"])
        results["platform"] = measured
        done = warm.ok + measured.ok
        if cpu_before is not None and cpu_after is not None and done:
            results["server_cpu_ms_per_exchange"] = round(1000 * (cpu_after - cpu_before) / done, 3)
        say(f"platform: {measured.rate:.0f} exchanges/s, failed {measured.failed or 0} {measured.first_error}")

        say("platform: the same process's Redeem rate")
        partner_key, _, codes = asyncio.run(bootstrap(target, operator_key, args.warmup + args.requests))
        _, redeemed = drive(
            LoadSpec(target, partner_key, codes, args.warmup, args.requests, args.concurrency, args.seconds, 1, "r")
        )
        results["redeem"] = redeemed
        say(f"platform: {redeemed.rate:.0f} redemptions/s")
    finally:
        for step in cleanup:
            try:
                step()
            except Exception as exc:
                say(f"cleanup: {exc!r}")
    return results


def report(results: dict[str, Any]) -> str:
    pg, plat, redeem = results["pgbench"], results["platform"], results["redeem"]
    s = results["settings"]
    lines = [
        f"exchanges: {s['concurrency']} in flight, {s['members']} members, pgbench -c {pg['clients']}, "
        f"{os.cpu_count()} CPUs (load average {results['load_average']:.1f} at start)",
        f"{'':30}{'per s':>8}{'ok':>8}{'failed':>8}{'p50 ms':>8}{'p99 ms':>8}",
        f"{'pgbench (the same rows)':30}{pg['tps']:8.0f}{pg['exchanges']:8d}{pg['failed']:8d}{'-':>8}{'-':>8}",
        f"{'platform exchanges':30}{plat.rate:8.0f}{plat.ok:8d}{sum(plat.failed.values()):8d}"
        f"{plat.p50_ms:8.1f}{plat.p99_ms:8.1f}",
        f"{'platform redemptions':30}{redeem.rate:8.0f}{redeem.ok:8d}{sum(redeem.failed.values()):8d}"
        f"{redeem.p50_ms:8.1f}{redeem.p99_ms:8.1f}",
        "",
        f"exchanges / pgbench: {plat.rate / pg['tps']:.3f}  (aim at least 0.5)" if pg["tps"] else "",
        f"exchanges / redemptions: {plat.rate / redeem.rate:.3f}" if redeem.rate else "",
        f"server CPU per exchange: {results.get('server_cpu_ms_per_exchange', '-')} ms",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Exchanges per second of the real platform beside pgbench writing the same rows and beside its "
        "own Redeem rate, in one run. Needs PostgreSQL (scratch databases clearpoint_bench_* are made and dropped) "
        "and pgbench on PATH.",
        epilog="example:\n  python bench/exchange_throughput.py --quick",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--seconds", type=float, help="each load's time cap and pgbench's duration (default 15; 4 quick)"
    )
    parser.add_argument("--requests", type=int, help="exchanges (and redemptions) counted (default 3000; 400 quick)")
    parser.add_argument("--warmup", type=int, default=100, help="uncounted first (default 100)")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight (default 32)")
    parser.add_argument("--members", type=int, default=200, help="members the exchanges spread over (default 200)")
    parser.add_argument("--pgbench-clients", type=int, default=8, help="pgbench -c (default 8)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CLEARPOINT_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help=f"PostgreSQL server URL whose user may create databases (default {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)
    args.seconds = args.seconds if args.seconds is not None else (4.0 if args.quick else 15.0)
    args.requests = args.requests if args.requests is not None else (400 if args.quick else 3000)
    if min(args.seconds, args.requests, args.concurrency, args.members, args.pgbench_clients) <= 0:
        parser.error("--seconds, --requests, --concurrency, --members and --pgbench-clients must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    results = measure(args)
    if args.output == "json":
        print(json.dumps({k: asdict(v) if isinstance(v, Phase) else v for k, v in results.items()}, indent=2))
    else:
        print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
