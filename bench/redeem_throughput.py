#!/usr/bin/env python3
"""Redemption throughput: the real platform against two ceilings it cannot beat.

The design's rule is that round trips are the cost; this script puts numbers on it, in one run:

1. pgbench runs the SQL a redemption writes, in two phrasings (voucher UPDATE, campaign UPDATE, redemption INSERT in
   one transaction) on the platform's schema: what PostgreSQL alone does on this machine;
2. a grpc.aio server whose Redeem does nothing: what gRPC in Python alone does;
3. `clearpoint platform serve` redeeming real signed codes, each exactly once.

(2) and (3) are driven by the same load generator (its own process, fixed concurrency, a fixed
request count and a time cap, an uncounted warm-up) sending the very same request bytes.
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
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
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
    redemption_pb2,
    redemption_pb2_grpc,
)

DEFAULT_DATABASE_URL = "postgresql://root@127.0.0.1:5432/test"
STORE_ID = "store-1"
CALL_TIMEOUT = 30.0
SERVER_LIFETIME = 900.0  # the bare server stops by itself even if nobody stops it


# -- the load generator: its own process, the same code for the bare server and the platform --------


@dataclass(frozen=True)
class LoadSpec:
    target: str
    api_key: str
    codes: list[str]
    warmup: int
    requests: int
    concurrency: int
    seconds: float
    channels: int
    run_id: str


@dataclass
class Phase:
    ok: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # by gRPC status
    first_error: str = ""
    elapsed: float = 0.0
    rate: float = 0.0  # successful calls per second
    mean_ms: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0


async def _phase(spec: LoadSpec, stubs: list[Any], first: int, count: int, cap: float) -> Phase:
    """`count` calls with `concurrency` in flight; no new call starts after `cap` seconds."""
    metadata = (("x-api-key", spec.api_key),)
    result, failed, latencies = Phase(), Counter[str](), list[float]()
    next_index, end, deadline = first, first + count, time.monotonic() + cap

    async def worker(stub: Any) -> None:
        nonlocal next_index
        while next_index < end and time.monotonic() < deadline:
            i, next_index = next_index, next_index + 1
            request = redemption_pb2.RedeemRequest(
                request_id=f"{spec.run_id}-{i}", code=spec.codes[i], store_id=STORE_ID
            )
            started = time.perf_counter()
            try:
                await stub.Redeem(request, metadata=metadata, timeout=CALL_TIMEOUT)
                result.ok += 1
            except grpc.aio.AioRpcError as exc:
                failed[exc.code().name] += 1
                result.first_error = result.first_error or f"{exc.code().name}: {exc.details()}"
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(stubs[w % len(stubs)]) for w in range(spec.concurrency)))
    result.elapsed = time.perf_counter() - started
    result.failed = dict(failed)
    result.rate = result.ok / result.elapsed if result.elapsed else 0.0
    if latencies:
        latencies.sort()
        result.mean_ms = 1000 * sum(latencies) / len(latencies)
        result.p50_ms = 1000 * latencies[len(latencies) // 2]
        result.p99_ms = 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return result


async def _drive(spec: LoadSpec) -> dict[str, Any]:
    # A local subchannel pool gives each channel its own connection rather than one shared one.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(spec.target, options=options) for _ in range(spec.channels)]
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), 20)
        stubs = [redemption_pb2_grpc.RedemptionServiceStub(c) for c in channels]
        warm = await _phase(spec, stubs, 0, spec.warmup, min(spec.seconds, 10.0))
        measured = await _phase(spec, stubs, spec.warmup, spec.requests, spec.seconds)
        return {"warmup": asdict(warm), "measured": asdict(measured)}
    finally:
        for channel in channels:
            await channel.close()


def run_load(spec: LoadSpec) -> dict[str, Any]:
    """Entry point of the load process: a fresh interpreter, so it takes no CPU from this one."""
    return asyncio.run(_drive(spec))


def drive(spec: LoadSpec) -> tuple[Phase, Phase]:
    context = multiprocessing.get_context("spawn")  # never fork a process that has used grpc
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        raw = pool.submit(run_load, spec).result(timeout=spec.seconds + 3 * CALL_TIMEOUT + 60)
    return Phase(**raw["warmup"]), Phase(**raw["measured"])


# -- 2. the bare grpc.aio server ------------------------------------------------------------------------


class _NothingRedemptions(redemption_pb2_grpc.RedemptionServiceServicer):
    async def Redeem(self, request: Any, context: Any) -> redemption_pb2.RedeemResponse:
        return redemption_pb2.RedeemResponse()


def serve_bare(port: int, ready: Any) -> None:
    """Entry point of the bare server process: what gRPC in Python costs with no work at all."""

    async def main() -> None:
        server = grpc.aio.server()
        redemption_pb2_grpc.add_RedemptionServiceServicer_to_server(_NothingRedemptions(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination(SERVER_LIFETIME)
        await server.stop(0)

    asyncio.run(main())


# -- PostgreSQL and processes ---------------------------------------------------------------------------


def db_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


async def _sql(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:  # one by one: CREATE/DROP DATABASE refuse to run in a transaction
            await conn.execute(statement)
    finally:
        await conn.close()


def create_db(base: str, name: str) -> None:
    asyncio.run(_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'))


def drop_db(base: str, name: str) -> None:
    asyncio.run(_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _db_counters(url: str) -> tuple[int, int]:
    """(transactions, sessions) the database has seen, to tell what one redemption costs it."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


def clearpoint(env: dict[str, str], *args: str) -> str:
    """Run a `clearpoint` command to completion: its stdout, or an error carrying its stderr."""
    done = subprocess.run([clearpoint_command(), *args], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"clearpoint {' '.join(args[:2])} failed:\n{done.stderr[-2000:]}")
    return done.stdout


# -- 1. pgbench -------------------------------------------------------------------------------------------

_SEED = """
INSERT INTO partners (partner_id, name, role, created_us) VALUES ('ptn_000000000001', 'bench', 'partner', 0);
INSERT INTO issuer_keys (kid, state, public_key, private_key_sealed, created_us)
VALUES ('0000beef', 'active', decode(repeat('00', 32), 'hex'), decode(repeat('00', 60), 'hex'), 0);
INSERT INTO campaigns (campaign_id, partner_id, name, prize_description, valid_from_us, valid_until_us,
                       all_stores, total_stock, uses_per_voucher, rollback_window_us, created_us)
VALUES ('cmp_000000000001', 'ptn_000000000001', 'bench', 'a prize', 0, 4000000000000000,
        1, 1000000000000, 1000000, 900000000, 0);
INSERT INTO vouchers (voucher_id, campaign_id, kid, uses_allowed, uses_made, issued_us)
SELECT 'vch_' || lpad(to_hex(i), 16, '0'), 'cmp_000000000001', '0000beef', 1000000, 0, 0
FROM generate_series(1, {vouchers}) AS i;
"""
# The writes of one redemption as the platform's SQLite path makes them (the voucher's use, the campaign's
# prize, the redemption and its first answer), on one campaign as in the
# platform run (so every transaction updates the same campaign row, as redemptions do). Each takes a
# random voucher from a large range with uses_allowed high: two clients rarely meet on one voucher and
# a repeat is never refused. The platform may phrase it otherwise (a CTE, replay checks); the rows
# written are the same, and how it phrases them is part of what this comparison shows.
_NOW = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
_VOUCHER = "'vch_' || lpad(to_hex(:v::bigint), 16, '0')"
PGBENCH_SCRIPT = f"""\\set v random(1, :vouchers)
\\set r random(1, 9000000000000000000)
BEGIN;
UPDATE vouchers SET uses_made = uses_made + 1
  WHERE voucher_id = {_VOUCHER} AND campaign_id = 'cmp_000000000001' AND kid = '0000beef'
    AND uses_made < uses_allowed
    AND EXISTS (SELECT 1 FROM issuer_keys
                WHERE issuer_keys.kid = vouchers.kid AND issuer_keys.state <> 'retired')
  RETURNING uses_allowed - uses_made;
UPDATE campaigns SET redeemed = redeemed + 1
  WHERE campaign_id = 'cmp_000000000001' AND redeemed - rolled_back < total_stock
    AND valid_from_us <= {_NOW} AND valid_until_us > {_NOW}
    AND (all_stores = 1 OR EXISTS (SELECT 1 FROM campaign_stores
         WHERE campaign_stores.campaign_id = campaigns.campaign_id
           AND campaign_stores.store_id = '{STORE_ID}'))
  RETURNING name, prize_description;
INSERT INTO redemptions (redemption_id, voucher_id, campaign_id, store_id, redeemed_by, request_id,
                         request_sha256, redeemed_us, uses_remaining)
  VALUES ('rdm_' || lpad(to_hex(:r::bigint), 16, '0'), {_VOUCHER}, 'cmp_000000000001', '{STORE_ID}',
          'ptn_000000000001', 'bench-' || :r, decode(repeat('ab', 32), 'hex'), {_NOW}, 0);
INSERT INTO idempotency (principal_id, method, request_id, request_sha256, response, created_us)
  VALUES ('ptn_000000000001', 'Redeem', 'bench-' || :r, decode(repeat('ab', 32), 'hex'),
          convert_to('rdm_' || lpad(to_hex(:r::bigint), 16, '0'), 'UTF8'), {_NOW});
COMMIT;
"""


def one_statement_script() -> str:
    """The platform's own claim statement (PostgreSQL's group statement, as compiled for asyncpg) for a
    batch of one, its parameters filled with this benchmark's values: the SQL the platform sends for a
    lone redemption, run with no Python in the way."""
    from clearpoint.platform.agents.ingest import SCAN_LOG
    from clearpoint.platform.redemption.statements import group_statement

    compiled = group_statement(SCAN_LOG)
    values = {
        "idx": "0",
        "voucher_id": _VOUCHER,
        "campaign_id": "'cmp_000000000001'",
        "kid": "'0000beef'",
        "store_id": f"'{STORE_ID}'",
        "principal_id": "'ptn_000000000001'",
        "method": "'Redeem'",
        "answer_request_id": "'bench-' || :r",
        "fingerprint": "decode(repeat('ab', 32), 'hex')",
        "redeemed_by": "'ptn_000000000001'",
        "request_id": "'bench-' || :r",
        "redemption_id": "'rdm_' || lpad(to_hex(:r::bigint), 16, '0')",
        "body": "convert_to('rdm_' || lpad(to_hex(:r::bigint), 16, '0'), 'UTF8')",
    }
    filled = {name: f"ARRAY[{value}]" for name, value in values.items()}
    filled |= {f"a_{name}": "ARRAY[NULL]" for name in SCAN_LOG.columns}  # not a scan: no row in the scan log
    filled["now"] = _NOW
    for key, value in compiled.fixed.items():
        filled[key] = f"'{value}'" if isinstance(value, str) else str(value)
    sql = re.sub(r"\$(\d+)", lambda m: f"({filled[compiled.order[int(m.group(1)) - 1]]})", compiled.sql)
    return "\\set v random(1, :vouchers)\n\\set r random(1, 9000000000000000000)\n" + " ".join(sql.split()) + ";\n"


def run_pgbench(
    url: str, clients: int, seconds: float, vouchers: int, script_text: str = PGBENCH_SCRIPT
) -> dict[str, Any]:
    # Each run starts from the same seed, so the second script meets the tables the first one did.
    empty = (
        "TRUNCATE idempotency, redemptions, vouchers, campaign_stores, campaign_refusals, campaigns, issuer_keys,"
        " api_keys CASCADE"
    )
    asyncio.run(_sql(url, empty, "DELETE FROM partners", _SEED.format(vouchers=vouchers), "VACUUM ANALYZE"))
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="redeem-") as script:
        script.write(script_text)
        script.flush()
        # -M prepared, as asyncpg (the platform's driver) prepares its statements too.
        command = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            str(min(2, clients)),
            "-T",
            str(max(1, round(seconds))),
            "-D",
            f"vouchers={vouchers}",
            "-f",
            script.name,
            url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stderr[-2000:]}")

    def number(pattern: str) -> float:
        found = re.search(pattern, done.stdout)
        return float(found.group(1)) if found else 0.0

    return {
        "tps": number(r"tps = ([\d.]+) \(without initial connection time\)"),
        "transactions": int(number(r"actually processed: (\d+)")),
        "failed": int(number(r"number of failed transactions: (\d+)")),
        "latency_ms": number(r"latency average = ([\d.]+) ms"),
        "clients": clients,
    }


# -- 3. the platform ---------------------------------------------------------------------------------------


async def bootstrap(target: str, operator_key: str, codes_needed: int) -> tuple[str, str, list[str]]:
    """An issuer key, a partner, a campaign and its signed codes: (partner key, campaign id, codes)."""
    options = [("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        as_operator = (("x-api-key", operator_key),)
        await issuer_keys_pb2_grpc.IssuerKeyServiceStub(channel).CreateIssuerKey(
            issuer_keys_pb2.CreateIssuerKeyRequest(request_id="bench-key"), metadata=as_operator
        )
        partner = await partners_pb2_grpc.PartnerServiceStub(channel).CreatePartner(
            partners_pb2.CreatePartnerRequest(
                request_id="bench-partner", name="bench-partner", role=partners_pb2.ROLE_PARTNER
            ),
            metadata=as_operator,
        )
        as_partner = (("x-api-key", partner.api_key),)
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)
        created = await campaigns.CreateCampaign(
            campaign_request("bench-campaign", "bench", 10**12),
            metadata=as_partner,
        )
        campaign_id = created.campaign.campaign_id
        codes: list[str] = []
        while len(codes) < codes_needed:
            issued = await campaigns.IssueVouchers(
                campaigns_pb2.IssueVouchersRequest(
                    request_id=f"bench-issue-{len(codes)}",
                    campaign_id=campaign_id,
                    count=min(10_000, codes_needed - len(codes)),
                ),
                metadata=as_partner,
                timeout=300,
            )
            codes.extend(v.code for v in issued.vouchers)
    return partner.api_key, campaign_id, codes


async def redeemed_count(target: str, api_key: str, campaign_id: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await campaigns_pb2_grpc.CampaignServiceStub(channel).GetCampaign(
            campaigns_pb2.GetCampaignRequest(campaign_id=campaign_id), metadata=(("x-api-key", api_key),)
        )
    return reply.progress.redeemed


# -- the run ----------------------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = args.database_url
    sql_db, platform_db = f"clearpoint_bench_{os.getpid()}_sql", f"clearpoint_bench_{os.getpid()}_platform"
    env = {
        **os.environ,
        "CLEARPOINT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "CLEARPOINT_LOG_LEVEL": "warning",
        "CLEARPOINT_WORKERS": str(args.workers),
    }
    created: list[str] = []
    cleanup: list[Callable[[], object]] = []
    on_error: list[Callable[[], object]] = []
    cpu_ms: dict[str, float | None] = {}
    results: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "load_average": os.getloadavg()[0],  # other work on the machine skews every figure
        "server_cpu_ms_per_call": cpu_ms,
    }
    try:
        say(f"pgbench: database {sql_db} (platform schema), {args.pgbench_clients} clients, {args.seconds:g} s")
        create_db(base, sql_db)
        created.append(sql_db)
        clearpoint(env, "platform", "migrate", "--database", db_url(base, sql_db))
        results["pgbench"] = run_pgbench(
            db_url(base, sql_db), args.pgbench_clients, args.seconds, vouchers=20_000 if args.quick else 100_000
        )
        say(f"pgbench: {results['pgbench']['tps']:.0f} tps")
        results["pgbench_one_statement"] = run_pgbench(
            db_url(base, sql_db),
            args.pgbench_clients,
            args.seconds,
            vouchers=20_000 if args.quick else 100_000,
            script_text=one_statement_script(),
        )
        say(f"pgbench, the platform's one statement: {results['pgbench_one_statement']['tps']:.0f} tps")

        say(f"platform: database {platform_db}, starting `clearpoint platform serve`")
        create_db(base, platform_db)
        created.append(platform_db)
        url = db_url(base, platform_db)
        operator_key = clearpoint(env, "platform", "create-operator", "--name", "bench-op", "--database", url)
        target = f"127.0.0.1:{free_port()}"
        log_file = tempfile.TemporaryFile()
        cleanup.append(log_file.close)
        platform = subprocess.Popen(
            [clearpoint_command(), "platform", "serve", "--listen", target, "--database", url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        cleanup.append(lambda: stop_process(platform))

        def show_log() -> None:
            log_file.seek(0)
            say("platform log (tail):\n" + log_file.read()[-3000:].decode(errors="replace"))

        on_error.append(show_log)
        asyncio.run(wait_serving(target, lambda: platform.poll() is None))
        say(f"platform: issuing {args.warmup + args.requests} codes")
        partner_key, campaign_id, codes = asyncio.run(
            bootstrap(target, operator_key.strip(), args.warmup + args.requests)
        )

        def load(name: str, target: str, pid: int | None) -> tuple[Phase, Phase]:
            spec = LoadSpec(
                target=target,
                api_key=partner_key,
                codes=codes,
                warmup=args.warmup,
                requests=args.requests,
                concurrency=args.concurrency,
                seconds=args.seconds,
                channels=args.channels,
                run_id=name,
            )
            cpu_before = cpu_seconds(pid)
            warm, measured = drive(spec)
            cpu_after = cpu_seconds(pid)
            calls = warm.ok + measured.ok + sum(warm.failed.values()) + sum(measured.failed.values())
            if cpu_before is not None and cpu_after is not None and calls:
                cpu_ms[name] = round(1000 * (cpu_after - cpu_before) / calls, 3)
            results[name] = measured
            return warm, measured

        say(f"bare grpc.aio: {args.requests} calls, {args.concurrency} in flight, cap {args.seconds:g} s")
        context = multiprocessing.get_context("spawn")
        ready, bare_port = context.Event(), free_port()
        bare = context.Process(target=serve_bare, args=(bare_port, ready), daemon=True)
        bare.start()
        cleanup.append(lambda: (bare.terminate(), bare.join(10)))
        if not ready.wait(30):
            raise RuntimeError("the bare grpc server did not start")
        load("bare_grpc", f"127.0.0.1:{bare_port}", bare.pid)
        bare.terminate()
        say(f"bare grpc.aio: {results['bare_grpc'].rate:.0f} calls/s")

        say(f"platform: {args.requests} redemptions, {args.concurrency} in flight, cap {args.seconds:g} s")
        before = asyncio.run(_db_counters(url))
        warm, measured = load("platform", target, platform.pid)
        time.sleep(1.0)  # PostgreSQL publishes a backend's statistics at most once a second
        after = asyncio.run(_db_counters(url))
        redeemed = asyncio.run(redeemed_count(target, partner_key, campaign_id))
        successes = warm.ok + measured.ok
        results["check"] = {
            "campaign_redeemed": redeemed,
            "successes_seen": successes,
            "ok": redeemed == successes,
            "db_xacts_per_redemption": round((after[0] - before[0]) / successes, 2) if successes else None,
            "db_sessions_opened": after[1] - before[1] - 1,  # less the one counting them
        }
        say(
            f"platform: {measured.rate:.0f} redemptions/s; the campaign counts {redeemed} redeemed, the "
            f"generator saw {successes} successes ({'match' if redeemed == successes else 'MISMATCH'})"
        )
        if measured.failed:
            say(f"platform failures: {measured.failed}; first: {measured.first_error}")
            show_log()
    except BaseException:
        for hook in on_error:
            hook()
        raise
    finally:
        for step in reversed(cleanup):
            try:
                step()
            except Exception as exc:
                say(f"cleanup: {exc!r}")
        for name in created:
            try:
                drop_db(base, name)
            except Exception as exc:
                say(f"cleanup: could not drop database {name}: {exc!r}")
    return results


def report(results: dict[str, Any], as_json: bool, wall: float) -> str:
    pg, bare, plat = results["pgbench"], results["bare_grpc"], results["platform"]
    pg1 = results["pgbench_one_statement"]

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    ratios = {
        "platform/bare_grpc": ratio(plat.rate, bare.rate),
        "platform/pgbench": ratio(plat.rate, pg["tps"]),
        "platform/pgbench_one_statement": ratio(plat.rate, pg1["tps"]),
        "bare_grpc/pgbench": ratio(bare.rate, pg["tps"]),
    }
    if as_json:
        return json.dumps(
            {
                **results,
                "bare_grpc": asdict(bare),
                "platform": asdict(plat),
                "ratios": ratios,
                "cpus": os.cpu_count(),
                "wall_seconds": round(wall, 1),
            },
            indent=2,
        )
    s, cpu, check = results["settings"], results["server_cpu_ms_per_call"], results["check"]
    lines = [
        f"redemptions: {s['concurrency']} gRPC calls in flight on {s['channels']} channel(s), "
        f"platform workers {s['workers']}, pgbench -c {pg['clients']}, "
        f"{os.cpu_count()} CPUs (load average {results['load_average']:.1f} at start), {wall:.0f} s in all",
        f"{'':24}{'per s':>8}{'ok':>8}{'failed':>8}{'mean ms':>9}{'p50 ms':>8}{'p99 ms':>8}{'server CPU ms':>15}",
        f"{'pgbench (SQL only)':24}{pg['tps']:8.0f}{pg['transactions']:8d}{pg['failed']:8d}"
        f"{pg['latency_ms']:9.1f}{'-':>8}{'-':>8}{'-':>15}",
        f"{'pgbench (one statement)':24}{pg1['tps']:8.0f}{pg1['transactions']:8d}{pg1['failed']:8d}"
        f"{pg1['latency_ms']:9.1f}{'-':>8}{'-':>8}{'-':>15}",
    ]
    for label, key, phase in (("bare grpc.aio (no-op)", "bare_grpc", bare), ("clearpoint platform", "platform", plat)):
        lines.append(
            f"{label:24}{phase.rate:8.0f}{phase.ok:8d}{sum(phase.failed.values()):8d}"
            f"{phase.mean_ms:9.1f}{phase.p50_ms:8.1f}{phase.p99_ms:8.1f}{cpu.get(key) or '-':>15}"
        )
    lines.append("")
    lines += [
        f"{name.replace('/', ' / ').replace('_', ' '):36}{value if value is not None else '-':>8}"
        for name, value in ratios.items()
    ]
    lines.append("")
    lines.append(
        f"check: campaign counts {check['campaign_redeemed']} redeemed, generator saw "
        f"{check['successes_seen']} successes: {'match' if check['ok'] else 'MISMATCH'}"
    )
    lines.append(
        f"database: ~{check['db_xacts_per_redemption']} transactions per redemption, "
        f"{check['db_sessions_opened']} sessions opened during the platform load"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Redemptions per second of the real platform against pgbench running the same SQL and "
        "a do-nothing grpc.aio server, measured in one run, with the ratios. Needs PostgreSQL "
        "(it creates and drops scratch databases clearpoint_bench_*) and pgbench on PATH.",
        epilog="examples:\n  python bench/redeem_throughput.py --quick      # smoke run, under 30 s\n"
        "  python bench/redeem_throughput.py -o json > redeem.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--seconds", type=float, help="pgbench's duration and each gRPC load's time cap (default 15; 3 with --quick)"
    )
    parser.add_argument(
        "--requests",
        type=int,
        help="calls counted per gRPC target, after the warm-up (default 20000; 1500 with --quick)",
    )
    parser.add_argument("--warmup", type=int, help="uncounted calls first (default 500; 100 with --quick)")
    parser.add_argument("--concurrency", type=int, default=64, help="gRPC calls in flight (default 64)")
    parser.add_argument(
        "--channels", type=int, default=1, help="gRPC channels, each its own connection, the calls share (default 1)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="platform server processes (`clearpoint platform serve --workers`); use --channels of at least "
        "twice as many, as each connection stays with one process (default 1)",
    )
    parser.add_argument(
        "--pgbench-clients", type=int, default=8, help="pgbench -c: its concurrent database sessions (default 8)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CLEARPOINT_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL server URL whose user may create databases "
        f"(default $CLEARPOINT_BENCH_DATABASE_URL or {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run, well under 30 s")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table", help="table (default) or json")
    args = parser.parse_args(argv)
    args.seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 15.0)
    args.requests = args.requests if args.requests is not None else (1500 if args.quick else 20_000)
    args.warmup = args.warmup if args.warmup is not None else (100 if args.quick else 500)
    if min(args.seconds, args.requests, args.concurrency, args.channels, args.pgbench_clients, args.workers) <= 0:
        parser.error("--seconds, --requests, --concurrency, --channels, --pgbench-clients: must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain `kill` should still stop the servers and drop the scratch databases (measure's finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    started = time.monotonic()
    results = measure(args)
    print(report(results, args.output == "json", time.monotonic() - started))
    return 0 if results["check"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
