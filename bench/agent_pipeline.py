#!/usr/bin/env python3
"""The store agent's pipeline: what one scan costs the agent, and how many scans streams carry into the platform.

One run measures two things, each beside a bare baseline measured in the same run:

1. Agent cost per scan: a virtual scanner on a pty sends real voucher codes to the real serial driver, whose reads go
   to the real journal (Ed25519 signature, SQLite WAL with synchronous=FULL on a file in a temp dir). The time counted
   runs from the driver's stamp on the chunk that held the scan's terminator to `Journal.append` returning, split into
   framing, the hop to the journal's thread, signing and the SQL transaction. Beside it: a bare SQLite INSERT+COMMIT
   of the same row (WAL, FULL), an fsync of a plain file, and the scan's wire time at 9600 baud.
2. Scans per second into the platform: the real `Uplink` draining a journal of N signed scans into the real platform
   (its own process; several scans a message, as an agent with a backlog sends them), the same sending one scan a
   message, then several agents at once (each its own process), beside the platform's unary Redeem rate in the same
   run, a no-op grpc.aio bidi server driven by a bare windowed client (one scan a message), and the real `Uplink`
   against that same no-op server (the agent's client-side cost alone; the no-op server does not announce batches,
   so this row goes one scan a message).

Progress goes to stderr; the table (or `-o json`) to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
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
from clearpoint.formats import voucher_codes
from clearpoint.formats.scan_signatures import ScanFields, sign_scan
from clearpoint.platform.keys.master_key import MASTER_KEY_ENV
from clearpoint.scanner_agent.drivers.serial import SerialDriver, SerialSettings
from clearpoint.scanner_agent.enrol import enrol
from clearpoint.scanner_agent.identity import load_key
from clearpoint.scanner_agent.journal import Answer, Journal, JournaledScan
from clearpoint.scanner_agent.reads import Read, now_stamps
from clearpoint.scanner_agent.uplink import Uplink, UplinkSettings, channel_options, to_request
from clearpoint.scanner_agent.virtual_scanner import VirtualScanner
from clearpoint.v1 import (
    agents_pb2,
    agents_pb2_grpc,
    campaigns_pb2,
    campaigns_pb2_grpc,
    issuer_keys_pb2,
    issuer_keys_pb2_grpc,
    partners_pb2,
    partners_pb2_grpc,
    redemption_pb2,
    redemption_pb2_grpc,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

AIM_PREFIX = b"]Q1"  # QR Code, as a scanner set to send AIM identifiers prefixes a voucher
TERMINATOR = b"\r"
SCANNER_ID = "till-1"
STORE_ID = "store-1"
WIRE_BAUD = 9600  # a scanner fresh out of the box: 9600 8N1, 10 bits on the wire per byte
BITS_PER_BYTE = 10
WARMUP_SCANS = 20  # uncounted scans through the pty before the measured ones
SERVER_LIFETIME = 900.0  # the servers stop by themselves even if nobody stops them
MAX_IN_FLIGHT = 64  # what the platform announces (agent_service.MAX_IN_FLIGHT); the no-op server says the same


# -- statistics ---------------------------------------------------------------------------------------------


def stats_us(values_ns: list[int]) -> dict[str, float]:
    """p50/p90/p99/max/mean of nanosecond samples, in microseconds (nearest-rank percentiles)."""
    if not values_ns:
        return {"n": 0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    s = sorted(values_ns)

    def rank(p: float) -> float:
        return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))] / 1000

    return {
        "n": len(s),
        "p50": round(rank(50), 1),
        "p90": round(rank(90), 1),
        "p99": round(rank(99), 1),
        "max": round(s[-1] / 1000, 1),
        "mean": round(sum(s) / len(s) / 1000, 1),
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding `path` (ext4, tmpfs, ...): fsync costs depend on it. Linux only."""
    try:
        best, kind = "", "unknown"
        resolved = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount = parts[1].replace("\\040", " ")
            inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best):
                best, kind = mount, parts[2]
        return kind
    except (OSError, IndexError):
        return "unknown"


def throwaway_codes(count: int) -> list[str]:
    """Real-format voucher codes (COSE_Sign1, base45, 178 characters), signed by a throwaway issuer key."""
    key, kid = Ed25519PrivateKey.generate(), secrets.token_bytes(voucher_codes.KID_BYTES)
    now = int(time.time())
    return [
        voucher_codes.encode_code(
            voucher_codes.VoucherClaims(
                secrets.token_bytes(voucher_codes.VOUCHER_ID_BYTES),
                secrets.token_bytes(voucher_codes.CAMPAIGN_ID_BYTES),
                now - 60,
                now + 86_400,
            ),
            kid,
            key,
        )
        for _ in range(count)
    ]


# -- 1. agent cost per scan ----------------------------------------------------------------------------------

# Each measured operation runs right after a scan's bytes came in through the pty and were framed, so every kind
# follows the same rhythm of work and idle time: a commit after a few idle milliseconds costs several times one
# made back to back (CPU and disk idle states), so a baseline run in a tight loop would flatter the baseline.
JOURNAL, SQLITE, FSYNC = "journal", "sqlite", "fsync"


def schedule(scans: int) -> list[tuple[str, bool]]:
    """(kind, counted) for every frame sent: journal and bare SQLite alternate, an fsync after every fourth pair;
    the first WARMUP_SCANS rounds are not counted."""
    plan = []
    for k in range(WARMUP_SCANS + scans):
        counted = k >= WARMUP_SCANS
        plan += [(JOURNAL, counted), (SQLITE, counted)]
        if k % 4 == 0:
            plan.append((FSYNC, counted))
    return plan


class BareSqlite:
    """The baseline: BEGIN IMMEDIATE + INSERT + COMMIT of a journal-sized row, WAL and synchronous=FULL, on the
    calling thread: no signing, no framing, no thread hop, no sequence bookkeeping."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE scans (sequence INTEGER PRIMARY KEY, scanner_id TEXT NOT NULL, scan_us INTEGER NOT NULL,"
            " symbology TEXT NOT NULL, data BLOB NOT NULL, signature BLOB NOT NULL, journaled_us INTEGER NOT NULL)"
        )
        self.sequence = 0

    def insert(self, read: Read) -> int:
        """One row as the journal writes it (same sizes: the scan's data, a 64-byte signature); nanoseconds."""
        self.sequence += 1
        row = (self.sequence, read.scanner_id, read.at_us, read.symbology, read.data, secrets.token_bytes(64))
        started = time.perf_counter_ns()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(
            "INSERT INTO scans (sequence, scanner_id, scan_us, symbology, data, signature, journaled_us)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*row, time.time_ns() // 1000),
        )
        self.db.execute("COMMIT")
        return time.perf_counter_ns() - started

    def close(self) -> None:
        self.db.close()


def fsync_once(fd: int, block: bytes) -> int:
    """4 KiB appended to a plain file and fsync'd: the filesystem's floor for a durable commit; nanoseconds."""
    started = time.perf_counter_ns()
    os.write(fd, block)
    os.fsync(fd)
    return time.perf_counter_ns() - started


@dataclass
class CostSample:
    stamp_ns: int  # Read.at_perf_ns: the chunk holding the terminator was read
    yielded_ns: int  # the driver handed the Read over
    committed_ns: int  # Journal.append returned
    in_thread_ns: int  # time on the journal's thread (sign + SQL transaction)
    scan: JournaledScan


async def agent_cost(directory: Path, scans: int, baud: int) -> dict[str, Any]:
    plan = schedule(scans)
    codes = throwaway_codes(len(plan))
    agent_id = "agt_" + secrets.token_hex(8)
    key = Ed25519PrivateKey.generate()
    journal = await Journal.open(directory / "journal.sqlite3", agent_id, key, max_backlog=10 * len(plan))
    # Time spent on the journal's thread, wrapped around the instance's own method (the product code is unchanged;
    # the wrapper adds two clock reads): with the time around `append`, it splits the thread hop from the work.
    in_thread: dict[int, int] = {}
    work = journal._append

    def timed_append(read: Read) -> JournaledScan:
        started = time.perf_counter_ns()
        scan = work(read)
        in_thread[scan.sequence] = time.perf_counter_ns() - started
        return scan

    journal._append = timed_append  # type: ignore[method-assign]
    bare = BareSqlite(directory / "bare.sqlite3")
    block = os.urandom(4096)
    fd = os.open(directory / "fsync-floor.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    scanner = VirtualScanner()
    driver = SerialDriver(SCANNER_ID, SerialSettings(path=scanner.port, baud=baud))
    done: asyncio.Queue[tuple[Read, CostSample | int]] = asyncio.Queue()

    async def pump() -> None:
        """What Agent._pump + Agent.take do up to the journal (or, by the plan, a baseline operation instead)."""
        kinds = iter(plan)
        async for read in driver.reads():
            yielded = time.perf_counter_ns()
            kind, _ = next(kinds)
            if kind == JOURNAL:
                scan = await journal.append(read)
                committed = time.perf_counter_ns()
                done.put_nowait(
                    (read, CostSample(read.at_perf_ns, yielded, committed, in_thread.pop(scan.sequence), scan))
                )
            elif kind == SQLITE:
                done.put_nowait((read, bare.insert(read)))
            else:
                done.put_nowait((read, fsync_once(fd, block)))

    pumping = asyncio.create_task(pump())
    samples: list[CostSample] = []
    bare_ns: list[int] = []
    fsync_ns: list[int] = []
    try:
        deadline = time.monotonic() + 10
        while not driver.connected:  # bytes sent before the port is open are lost, as on hardware
            if time.monotonic() > deadline or pumping.done():
                raise RuntimeError("the serial driver did not open the virtual scanner")
            await asyncio.sleep(0.01)
        say(
            f"agent cost: {len(plan)} frames through pty -> SerialDriver at {baud} baud: {scans} to the journal, "
            f"{scans} to bare SQLite, {sum(k == FSYNC and c for k, c in plan)} to fsync (+ uncounted warm-up)"
        )
        # One frame at a time, the next sent once the last is done with, as scans at a till are seconds apart: each
        # figure is the cost of one scan on an otherwise idle agent, with no queueing behind the previous one.
        for i, ((kind, counted), code) in enumerate(zip(plan, codes, strict=True)):
            await scanner.send(AIM_PREFIX + code.encode() + TERMINATOR, baud=baud)
            read, result = await asyncio.wait_for(done.get(), 10)
            if read.data != code.encode() or read.symbology != AIM_PREFIX.decode():
                raise RuntimeError(f"frame {i} came out of the driver as {read.symbology}{read.data!r}")
            if not counted:
                continue
            if isinstance(result, CostSample):
                samples.append(result)
            else:
                (bare_ns if kind == SQLITE else fsync_ns).append(result)
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        await driver.close()
        scanner.close()
        await journal.close()
        os.close(fd)

    # The same bare inserts back to back, with no idle time between them: what the idle gaps cost.
    back_to_back = []
    for sample in samples:
        back_to_back.append(bare.insert(Read(SCANNER_ID, sample.scan.data, sample.scan.symbology, 0, 0)))
    bare.close()

    # Signing timed apart, on the very inputs the journal signed (same agent, key, sequence, stamp, data).
    sign_ns = []
    for sample in samples:
        s = sample.scan
        fields = ScanFields(agent_id, s.scanner_id, s.sequence, s.scan_us, s.symbology, s.data)
        started = time.perf_counter_ns()
        sign_scan(key, fields)
        sign_ns.append(time.perf_counter_ns() - started)

    frame_bytes = len(AIM_PREFIX) + len(codes[0]) + len(TERMINATOR)
    total = stats_us([s.committed_ns - s.stamp_ns for s in samples])
    append = stats_us([s.committed_ns - s.yielded_ns for s in samples])
    bare_stats = stats_us(bare_ns)
    wire_us = frame_bytes * BITS_PER_BYTE / WIRE_BAUD * 1e6
    return {
        "scans": len(samples),
        "frame_bytes": frame_bytes,
        "code_chars": len(codes[0]),
        "baud_sent": baud,
        "frame_wire_us_at_baud_sent": round(frame_bytes * BITS_PER_BYTE / baud * 1e6, 1),
        "filesystem": filesystem_of(directory),
        "total": total,
        "framing": stats_us([s.yielded_ns - s.stamp_ns for s in samples]),
        "append": append,
        "thread_hop": stats_us([s.committed_ns - s.yielded_ns - s.in_thread_ns for s in samples]),
        "sign": stats_us(sign_ns),
        "sql_commit": stats_us([max(0, s.in_thread_ns - g) for s, g in zip(samples, sign_ns, strict=True)]),
        "bare_sqlite": bare_stats,
        "bare_sqlite_back_to_back": stats_us(back_to_back),
        "fsync_floor": stats_us(fsync_ns),
        "wire_us_at_9600": round(wire_us, 1),
        "ratios": {
            "total_p99/wire_9600": ratio(total["p99"], wire_us),
            "append_p50/bare_sqlite_p50": ratio(append["p50"], bare_stats["p50"]),
            "append_p99/bare_sqlite_p99": ratio(append["p99"], bare_stats["p99"]),
        },
    }


# -- 2. scans per second through one stream ------------------------------------------------------------------


@dataclass
class StreamRun:
    scans: int
    answered: int = 0
    accepted: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    rate: float = 0.0  # answered scans per second
    sessions: int = 1
    timed_out: bool = False
    client_cpu_ms_per_scan: float | None = None
    server_cpu_ms_per_scan: float | None = None

    def finish(self, elapsed: float) -> StreamRun:
        self.elapsed_s = round(elapsed, 3)
        self.rate = round(self.answered / elapsed, 1) if elapsed else 0.0
        return self


def stream_limit(scans: int) -> float:
    """Each stream run stops by itself after this long, answered or not."""
    return 60.0 + scans / 20


class _NoOpAgents(agents_pb2_grpc.AgentServiceServicer):
    """StreamScans with nothing behind it: each request is answered at once with its sequence."""

    async def StreamScans(self, request_iterator, context):  # type: ignore[no-untyped-def]
        yield agents_pb2.StreamScansResponse(max_in_flight=MAX_IN_FLIGHT, challenge=secrets.token_bytes(32))
        async for request in request_iterator:
            if request.HasField("hello"):
                continue  # taken on trust: the bare server checks nothing
            yield agents_pb2.StreamScansResponse(
                answer=agents_pb2.ScanAnswer(
                    sequence=request.scan.sequence, outcome=agents_pb2.SCAN_OUTCOME_ACCEPTED, message="ok"
                )
            )


def serve_bare(port: int, ready: Any) -> None:
    """Entry point of the no-op server process; on uvloop when installed, as `clearpoint platform serve` runs."""
    from clearpoint.platform.api.server import SERVER_OPTIONS

    async def main() -> None:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        agents_pb2_grpc.add_AgentServiceServicer_to_server(_NoOpAgents(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination(SERVER_LIFETIME)
        await server.stop(0)

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


async def bare_stream(target: str, requests: list[agents_pb2.StreamScansRequest], window: int) -> StreamRun:
    """A bare client: one StreamScans call, at most `window` requests unanswered, same channel options as the
    uplink, requests built beforehand; no journal. Timed from opening the channel to the last answer."""
    run = StreamRun(len(requests))
    outcomes: Counter[str] = Counter()
    started = time.perf_counter()

    async def go() -> None:
        async with grpc.aio.insecure_channel(target, options=channel_options(20.0)) as channel:
            call = agents_pb2_grpc.AgentServiceStub(channel).StreamScans()
            room = asyncio.Event()
            in_flight = 0

            async def send() -> None:
                nonlocal in_flight
                for request in requests:
                    while in_flight >= window:
                        room.clear()
                        await room.wait()
                    in_flight += 1
                    await call.write(request)

            sender = asyncio.create_task(send())
            try:
                while run.answered < len(requests):
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        break
                    if response.HasField("answer"):
                        run.answered += 1
                        outcomes[agents_pb2.ScanOutcome.Name(response.answer.outcome)] += 1
                        in_flight -= 1
                        room.set()
            finally:
                sender.cancel()
                call.cancel()

    try:
        await asyncio.wait_for(go(), stream_limit(len(requests)))
    except TimeoutError:
        run.timed_out = True
    run.outcomes = dict(outcomes)
    run.accepted = outcomes["SCAN_OUTCOME_ACCEPTED"]
    return run.finish(time.perf_counter() - started)


async def uplink_stream(
    target: str,
    agent_id: str,
    key: Ed25519PrivateKey,
    journal: Journal,
    window: int,
    per_message: int = UplinkSettings.scans_per_message,
) -> StreamRun:
    """The real Uplink draining the journal: timed from its start (it opens the channel) to a backlog of 0."""
    run = StreamRun(journal.backlog)
    outcomes: Counter[str] = Counter()
    drained = asyncio.Event()

    async def on_answer(scan: JournaledScan | None, answer: Answer, first: bool) -> None:
        outcomes[answer.outcome] += 1
        if journal.backlog == 0:
            drained.set()

    settings = UplinkSettings(target=target, window=window, scans_per_message=per_message)
    uplink = Uplink(settings, agent_id, journal, on_answer, key)
    started = time.perf_counter()
    task = asyncio.create_task(uplink.run())
    try:
        await asyncio.wait_for(drained.wait(), stream_limit(run.scans))
    except TimeoutError:
        run.timed_out = True
    elapsed = time.perf_counter() - started
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    run.answered = run.scans - journal.backlog
    run.outcomes = dict(outcomes)
    run.accepted = outcomes["accepted"]
    run.sessions = uplink.sessions
    return run.finish(elapsed)


@dataclass
class Seeded:
    """What the seeding made: a partner's API key, unary codes, and enrolled agents with their codes."""

    api_key: str
    unary_codes: list[str]
    agents: list[tuple[str, Path, list[str]]]  # (agent id, data dir, codes its journal holds)


async def seed(target: str, operator_key: str, directory: Path, scans: int, agents: int) -> Seeded:
    """Through the real platform's gRPC API: an issuer key, a partner, a campaign with stock for every row, its
    vouchers, and 2 + `agents` store agents enrolled through the real AgentService (the first for the one-stream
    row, the second for the same sending one scan a message, the others streaming at once). Every row gets `scans`
    vouchers of its own."""
    tag = secrets.token_hex(4)
    options = [("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        as_operator = (("x-api-key", operator_key),)
        await issuer_keys_pb2_grpc.IssuerKeyServiceStub(channel).CreateIssuerKey(
            issuer_keys_pb2.CreateIssuerKeyRequest(request_id=f"bench-key-{tag}"), metadata=as_operator
        )
        partner = await partners_pb2_grpc.PartnerServiceStub(channel).CreatePartner(
            partners_pb2.CreatePartnerRequest(
                request_id=f"bench-partner-{tag}", name=f"bench-partner-{tag}", role=partners_pb2.ROLE_PARTNER
            ),
            metadata=as_operator,
        )
        as_partner = (("x-api-key", partner.api_key),)
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)
        created = await campaigns.CreateCampaign(
            campaign_request(f"bench-campaign-{tag}", f"bench {tag}", 4 * scans, started_seconds_ago=3600),
            metadata=as_partner,
        )
        codes: list[str] = []
        while len(codes) < 4 * scans:
            issued = await campaigns.IssueVouchers(
                campaigns_pb2.IssueVouchersRequest(
                    request_id=f"bench-issue-{tag}-{len(codes)}",
                    campaign_id=created.campaign.campaign_id,
                    count=min(10_000, 4 * scans - len(codes)),
                ),
                metadata=as_partner,
                timeout=300,
            )
            codes.extend(v.code for v in issued.vouchers)
        enrolled = []
        shares = [codes[scans : 2 * scans], codes[2 * scans : 3 * scans]]
        shares += [codes[3 * scans :][i::agents] for i in range(agents)]
        for i, share in enumerate(shares):
            token = await agents_pb2_grpc.AgentServiceStub(channel).CreateEnrolmentToken(
                agents_pb2.CreateEnrolmentTokenRequest(
                    request_id=f"bench-token-{tag}-{i}", partner_id=partner.partner.partner_id, store_id=STORE_ID
                ),
                metadata=as_operator,
            )
            data_dir = directory / f"agent-{i}"
            identity = await enrol(UplinkSettings(target=target), data_dir, token.token, f"bench-till-{i}")
            enrolled.append((identity.agent_id, data_dir, share))
    return Seeded(partner.api_key, codes[:scans], enrolled)


async def fill_journal(path: Path, agent_id: str, key: Ed25519PrivateKey, codes: list[str]) -> None:
    """Each code journaled as the agent journals a scan (numbered, signed, committed), then the file closed."""
    journal = await Journal.open(path, agent_id, key, max_backlog=len(codes) + 1)
    try:
        for code in codes:
            at_us, at_perf_ns = now_stamps()
            await journal.append(Read(SCANNER_ID, code.encode(), AIM_PREFIX.decode(), at_us, at_perf_ns))
    finally:
        await journal.close()  # the last connection checkpoints the WAL: the file alone is the whole journal


def measured(pid: int | None, work: Callable[[], StreamRun]) -> StreamRun:
    """Run `work`, adding the CPU it cost this process (client) and the server process, per scan."""
    client_before, server_before = time.process_time(), cpu_seconds(pid)
    result = work()
    client_after, server_after = time.process_time(), cpu_seconds(pid)
    if result.answered:
        if result.client_cpu_ms_per_scan is None:  # not already counted by the client processes themselves
            result.client_cpu_ms_per_scan = round(1000 * (client_after - client_before) / result.answered, 3)
        if server_before is not None and server_after is not None:
            result.server_cpu_ms_per_scan = round(1000 * (server_after - server_before) / result.answered, 3)
    return result


async def unary_redeems(target: str, api_key: str, codes: list[str], concurrency: int) -> StreamRun:
    """Unary Redeem calls, `concurrency` in flight on one channel (the stream's window), one per code, each code
    once: the platform's unary redemption rate. Timed from opening the channel to the last answer."""
    run = StreamRun(len(codes))
    outcomes: Counter[str] = Counter()
    metadata = (("x-api-key", api_key),)
    tag = secrets.token_hex(4)
    started = time.perf_counter()

    async def go() -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = redemption_pb2_grpc.RedemptionServiceStub(channel)
            pending = iter(enumerate(codes))

            async def worker() -> None:
                for i, code in pending:
                    request = redemption_pb2.RedeemRequest(request_id=f"bench-{tag}-{i}", code=code, store_id=STORE_ID)
                    try:
                        await stub.Redeem(request, metadata=metadata, timeout=60)
                        outcomes["OK"] += 1
                    except grpc.aio.AioRpcError as exc:
                        outcomes[exc.code().name] += 1
                    run.answered += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    try:
        await asyncio.wait_for(go(), stream_limit(len(codes)))
    except TimeoutError:
        run.timed_out = True
    run.outcomes = dict(outcomes)
    run.accepted = outcomes["OK"]
    return run.finish(time.perf_counter() - started)


def uplink_run(
    target: str,
    agent_id: str,
    path: Path,
    key: Ed25519PrivateKey,
    window: int,
    per_message: int = UplinkSettings.scans_per_message,
) -> StreamRun:
    """The real Uplink draining the journal at `path`, on a loop of its own."""

    async def go() -> StreamRun:
        journal = await Journal.open(path, agent_id, key)
        try:
            return await uplink_stream(target, agent_id, key, journal, window, per_message)
        finally:
            await journal.close()

    return asyncio.run(go())


def agent_process(target: str, agent_id: str, data_dir: str, window: int, ready: Any, go: Any) -> dict[str, Any]:
    """Entry point of one of several agents streaming at once: its own process, as each store has its own PC."""
    key = load_key(Path(data_dir))
    ready.set()
    go.wait(60)
    cpu_before, wall_start = time.process_time(), time.time()
    run = uplink_run(target, agent_id, Path(data_dir) / "journal.sqlite3", key, window)
    return {"run": asdict(run), "cpu": time.process_time() - cpu_before, "start": wall_start, "end": time.time()}


def several_agents(target: str, agents: list[tuple[str, Path, list[str]]], window: int) -> StreamRun:
    """Every agent's Uplink in a process of its own, all released at once; timed from the release to the last
    agent's backlog reaching 0. Client CPU is the agents' own, summed."""
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    try:
        go = manager.Event()
        readies = [manager.Event() for _ in agents]
        with ProcessPoolExecutor(max_workers=len(agents), mp_context=context) as pool:
            futures = [
                pool.submit(agent_process, target, agent_id, str(data_dir), window, ready, go)
                for (agent_id, data_dir, _), ready in zip(agents, readies, strict=True)
            ]
            for ready in readies:
                if not ready.wait(60):
                    raise RuntimeError("an agent process did not start")
            released = time.time()
            go.set()
            results = [f.result(timeout=stream_limit(sum(len(c) for *_, c in agents)) + 60) for f in futures]
    finally:
        manager.shutdown()
    run = StreamRun(sum(r["run"]["scans"] for r in results))
    outcomes: Counter[str] = Counter()
    for r in results:
        run.answered += r["run"]["answered"]
        run.accepted += r["run"]["accepted"]
        run.timed_out |= r["run"]["timed_out"]
        outcomes.update(r["run"]["outcomes"])
    run.outcomes = dict(outcomes)
    run.sessions = sum(r["run"]["sessions"] for r in results)
    if run.answered:
        run.client_cpu_ms_per_scan = round(1000 * sum(r["cpu"] for r in results) / run.answered, 3)
    return run.finish(max(r["end"] for r in results) - released)


def start_platform(database: str, master_key_file: Path, target: str, cleanup: list[Callable[[], object]]) -> Any:
    """`clearpoint platform serve` in its own process, stopped by itself after SERVER_LIFETIME; returns it."""
    env = {**os.environ, "CLEARPOINT_LOG_LEVEL": "warning"}
    env.pop(MASTER_KEY_ENV, None)  # the key file given here, not one from the environment
    common = ["--database", database, "--master-key-file", str(master_key_file), "--log-level", "warning"]
    command = [clearpoint_command(), "platform", "serve", "--listen", target, "--workers", "1", *common]
    capped = shutil.which("timeout")  # coreutils: the server dies with its lifetime even if we are killed
    if capped:
        command = [capped, "--signal=TERM", str(int(SERVER_LIFETIME)), *command]
    log_file = tempfile.TemporaryFile()
    cleanup.append(log_file.close)
    platform = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    platform.log_file = log_file  # type: ignore[attr-defined]
    cleanup.append(lambda: stop_process(platform))
    return platform


def create_operator(database: str, master_key_file: Path) -> str:
    """The first operator's API key, made as an operator would: `clearpoint platform create-operator`."""
    env = {k: v for k, v in os.environ.items() if k != MASTER_KEY_ENV}
    done = subprocess.run(
        [
            clearpoint_command(),
            "platform",
            "create-operator",
            "--name",
            f"bench-operator-{secrets.token_hex(4)}",
            "--database",
            database,
            "--master-key-file",
            str(master_key_file),
            "--log-level",
            "warning",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"clearpoint platform create-operator failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def stream_throughput(directory: Path, scans: int, window: int, agents: int, database: str | None) -> dict[str, Any]:
    directory.mkdir()
    database = database or f"sqlite:///{directory / 'platform.sqlite3'}"
    backend = database.split(":", 1)[0]
    master_key_file = directory / "master.key"
    cleanup: list[Callable[[], object]] = []
    results: dict[str, Any] = {"scans": scans, "window": window, "agents": agents, "database": backend}
    try:
        say(f"stream: migrating the platform's database ({backend}) and creating an operator")
        operator_key = create_operator(database, master_key_file)
        target = f"127.0.0.1:{free_port()}"
        platform = start_platform(database, master_key_file, target, cleanup)
        asyncio.run(wait_serving(target, lambda: platform.poll() is None))
        say(f"stream: seeding over gRPC: a campaign, {4 * scans} vouchers, {2 + agents} enrolled agents")
        seeded = asyncio.run(seed(target, operator_key, directory, scans, agents))
        say(f"stream: journaling {2 * scans} scans of distinct voucher codes")
        for agent_id, data_dir, codes in seeded.agents:
            asyncio.run(fill_journal(data_dir / "journal.sqlite3", agent_id, load_key(data_dir), codes))
        one_id, one_dir, _ = seeded.agents[0]
        one_key = load_key(one_dir)
        real_journal, bare_journal = one_dir / "journal.sqlite3", directory / "journal-bare.sqlite3"
        shutil.copyfile(real_journal, bare_journal)  # the very same signed scans for the no-op server

        async def requests_of(path: Path) -> list[agents_pb2.StreamScansRequest]:
            journal = await Journal.open(path, one_id, one_key)
            try:
                return [to_request(one_id, s) for s in await journal.unanswered(0, scans)]
            finally:
                await journal.close()

        requests = asyncio.run(requests_of(bare_journal))

        # The no-op server: its own process (spawned: never fork a process that has used grpc).
        context = multiprocessing.get_context("spawn")
        ready, port = context.Event(), free_port()
        bare = context.Process(target=serve_bare, args=(port, ready), daemon=True)
        bare.start()
        cleanup.append(lambda: (bare.terminate(), bare.join(10)))
        if not ready.wait(30):
            raise RuntimeError("the no-op grpc server did not start")
        bare_target = f"127.0.0.1:{port}"
        asyncio.run(wait_serving(bare_target, bare.is_alive))
        say(f"stream: bare client -> no-op grpc.aio server, {scans} scans, window {window}")
        results["bare"] = measured(bare.pid, lambda: asyncio.run(bare_stream(bare_target, requests, window)))
        say(f"stream: bare: {results['bare'].rate:.0f} scans/s")
        say("stream: agent Uplink + journal -> no-op grpc.aio server")
        results["uplink_bare"] = measured(
            bare.pid, lambda: uplink_run(bare_target, one_id, bare_journal, one_key, window)
        )
        say(f"stream: uplink -> no-op: {results['uplink_bare'].rate:.0f} scans/s")
        bare.terminate()
        bare.join(10)

        try:
            say(f"stream: unary Redeem -> clearpoint platform, {scans} calls, {window} in flight")
            results["unary"] = measured(
                platform.pid, lambda: asyncio.run(unary_redeems(target, seeded.api_key, seeded.unary_codes, window))
            )
            say(f"stream: unary: {results['unary'].rate:.0f} redemptions/s")
            say(f"stream: agent Uplink + journal -> clearpoint platform, {scans} scans, window {window}")
            results["real"] = measured(platform.pid, lambda: uplink_run(target, one_id, real_journal, one_key, window))
            say(f"stream: real: {results['real'].rate:.0f} scans/s")
            say(f"stream: the same, one scan a message, {scans} scans, window {window}")
            single_id, single_dir, _ = seeded.agents[1]
            results["real_single"] = measured(
                platform.pid,
                lambda: uplink_run(
                    target, single_id, single_dir / "journal.sqlite3", load_key(single_dir), window, per_message=1
                ),
            )
            say(f"stream: one a message: {results['real_single'].rate:.0f} scans/s")
            say(f"stream: {agents} agents at once -> clearpoint platform, {scans} scans in all, window {window} each")
            results["several"] = measured(platform.pid, lambda: several_agents(target, seeded.agents[2:], window))
            say(f"stream: {agents} agents: {results['several'].rate:.0f} scans/s")
        finally:
            stop_process(platform)
            platform.log_file.seek(0)
            tail = platform.log_file.read()[-3000:].decode(errors="replace").strip()
        checks = {
            "unary": results["unary"].accepted == scans,
            "real": results["real"].accepted == scans,
            "real_single": results["real_single"].accepted == scans,
            "several": results["several"].accepted == scans,
        }
        failed = [name for name, good in checks.items() if not good or results[name].timed_out]
        if failed:
            say(
                f"not every call or scan was accepted in {', '.join(failed)}; platform log (tail):\n{tail or '(empty)'}"
            )
        results["ok"] = not failed
    finally:
        for step in reversed(cleanup):
            try:
                step()
            except Exception as exc:
                say(f"cleanup: {exc!r}")
    kinds = ("bare", "uplink_bare", "unary", "real", "real_single", "several")
    rate = {k: results[k].rate for k in kinds if k in results}
    cpu = {k: results[k].server_cpu_ms_per_scan for k in kinds[2:] if k in results}
    results["ratios"] = {
        "real/bare": ratio(rate.get("real", 0), rate.get("bare", 0)),
        "several/bare": ratio(rate.get("several", 0), rate.get("bare", 0)),
        "real/unary": ratio(rate.get("real", 0), rate.get("unary", 0)),
        "several/unary": ratio(rate.get("several", 0), rate.get("unary", 0)),
        "uplink_bare/bare": ratio(rate.get("uplink_bare", 0), rate.get("bare", 0)),
        "real/uplink_bare": ratio(rate.get("real", 0), rate.get("uplink_bare", 0)),
        "real_single/bare": ratio(rate.get("real_single", 0), rate.get("bare", 0)),
        "real/real_single": ratio(rate.get("real", 0), rate.get("real_single", 0)),
        "server_cpu real/unary": ratio(cpu.get("real") or 0, cpu.get("unary") or 0),
        "server_cpu several/unary": ratio(cpu.get("several") or 0, cpu.get("unary") or 0),
        "server_cpu real_single/unary": ratio(cpu.get("real_single") or 0, cpu.get("unary") or 0),
    }
    return results


# -- the run ---------------------------------------------------------------------------------------------------


def report(cost: dict[str, Any], stream: dict[str, Any], settings: dict[str, Any], as_json: bool, wall: float) -> str:
    if as_json:
        import json

        out = {
            "settings": settings,
            "cpus": os.cpu_count(),
            "load_average": settings.pop("load_average"),
            "agent_cost_us": cost,
            "stream": {k: asdict(v) if isinstance(v, StreamRun) else v for k, v in stream.items()},
            "wall_seconds": round(wall, 1),
        }
        return json.dumps(out, indent=2)

    def row(label: str, st: dict[str, float]) -> str:
        return f"{label:46}{st['p50']:9.1f}{st['p90']:9.1f}{st['p99']:9.1f}{st['max']:10.1f}"

    lines = [
        f"{os.cpu_count()} CPUs, load average {settings['load_average']:.1f} at start, {wall:.0f} s in all",
        "",
        f"agent cost per scan: {cost['scans']} scans of {cost['frame_bytes']} bytes (]Q1 + {cost['code_chars']}-char "
        f"voucher code + CR), each sent at {cost['baud_sent']} baud ({cost['frame_wire_us_at_baud_sent'] / 1000:.1f} "
        f"ms) through a pty once the last was done with; journal and baselines on {cost['filesystem']}",
        f"{'microseconds':46}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>10}",
        row("read stamp -> signed and committed", cost["total"]),
        row("  (a) framing: stamp -> driver yields Read", cost["framing"]),
        row("  (b) Journal.append, called to returned", cost["append"]),
        row("      hop to the journal thread and back", cost["thread_hop"]),
        row("      sign (Ed25519, same inputs, timed apart)", cost["sign"]),
        row("      (c) SQL transaction and commit", cost["sql_commit"]),
        row("bare SQLite INSERT+COMMIT (WAL, FULL)", cost["bare_sqlite"]),
        row("  the same, back to back (no idle gaps)", cost["bare_sqlite_back_to_back"]),
        row("fsync floor (4 KiB write + fsync)", cost["fsync_floor"]),
        "",
        f"wire time of the same scan at {WIRE_BAUD} 8N1: {cost['wire_us_at_9600'] / 1000:.1f} ms; "
        f"agent p99 / wire time = {cost['ratios']['total_p99/wire_9600']}",
        f"Journal.append / bare SQLite: p50 {cost['ratios']['append_p50/bare_sqlite_p50']}, "
        f"p99 {cost['ratios']['append_p99/bare_sqlite_p99']}",
        "",
        f"scans per second into the platform: {stream['scans']} scans a row, window {stream['window']}, "
        f"platform on {stream['database']} in its own process",
        f"{'':46}{'scans/s':>9}{'elapsed s':>10}{'answered':>9}{'accepted':>9}{'client CPU':>11}{'server CPU':>11}",
    ]
    labels = (
        ("bare client -> no-op grpc.aio bidi", "bare"),
        ("agent Uplink + journal -> no-op server", "uplink_bare"),
        ("unary Redeem calls -> clearpoint platform", "unary"),
        ("agent Uplink + journal -> clearpoint platform", "real"),
        ("  the same, one scan a message", "real_single"),
        (f"{stream['agents']} agents at once -> clearpoint platform", "several"),
    )
    for label, key in labels:
        if key not in stream:
            continue
        r: StreamRun = stream[key]
        note = (
            " (TIMED OUT)"
            if r.timed_out
            else (f" ({r.sessions} sessions)" if r.sessions not in (1, stream["agents"]) else "")
        )
        lines.append(
            f"{label:46}{r.rate:9.0f}{r.elapsed_s:10.2f}{r.answered:9d}{r.accepted:9d}"
            f"{r.client_cpu_ms_per_scan if r.client_cpu_ms_per_scan is not None else '-':>11}"
            f"{r.server_cpu_ms_per_scan if r.server_cpu_ms_per_scan is not None else '-':>11}{note}"
        )
    lines.append(
        "(CPU columns: milliseconds of CPU per answered scan or call, in the client process(es) and the server)"
    )
    lines.append("")
    for name, value in stream["ratios"].items():
        lines.append(
            f"{'ratio ' + name.replace('/', ' / ').replace('_', ' '):46}{value if value is not None else '-':>9}"
        )
    if not stream.get("ok"):
        lines.append("CHECK FAILED: not every call or scan was accepted by the platform (see the log above)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The scanner agent's pipeline: the agent's cost per scan (pty -> serial driver -> signed, "
        "durable journal) beside bare SQLite and the scan's wire time; and scans per second through one "
        "StreamScans stream (real Uplink -> real platform) beside a bare grpc.aio bidi stream, in one run.",
        epilog="examples:\n  python bench/agent_pipeline.py --quick        # smoke run, under 30 s\n"
        "  python bench/agent_pipeline.py -o json > agent.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scans", type=int, help="scans in each part (default 2000; 300 with --quick)")
    parser.add_argument(
        "--window",
        type=int,
        default=32,
        help="unanswered scans on the wire per stream (default 32, the agent's); also the unary calls in flight",
    )
    parser.add_argument(
        "--agents",
        type=int,
        default=4,
        help="agents streaming at once in the last row, each its own process (default 4)",
    )
    parser.add_argument(
        "--baud",
        type=int,
        default=230_400,
        help="rate at which the virtual scanner paces each frame into the pty in part 1 (default 230400: 7.9 ms a "
        "frame); the cost counted starts when the last byte arrives, so this sets the idle gap between scans "
        "and the run's length, not what is counted",
    )
    parser.add_argument(
        "--database",
        help="the platform's database: sqlite:///FILE or postgresql://USER@HOST:PORT/DB (a scratch database: a "
        "partner, campaign, vouchers and agent are added to it); default a SQLite file in the temp dir",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run, well under 30 s")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table", help="table (default) or json")
    args = parser.parse_args(argv)
    args.scans = args.scans if args.scans is not None else (300 if args.quick else 2000)
    if args.scans <= 0 or args.window <= 0 or args.baud <= 0 or args.agents <= 0:
        parser.error("--scans, --window, --baud and --agents must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain `kill` should still stop the servers and remove the temp dir (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    settings = {k: v for k, v in vars(args).items() if k != "output"}
    if settings["database"]:
        settings["database"] = settings["database"].split(":", 1)[0]  # never echo credentials
    settings["load_average"] = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="clearpoint-agent-bench-") as tmp:
        (Path(tmp) / "cost").mkdir()
        cost = asyncio.run(agent_cost(Path(tmp) / "cost", args.scans, args.baud))
        say(f"agent cost: p50 {cost['total']['p50']:.0f} µs, p99 {cost['total']['p99']:.0f} µs")
        stream = stream_throughput(Path(tmp) / "stream", args.scans, args.window, args.agents, args.database)
    print(report(cost, stream, settings, args.output == "json", time.monotonic() - started))
    return 0 if stream.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
