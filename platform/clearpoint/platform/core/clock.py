"""Time as integer microseconds since the Unix epoch (UTC), behind an injectable clock.

One representation that compares the same on SQLite and PostgreSQL and needs no timezone handling
at the driver; tests move a ManualClock instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], int]
SECOND_US = 1_000_000


def system_clock() -> int:
    return time.time_ns() // 1000


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, now_us: int | None = None) -> None:
        self.now_us = system_clock() if now_us is None else now_us

    def __call__(self) -> int:
        return self.now_us

    def advance(self, seconds: float) -> None:
        self.now_us += int(seconds * SECOND_US)


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / SECOND_US, UTC).isoformat(timespec="seconds")
