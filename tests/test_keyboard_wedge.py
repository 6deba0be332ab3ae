"""Keyboard-wedge decoding from key events as the kernel delivers them, and the evdev driver.

The "recordings" are built by `scanner_keys()`, which types text the way scanner firmware does
(Shift or AltGr around each key, Alt + keypad digits for what the layout cannot type), and
`kernel_events()`, which wraps each key event the way the kernel reports it (EV_MSC scan code,
EV_KEY, EV_SYN). A few sequences are written out by hand so the helper is not the only truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import string
import struct
import time
from collections.abc import AsyncIterator, Iterable
from types import SimpleNamespace

import pytest
from clearpoint.scanner_agent import keymaps as k
from clearpoint.scanner_agent.drivers.keyboard_wedge import KeyboardWedgeDriver, looks_like_scanner
from clearpoint.scanner_agent.reads import Read
from clearpoint.scanner_agent.wedge import WedgeDecoder
from evdev import InputEvent, ecodes
from hypothesis import given, settings
from hypothesis import strategies as st

SCANNER = "/dev/input/by-id/usb-Honeywell_Imaging___Mobility_1900_18054B0A29-event-kbd"
KEYBOARD = "/dev/input/by-id/usb-Logitech_USB_Keyboard-event-kbd"

_USAGE_OF_KEY: dict[int, int] = {}
for _usage, _code in k.HID_USAGE_TO_KEY.items():
    _USAGE_OF_KEY.setdefault(_code, _usage)
for _bit, _code in enumerate(k.HID_MODIFIER_KEYS):
    _USAGE_OF_KEY[_code] = 0xE0 + _bit


# --- the recording helpers ---------------------------------------------------------------------


def alt_code_keys(value: str) -> list[tuple[int, int]]:
    """Alt held, keypad digits typed, Alt released: how scanners send what the layout lacks."""
    digit_keys = {digit: code for code, digit in k.KEYPAD_DIGITS.items()}
    keys = [(k.KEY_LEFTALT, 1)]
    for digit in value:
        keys += [(digit_keys[int(digit)], 1), (digit_keys[int(digit)], 0)]
    return [*keys, (k.KEY_LEFTALT, 0)]


def scanner_keys(
    text: str, layout: str | k.Layout = "us", terminator: int | None = k.KEY_ENTER, alt_mode: Iterable[str] = ()
) -> list[tuple[int, int]]:
    """(code, value) key events a scanner configured for `layout` sends for `text`."""
    layout = k.get_layout(layout)
    alt_mode = set(alt_mode)
    keys: list[tuple[int, int]] = []
    for char in text:
        try:
            strokes = [] if char in alt_mode else layout.stroke_for(char)
        except KeyError:
            strokes = []
        if not strokes:
            keys += alt_code_keys(f"{ord(char):03d}")
            continue
        for code, level in strokes:
            modifiers = [k.KEY_LEFTSHIFT] if level in (k.SHIFT, k.SHIFT_ALTGR) else []
            modifiers += [k.KEY_RIGHTALT] if level >= k.ALTGR else []
            keys += [(m, 1) for m in modifiers] + [(code, 1), (code, 0)] + [(m, 0) for m in reversed(modifiers)]
    if terminator is not None:
        keys += [(terminator, 1), (terminator, 0)]
    return keys


def kernel_events(keys: Iterable[tuple[int, int]], start: float = 1000.0, step: float = 0.002) -> list[InputEvent]:
    """Each key event as the kernel reports it: MSC_SCAN (HID usage), EV_KEY, SYN_REPORT."""
    events = []
    for i, (code, value) in enumerate(keys):
        sec, usec = divmod(round((start + i * step) * 1_000_000), 1_000_000)
        if value != 2:
            events.append(InputEvent(sec, usec, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70000 + _USAGE_OF_KEY.get(code, 0)))
        events.append(InputEvent(sec, usec, ecodes.EV_KEY, code, value))
        events.append(InputEvent(sec, usec, ecodes.EV_SYN, ecodes.SYN_REPORT, 0))
    return events


def literal(rows: Iterable[tuple[int, int, int]]) -> list[InputEvent]:
    return [InputEvent(1000, i, type_, code, value) for i, (type_, code, value) in enumerate(rows)]


def decode(events: Iterable[InputEvent], layout: str = "us", **options: object) -> list[bytes]:
    """Kernel events through the evdev driver's own event handling, no device needed."""
    driver = KeyboardWedgeDriver("test", SCANNER, layout, open_device=_no_device, **options)  # type: ignore[arg-type]
    scans: list[bytes] = []
    for event in events:
        scans += driver._decode(event)
    return scans


def _no_device(path: str) -> object:
    raise AssertionError("decode() must not open anything")


# --- decoding --------------------------------------------------------------------------------------

VOUCHER = "CP1:6BFOXQ$K9-2ZY/7W"


@pytest.mark.parametrize("layout", ["us", "de", "fr"])
def test_shifted_text_on_each_layout(layout: str) -> None:
    assert decode(kernel_events(scanner_keys(VOUCHER, layout)), layout) == [VOUCHER.encode()]


def test_a_layout_mismatch_garbles_the_scan() -> None:
    """Why the layout must match the scanner's: US keys read as German or French are other text."""
    us_keys = kernel_events(scanner_keys("ZY1", "us"))
    assert decode(us_keys, "de") == [b"YZ1"]
    assert decode(us_keys, "fr") == [b"WY&"]  # AZERTY: plain digit keys are punctuation


def test_hand_written_us_sequence() -> None:
    events = literal(
        [
            (4, 4, 0x700E1), (1, 42, 1), (0, 0, 0),  # Left Shift down
            (4, 4, 0x70004), (1, 30, 1), (0, 0, 0),  # a down -> "A"
            (4, 4, 0x70004), (1, 30, 0), (0, 0, 0),
            (4, 4, 0x700E1), (1, 42, 0), (0, 0, 0),  # Left Shift up
            (4, 4, 0x70005), (1, 48, 1), (0, 0, 0),  # b -> "b"
            (4, 4, 0x70005), (1, 48, 0), (0, 0, 0),
            (4, 4, 0x700E5), (1, 54, 1), (0, 0, 0),  # Right Shift down, held over two keys
            (4, 4, 0x70033), (1, 39, 1), (0, 0, 0),  # ; -> ":"
            (4, 4, 0x70033), (1, 39, 0), (0, 0, 0),
            (4, 4, 0x70021), (1, 5, 1), (0, 0, 0),  # 4 -> "$"
            (4, 4, 0x70021), (1, 5, 0), (0, 0, 0),
            (4, 4, 0x700E5), (1, 54, 0), (0, 0, 0),
            (4, 4, 0x7001E), (1, 2, 1), (0, 0, 0),  # 1
            (4, 4, 0x7001E), (1, 2, 0), (0, 0, 0),
            (4, 4, 0x70028), (1, 28, 1), (0, 0, 0),  # Enter
            (4, 4, 0x70028), (1, 28, 0), (0, 0, 0),
        ]
    )  # fmt: skip
    assert decode(events) == [b"Ab:$1"]


def test_hand_written_gs1_alt_mode_then_ctrl_shift_j() -> None:
    """GS arrives as Alt+029; the Ctrl+Shift+J the scanner adds after Enter is no text."""
    events = literal(
        [
            (1, 11, 1), (0, 0, 0), (1, 11, 0), (0, 0, 0),  # 0
            (1, 2, 1), (0, 0, 0), (1, 2, 0), (0, 0, 0),  # 1
            (1, 56, 1), (0, 0, 0),  # Left Alt down
            (1, 82, 1), (0, 0, 0), (1, 82, 0), (0, 0, 0),  # KP0
            (1, 80, 1), (0, 0, 0), (1, 80, 0), (0, 0, 0),  # KP2
            (1, 73, 1), (0, 0, 0), (1, 73, 0), (0, 0, 0),  # KP9
            (1, 56, 0), (0, 0, 0),  # Left Alt up -> GS
            (1, 2, 1), (0, 0, 0), (1, 2, 0), (0, 0, 0),  # 1
            (1, 11, 1), (0, 0, 0), (1, 11, 0), (0, 0, 0),  # 0
            (1, 28, 1), (0, 0, 0), (1, 28, 0), (0, 0, 0),  # Enter
            (1, 29, 1), (0, 0, 0), (1, 42, 1), (0, 0, 0),  # Ctrl down, Shift down
            (1, 36, 1), (0, 0, 0), (1, 36, 0), (0, 0, 0),  # J
            (1, 42, 0), (0, 0, 0), (1, 29, 0), (0, 0, 0),
            (1, 30, 1), (0, 0, 0), (1, 30, 0), (0, 0, 0),  # the next scan: a
            (1, 28, 1), (0, 0, 0), (1, 28, 0), (0, 0, 0),
        ]
    )  # fmt: skip
    assert decode(events) == [b"01\x1d10", b"a"]


def test_hand_written_german_sequence() -> None:
    """QWERTZ: the key labelled Y on US gives z, AltGr+Q gives @, Shift+3 gives the section sign."""
    events = literal(
        [
            (1, 42, 1), (1, 21, 1), (1, 21, 0), (1, 42, 0),  # Shift + KEY_Y -> "Z"
            (1, 44, 1), (1, 44, 0),  # KEY_Z -> "y"
            (1, 100, 1), (1, 16, 1), (1, 16, 0), (1, 100, 0),  # AltGr + Q -> "@"
            (1, 12, 1), (1, 12, 0),  # KEY_MINUS -> sharp s
            (1, 42, 1), (1, 4, 1), (1, 4, 0), (1, 42, 0),  # Shift + 3 -> section sign
            (1, 28, 1), (1, 28, 0),
        ]
    )  # fmt: skip
    assert decode(events, "de") == ["Zy@ß§".encode("latin-1")]


def test_gs1_code_with_gs_in_alt_mode_on_every_layout() -> None:
    gs1 = "0109501101530003\x1d17250101\x1d10ABC"
    for layout in ("us", "de", "fr"):
        keys = scanner_keys(gs1, layout)
        assert (k.KEY_LEFTALT, 1) in keys
        assert decode(kernel_events(keys), layout) == [gs1.encode()]


def test_alt_mode_code_page_forms() -> None:
    keys = alt_code_keys("0029") + alt_code_keys("65") + alt_code_keys("0128") + alt_code_keys("300")
    keys += [(k.KEY_ENTER, 1), (k.KEY_ENTER, 0)]
    decoder = WedgeDecoder("us")
    assert [decoder.feed(*key) for key in keys][-2] == b"\x1dA\x80"  # Alt+300 is skipped, not wrapped
    assert decoder.stats.unmappable == 1


def test_alt_chord_is_not_an_alt_code() -> None:
    keys = [(k.KEY_LEFTALT, 1), (k.KEY_F, 1), (k.KEY_F, 0), (k.KEY_KP6, 1), (k.KEY_KP6, 0), (k.KEY_LEFTALT, 0)]
    keys += scanner_keys("ok")
    assert decode(kernel_events(keys)) == [b"ok"]


def test_numlock_toggles_do_not_change_keypad_digits() -> None:
    numlock = [(k.KEY_NUMLOCK, 1), (k.KEY_NUMLOCK, 0)]
    keypad = [(k.KEY_KP4, 1), (k.KEY_KP4, 0), (k.KEY_KP2, 1), (k.KEY_KP2, 0), (k.KEY_KPDOT, 1), (k.KEY_KPDOT, 0)]
    keys = numlock + keypad + numlock + keypad + numlock + alt_code_keys("029") + numlock + scanner_keys("7")
    assert decode(kernel_events(keys)) == [b"42.42.\x1d7"]
    assert decode(kernel_events(keys), "de") == [b"42,42,\x1d7"]  # the German keypad has a decimal comma


def test_capslock_in_the_stream_swaps_letter_case_only() -> None:
    caps = [(k.KEY_CAPSLOCK, 1), (k.KEY_CAPSLOCK, 0)]
    keys = caps + scanner_keys("aB1!", terminator=None) + caps + scanner_keys("aB")
    assert decode(kernel_events(keys)) == [b"Ab1!aB"]


def test_tab_terminator() -> None:
    keys = scanner_keys("AB12", terminator=k.KEY_TAB) + scanner_keys("CD", terminator=k.KEY_TAB)
    assert decode(kernel_events(keys), terminators={"tab"}) == [b"AB12", b"CD"]
    # With only Tab configured, Enter is data; with both, either ends a scan.
    assert decode(kernel_events(scanner_keys("A\rB", terminator=k.KEY_TAB)), terminators={"tab"}) == [b"A\rB"]
    both = scanner_keys("X", terminator=k.KEY_TAB) + scanner_keys("Y", terminator=k.KEY_KPENTER)
    assert decode(kernel_events(both), terminators={"tab", "enter"}) == [b"X", b"Y"]


def test_autorepeat_is_ignored() -> None:
    keys = [
        (k.KEY_A, 1),
        (k.KEY_A, 2),
        (k.KEY_A, 2),
        (k.KEY_A, 0),
        (k.KEY_ENTER, 1),
        (k.KEY_ENTER, 2),
        (k.KEY_ENTER, 0),
    ]
    assert decode(kernel_events(keys)) == [b"a"]


def test_overlong_scan_is_discarded_and_the_next_is_fine(caplog: pytest.LogCaptureFixture) -> None:
    keys = scanner_keys("X" * 11) + scanner_keys("OK") + scanner_keys("Y" * 10)
    decoder = WedgeDecoder("us", max_length=10)
    with caplog.at_level(logging.WARNING):
        scans = [scan for key in keys if (scan := decoder.feed(*key)) is not None]
    assert scans == [b"OK", b"Y" * 10]
    assert decoder.stats.overlong == 1
    assert "longer than 10 bytes" in caplog.text


def test_unknown_keys_are_skipped_and_counted() -> None:
    keys = [(k.KEY_F1 + 4, 1), (k.KEY_F1 + 4, 0), (k.KEY_BACKSPACE, 1), (k.KEY_BACKSPACE, 0), (999, 1), (999, 0)]
    decoder = WedgeDecoder("us")
    scans = [scan for key in [*keys, *scanner_keys("A")] if (scan := decoder.feed(*key)) is not None]
    assert scans == [b"A"]
    assert decoder.stats.unknown_keys == 3
    # Shift+AltGr gives nothing on the French layout: skipped and counted, not a crash.
    fr = WedgeDecoder("fr")
    for key in [(k.KEY_LEFTSHIFT, 1), (k.KEY_RIGHTALT, 1), (k.KEY_5, 1), (k.KEY_5, 0)]:
        assert fr.feed(*key) is None
    assert fr.stats.unknown_keys == 1


def test_idle_flush_abandons_a_partial_scan() -> None:
    decoder = WedgeDecoder("us")
    for key in scanner_keys("PART", terminator=None):
        decoder.feed(*key)
    assert decoder.pending
    assert decoder.flush_stale() == b"PART"
    assert not decoder.pending and decoder.stats.abandoned == 1
    assert [s for key in scanner_keys("NEXT") if (s := decoder.feed(*key))] == [b"NEXT"]
    assert decoder.flush_stale() == b"" and decoder.stats.abandoned == 1


def test_dead_keys_compose_like_the_host() -> None:
    de = [(k.KEY_GRAVE, 1), (k.KEY_GRAVE, 0), (k.KEY_E, 1), (k.KEY_E, 0)]  # dead ^ then e
    de += [(k.KEY_GRAVE, 1), (k.KEY_GRAVE, 0), (k.KEY_X, 1), (k.KEY_X, 0)]  # dead ^ then x: no such letter
    de += [(k.KEY_GRAVE, 1), (k.KEY_GRAVE, 0), (k.KEY_SPACE, 1), (k.KEY_SPACE, 0), (k.KEY_ENTER, 1)]
    assert decode(kernel_events(de), "de") == ["ê^x^".encode("latin-1")]


def test_kernel_dropping_events_discards_the_scan_in_progress() -> None:
    events = kernel_events(scanner_keys("LOST", terminator=None))
    events.append(InputEvent(1001, 0, ecodes.EV_SYN, ecodes.SYN_DROPPED, 0))
    events += kernel_events([(k.KEY_Q, 1)])  # up to and including the next SYN_REPORT: ignored
    events += kernel_events(scanner_keys("KEPT"))
    assert decode(events) == [b"KEPT"]


def test_scan_interleaved_with_typing_on_the_store_keyboard() -> None:
    """Each input device has its own node; the driver reads only the scanner's."""
    scan = kernel_events(scanner_keys("CP1:SCANNED"), start=1000.000, step=0.004)
    typing = kernel_events(scanner_keys("hello till", terminator=None), start=1000.001, step=0.004)
    merged = sorted([(SCANNER, e) for e in scan] + [(KEYBOARD, e) for e in typing], key=lambda pe: pe[1].timestamp())
    assert [p for p, _ in merged[:6]] == [SCANNER, SCANNER, SCANNER, KEYBOARD, KEYBOARD, KEYBOARD]  # really interleaved
    # Merged into one decoder they would be garbage; split per device as the kernel does, they are not.
    assert decode(e for _, e in merged) != [b"CP1:SCANNED"]
    assert decode(e for p, e in merged if p == SCANNER) == [b"CP1:SCANNED"]

    async def run() -> list[Read]:
        kernel = FakeKernel({SCANNER: [FakeDevice([e for p, e in merged if p == SCANNER])]})
        kernel.devices[KEYBOARD] = [FakeDevice([e for p, e in merged if p == KEYBOARD])]
        driver = KeyboardWedgeDriver("till-1", SCANNER, open_device=kernel.open)
        reads = await take(driver, 1)
        assert kernel.opened == [SCANNER]
        return reads

    (read,) = asyncio.run(run())
    assert read.data == b"CP1:SCANNED" and b"hello" not in read.data


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet=string.printable[:95], min_size=1, max_size=40), layout=st.sampled_from(["us", "de", "fr"])
)
def test_round_trip_printable_ascii(text: str, layout: str) -> None:
    decoder = WedgeDecoder(layout)
    scans = [scan for key in scanner_keys(text, layout) if (scan := decoder.feed(*key)) is not None]
    assert scans == [text.encode("ascii")]
    assert decoder.stats.unknown_keys == 0


# --- tables ------------------------------------------------------------------------------------


def test_key_codes_are_the_kernels() -> None:
    for name in dir(k):
        if name.startswith(("KEY_", "EV_", "SYN_", "MSC_")):
            assert getattr(k, name) == getattr(ecodes, name), name


def test_hid_usages_map_to_evdev_keys() -> None:
    assert k.HID_USAGE_TO_KEY[0x04] == ecodes.KEY_A
    assert k.HID_USAGE_TO_KEY[0x1D] == ecodes.KEY_Z
    assert k.HID_USAGE_TO_KEY[0x27] == ecodes.KEY_0
    assert k.HID_USAGE_TO_KEY[0x28] == ecodes.KEY_ENTER
    assert k.HID_USAGE_TO_KEY[0x2B] == ecodes.KEY_TAB
    assert [k.HID_USAGE_TO_KEY[u] for u in range(0x59, 0x63)] == [getattr(ecodes, f"KEY_KP{d}") for d in "1234567890"]
    assert k.HID_USAGE_TO_KEY[0x64] == ecodes.KEY_102ND


def test_unknown_layout_and_terminator_are_refused() -> None:
    with pytest.raises(ValueError, match="known: de, fr, us"):
        WedgeDecoder("dvorak")
    with pytest.raises(ValueError):
        WedgeDecoder("us", terminators={"space"})


def test_looks_like_scanner() -> None:
    assert looks_like_scanner("Honeywell Imaging & Mobility 1900", 0x0C2E, 0x0B01)
    assert looks_like_scanner("Symbol Technologies, Inc, 2008 Symbol Bar Code Scanner", 0x05E0, 0x1200)
    assert looks_like_scanner("USB HID", 0x05F9, 0x2206)  # Datalogic by vendor id alone
    assert looks_like_scanner("USB Keyboard", 0x1A86, 0xE026, "/dev/input/by-id/usb-NT_USB_Barcode_Scanner-event-kbd")
    assert not looks_like_scanner("Logitech USB Keyboard", 0x046D, 0xC31C, KEYBOARD)
    assert not looks_like_scanner("Dell KB216 Wired Keyboard", 0x413C, 0x2113)


# --- the evdev driver with a fake device --------------------------------------------------------


class FakeDevice:
    """Behaves like evdev.InputDevice: yields kernel events, then waits; records grab calls."""

    def __init__(self, script: list[InputEvent | BaseException], name: str = "Honeywell 1900", vendor: int = 0x0C2E):
        self.script = script
        self.name = name
        self.info = SimpleNamespace(vendor=vendor, product=0x0B01)
        self.calls: list[str] = []
        self.gone = False
        self.closed = asyncio.Event()

    def grab(self) -> None:
        self.calls.append("grab")

    def ungrab(self) -> None:
        self.calls.append("ungrab")
        if self.gone:
            raise OSError(errno.ENODEV, "No such device")

    def close(self) -> None:
        self.calls.append("close")
        self.closed.set()

    async def async_read_loop(self) -> AsyncIterator[InputEvent]:
        for item in self.script:
            await asyncio.sleep(0)
            if isinstance(item, BaseException):
                self.gone = True
                raise item
            yield item
        await asyncio.Event().wait()  # no more input: block like an idle device


class FakeKernel:
    """Device nodes by path; a path with no devices left is unplugged (ENOENT)."""

    def __init__(self, devices: dict[str, list[FakeDevice]]):
        self.devices = devices
        self.opened: list[str] = []

    def open(self, path: str) -> FakeDevice:
        queue = self.devices.get(path)
        if not queue:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        self.opened.append(path)
        return queue.pop(0)


async def take(driver: KeyboardWedgeDriver, count: int) -> list[Read]:
    reads: list[Read] = []

    async def collect() -> None:
        async with contextlib.aclosing(driver.reads()) as stream:
            async for read in stream:
                reads.append(read)
                if len(reads) == count:
                    return

    try:
        await asyncio.wait_for(collect(), 5.0)
    finally:
        await driver.close()
    return reads


async def test_driver_grabs_reads_stamps_and_ungrabs() -> None:
    device = FakeDevice(kernel_events(scanner_keys("CP1:ONE") + scanner_keys("CP1:TWO")))
    driver = KeyboardWedgeDriver("till-1", SCANNER, open_device=FakeKernel({SCANNER: [device]}).open)
    before_us, before_perf = time.time_ns() // 1000, time.perf_counter_ns()
    reads = await take(driver, 2)
    after_us, after_perf = time.time_ns() // 1000, time.perf_counter_ns()
    assert [(r.scanner_id, r.data, r.symbology) for r in reads] == [
        ("till-1", b"CP1:ONE", ""),
        ("till-1", b"CP1:TWO", ""),
    ]
    for read in reads:
        assert before_us <= read.at_us <= after_us
        assert before_perf <= read.at_perf_ns <= after_perf
    assert reads[0].at_perf_ns <= reads[1].at_perf_ns
    assert device.calls == ["grab", "ungrab", "close"]
    await driver.signal(True)  # a no-op, but part of the interface


async def test_driver_without_grab_never_grabs() -> None:
    device = FakeDevice(kernel_events(scanner_keys("X")))
    driver = KeyboardWedgeDriver("till-1", SCANNER, grab=False, open_device=FakeKernel({SCANNER: [device]}).open)
    assert [r.data for r in await take(driver, 1)] == [b"X"]
    assert device.calls == ["close"]


async def test_driver_rides_out_unplug_and_replug(caplog: pytest.LogCaptureFixture) -> None:
    first = FakeDevice([*kernel_events(scanner_keys("BEFORE")), *kernel_events(scanner_keys("HALF", terminator=None))])
    first.script.append(OSError(errno.ENODEV, "No such device"))
    second = FakeDevice(kernel_events(scanner_keys("AFTER")))
    kernel = FakeKernel({SCANNER: [first]})
    driver = KeyboardWedgeDriver("till-1", SCANNER, open_device=kernel.open, retry_interval=0.01)

    async def replug_later() -> None:
        await first.closed.wait()
        await asyncio.sleep(0.05)  # unplugged for a few polls
        kernel.devices[SCANNER] = [second]

    with caplog.at_level(logging.WARNING):
        replug = asyncio.create_task(replug_later())
        reads = await take(driver, 2)
        await replug
    assert [r.data for r in reads] == [b"BEFORE", b"AFTER"]
    assert first.calls == ["grab", "ungrab", "close"]  # ungrab on the dead device failed quietly
    assert second.calls == ["grab", "ungrab", "close"]
    assert "went away" in caplog.text and "cannot open" in caplog.text
    assert "partial scan of 4 bytes lost" in caplog.text


async def test_driver_abandons_a_stale_partial_scan(caplog: pytest.LogCaptureFixture) -> None:
    class PausingDevice(FakeDevice):
        async def async_read_loop(self) -> AsyncIterator[InputEvent]:
            for event in kernel_events(scanner_keys("STA", terminator=None)):
                yield event
            await asyncio.sleep(0.15)  # the scanner stalls mid-scan
            for event in kernel_events(scanner_keys("LE") + scanner_keys("FRESH")):
                yield event
            await asyncio.Event().wait()

    driver = KeyboardWedgeDriver("till-1", SCANNER, idle_timeout=0.05, open_device=lambda path: PausingDevice([]))
    with caplog.at_level(logging.WARNING):
        reads = await take(driver, 2)
    assert [r.data for r in reads] == [b"LE", b"FRESH"]
    assert "abandoned a partial scan (3 bytes)" in caplog.text


async def test_driver_close_while_waiting_for_the_device() -> None:
    driver = KeyboardWedgeDriver("till-1", SCANNER, open_device=FakeKernel({}).open, retry_interval=10)

    async def all_reads() -> list[Read]:
        return [read async for read in driver.reads()]

    task = asyncio.create_task(all_reads())
    await asyncio.sleep(0.02)
    await driver.close()
    assert await asyncio.wait_for(task, 1) == []


async def test_driver_retries_a_grab_held_elsewhere(caplog: pytest.LogCaptureFixture) -> None:
    class Busy(FakeDevice):
        def grab(self) -> None:
            self.calls.append("grab")
            raise OSError(errno.EBUSY, "Device or resource busy")

    busy, free = Busy([]), FakeDevice(kernel_events(scanner_keys("MINE")))
    driver = KeyboardWedgeDriver(
        "till-1", SCANNER, retry_interval=0.01, open_device=FakeKernel({SCANNER: [busy, free]}).open
    )
    with caplog.at_level(logging.WARNING):
        assert [r.data for r in await take(driver, 1)] == [b"MINE"]
    assert busy.calls == ["grab", "close"]
    assert "another process holds an exclusive grab" in caplog.text


async def test_driver_warns_when_the_device_does_not_look_like_a_scanner(caplog: pytest.LogCaptureFixture) -> None:
    device = FakeDevice(kernel_events(scanner_keys("Q")), name="Logitech USB Keyboard", vendor=0x046D)
    driver = KeyboardWedgeDriver("till-1", KEYBOARD, open_device=FakeKernel({KEYBOARD: [device]}).open)
    with caplog.at_level(logging.WARNING):
        await take(driver, 1)
    assert "does not look like a barcode scanner" in caplog.text


async def test_python_evdev_read_loop_over_a_pipe(caplog: pytest.LogCaptureFixture) -> None:
    """python-evdev's own async_read_loop over a pipe carrying kernel `struct input_event`s.

    The idle timeout must not cancel evdev's pending read (that would lose the next batch): the
    stalled partial scan is abandoned and the scans after it arrive whole.
    """
    from evdev.eventio_async import EventIO

    class PipeInputDevice(EventIO):
        name = "Honeywell 1900"

        def __init__(self, fd: int) -> None:
            self.fd = fd
            self.calls: list[str] = []

        def grab(self) -> None:
            self.calls.append("grab")

        def ungrab(self) -> None:
            self.calls.append("ungrab")

        def close(self) -> None:
            self.calls.append("close")
            super().close()
            os.close(self.fd)

    def raw(events: Iterable[InputEvent]) -> bytes:
        return b"".join(struct.pack("llHHi", e.sec, e.usec, e.type, e.code, e.value) for e in events)

    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    device = PipeInputDevice(read_end)
    driver = KeyboardWedgeDriver("till-1", SCANNER, idle_timeout=0.05, open_device=lambda path: device)
    try:
        os.write(write_end, raw(kernel_events(scanner_keys("STA", terminator=None))))
        with caplog.at_level(logging.WARNING):
            task = asyncio.create_task(take(driver, 2))
            await asyncio.sleep(0.2)  # the scanner stalls mid-scan
            os.write(write_end, raw(kernel_events(scanner_keys("LE"))))
            await asyncio.sleep(0.01)
            os.write(write_end, raw(kernel_events(scanner_keys("FRESH"))))
            reads = await task
    finally:
        os.close(write_end)
    assert [r.data for r in reads] == [b"LE", b"FRESH"]
    assert "abandoned a partial scan (3 bytes)" in caplog.text
    assert device.calls == ["grab", "ungrab", "close"]
