"""One rule for every path: a decoded scan holding a control byte other than GS, RS or EOT is refused
on the agent, with a console line and a bad-read signal, and never journaled or sent."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from clearpoint.scanner_agent import identity as ident
from clearpoint.scanner_agent.agent import Agent
from clearpoint.scanner_agent.console import Console
from clearpoint.scanner_agent.drivers.hidraw import BootReportDecoder
from clearpoint.scanner_agent.journal import Journal
from clearpoint.scanner_agent.reads import Read, ScannerHealth
from clearpoint.scanner_agent.scan_rules import control_bytes, describe
from clearpoint.scanner_agent.uplink import UplinkSettings
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.agent_helpers import agent_on_pty
from tests.helpers import Client, RunningPlatform
from tests.test_hidraw import KP, LALT, report

AGENT = "agt_0011223344556677"


def test_which_bytes_are_refused() -> None:
    # GS (GS1 General Specifications 7.8.5: the FNC1 separator as GS, 0x1D), and RS and EOT (ISO/IEC
    # 15434: the message envelope "[)>" RS ... RS EOT) are data; every other C0 control and DEL is not.
    gs1 = b"0109501101530003\x1d17250101\x1d10ABC"
    envelope = b"[)>\x1e06\x1d1PABC\x1e\x04"
    assert control_bytes(gs1) == [] and control_bytes(envelope) == []
    assert control_bytes(b"AB\x08C\x00D\x7f") == [(2, 8), (4, 0), (6, 0x7F)]
    assert control_bytes(b"line one\r\nline two\tend") == [(8, 13), (9, 10), (18, 9)]
    assert control_bytes("gr\u00fc\u00dfe \u20ac".encode()) == []  # UTF-8's high bytes are not controls
    assert describe([(2, 8), (4, 0)]) == "BS at 2, NUL at 4"
    assert describe([(i, 1) for i in range(6)]) == "0x01 at 0, 0x01 at 1, 0x01 at 2, 0x01 at 3 and 2 more"


class _Driver:
    def __init__(self, kind: str) -> None:
        self.scanner_id = "till-1"
        self.health = ScannerHealth(kind, "/dev/null")
        self.signals: list[bool] = []

    async def signal(self, good: bool) -> None:
        self.signals.append(good)

    async def recorded(self, read: Read, journaled: bool) -> None:
        pass

    async def close(self) -> None:
        pass

    async def reads(self):  # type: ignore[no-untyped-def]
        return
        yield


@pytest.mark.parametrize("kind", ["serial", "keyboard", "hidraw"])
async def test_a_scan_with_a_backspace_is_refused_on_every_path(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    key = Ed25519PrivateKey.generate()
    journal = await Journal.open(tmp_path / "j.sqlite3", AGENT, key)
    out = io.StringIO()
    driver = _Driver(kind)
    identity = ident.Identity(AGENT, "ptn_000000000000", "store-1", "till", "127.0.0.1:1")
    agent = Agent(identity, key, journal, [driver], UplinkSettings("127.0.0.1:1"), Console(out))
    try:
        refused = await agent.take(Read("till-1", b"4006381\x08333931", "", 1_795_440_000_000_000, 0))
        kept = await agent.take(Read("till-1", b"0109501101530003\x1d10ABC", "]C1", 1_795_440_000_000_001, 0))
    finally:
        await journal.close()
    assert refused is None and kept is not None and kept.sequence == 1  # the refused one took no sequence
    assert driver.signals == [False]
    assert "NOT RECORDED" in out.getvalue() and "control bytes (BS at 7)" in out.getvalue()
    assert ("read as hidraw" in caplog.text) is (kind == "keyboard")


def test_alt_08_from_a_collapsed_repeat_is_the_backspace_the_rule_catches() -> None:
    # What the kernel's input layer hands over for Alt+080 packed as KP0 KP8 KP0 (HID 1.11 appendix
    # C: it reads the array as a set): KP0 KP8 once each, i.e. Alt+08, a backspace inside the scan.
    decoder = BootReportDecoder()
    typed = [report(0, 0x04), report(0), report(LALT, KP[0], KP[8]), report(0), report(0, 0x05), report(0, 0x28)]
    (scan,) = [s for r in typed for s in decoder.feed(r)]
    assert scan == b"a\x08b" and control_bytes(scan) == [(1, 8)]


async def test_a_serial_frame_with_a_control_byte_never_reaches_the_platform(
    tmp_path: Path, platform: RunningPlatform, partner: Client
) -> None:
    scanner, agent = await agent_on_pty(tmp_path, platform, partner)
    try:
        await scanner.send(b"4006381\x1b333931\r4006381333931\r", baud=115200)
        answered = await agent.wait_answered(1)
    finally:
        await agent.close()
        scanner.close()
    assert [c.data for c in agent.claims()] == [b"4006381333931"]
    assert [c.data for c in answered] == [b"4006381333931"]
    assert "control bytes (ESC at 7)" in agent.console.getvalue()
