"""The agent's parts on their own: device key file, configuration, journal and backlog bound,
backoff, the claims export, and the in-flight window against a platform that does not answer."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from clearpoint.formats.scan_signatures import stream_proof_message
from clearpoint.scanner_agent import identity as ident
from clearpoint.scanner_agent.agent import Agent
from clearpoint.scanner_agent.backoff import Backoff
from clearpoint.scanner_agent.config import ConfigError, load
from clearpoint.scanner_agent.console import Console
from clearpoint.scanner_agent.journal import Answer, BacklogFull, Journal, JournalError, read_claims
from clearpoint.scanner_agent.outcomes import PENDING, Outcome
from clearpoint.scanner_agent.reads import Read, ScannerHealth
from clearpoint.scanner_agent.uplink import Uplink, UplinkSettings
from clearpoint.v1 import agents_pb2, agents_pb2_grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

AGENT = "agt_0011223344556677"


def _read(n: int, scanner: str = "till-1") -> Read:
    return Read(scanner, f"CP1:CODE{n:05d}".encode(), "]Q1", 1_795_440_000_000_000 + n, 0)


# -- device key ------------------------------------------------------------------------------------


def test_device_key_is_private_to_its_owner(tmp_path: Path) -> None:
    key = ident.create_key(tmp_path)
    path = ident.key_path(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ident.public_bytes(ident.load_key(tmp_path)) == ident.public_bytes(key)
    with pytest.raises(ident.IdentityError, match="exists already"):
        ident.create_key(tmp_path)
    os.chmod(path, 0o644)
    with pytest.raises(ident.IdentityError, match="chmod 600"):
        ident.load_key(tmp_path)
    os.chmod(path, 0o600)
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ident.IdentityError, match="not a PEM private key"):
        ident.load_key(tmp_path)
    with pytest.raises(ident.IdentityError, match="not enrolled"):
        ident.load_identity(tmp_path)
    (tmp_path / ident.IDENTITY_FILE).write_text("{not json")
    with pytest.raises(ident.IdentityError, match="damaged"):
        ident.load_identity(tmp_path)


# -- configuration ---------------------------------------------------------------------------------

GOOD = """
[agent]
platform = "127.0.0.1:50051"
data_dir = "data"
max_backlog = 500

[[scanner]]
id = "till-1"
type = "serial"
path = "by-id/usb-Scanner-if00"
baud = 115200
parity = "even"
data_bits = 7
framing = "stx_etx"
check_lrc = true
good_read = [7]
bad_read = "\\u0007\\u0007"

[[scanner]]
id = "till-2"
type = "keyboard"
path = "/dev/input/by-id/usb-Honeywell-event-kbd"
layout = "de"
terminator = ["enter", "tab"]

[[scanner]]
id = "till-3"
type = "hidraw"
path = "/dev/hidraw0"
layout = "fr"
"""


def test_a_full_configuration_loads(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(GOOD)
    config = load(path)
    assert config.platform == "127.0.0.1:50051" and config.max_backlog == 500
    assert config.data_dir == tmp_path / "data"
    assert [s.scanner_id for s in config.scanners] == ["till-1", "till-2", "till-3"]
    assert config.scanners[0].options["path"] == str(tmp_path / "by-id/usb-Scanner-if00")
    drivers = config.drivers()
    serial = drivers[0].settings  # type: ignore[attr-defined]
    assert (serial.baud, serial.parity, serial.data_bits, serial.check_lrc) == (115200, "even", 7, True)
    assert serial.good_read == b"\x07" and serial.bad_read == b"\x07\x07"
    assert [d.scanner_id for d in drivers] == ["till-1", "till-2", "till-3"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("baud = 115200", "baud = -5"), "baud must be positive"),
        (("baud = 115200", 'baud = "fast"'), "baud must be int"),
        (('parity = "even"', 'parity = "sometimes"'), "parity must be one of"),
        (('layout = "de"', 'layout = "klingon"'), "unknown keyboard layout"),
        (('terminator = ["enter", "tab"]', 'terminator = "space"'), "terminators must be"),
        (("max_backlog = 500", "max_backlog = 0"), "max_backlog must be at least 1"),
        (("max_backlog = 500", "max_baklog = 500"), "unknown option 'max_baklog'"),
        (('type = "hidraw"', 'type = "bluetooth"'), "type must be one of"),
        (('id = "till-3"', 'id = "till-1"'), "used twice"),
        (('id = "till-3"', 'id = "till 3!"'), "id must be 1 to 64"),
        (('platform = "127.0.0.1:50051"', ""), "`platform`"),
        (("good_read = [7]", "good_read = [700]"), "good_read must be"),
        (("[agent]", "[agnet]"), "unknown table"),
        (('framing = "stx_etx"', 'framing = "smoke"'), "smoke"),
    ],
)
def test_configuration_errors_name_the_problem(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load(path)


def test_configuration_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[agent\nplatform = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)


# -- journal ---------------------------------------------------------------------------------------


async def test_journal_numbers_signs_and_keeps_scans_across_restarts(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "journal.sqlite3"
    journal = await Journal.open(path, AGENT, key)
    first = [await journal.append(_read(i)) for i in range(3)]
    assert [s.sequence for s in first] == [1, 2, 3] and journal.backlog == 3
    assert await journal.record_answer(Answer(2, Outcome.ACCEPTED, "", "prize: cola", prize="cola"))
    assert not await journal.record_answer(Answer(2, Outcome.ACCEPTED, "", "again"))  # a replayed answer
    # Answers commit without an fsync (replayable); the connection is back to FULL for the next scan,
    # also after an answer that failed to store.
    with pytest.raises(sqlite3.Error):
        await journal.record_answer(Answer(3, Outcome.ACCEPTED, "", "x", prize=object()))  # type: ignore[arg-type]
    assert await _synchronous(journal) == 2  # FULL
    await journal.close()
    journal = await Journal.open(path, AGENT, key)  # a restart
    assert journal.backlog == 2
    assert [s.sequence for s in await journal.unanswered(0, 10)] == [1, 3]
    assert (await journal.append(_read(9))).sequence == 4
    await journal.close()
    claims = read_claims(path)
    assert [(c.sequence, c.outcome) for c in claims] == [
        (1, "pending"),
        (2, "accepted"),
        (3, "pending"),
        (4, "pending"),
    ]
    # Retention forgets old answered scans only, and never reuses their numbers.
    journal = await Journal.open(path, AGENT, key)
    assert await journal.prune(answered_before_us=2**62) == 1
    assert (await journal.append(_read(10))).sequence == 5
    await journal.close()
    assert [c.sequence for c in read_claims(path)] == [1, 3, 4, 5]
    # The claim book filtered as `clearpoint agent claims` filters it: by outcome, pending, or since when.
    journal = await Journal.open(path, AGENT, key)
    await journal.record_answer(Answer(3, Outcome.REFUSED, "VOUCHER_ALREADY_REDEEMED", "used"))
    await journal.close()
    assert [c.sequence for c in read_claims(path, outcome=PENDING)] == [1, 4, 5]
    assert [c.sequence for c in read_claims(path, outcome=Outcome.REFUSED)] == [3]
    assert read_claims(path, outcome=Outcome.ACCEPTED) == []
    assert [c.sequence for c in read_claims(path, since_us=_read(9).at_us)] == [4, 5]
    assert [c.sequence for c in read_claims(path, since_us=_read(1).at_us)] == [3, 4, 5]
    with pytest.raises(JournalError, match=r"no journal at .*has this agent run yet"):
        read_claims(tmp_path / "none.sqlite3")
    with pytest.raises(JournalError, match="journal of agent"):
        await Journal.open(path, "agt_ffffffffffffffff", key)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="cannot be used"):
        await Journal.open(garbage, AGENT, key)
    with pytest.raises(JournalError, match="cannot be read as a journal"):
        read_claims(garbage)


async def test_journal_appends_at_once_are_numbered_one_by_one(tmp_path: Path) -> None:
    """Scans from several scanners arrive together: each is numbered, signed and committed alone, on
    the journal's one thread (one SQLite connection has one transaction at a time), with nothing lost."""
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "journal.sqlite3"
    journal = await Journal.open(path, AGENT, key)
    before = time.time_ns() // 1000
    made = await asyncio.gather(*(journal.append(_read(i, f"till-{i % 3}")) for i in range(40)))
    after = time.time_ns() // 1000
    assert sorted(s.sequence for s in made) == list(range(1, 41)) and journal.backlog == 40
    # What append returns is what was committed, field for field.
    assert await journal.unanswered(0, 100) == sorted(made, key=lambda s: s.sequence)
    await journal.record_answer(Answer(1, Outcome.ACCEPTED, "", "ok"))
    answered = time.time_ns() // 1000
    await journal.close()
    with sqlite3.connect(path) as db:
        stamps = [row[0] for row in db.execute("SELECT journaled_us FROM scans ORDER BY sequence")]
    assert all(type(t) is int and before <= t <= after for t in stamps)  # whole microseconds, now
    (first,) = [c for c in read_claims(path) if c.sequence == 1]
    assert type(first.answered_us) is int and after <= first.answered_us <= answered


async def test_a_scan_that_fails_to_commit_leaves_the_journal_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure inside the commit (the disk, say) rolls the scan back, raises that failure, and
    the next scan gets the number the failed one did not use."""
    from clearpoint.scanner_agent import journal as journal_module

    key = Ed25519PrivateKey.generate()
    journal = await Journal.open(tmp_path / "journal.sqlite3", AGENT, key)
    assert (await journal.append(_read(1))).sequence == 1

    def broken() -> int:
        raise OSError("disk went away")

    monkeypatch.setattr(journal_module.time, "time_ns", broken)
    with pytest.raises(OSError, match="disk went away"):
        await journal.append(_read(2))
    monkeypatch.undo()
    assert (await journal.append(_read(3))).sequence == 2 and journal.backlog == 2
    await journal.close()


async def test_journal_says_how_old_its_oldest_unanswered_scan_is(tmp_path: Path) -> None:
    """What the backlog's age (on the console and in heartbeats) is measured from."""
    journal = await Journal.open(tmp_path / "journal.sqlite3", AGENT, Ed25519PrivateKey.generate())
    assert await journal.oldest_unanswered_us() is None
    for i in (5, 3, 9):
        await journal.append(_read(i))
    assert await journal.oldest_unanswered_us() == _read(3).at_us
    await journal.record_answer(Answer(2, Outcome.ACCEPTED, "", "ok"))  # the scan read at 3
    assert await journal.oldest_unanswered_us() == _read(5).at_us
    await journal.record_answers([Answer(1, Outcome.ACCEPTED, "", "ok"), Answer(3, Outcome.ACCEPTED, "", "ok")])
    assert await journal.oldest_unanswered_us() is None
    await journal.close()


async def _synchronous(journal: Journal) -> int:
    """The journal connection's PRAGMA synchronous (2 is FULL), read on its own thread."""
    return int(await journal._call(lambda: journal._db.execute("PRAGMA synchronous").fetchone()[0]))  # type: ignore[union-attr]


class _Recorder:
    scanner_id = "till-1"

    def __init__(self) -> None:
        self.signals: list[bool] = []
        self.health = ScannerHealth("serial", "/dev/null")

    async def signal(self, good: bool) -> None:
        self.signals.append(good)

    async def recorded(self, read: Read, journaled: bool) -> None:
        pass

    async def close(self) -> None:
        pass

    async def reads(self):  # type: ignore[no-untyped-def]
        await asyncio.Event().wait()
        yield


async def test_a_full_backlog_is_an_alarm_not_a_silent_drop(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    key = Ed25519PrivateKey.generate()
    journal = await Journal.open(tmp_path / "j.sqlite3", AGENT, key, max_backlog=5)
    out = io.StringIO()
    driver = _Recorder()
    identity = ident.Identity(AGENT, "ptn_000000000000", "store-1", "till", "127.0.0.1:1")
    agent = Agent(
        identity, key, journal, [driver], UplinkSettings("127.0.0.1:1"), Console(out), backlog_warn_fraction=0.8
    )
    results = [await agent.take(_read(i)) for i in range(7)]
    await journal.close()
    assert [r is not None for r in results] == [True] * 5 + [False] * 2
    assert "backlog alarm: 4 of at most 5" in caplog.text
    assert caplog.text.count("ALARM: scan from till-1 NOT RECORDED") == 2
    assert out.getvalue().count("NOT RECORDED") == 2 and "offline backlog full (5 scans)" in out.getvalue()
    assert driver.signals == [False, False]  # the bad-read beep for each refused scan
    with pytest.raises(BacklogFull):
        journal2 = await Journal.open(tmp_path / "j.sqlite3", AGENT, Ed25519PrivateKey.generate(), max_backlog=5)
        try:
            await journal2.append(_read(99))
        finally:
            await journal2.close()


async def test_a_part_of_the_agent_that_stops_is_said_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uplink that died while the agent ran left scans waiting with nothing said; now it is critical."""
    key = Ed25519PrivateKey.generate()
    journal = await Journal.open(tmp_path / "j.sqlite3", AGENT, key)
    identity = ident.Identity(AGENT, "ptn_000000000000", "store-1", "till", "127.0.0.1:1")
    agent = Agent(identity, key, journal, [_Recorder()], UplinkSettings("127.0.0.1:1"), Console(io.StringIO()))

    async def broken() -> None:
        raise RuntimeError("the uplink broke")

    monkeypatch.setattr(agent.uplink, "run", broken)
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    for _ in range(100):
        if "stopped unexpectedly" in caplog.text:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await running
    await journal.close()
    said = [r for r in caplog.records if "stopped unexpectedly" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.CRITICAL]
    assert "uplink" in said[0].getMessage() and "the uplink broke" in said[0].getMessage()


# -- backoff ---------------------------------------------------------------------------------------


def test_backoff_grows_is_capped_jittered_and_resets() -> None:
    b = Backoff(initial_s=0.5, max_s=8.0)
    delays = [b.next_delay() for _ in range(10)]
    steps = [min(8.0, 0.5 * 2**i) for i in range(10)]
    assert all(step / 2 <= d <= step for d, step in zip(delays, steps, strict=True))
    assert max(delays) <= 8.0 and len({round(d, 6) for d in delays}) == 10
    b.reset()
    assert b.next_delay() <= 0.5
    others = [Backoff(initial_s=4, max_s=4).next_delay() for _ in range(50)]
    assert max(others) - min(others) > 0.5  # agents coming back together spread out


# -- the window ------------------------------------------------------------------------------------


class _SilentPlatform(agents_pb2_grpc.AgentServiceServicer):
    """Reads scans and answers only when told to: shows how many the agent keeps on the wire, and
    how it packs them. `announce` is the max_scans_per_message it says it reads (0: one a message)."""

    def __init__(self, announce: int = 0) -> None:
        self.announce = announce
        self.received: list[int] = []
        self.requests: list[tuple[str, list[int]]] = []  # (field used, sequences carried)
        self.release = asyncio.Event()
        self.hellos: list[agents_pb2.StreamHello] = []
        self.challenge = b""

    async def StreamScans(self, request_iterator, context):  # type: ignore[no-untyped-def]
        self.challenge = os.urandom(32)
        yield agents_pb2.StreamScansResponse(
            max_in_flight=64, max_scans_per_message=self.announce, challenge=self.challenge
        )
        pending: list[int] = []
        batched = False

        async def read() -> None:
            nonlocal batched
            async for request in request_iterator:
                if request.HasField("hello"):
                    self.hellos.append(request.hello)
                    continue
                carried = [s.sequence for s in request.scans] if request.scans else [request.scan.sequence]
                batched = batched or bool(request.scans)
                self.requests.append(("scans" if request.scans else "scan", carried))
                self.received.extend(carried)
                pending.extend(carried)

        reader = asyncio.create_task(read())
        await self.release.wait()
        while pending or not reader.done():
            answers = [
                agents_pb2.ScanAnswer(sequence=seq, outcome=agents_pb2.SCAN_OUTCOME_NOT_A_VOUCHER) for seq in pending
            ]
            pending.clear()
            if batched and answers:
                yield agents_pb2.StreamScansResponse(answers=answers)
            for answer in [] if batched else answers:
                yield agents_pb2.StreamScansResponse(answer=answer)
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("announce", "per_message", "packed"),
    [(0, 8, 1), (32, 8, 4), (32, 1, 1), (2, 8, 2)],
    ids=["platform reads one a message", "batches of a quarter window", "agent set to one", "platform's limit"],
)
async def test_the_agent_keeps_at_most_its_window_on_the_wire(
    tmp_path: Path, announce: int, per_message: int, packed: int
) -> None:
    server = grpc.aio.server()
    platform = _SilentPlatform(announce)
    agents_pb2_grpc.add_AgentServiceServicer_to_server(platform, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    key = Ed25519PrivateKey.generate()
    journal = await Journal.open(tmp_path / "j.sqlite3", AGENT, key)
    for i in range(100):
        await journal.append(_read(i))
    answered: list[int] = []

    async def on_answer(scan, answer, first):  # type: ignore[no-untyped-def]
        answered.append(answer.sequence)

    settings = UplinkSettings(f"127.0.0.1:{port}", window=16, scans_per_message=per_message)
    uplink = Uplink(settings, AGENT, journal, on_answer, key)
    task = asyncio.create_task(uplink.run())
    try:
        await asyncio.sleep(1.0)
        # The stream opened with the agent's proof, before any scan: the challenge signed with its key.
        assert [h.agent_id for h in platform.hellos] == [AGENT]
        key.public_key().verify(platform.hellos[0].signature, stream_proof_message(platform.challenge, AGENT))
        assert platform.received == list(range(1, 17)), "more than the window on the wire, or out of order"
        platform.release.set()
        for _ in range(100):
            if len(answered) == 100:
                break
            await asyncio.sleep(0.05)
        assert sorted(answered) == list(range(1, 101)) and journal.backlog == 0
        assert platform.received == list(range(1, 101))
        fields = {field for field, _ in platform.requests}
        assert fields == ({"scans"} if packed > 1 else {"scan"}), "batches only to a platform that reads them"
        sizes = [len(carried) for _, carried in platform.requests]
        assert max(sizes) == packed, sizes  # a backlog goes as full batches, never over the limits
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await journal.close()
        await server.stop(0)


class _CallThatFailsBothWays:
    """A stream whose write fails just as its read side ends: what a platform killed mid-write gives.
    The read side's error is seen first and the sender's failure is told by a callback after it."""

    def __init__(self) -> None:
        self._announced = False
        self._write_failed = asyncio.Event()

    async def read(self) -> agents_pb2.StreamScansResponse:
        if not self._announced:
            self._announced = True
            return agents_pb2.StreamScansResponse(challenge=b"c" * 32, max_in_flight=8)
        await self._write_failed.wait()
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "gone")

    async def write(self, request: agents_pb2.StreamScansRequest) -> None:
        self._write_failed.set()
        raise RuntimeError("the connection was reset")

    def cancel(self) -> bool:
        return True


async def test_a_helper_failing_after_its_session_ended_does_not_stop_the_uplink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session's sender that fails as the stream breaks must not cancel the uplink once the session is
    over: it was backing off, and it stopped for good, so a platform restarted later never heard again."""
    calls: list[_CallThatFailsBothWays] = []
    third = asyncio.Event()

    class _Stub:
        def __init__(self, channel: object) -> None:
            pass

        def StreamScans(self) -> _CallThatFailsBothWays:
            calls.append(_CallThatFailsBothWays())
            if len(calls) == 3:
                third.set()
            return calls[-1]

    monkeypatch.setattr(agents_pb2_grpc, "AgentServiceStub", _Stub)
    key = Ed25519PrivateKey.generate()
    journal = await Journal.open(tmp_path / "j.sqlite3", AGENT, key)

    async def on_answer(scan, answer, first):  # type: ignore[no-untyped-def]
        pass

    settings = UplinkSettings("127.0.0.1:1", reconnect_initial_s=0.05, reconnect_max_s=0.05)
    uplink = Uplink(settings, AGENT, journal, on_answer, key)
    task = asyncio.create_task(uplink.run())
    try:
        await asyncio.wait([task, asyncio.ensure_future(third.wait())], timeout=10, return_when="FIRST_COMPLETED")
        assert not task.done(), "the uplink stopped after a session whose sender failed late"
        assert third.is_set()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await journal.close()


# -- the claims export -----------------------------------------------------------------------------


async def _three_claims(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "data" / "journal.sqlite3", AGENT, Ed25519PrivateKey.generate())
    await journal.append(Read("till-1", b"CP1:ABC", "]Q1", 1_795_440_000_000_000, 0))
    await journal.append(Read("till-1", b"0104012345678901\x1d10AB", "]C1", 1_795_440_001_000_000, 0))
    await journal.append(Read("till-2", b"4006381333931", "]E0", 1_795_440_002_000_000, 0))
    accepted = Answer(1, Outcome.ACCEPTED, "", "prize", "cmp_1", "Summer", "cola", "vch_1", "rdm_1", 0)
    await journal.record_answer(accepted)
    await journal.record_answer(Answer(3, Outcome.NOT_A_VOUCHER, "NOT_A_VOUCHER", "not a voucher code"))
    await journal.close()


def test_claims_export_as_csv_and_json(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[agent]\nplatform = "127.0.0.1:1"\ndata_dir = "data"\n')
    asyncio.run(_three_claims(tmp_path))
    cli = [sys.executable, "-m", "clearpoint.cli", "agent", "claims", "--config", str(config)]
    done = subprocess.run([*cli, "-o", "csv", "--file", str(tmp_path / "out.csv")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "out.csv").open(newline="")))
    assert [(r["sequence"], r["outcome"], r["prize"]) for r in rows] == [
        ("1", "accepted", "cola"),
        ("2", "pending", ""),
        ("3", "not_a_voucher", ""),
    ]
    assert rows[0]["redemption_id"] == "rdm_1" and rows[0]["scanned_at"] == "2026-11-23T13:20:00.000Z"
    assert bytes.fromhex(rows[1]["barcode_hex"]) == b"0104012345678901\x1d10AB"
    pending = subprocess.run([*cli, "-o", "json", "--outcome", "pending"], capture_output=True, text=True)
    assert [json.loads(line)["sequence"] for line in pending.stdout.splitlines()] == [2]
    since = subprocess.run([*cli, "-o", "json", "--since", "2026-11-23T13:20:01Z"], capture_output=True, text=True)
    assert [json.loads(line)["sequence"] for line in since.stdout.splitlines()] == [2, 3]
    table = subprocess.run(cli, capture_output=True, text=True)
    assert "accepted" in table.stdout and "<GS>" in table.stdout and "3 scan(s)" in table.stderr
    bad = subprocess.run([*cli, "--since", "yesterday-ish"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--since" in bad.stderr
    missing = tmp_path / "other.toml"
    missing.write_text('[agent]\nplatform = "127.0.0.1:1"\ndata_dir = "nothing-here"\n')
    nothing = subprocess.run([*cli[:-1], str(missing)], capture_output=True, text=True)
    assert nothing.returncode == 1 and "has this agent run yet" in nothing.stderr
