"""Boot-keyboard reports from /dev/hidrawN: the report decoder, and the driver over a real FIFO."""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import logging
import os
import string
import termios
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from clearpoint.scanner_agent import keymaps as k
from clearpoint.scanner_agent.drivers.hidraw import BootReportDecoder, HidrawDriver
from clearpoint.scanner_agent.reads import Driver, Read
from hypothesis import given, settings
from hypothesis import strategies as st

LSHIFT, LALT, RALT, LCTRL = 0x02, 0x04, 0x40, 0x01
ENTER, TAB, SPACE = 0x28, 0x2B, 0x2C
KP = {digit: 0x59 + (digit - 1) % 10 for digit in range(10)}  # keypad 1..9 are 0x59..0x61, 0 is 0x62
EMPTY = bytes(8)

_USAGE_OF_KEY: dict[int, int] = {}
for _usage, _code in k.HID_USAGE_TO_KEY.items():
    _USAGE_OF_KEY.setdefault(_code, _usage)


def report(modifiers: int = 0, *usages: int) -> bytes:
    assert len(usages) <= 6
    return bytes([modifiers, 0, *usages, *[0] * (6 - len(usages))])


def scanner_reports(text: str, layout: str = "us", terminator: int | None = ENTER) -> list[bytes]:
    """Reports a boot-keyboard scanner sends for `text`: modifiers in a report of their own
    before and after each key (as many scanners do), Alt + keypad digits for what the layout lacks."""
    lay = k.get_layout(layout)
    reports: list[bytes] = []
    for char in text:
        try:
            strokes = lay.stroke_for(char)
        except KeyError:
            reports.append(report(LALT))
            for digit in f"{ord(char):03d}":
                reports += [report(LALT, KP[int(digit)]), report(LALT)]
            reports.append(EMPTY)
            continue
        for code, level in strokes:
            modifiers = (LSHIFT if level in (k.SHIFT, k.SHIFT_ALTGR) else 0) | (RALT if level >= k.ALTGR else 0)
            usage = _USAGE_OF_KEY[code]
            if modifiers:
                reports += [report(modifiers), report(modifiers, usage), report(modifiers), EMPTY]
            else:
                reports += [report(0, usage), EMPTY]
    if terminator is not None:
        reports += [report(0, terminator), EMPTY]
    return reports


def decode(reports: Iterable[bytes], decoder: BootReportDecoder | None = None, **options: object) -> list[bytes]:
    decoder = decoder or BootReportDecoder(**options)  # type: ignore[arg-type]
    return [scan for r in reports for scan in decoder.feed(r)]


# --- the decoder ----------------------------------------------------------------------------------


def test_shift_in_a_report_of_its_own() -> None:
    reports = [report(LSHIFT), report(LSHIFT, 0x04), report(LSHIFT), EMPTY]  # A
    reports += [report(0, 0x05), EMPTY]  # b: Shift must not have latched
    reports += [report(LSHIFT, 0x21), report(LSHIFT), report(0, 0x21), EMPTY]  # $ then 4 with the key still fresh
    reports += [report(0, ENTER), EMPTY]
    assert decode(reports) == [b"Ab$4"]


def test_modifier_applies_only_to_keys_pressed_in_its_report() -> None:
    # a is held while Shift arrives: it is not pressed again, so no "A"; c pressed with Shift is "C".
    reports = [report(0, 0x04), report(LSHIFT, 0x04), report(LSHIFT, 0x04, 0x06), report(0, 0x04, 0x06), EMPTY]
    assert decode([*reports, report(0, ENTER)]) == [b"aC"]


def test_rollover_two_keys_in_one_report() -> None:
    reports = [report(0, 0x04, 0x05), report(0, 0x05), report(0, 0x05, 0x06), report(0, 0x06, 0x04), EMPTY]
    assert decode([*reports, report(0, 0x07, ENTER)]) == [b"abcad"]  # d goes in before Enter, slot order


def test_alt_mode_keypad_digits_several_in_one_report() -> None:
    reports = [report(LALT, KP[0]), report(LALT, KP[0], KP[2]), report(LALT, KP[9]), report(LALT)]
    reports += [report(0, 0x1E, ENTER)]  # Alt released, then "1" and Enter in the same report
    assert decode(reports) == [b"\x1d1"]


def test_gs1_with_gs_in_alt_mode() -> None:
    gs1 = "0109501101530003\x1d17250101\x1d10ABC"
    assert decode(scanner_reports(gs1)) == [gs1.encode()]


def test_error_rollover_is_ignored() -> None:
    decoder = BootReportDecoder()
    reports = [report(0, 0x04), bytes([0, 0, 1, 1, 1, 1, 1, 1]), report(0, 0x04, 0x05), EMPTY, report(0, ENTER)]
    assert decode(reports, decoder) == [b"ab"]  # a was held through the phantom report, not pressed twice
    assert decoder.rollover_errors == 1


def test_wrong_length_reports_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    decoder = BootReportDecoder()
    with caplog.at_level(logging.WARNING):
        scans = decode(
            [report(0, 0x04), b"\x00" * 7, report(0, 0x04)[:-1] + b"\x00\x00", EMPTY, report(0, ENTER)], decoder
        )
    assert scans == [b"a"]
    assert decoder.wrong_length == 2
    assert "9 bytes where 8" in caplog.text


def test_report_ids() -> None:
    decoder = BootReportDecoder(report_id=1)
    reports = [b"\x01" + report(LSHIFT, 0x04), b"\x02" + bytes(8), b"\x01" + EMPTY, b"\x01" + report(0, ENTER)]
    assert decode(reports, decoder) == [b"A"]
    assert decode([report(0, 0x04)], decoder) == [] and decoder.wrong_length == 1


def test_german_layout() -> None:
    reports = [report(LSHIFT), report(LSHIFT, 0x1C), report(LSHIFT), EMPTY]  # HID "y" key is German z: "Z"
    reports += [report(0, 0x1D), EMPTY]  # HID "z" key: "y"
    reports += [report(RALT), report(RALT, 0x14), EMPTY]  # AltGr + q: "@"
    reports += [report(0, 0x2D), EMPTY, report(LSHIFT, 0x20), EMPTY]  # sharp s, Shift+3: section sign
    reports += [report(0, 0x32), EMPTY]  # the ISO key beside Enter: "#"
    assert decode([*reports, report(0, ENTER)], layout="de") == ["Zy@ß§#".encode("latin-1")]
    assert decode(scanner_reports("CP1:6BFOXQ$K9-2ZY/7W", "de"), layout="de") == [b"CP1:6BFOXQ$K9-2ZY/7W"]


def test_ctrl_chord_after_the_terminator_is_ignored() -> None:
    reports = [*scanner_reports("OK"), report(LCTRL | LSHIFT), report(LCTRL | LSHIFT, 0x0D), EMPTY]
    assert decode(reports) == [b"OK"]


def test_tab_terminator_and_stale_flush() -> None:
    decoder = BootReportDecoder(terminators={"tab"})
    assert decode(scanner_reports("HALF", terminator=None), decoder) == []
    assert decoder.pending and decoder.flush_stale() == b"HALF"
    assert decode(scanner_reports("WHOLE", terminator=TAB), decoder) == [b"WHOLE"]


@settings(max_examples=100, deadline=None)
@given(
    text=st.text(alphabet=string.printable[:95], min_size=1, max_size=30), layout=st.sampled_from(["us", "de", "fr"])
)
def test_round_trip_printable_ascii(text: str, layout: str) -> None:
    assert decode(scanner_reports(text, layout), layout=layout) == [text.encode("ascii")]


# --- the driver over a FIFO standing in for /dev/hidraw0 ---------------------------------------------


class FifoScanner:
    """The writing end of a FIFO, writing one report at a time as hidraw delivers them."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = -1

    async def connect(self) -> None:
        # O_RDWR never blocks and keeps a writer on the FIFO, so the driver sees no end of file.
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)

    async def send(self, reports: Iterable[bytes]) -> None:
        for r in reports:
            os.write(self.fd, r)
            # Wait until the driver has read it: a FIFO, unlike hidraw, would merge reports.
            for _ in range(1000):
                if _unread(self.fd) == 0:
                    break
                await asyncio.sleep(0.001)
            else:
                raise AssertionError("the driver stopped reading")

    def unplug(self) -> None:
        self.path.unlink()
        os.close(self.fd)
        self.fd = -1

    async def replug(self, away: float = 0.1) -> None:
        """Unplugged for a few of the driver's polls, then back; waits for the driver to reopen it."""
        self.unplug()
        await asyncio.sleep(away)
        os.mkfifo(self.path)
        await self.connect()
        await asyncio.sleep(0.1)


def _unread(fd: int) -> int:
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


async def fifo_scanner(node: Path) -> FifoScanner:
    """A FIFO at `node` standing in for a hidraw node, with its writer connected."""
    os.mkfifo(node)
    scanner = FifoScanner(node)
    await scanner.connect()
    return scanner


@contextlib.asynccontextmanager
async def running(driver: Driver, scanner: FifoScanner) -> AsyncIterator[list[Read]]:
    """The driver's reads, gathered while the body plays the scanner; then the driver is closed."""
    reads: list[Read] = []

    async def gather() -> None:
        async with contextlib.aclosing(driver.reads()) as stream:
            async for read in stream:
                reads.append(read)

    task = asyncio.create_task(gather())
    try:
        yield reads
    finally:
        await driver.close()
        await asyncio.wait_for(task, 2)
        os.close(scanner.fd)


async def until(reads: list[Read], count: int) -> None:
    """Until `count` reads are in (two seconds at most; the assertions after say what was missing)."""
    for _ in range(200):
        if len(reads) >= count:
            return
        await asyncio.sleep(0.01)


async def test_hidraw_driver_end_to_end(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    node = tmp_path / "hidraw0"
    scanner = await fifo_scanner(node)
    driver = HidrawDriver("till-2", str(node), "de", retry_interval=0.02)
    async with running(driver, scanner) as reads:
        await scanner.send([b"\x00\x00\x04"])  # wrong length: skipped
        await scanner.send(scanner_reports("CP1:ZY$\x1d1", "de"))
        await scanner.send(scanner_reports("HALF", "de", terminator=None))
        with caplog.at_level(logging.WARNING):
            await scanner.replug()
            await scanner.send(scanner_reports("AFTER", "de"))
        await until(reads, 2)
    assert [(r.scanner_id, r.data, r.symbology) for r in reads] == [
        ("till-2", b"CP1:ZY$\x1d1", ""),
        ("till-2", b"AFTER", ""),
    ]
    assert reads[0].at_us <= reads[1].at_us
    assert driver.decoder.wrong_length == 1
    assert "went away" in caplog.text and "cannot open" in caplog.text
    await driver.signal(False)


async def test_hidraw_driver_waits_for_a_missing_node(tmp_path: Path) -> None:
    driver = HidrawDriver("till-2", str(tmp_path / "hidraw9"), retry_interval=0.01)

    async def first() -> list[Read]:
        return [read async for read in driver.reads()]

    task = asyncio.create_task(first())
    await asyncio.sleep(0.05)
    await driver.close()
    assert await asyncio.wait_for(task, 1) == []


# --- several keystrokes packed in one report, the same usage more than once -------------------------
# The boot keyboard report (HID 1.11, appendix B.1): byte 0 the modifier bits (bit 2 Left Alt), byte 1
# reserved, bytes 2-7 the key array. Keypad usages (HID Usage Tables, Keyboard/Keypad page 0x07):
# Keypad 1-9 are 0x59-0x61, Keypad 0 is 0x62. A scanner in Alt mode types a character as Alt held
# while its decimal code goes in on the keypad; packing scanners put several of those keystrokes in
# one report's array, repeating a usage for a repeated digit.


def test_a_repeated_keypad_digit_in_one_report_is_typed_twice() -> None:
    # Alt+080 ("P") as KP0 KP8 KP0 in one report: collapsing the repeat would type Alt+08 (backspace).
    assert decode([report(LALT, KP[0], KP[8], KP[0]), report(0, ENTER)]) == [b"P"]


def test_one_digit_three_times_in_one_report() -> None:
    assert decode([report(LALT, KP[1], KP[1], KP[1]), report(0, ENTER)]) == [b"o"]  # Alt+111


def test_a_whole_code_per_report_one_character_after_another() -> None:
    # "PP": each character's three digits in a report, Alt released between characters.
    reports = [report(LALT, KP[0], KP[8], KP[0]), report(0), report(LALT, KP[0], KP[8], KP[0]), report(0, ENTER)]
    assert decode(reports) == [b"PP"]


def test_a_usage_held_from_the_previous_report_is_not_typed_again() -> None:
    # KP1 down, then KP1 KP1: the first slot is the key still held, the second a new keystroke; then a
    # third slot of it is one more. Three keystrokes of KP1 in all: Alt+111.
    reports = [report(LALT, KP[1]), report(LALT, KP[1], KP[1]), report(LALT, KP[1], KP[1], KP[1]), report(0, ENTER)]
    assert decode(reports) == [b"o"]


def test_letters_packed_with_repeats_without_alt() -> None:
    a, b = 0x04, 0x05
    assert decode([report(0, a, b, a, a, b, a), report(0), report(0, ENTER)]) == [b"abaaba"]
    assert decode([report(LSHIFT, a, a), report(0, ENTER)]) == [b"AA"]


def test_a_report_sent_twice_is_a_key_held_not_typed_twice() -> None:
    # The same array again says nothing changed (HID 1.11 appendix C): no new keystrokes.
    packed = report(LALT, KP[0], KP[8], KP[0])
    assert decode([packed, packed, report(0, ENTER)]) == [b"P"]


def _alt_mode_reports(text: str, chunks: list[int]) -> list[bytes]:
    """Each character as Alt + its three-digit code, the digits packed `chunks[i]` to a report (1-6,
    repeats kept), every report of keys followed by one that lets them go, as packing scanners do."""
    reports, turn = [], 0
    for char in text:
        digits = [KP[int(d)] for d in f"{ord(char):03d}"]
        while digits:
            size = chunks[turn % len(chunks)]
            turn += 1
            reports += [report(LALT, *digits[:size]), report(LALT)]
            digits = digits[size:]
        reports.append(report(0))
    return [*reports, report(0, ENTER), EMPTY]


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet=string.printable[:95] + "\x1d", min_size=1, max_size=20),
    chunks=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=5),
)
def test_round_trip_alt_mode_packed_any_way(text: str, chunks: list[int]) -> None:
    """Text (GS included) -> Alt-mode reports packed every way -> the same text."""
    assert decode(_alt_mode_reports(text, chunks)) == [text.encode("ascii")]
