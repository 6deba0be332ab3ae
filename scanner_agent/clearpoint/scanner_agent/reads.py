"""What every scanner driver produces, and the small interface the agent drives them through.

A driver owns one scanner: it opens the device, frames the bytes or key events into whole reads,
survives the device going away and coming back, and, where the device takes them, sends
good-read / bad-read signals back. Everything after the read (signing, journal, upload) is the
agent's business, so drivers stay small and testable with recorded input.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Read:
    """One decoded scan, exactly as the scanner delivered it (AIM prefix and terminator removed)."""

    scanner_id: str
    data: bytes
    # AIM symbology identifier ("]Q1", "]E0", ...) when the scanner sent one; "" otherwise.
    symbology: str
    # Wall-clock UTC microseconds at which the last byte (or key event) of the scan arrived.
    at_us: int
    # time.perf_counter_ns() at that same moment, for measuring the agent's own cost.
    at_perf_ns: int


@dataclass(slots=True)
class ScannerHealth:
    """What a driver knows of its device, for the agent's heartbeat: the fleet view shows a scanner
    unplugged or failing before a cashier calls."""

    kind: str
    path: str
    connected: bool = False
    last_scan_us: int | None = None
    last_error: str = ""
    last_error_us: int | None = None
    # Which USB device the path led to at the last open ("usb 0c2e:0b81 serial 17321B4C01", or the USB port
    # without a serial number: usb_identity); "" when unknown.
    device: str = ""
    # Set on every change of `connected`, so a heartbeat goes out at once rather than at the next beat.
    changed: Callable[[], None] | None = None

    def up(self) -> None:
        if not self.connected:
            self.connected = True
            self._tell()

    def down(self, error: str) -> None:
        self.trouble(error)
        if self.connected:
            self.connected = False
            self._tell()

    def trouble(self, error: str) -> None:
        self.last_error = error
        self.last_error_us = time.time_ns() // 1000

    def _tell(self) -> None:
        if self.changed is not None:
            self.changed()


def now_stamps() -> tuple[int, int]:
    """(UTC microseconds, perf_counter nanoseconds) for stamping a read as it completes."""
    return time.time_ns() // 1000, time.perf_counter_ns()


class Driver(Protocol):
    """One scanner. `reads()` runs until `close()`; it never raises for device trouble."""

    scanner_id: str
    health: ScannerHealth

    def reads(self) -> AsyncIterator[Read]:
        """Every read, in order. Unplug, replug and bad input are logged and ridden out."""
        ...

    async def signal(self, good: bool) -> None:
        """Good-read or bad-read feedback to the scanner (beep, LED); a no-op where unsupported."""
        ...

    async def recorded(self, read: Read, journaled: bool) -> None:
        """The agent kept this read (the journal committed it), or refused it: a scanner that waits for an
        acknowledgement (SSI) hears it only once the scan is safe. A no-op for scanners that take none."""
        ...

    async def close(self) -> None:
        """Stop reading and release the device (and any exclusive grab)."""
        ...
