"""The serial driver against a real pseudo-terminal: paced scans, feedback, bad input, unplug and replug.

No serial mocks: `VirtualScanner` owns a pty, the driver opens the pty's slave through a symlink standing in for
/dev/serial/by-id/..., exactly as it opens a USB scanner.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from pathlib import Path

import pytest
from clearpoint.scanner_agent.drivers.cut_marker import CutMarker
from clearpoint.scanner_agent.drivers.serial import FramingMode, SerialDriver, SerialSettings
from clearpoint.scanner_agent.framing import lrc
from clearpoint.scanner_agent.reads import Read
from clearpoint.scanner_agent.virtual_scanner import VirtualScanner, uart_misread

BAUD = 115200
GOOD = b"\x1b[G"
BAD = b"\x1b[B"
EAN = b"]E04006381333931\r"


class Rig:
    """A driver whose reads are pumped into a queue, so tests can send first and collect after."""

    def __init__(self, driver: SerialDriver) -> None:
        self.driver = driver
        self.queue: asyncio.Queue[Read] = asyncio.Queue()
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for read in self.driver.reads():
            await self.queue.put(read)

    async def next(self, within: float = 3.0) -> Read:
        return await asyncio.wait_for(self.queue.get(), within)

    async def connected(self, within: float = 3.0) -> None:
        deadline = time.monotonic() + within
        while not self.driver.connected:
            assert time.monotonic() < deadline, "driver never connected"
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.driver.close()
        await asyncio.wait_for(self.task, 3.0)


def settings(path: str | Path, **overrides: object) -> SerialSettings:
    values: dict[str, object] = {
        "path": str(path),
        "baud": BAUD,
        "good_read": GOOD,
        "bad_read": BAD,
        "reconnect_interval": 0.1,
        "stale_after": 0.2,
    }
    values.update(overrides)
    return SerialSettings(**values)  # type: ignore[arg-type]


async def wait_log(caplog: pytest.LogCaptureFixture, text: str, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while text not in caplog.text:
        assert time.monotonic() < deadline, f"no log line containing {text!r}; got:\n{caplog.text}"
        await asyncio.sleep(0.01)


@pytest.fixture
def scanner(tmp_path: Path):
    with VirtualScanner(tmp_path / "usb-Acme_Scanner_1234-if00") as scanner:
        yield scanner


@pytest.fixture
async def rig(scanner: VirtualScanner, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="clearpoint.scanner_agent")
    rig = Rig(SerialDriver("till-1", settings(scanner.port)))
    await rig.connected()
    yield rig
    await rig.close()


async def test_scans_arrive_with_symbology_and_stamps(scanner: VirtualScanner, rig: Rig) -> None:
    qr = b"]Q1https://clearpoint.test/v/6BFOXN*TS0I"
    gs1 = b"]C10104006381333931\x1d10ABC123"
    started_perf = time.perf_counter_ns()
    started_us = time.time_ns() // 1000
    await scanner.send(EAN + qr + b"\r" + gs1 + b"\r", baud=BAUD)
    reads = [await rig.next() for _ in range(3)]
    assert [(r.scanner_id, r.symbology, r.data) for r in reads] == [
        ("till-1", "]E0", b"4006381333931"),
        ("till-1", "]Q1", b"https://clearpoint.test/v/6BFOXN*TS0I"),
        ("till-1", "]C1", b"0104006381333931\x1d10ABC123"),
    ]
    # Stamped when the last byte arrived, which the pacing puts at (bytes x 10 bits / baud) after the start.
    wire_ns = len(EAN) * 10 * 1_000_000_000 // BAUD
    assert reads[0].at_perf_ns - started_perf >= wire_ns * 0.9
    assert reads[0].at_perf_ns <= reads[1].at_perf_ns <= reads[2].at_perf_ns <= time.perf_counter_ns()
    assert started_us <= reads[0].at_us <= time.time_ns() // 1000


async def test_send_is_paced_at_the_baud_rate(scanner: VirtualScanner, rig: Rig) -> None:
    data = b"9" * 1151 + b"\r"  # 1152 bytes at 115200 baud, 10 bits each: 100 ms on the wire
    started = time.perf_counter()
    await scanner.send(data, baud=BAUD)
    elapsed = time.perf_counter() - started
    assert 0.095 <= elapsed < 0.2
    assert (await rig.next()).data == data[:-1]


async def test_good_and_bad_read_signals_reach_the_scanner(scanner: VirtualScanner, rig: Rig) -> None:
    await scanner.send(EAN, baud=BAUD)
    await rig.next()
    await rig.driver.signal(True)
    assert await scanner.wait_feedback(len(GOOD)) == GOOD
    await rig.driver.signal(False)
    assert await scanner.wait_feedback(len(BAD)) == BAD


async def test_no_feedback_configured_is_a_no_op(scanner: VirtualScanner) -> None:
    rig = Rig(SerialDriver("till-2", settings(scanner.port, good_read=b"", bad_read=b"")))
    await rig.connected()
    await rig.driver.signal(True)
    await rig.driver.signal(False)
    await asyncio.sleep(0.05)
    assert scanner.read_feedback() == b""
    await rig.close()


async def test_line_noise_is_logged_and_skipped(
    scanner: VirtualScanner, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    await scanner.send(b"\x15\x7f\x01\x18~\x06\x05\x1a\r", baud=BAUD)
    await wait_log(caplog, "frame that is not text")
    await scanner.send(EAN, baud=BAUD)
    assert (await rig.next()).data == b"4006381333931"


async def test_binary_garbage_is_logged_and_skipped(
    scanner: VirtualScanner, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # One blob of binary ending in the terminator (random CRs would cut it into short frames, and a two-byte
    # random frame can be as text-like as a real scan).
    blob = random.Random(7).randbytes(3000).replace(b"\r", b"") + b"\r"
    await scanner.send(blob, baud=BAUD)
    await wait_log(caplog, f"dropped a {len(blob) - 1}-byte frame that is not text")
    assert "wrong baud rate or parity?" in caplog.text
    await scanner.send(EAN, baud=BAUD)
    assert (await rig.next()).data == b"4006381333931"
    assert rig.queue.empty()


async def test_100kb_line_without_terminator(
    scanner: VirtualScanner, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # Sent ten times faster than the scans (about 1.1 s) to keep the test short; the framing is the same.
    await scanner.send(b"A" * 102_400, baud=10 * BAUD)
    await wait_log(
        caplog, "discarded 102400 bytes without a terminator (max 4096) — check the scanner's suffix setting"
    )
    assert caplog.text.count("without a terminator") == 1
    await scanner.send(EAN, baud=BAUD)
    assert (await rig.next()).data == b"4006381333931"
    assert rig.queue.empty()


async def test_wrong_baud_rate_garbage_is_explained(
    scanner: VirtualScanner, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # A scanner still at 9600 while we listen at 115200: every low bit looks like a whole NUL byte.
    await scanner.send(uart_misread(EAN * 3, 9600, BAUD), baud=BAUD)
    await wait_log(caplog, "bytes were not text — wrong baud rate or parity?")
    caplog.clear()
    # And the other way round: a scanner at 921600 seen at 115200.
    await scanner.send(uart_misread(EAN * 20, 8 * BAUD, BAUD), baud=BAUD)
    await wait_log(caplog, "bytes were not text — wrong baud rate or parity?")
    await asyncio.sleep(0.25)
    await scanner.send(EAN, baud=BAUD)
    assert (await rig.next()).data == b"4006381333931"
    assert rig.queue.empty()


async def test_half_frame_then_unplug_then_replug(
    scanner: VirtualScanner, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    await scanner.send(b"]E0400638", baud=BAUD)
    await asyncio.sleep(0.02)
    scanner.unplug()
    await wait_log(caplog, f"scanner till-1 unplugged ({scanner.port}); waiting for it to return")
    await wait_log(caplog, "discarded a half frame of 9 bytes when it went away")
    scanner.replug()
    await wait_log(caplog, f"scanner till-1 back ({scanner.port})")
    await scanner.send(EAN, baud=BAUD)
    read = await rig.next()
    assert (read.symbology, read.data) == ("]E0", b"4006381333931")
    assert rig.queue.empty()


async def test_unplug_and_replug_through_the_symlink(
    scanner: VirtualScanner, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(2):
        await scanner.send(EAN, baud=BAUD)
        assert (await rig.next()).data == b"4006381333931"
        caplog.clear()
        scanner.unplug()
        await wait_log(caplog, "unplugged")
        await asyncio.sleep(0.25)  # a few reconnect attempts against a missing path
        assert not rig.driver.connected
        await rig.driver.signal(True)  # the port is down: a no-op, not an error
        scanner.replug()
        await wait_log(caplog, "back")
        await rig.connected()
    assert os.readlink(scanner.port) == scanner.slave_path
    await scanner.send(EAN, baud=BAUD)
    assert (await rig.next()).data == b"4006381333931"
    await rig.driver.signal(True)
    assert await scanner.wait_feedback(len(GOOD)) == GOOD


async def test_port_missing_at_start_then_appearing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clearpoint.scanner_agent")
    link = tmp_path / "usb-Late_Scanner-if00"
    rig = Rig(SerialDriver("till-3", settings(link)))
    await wait_log(caplog, f"scanner till-3 not available ({link})")
    await asyncio.sleep(0.3)
    assert caplog.text.count("not available") == 1  # one line, not one per poll
    with VirtualScanner(link) as scanner:
        await wait_log(caplog, f"scanner till-3 connected ({link})")
        await rig.connected()
        await scanner.send(EAN, baud=BAUD)
        assert (await rig.next()).data == b"4006381333931"
        await rig.close()


async def test_close_while_waiting_for_the_port(tmp_path: Path) -> None:
    rig = Rig(SerialDriver("till-4", settings(tmp_path / "never", reconnect_interval=5.0)))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await rig.close()
    assert time.monotonic() - started < 1.0
    assert rig.task.done()


async def test_stx_etx_with_lrc_over_the_pty(scanner: VirtualScanner, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clearpoint.scanner_agent")
    rig = Rig(SerialDriver("till-5", settings(scanner.port, framing=FramingMode.STX_ETX, check_lrc=True)))
    await rig.connected()
    data = b"]d2010400638133393121ABC\x1d10XY"
    await scanner.send(b"\x02" + data + b"\x03" + bytes([lrc(data) ^ 1]), baud=BAUD)
    await wait_log(caplog, "LRC mismatch")
    await scanner.send(b"noise\x02" + data + b"\x03" + bytes([lrc(data)]) + b"\r\n", baud=BAUD)
    read = await rig.next()
    assert (read.symbology, read.data) == ("]d2", b"010400638133393121ABC\x1d10XY")
    await wait_log(caplog, "noise outside STX/ETX")
    await rig.close()


async def test_timeout_framing_over_the_pty(scanner: VirtualScanner) -> None:
    rig = Rig(SerialDriver("till-6", settings(scanner.port, framing=FramingMode.TIMEOUT, char_timeout=0.03)))
    await rig.connected()
    await scanner.send(b"]A0CODE39TEXT", baud=BAUD)
    sent_at = time.perf_counter_ns()
    await asyncio.sleep(0.06)
    await scanner.send(b"SECOND", baud=BAUD)
    first, second = await rig.next(), await rig.next()
    assert (first.symbology, first.data) == ("]A0", b"CODE39TEXT")
    assert second.data == b"SECOND"
    # Stamped when the last byte was read, not when the 30 ms quiet gap was noticed.
    assert first.at_perf_ns - sent_at < 20_000_000
    await rig.close()


async def test_an_add_on_and_a_second_symbol_in_one_transmission(scanner: VirtualScanner, rig: Rig) -> None:
    """ISO/IEC 15424's EAN/UPC modifiers: ]E0 is the 13-digit main packet, ]E1/]E2 a 2-/5-digit add-on
    alone, ]E3 the two combined, ]E4 EAN-8. A scanner sending main and add-on back to back, or two
    symbols in one transmission, gives data with no identifier left inside it."""
    await scanner.send(b"]E04006381333931]E212345\r", baud=BAUD)  # main + 5-digit add-on
    await scanner.send(b"]E09780201379624]E105\r", baud=BAUD)  # main + 2-digit add-on (a periodical's issue)
    await scanner.send(b"]E401234565]Q1https://clearpoint.test/x\r", baud=BAUD)  # EAN-8, then a QR code
    reads = [await rig.next() for _ in range(4)]
    assert [(r.symbology, r.data) for r in reads] == [
        ("]E3", b"400638133393112345"),
        ("]E3", b"978020137962405"),
        ("]E4", b"01234565"),
        ("]Q1", b"https://clearpoint.test/x"),
    ]
    assert reads[2].at_us == reads[3].at_us  # one transmission, one arrival time


async def test_stx_code_id_etx_eot_framing(scanner: VirtualScanner, caplog: pytest.LogCaptureFixture) -> None:
    """Honeywell's "STX, Code ID, data, ETX" set-up with EOT after the frame: the Code ID letter (its user
    guides' Symbology Charts: d EAN-13, j Code 128, I GS1-128, s QR Code) leaves the data and becomes the
    AIM identifier (ISO/IEC 15424) of the same symbology; EOT between frames is not noise."""
    caplog.set_level(logging.INFO, logger="clearpoint.scanner_agent")
    rig = Rig(SerialDriver("till-7", settings(scanner.port, framing=FramingMode.STX_ETX, code_id="honeywell")))
    await rig.connected()
    frames = [b"d4006381333931", b"jABC-123", b"I0104006381333931\x1d10AB", b"shttps://clearpoint.test/v/1"]
    await scanner.send(b"".join(b"\x02" + f + b"\x03\x04" for f in frames), baud=BAUD)
    reads = [await rig.next() for _ in frames]
    assert [(r.symbology, r.data) for r in reads] == [
        ("]E0", b"4006381333931"),
        ("]C0", b"ABC-123"),
        ("]C1", b"0104006381333931\x1d10AB"),
        ("]Q1", b"https://clearpoint.test/v/1"),
    ]
    # A frame without a Code ID (the scanner's setting changed) is refused, not read with its first byte lost.
    await scanner.send(b"\x02CP1:ABC\x03\x04\x02jOK\x03\x04", baud=BAUD)
    read = await rig.next()
    assert (read.symbology, read.data) == ("]C0", b"OK")
    assert "not a honeywell Code ID" in caplog.text
    assert "noise" not in caplog.text
    await rig.close()


async def test_bytes_held_while_no_agent_read_are_read_and_a_cut_frame_is_dropped(
    tmp_path: Path, scanner: VirtualScanner, caplog: pytest.LogCaptureFixture
) -> None:
    """pyserial's open() flushes the port's input; the driver's does not. And the frame a stopped driver
    was in the middle of is dropped whole: its tail is never read as a scan."""
    caplog.set_level(logging.INFO, logger="clearpoint.scanner_agent")
    state = tmp_path / "state"
    state.mkdir()
    rig = Rig(SerialDriver("till-8", settings(scanner.port), state))
    await rig.connected()
    await scanner.send(b"FIRST\rSEC", baud=BAUD)  # the driver stops in the middle of the second frame
    assert (await rig.next()).data == b"FIRST"
    await wait_until(lambda: (state / "serial-till-8.frame").read_text().endswith(" cut\n"))
    await rig.close()
    await scanner.send(b"OND\rTHIRD\rFOURTH\r", baud=BAUD)  # held by the kernel: no one reads the port
    rig = Rig(SerialDriver("till-8", settings(scanner.port), state))
    assert [(await rig.next()).data for _ in range(2)] == [b"THIRD", b"FOURTH"]
    assert "3 bytes up to the first frame boundary" in caplog.text  # "OND": the tail of SECOND
    await rig.close()
    # Stopped between frames, the first held frame is a whole scan and is read.
    await scanner.send(b"FIFTH\r", baud=BAUD)
    rig = Rig(SerialDriver("till-8", settings(scanner.port), state))
    assert (await rig.next()).data == b"FIFTH"
    await rig.close()


async def test_a_cut_mark_does_not_outlive_its_device(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A scanner replugged while no agent ran holds nothing of the old frame: its first scan is whole."""
    state = tmp_path / "state"
    state.mkdir()
    with VirtualScanner(tmp_path / "usb-Acme_Scanner_1234-if00") as scanner:
        rig = Rig(SerialDriver("till-9", settings(scanner.port), state))
        await rig.connected()
        await scanner.send(b"HALF", baud=BAUD)
        await wait_until(lambda: (state / "serial-till-9.frame").read_text().endswith(" cut\n"))
        await rig.close()
        scanner.replug()  # a new device node behind the same path
        await scanner.send(b"WHOLE\r", baud=BAUD)
        rig = Rig(SerialDriver("till-9", settings(scanner.port), state))
        assert (await rig.next()).data == b"WHOLE"
        await rig.close()


async def test_timeout_framing_drops_what_the_port_held(
    scanner: VirtualScanner, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a suffix, scans that waited in the port arrive glued together; they are dropped, not journaled
    as one scan, and the scanner's next scan reads."""
    caplog.set_level(logging.INFO, logger="clearpoint.scanner_agent")
    await scanner.send(b"HELD-ONEHELD-TWO", baud=BAUD)
    rig = Rig(SerialDriver("till-10", settings(scanner.port, framing=FramingMode.TIMEOUT, char_timeout=0.03)))
    await rig.connected()
    await wait_log(caplog, "without a suffix the scans in them cannot be told apart")
    await scanner.send(b"LIVE", baud=BAUD)
    assert (await rig.next()).data == b"LIVE"
    await rig.close()


def test_flow_control_and_code_id_settings() -> None:
    assert settings("/dev/null", flow_control="rtscts").pyserial_kwargs()["rtscts"] is True
    assert settings("/dev/null").pyserial_kwargs()["rtscts"] is False
    with pytest.raises(ValueError, match="flow_control must be none or rtscts"):
        settings("/dev/null", flow_control="xonxoff")
    with pytest.raises(ValueError, match="code_id must be one of honeywell"):
        settings("/dev/null", code_id="acme")


async def wait_until(condition, within: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while True:
        try:
            if condition():
                return
        except FileNotFoundError:
            pass
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.01)


def test_the_cut_mark_names_its_device_and_survives_a_bad_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = CutMarker(tmp_path / "serial-till-1.frame")
    marker.record("boot-a 1:2:3", True)
    assert marker.was_cut("boot-a 1:2:3")
    assert not marker.was_cut("boot-b 1:2:3")  # rebooted: the port holds nothing of the old frame
    assert not marker.was_cut("boot-a 1:2:4")  # another device node: replugged
    marker.record("boot-a 1:2:3", False)
    assert not CutMarker(tmp_path / "serial-till-1.frame").was_cut("boot-a 1:2:3")
    nowhere = CutMarker(tmp_path / "missing" / "serial-till-1.frame")
    nowhere.record("boot-a 1:2:3", True)  # cannot be written: said, not raised
    assert "cannot write" in caplog.text
    assert not nowhere.was_cut("boot-a 1:2:3")
    assert not CutMarker(None).was_cut("boot-a 1:2:3")
