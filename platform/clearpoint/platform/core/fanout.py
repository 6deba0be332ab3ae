"""Live values fanned out to many watchers: one reader per process, never one query loop per stream.

Whatever is being watched (a campaign's progress, say) is read by a single task, for all watched
keys in one call, when this process changed one of them (`changed`) and every `poll_seconds` for
changes other processes committed; the database stays the one truth. Each watcher holds only the
latest value: a watcher that reads slowly (or not at all) skips the values it missed and gets the
newest when it next reads, so it costs one value however far behind it is, and never holds up
the reader or other watchers.

The reader paces itself: at least `min_gap_seconds` between reads, and more when many watchers are
open, so that values sent stay within `sends_per_second` whatever the number of streams; a busy
key's changes are coalesced into one value per read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

V = TypeVar("V")

# After a failed read (the database away, say), the reader waits this long before trying again.
RETRY_SECONDS = 1.0


class Watch(Generic[V]):
    """One watcher's view of one key: iterate to get each new value, newest first-come."""

    def __init__(self, topic: _Topic[V]) -> None:
        self._topic = topic
        self._seen = 0
        self._woken = asyncio.Event()

    def __aiter__(self) -> Watch[V]:
        return self

    async def __anext__(self) -> V:
        """The key's newest value, once there is one this watcher has not had."""
        while True:
            self._woken.clear()
            topic = self._topic
            if topic.version != self._seen and topic.value is not None:
                self._seen = topic.version
                return topic.value
            await self._woken.wait()


class _Topic(Generic[V]):
    __slots__ = ("value", "version", "watchers")

    def __init__(self) -> None:
        self.value: V | None = None
        self.version = 0
        self.watchers: set[Watch[V]] = set()

    def publish(self, value: V) -> None:
        if value == self.value:
            return
        self.value = value
        self.version += 1
        for watcher in self.watchers:
            watcher._woken.set()


class Fanout(Generic[V]):
    """Keys watched in this process, their latest values, and the one task that reads them."""

    def __init__(
        self,
        read: Callable[[Collection[str]], Awaitable[Mapping[str, V]]],
        *,
        poll_seconds: float = 1.0,
        min_gap_seconds: float = 0.1,
        sends_per_second: float = 1000.0,
    ) -> None:
        self._read = read
        self.poll_seconds = poll_seconds
        self.min_gap_seconds = min_gap_seconds
        self.sends_per_second = sends_per_second
        self._topics: dict[str, _Topic[V]] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reads = 0  # calls of `read`, for tests and benchmarks

    def watching(self, key: str) -> bool:
        return key in self._topics

    @property
    def watchers(self) -> int:
        return sum(len(topic.watchers) for topic in self._topics.values())

    def changed(self, key: str) -> None:
        """This process changed `key`: its watchers see the new value at the next read."""
        if key in self._topics:
            self._dirty.add(key)
            self._wake.set()

    @contextlib.asynccontextmanager
    async def watch(self, key: str) -> AsyncIterator[Watch[V]]:
        """Watch `key` for the life of the block; the first value comes from a fresh read."""
        topic = self._topics.get(key)
        if topic is None:
            topic = self._topics[key] = _Topic()
        watcher = Watch(topic)
        topic.watchers.add(watcher)
        self._dirty.add(key)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="fanout reader")
        try:
            yield watcher
        finally:
            topic.watchers.discard(watcher)
            if not topic.watchers and self._topics.get(key) is topic:
                del self._topics[key]
                self._dirty.discard(key)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        polled = time.monotonic()
        failing = False
        while True:
            if self._topics:
                due = polled + self.poll_seconds - time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(due, 0.0))
            else:
                await self._wake.wait()
            self._wake.clear()
            if time.monotonic() >= polled + self.poll_seconds:
                polled = time.monotonic()
                self._dirty.update(self._topics)
            keys = [key for key in self._dirty if key in self._topics]
            self._dirty.clear()
            if not keys:
                continue
            try:
                self.reads += 1
                values = await self._read(keys)
            except Exception as exc:  # the watchers wait; the reader must outlive any one failure
                self._dirty.update(keys)
                if not failing:
                    log.warning("live values cannot be read (%s); retrying every %g s", exc, RETRY_SECONDS)
                failing = True
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()
                continue
            if failing:
                log.warning("live values are read again")
                failing = False
            for key, value in values.items():
                topic = self._topics.get(key)
                if topic is not None:
                    topic.publish(value)
            # Pace: many watchers mean more sends per read, so fewer reads a second.
            await asyncio.sleep(max(self.min_gap_seconds, self.watchers / self.sends_per_second))
