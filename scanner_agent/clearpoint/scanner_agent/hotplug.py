"""Waiting for devices to come and go: one udev monitor per event loop, shared by every driver and watch.

Where pyudev and udev are there, a scanner plugged back in is reopened the moment udev announces it, not
at the driver's next poll. Where they are not (containers, other systems, a monitor that breaks), every
waiter falls back to polling at its own interval, which stays the safety net in any case: udev may drop
an event, and a device can fail to open for reasons no event will announce (permissions, a grab).

A waiter latches events from the moment it starts following, so an event that lands between a failed
open and the next wait is not lost; a plug-in is a burst of events (a keyboard-mode scanner's input and
hidraw nodes, say), so a woken waiter lets the burst settle before its owner looks again.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

# The subsystems of the nodes scanners are read through; the USB device itself adds only noise.
SUBSYSTEMS = ("tty", "input", "hidraw")
SETTLE = 0.2  # seconds a woken waiter lets a burst of events finish
_MAX_DRAIN = 1000  # events taken in one go: a monitor that never runs dry cannot hold the loop


class Monitor(Protocol):
    """The part of `pyudev.Monitor` used here; pyudev is optional and has no type hints."""

    def fileno(self) -> int: ...

    def filter_by(self, subsystem: str) -> None: ...

    def start(self) -> None: ...

    def poll(self, timeout: float | None = None) -> object | None: ...


# Makes an unstarted monitor; raises (ImportError, OSError, ...) where udev cannot be followed.
MonitorFactory = Callable[[], Monitor]


def udev_monitor() -> Monitor:
    """A monitor of udev's own events (sent once its rules ran, so the /dev links exist by then)."""
    pyudev = importlib.import_module("pyudev")
    monitor: Monitor = pyudev.Monitor.from_netlink(pyudev.Context())
    return monitor


class _Shared:
    """One monitor on one event loop, and the waiters it wakes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, factory: MonitorFactory) -> None:
        self.loop = loop
        self.factory = factory
        self.waiters: set[Waiter] = set()
        self._monitor: Monitor | None = None
        self._fd: int | None = None
        try:
            monitor = factory()
            for subsystem in SUBSYSTEMS:
                monitor.filter_by(subsystem)
            monitor.start()
            fd = monitor.fileno()
            loop.add_reader(fd, self._drain)
        except ImportError:
            log.info("hotplug: pyudev is not installed; devices are polled for")
        except Exception as exc:  # no udev (containers), no netlink, no add_reader: polling still works
            log.info("hotplug: udev cannot be followed here (%s); devices are polled for", exc)
        else:
            self._monitor, self._fd = monitor, fd
            log.info("hotplug: following udev; a device plugged in is opened at once")

    @property
    def following(self) -> bool:
        return self._fd is not None

    def _drain(self) -> None:
        try:
            for _ in range(_MAX_DRAIN):
                if self._monitor is None or self._monitor.poll(timeout=0) is None:
                    break
        except Exception as exc:  # a broken monitor must not break the loop; every waiter still polls
            log.warning("hotplug: the udev monitor failed (%s); devices are polled for from now on", exc)
            self.stop()
        for waiter in list(self.waiters):
            waiter.wake()

    def stop(self) -> None:
        if self._fd is not None:
            if not self.loop.is_closed():
                self.loop.remove_reader(self._fd)
            self._fd = None
        self._monitor = None


# (loop, factory) -> its shared monitor; entries leave with their last waiter.
_shared: dict[tuple[asyncio.AbstractEventLoop, MonitorFactory], _Shared] = {}


def _join(waiter: Waiter, factory: MonitorFactory) -> _Shared:
    loop = asyncio.get_running_loop()
    shared = _shared.get((loop, factory))
    if shared is None:
        shared = _shared[loop, factory] = _Shared(loop, factory)
    shared.waiters.add(waiter)
    return shared


def _leave(waiter: Waiter, shared: _Shared) -> None:
    shared.waiters.discard(waiter)
    if not shared.waiters:
        shared.stop()
        if _shared.get((shared.loop, shared.factory)) is shared:
            del _shared[shared.loop, shared.factory]


class Waiter:
    """One owner's wait for devices (a driver, a watch): until udev reports a change, `close()`, or the
    interval is up. `factory` makes the monitor (tests pass a fake); waiters with the same one share it."""

    def __init__(self, factory: MonitorFactory | None = None) -> None:
        self._factory = factory
        self._event = asyncio.Event()
        self._stopped = asyncio.Event()
        self._shared: _Shared | None = None

    @property
    def following(self) -> bool:
        """Whether udev events wake this waiter (else it only polls)."""
        return self._shared is not None and self._shared.following

    def start(self) -> None:
        """Follow udev from now on (the first `wait` does so too); must run on the event loop."""
        loop = asyncio.get_running_loop()
        if self._shared is not None and self._shared.loop is not loop:
            self.release()
        if self._shared is None:
            self._shared = _join(self, self._factory or udev_monitor)

    async def wait(self, interval: float) -> None:
        """Until udev reported something (and its burst settled), `close()`, or `interval` seconds at most.
        After `close()` it returns at once."""
        if self._stopped.is_set():
            return
        self.start()
        try:
            await asyncio.wait_for(self._event.wait(), interval)
        except TimeoutError:
            return
        if not self._stopped.is_set():
            try:
                await asyncio.wait_for(self._stopped.wait(), min(SETTLE, interval))
            except TimeoutError:
                pass
        self._event.clear()

    def wake(self) -> None:
        """End the current wait (after the settling time): something changed."""
        self._event.set()

    def release(self) -> None:
        """Stop following udev until the next wait; the last waiter of a monitor closes it."""
        shared, self._shared = self._shared, None
        if shared is not None:
            _leave(self, shared)

    def close(self) -> None:
        """End any wait at once, and every later one too."""
        self._stopped.set()
        self._event.set()
        self.release()
