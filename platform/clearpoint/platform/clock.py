"""Time as integer microseconds since the Unix epoch (UTC), behind an injectable clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from google.protobuf import duration_pb2, timestamp_pb2

Clock = Callable[[], int]


def system_clock() -> int:
    return time.time_ns() // 1000


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, now_us: int | None = None) -> None:
        self.now_us = system_clock() if now_us is None else now_us

    def __call__(self) -> int:
        return self.now_us

    def advance(self, seconds: float) -> None:
        self.now_us += int(seconds * 1_000_000)


def to_timestamp(us: int | None) -> timestamp_pb2.Timestamp | None:
    if us is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromMicroseconds(us)
    return ts


def from_timestamp(ts: timestamp_pb2.Timestamp) -> int:
    return ts.ToMicroseconds()


def to_duration(us: int) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromMicroseconds(us)
    return d


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat(timespec="seconds")
