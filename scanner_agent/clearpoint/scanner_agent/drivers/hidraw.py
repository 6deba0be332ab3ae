"""USB keyboard-wedge scanners read as raw HID boot-keyboard reports from `/dev/hidrawN`.

For hosts where the input layer is not an option (no evdev, or the scanner's keyboard interface
is unbound from it). Each report is 8 bytes: a modifier bitmap, a reserved byte and up to six
usage ids of the keys currently down. `BootReportDecoder` turns the differences between
successive reports into key presses and releases and feeds them to the same `WedgeDecoder` the
evdev driver uses, so layouts, Alt mode and terminators behave identically.

Reading hidraw does NOT stop the kernel from also typing the scan into the focused window: a
hidraw reader gets a copy. Use it only where the scanner's input device is unbound or ignored
(e.g. a udev rule), or prefer the evdev driver, which grabs the device.

Configure the path by a stable name (a udev symlink such as /dev/scanner-counter1); hidrawN
numbers follow plug order. `signal()` does nothing: the boot protocol has no beeper.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping

from clearpoint.scanner_agent import keymaps as k
from clearpoint.scanner_agent.drivers.device_loop import DeviceLoopDriver
from clearpoint.scanner_agent.scanner_kinds import ScannerKind
from clearpoint.scanner_agent.wedge import PRESS, RELEASE, WedgeDecoder

log = logging.getLogger(__name__)

BOOT_REPORT_LENGTH = 8
_ERROR_USAGES = frozenset({0x01, 0x02, 0x03})  # ErrorRollOver, POSTFail, ErrorUndefined
_MAX_READ = 64  # hidraw returns one whole report per read; anything longer than ours is not a boot report


class BootReportDecoder:
    """Boot-keyboard reports of one scanner in, whole scans out (through a WedgeDecoder).

    A key counts as pressed when its usage is in a report and was not in the previous one. The
    modifier byte is state, not a latch: every report says which modifiers are down for the keys
    it presses, so "Shift alone, Shift+key, Shift alone, nothing" types one shifted key. Within a
    report, releases go first (an Alt release ends an Alt-mode character), then modifier changes,
    then new keys in slot order.

    Scanners that pack several keystrokes into one report (Alt mode's keypad digits, say) may put
    the same usage in the key array more than once: KP0 KP8 KP0 under Alt is Alt+080, "P". The
    array is then read as keystrokes in slot order, each repeat a release and a new press, rather
    than as a set (HID 1.11 appendix C describes a set; the kernel's evdev layer reads it so and
    drops the repeat, which is why such scanners must be read through hidraw). A usage held from
    the previous report stays held for as many of its slots as it held before.
    """

    def __init__(
        self,
        layout: str | k.Layout = "us",
        terminators: Iterable[str] = ("enter",),
        max_length: int = 4096,
        report_id: int | None = None,
        *,
        control_keys: Mapping[int, int] | None = None,
        control_chars: bool = False,
    ) -> None:
        self.keys = WedgeDecoder(
            layout, terminators, max_length, control_keys=control_keys, control_chars=control_chars
        )
        # Devices with several reports prefix each with its id; None for plain boot keyboards.
        self.report_id = report_id
        self.wrong_length = 0
        self.rollover_errors = 0
        self.unknown_usages = 0
        self._modifiers = 0
        self._down: tuple[int, ...] = ()

    @property
    def pending(self) -> bool:
        return self.keys.pending

    def flush_stale(self) -> bytes:
        return self.keys.flush_stale()

    def reset(self) -> None:
        """Forget key state too (after reopening the device)."""
        self.keys.reset()
        self._modifiers = 0
        self._down = ()

    def feed(self, report: bytes) -> list[bytes]:
        """One report as read from the device; the scans it completed (usually none)."""
        expected = BOOT_REPORT_LENGTH + (self.report_id is not None)
        if len(report) != expected:
            self.wrong_length += 1
            log.warning("HID report of %d bytes where %d were expected; skipped", len(report), expected)
            return []
        if self.report_id is not None:
            if report[0] != self.report_id:
                return []  # another report of the same device (LEDs, vendor data)
            report = report[1:]
        modifiers = report[0]
        usages = tuple(usage for usage in report[2:] if usage != 0)
        if _ERROR_USAGES.intersection(usages):
            # Too many keys down: the report says nothing about which. Keep the previous state.
            self.rollover_errors += 1
            return []
        # Modifier usages in the key array would double the bitmap; the bitmap is authoritative.
        usages = tuple(usage for usage in usages if usage < 0xE0)

        previous_modifiers, previous_down = self._modifiers, self._down
        self._modifiers, self._down = modifiers, usages
        scans: list[bytes] = []
        for usage in dict.fromkeys(previous_down):
            if usage not in usages:
                self._usage(usage, RELEASE, scans)
        for bit, code in enumerate(k.HID_MODIFIER_KEYS):
            if previous_modifiers & (1 << bit) and not modifiers & (1 << bit):
                self._key(code, RELEASE, scans)
        for bit, code in enumerate(k.HID_MODIFIER_KEYS):
            if modifiers & (1 << bit) and not previous_modifiers & (1 << bit):
                self._key(code, PRESS, scans)
        held = Counter(previous_down)  # slots of each usage still held from the previous report
        down = {usage for usage in previous_down if usage in usages}
        for usage in usages:
            if held[usage] > 0:
                held[usage] -= 1
                continue
            if usage in down:  # typed again within this report: let go of it first
                self._usage(usage, RELEASE, scans)
            self._usage(usage, PRESS, scans)
            down.add(usage)
        return scans

    def _usage(self, usage: int, value: int, scans: list[bytes]) -> None:
        code = k.HID_USAGE_TO_KEY.get(usage)
        if code is None:
            if value == PRESS:
                self.unknown_usages += 1
                log.warning("HID usage 0x%02x is not a keyboard key we know; skipped", usage)
            return
        self._key(code, value, scans)

    def _key(self, code: int, value: int, scans: list[bytes]) -> None:
        data = self.keys.feed(code, value)
        if data is not None:
            scans.append(data)


class HidrawDriver(DeviceLoopDriver[int, bytes]):
    """A wedge scanner's hidraw node, read with a non-blocking fd on the event loop."""

    kind = "hidraw device"
    scanner_kind = ScannerKind.HIDRAW

    def __init__(
        self,
        scanner_id: str,
        path: str,
        layout: str | k.Layout = "us",
        terminators: Iterable[str] = ("enter",),
        *,
        max_length: int = 4096,
        report_id: int | None = None,
        idle_timeout: float = 1.0,
        retry_interval: float = 1.0,
        aim_prefix: bool = False,
        control_keys: Mapping[int, int] | None = None,
        control_chars: bool = False,
    ) -> None:
        self.decoder = BootReportDecoder(
            layout, terminators, max_length, report_id, control_keys=control_keys, control_chars=control_chars
        )
        super().__init__(
            scanner_id,
            path,
            self.decoder,
            idle_timeout=idle_timeout,
            retry_interval=retry_interval,
            aim_prefix=aim_prefix,
        )

    def _open(self) -> int:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        log.info("scanner %s: opened %s (not grabbed: hidraw readers get a copy)", self.scanner_id, self.path)
        return fd

    def _release(self, handle: int) -> None:
        try:
            os.close(handle)
        except OSError as exc:
            log.debug("closing %s: %s", self.path, exc)

    def _decode(self, item: bytes) -> list[bytes]:
        return self.decoder.feed(item)

    def _stream(self, handle: int) -> AsyncIterator[bytes]:
        return read_reports(handle, _MAX_READ)


async def read_reports(fd: int, size: int) -> AsyncIterator[bytes]:
    """Reports from a non-blocking hidraw fd, one a read as hidraw delivers them (the HID POS driver's too)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            report = os.read(fd, size)
        except BlockingIOError:
            await _readable(loop, fd)
            continue
        if not report:
            # hidraw itself fails reads with EIO/ENODEV on unplug; a pipe standing in for it ends.
            raise OSError(errno.ENODEV, "end of file")
        yield report


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
