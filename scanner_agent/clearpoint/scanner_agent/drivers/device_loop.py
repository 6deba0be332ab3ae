"""The read loop shared by the keyboard-wedge and hidraw drivers: open with retries, read, abandon a
stale partial scan, reopen after an unplug. The two differ only in how they open, read and decode a device.

A missing device is tried again when udev announces a change (`hotplug`), and every `retry_interval`
seconds in any case; each open says which USB device the path led to (`usb_identity`), so a path that
now leads to another scanner than before is a warning, not a silent swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Generic, Protocol, TypeVar

from clearpoint.scanner_agent import hotplug, usb_identity
from clearpoint.scanner_agent.aim import split_symbols
from clearpoint.scanner_agent.reads import Read, ScannerHealth, now_stamps
from clearpoint.scanner_agent.scanner_kinds import ScannerKind

log = logging.getLogger(__name__)

_GONE_ERRNOS = frozenset({errno.ENODEV, errno.ENOENT, errno.EIO, errno.ENXIO, errno.ESHUTDOWN})


class ScanDecoder(Protocol):
    """What the device loop needs from a decoder (WedgeDecoder, BootReportDecoder)."""

    @property
    def pending(self) -> bool: ...

    def flush_stale(self) -> bytes: ...

    def reset(self) -> None: ...


H = TypeVar("H")  # an open device handle
Item = TypeVar("Item")  # one unit the device delivers (an input event, a HID report)


class DeviceLoopDriver(Generic[H, Item]):
    """Open (retrying every `retry_interval` s), read, decode, abandon stale partial scans, reopen.

    Subclasses say how to open and release the device, how to read it, and how an item decodes
    into finished scans. Nothing here raises for device trouble: it is logged and ridden out.
    """

    kind = "device"  # in log lines
    scanner_kind = ScannerKind.KEYBOARD  # in heartbeats

    def __init__(
        self,
        scanner_id: str,
        path: str,
        decoder: ScanDecoder,
        *,
        idle_timeout: float = 1.0,
        retry_interval: float = 1.0,
        aim_prefix: bool = False,
    ) -> None:
        self.scanner_id = scanner_id
        self.path = path
        self.health = ScannerHealth(self.scanner_kind.value, path)
        self.idle_timeout = idle_timeout
        self.retry_interval = retry_interval
        self.aim_prefix = aim_prefix
        self._decoder = decoder
        self._closed = asyncio.Event()
        self._handle: H | None = None
        # Wakes a wait for the device on udev events (tests put one over a fake monitor in its place).
        self.hotplug = hotplug.Waiter()
        # Which USB device the path leads to at each open (tests point its root at a fake tree).
        self.identity = usb_identity.PathIdentity(scanner_id, path)

    # --- hooks --------------------------------------------------------------------------------

    def _open(self) -> H:
        """Open the device (raising OSError when it is not there or not ours)."""
        raise NotImplementedError

    def _release(self, handle: H) -> None:
        """Give the device back; must not raise, the device may already be gone."""
        raise NotImplementedError

    def _stream(self, handle: H) -> AsyncIterator[Item]:
        """Items as the device delivers them; raises OSError (or ends) when it goes away."""
        raise NotImplementedError

    def _decode(self, item: Item) -> list[bytes]:
        """Finished scans completed by this item."""
        raise NotImplementedError

    def _symbols(self, item: Item) -> list[tuple[str, bytes]]:
        """(AIM identifier, data) of each scan this item completed; devices that say the symbology override it."""
        return [("", data) for data in self._decode(item)]

    # --- Driver -------------------------------------------------------------------------------

    async def reads(self) -> AsyncIterator[Read]:
        try:
            while not self._closed.is_set():
                handle = await self._open_when_available()
                if handle is None:
                    return
                try:
                    async with contextlib.aclosing(self._read_until_gone(handle)) as scans:
                        async for said, data, at_us, at_perf_ns in scans:
                            split = self.aim_prefix and not said
                            for symbology, symbol in split_symbols(data) if split else [(said, data)]:
                                yield Read(self.scanner_id, symbol, symbology, at_us, at_perf_ns)
                finally:
                    self._drop(handle)
                # Gone (or ended): give it a moment before reopening (udev's news of the replug, or the
                # interval), so a device that opens but fails every read cannot spin the loop.
                await self._pause(self.retry_interval)
        finally:
            self.hotplug.release()

    async def signal(self, good: bool) -> None:
        """Keyboard-wedge scanners take no commands over this path; they beep on their own."""

    async def recorded(self, read: Read, journaled: bool) -> None:
        """Nor do they wait for the agent to keep a scan."""

    async def close(self) -> None:
        self._closed.set()
        self.hotplug.close()
        if self._handle is not None:
            self._drop(self._handle)

    # --- loop ---------------------------------------------------------------------------------

    def _drop(self, handle: H) -> None:
        if self._handle is handle:
            self._handle = None
            self._release(handle)

    async def _open_when_available(self) -> H | None:
        outage = False
        while not self._closed.is_set():
            try:
                handle = self._open()
            except OSError as exc:
                self.health.down(f"cannot open: {_explain(exc)}")
                if not outage:
                    log.warning(
                        "scanner %s: cannot open %s %s (%s); retrying every %gs",
                        self.scanner_id,
                        self.kind,
                        self.path,
                        _explain(exc),
                        self.retry_interval,
                    )
                    outage = True
            else:
                if outage:
                    log.info("scanner %s: %s is back", self.scanner_id, self.path)
                self.health.device = self.identity.opened()
                self._handle = handle
                self._decoder.reset()
                self.health.up()
                return handle
            await self._pause(self.retry_interval)
        return None

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake when udev reports a change, and at once when the driver is closed."""
        await self.hotplug.wait(seconds)

    async def _read_until_gone(self, handle: H) -> AsyncGenerator[tuple[str, bytes, int, int], None]:
        stream = self._stream(handle)
        closed = asyncio.ensure_future(self._closed.wait())
        # The pending read is never cancelled for an idle timeout: cancelling evdev's read future
        # can lose the batch it is about to deliver. We stop waiting for it instead.
        next_item: asyncio.Future[Item] | None = None
        try:
            while True:
                if next_item is None:
                    next_item = asyncio.ensure_future(anext(stream))
                timeout = self.idle_timeout if self._decoder.pending else None
                waiting: set[asyncio.Future[Any]] = {next_item, closed}
                done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if closed in done:
                    return
                if not done:
                    self._abandon()
                    continue
                finished, next_item = next_item, None
                try:
                    item = finished.result()
                except StopAsyncIteration:
                    self.health.down("the device ended")
                    log.warning(
                        "scanner %s: %s %s ended; waiting for it to return", self.scanner_id, self.kind, self.path
                    )
                    return
                except OSError as exc:
                    self.health.down(f"went away: {_explain(exc)}")
                    log.warning(
                        "scanner %s: %s %s went away (%s); polling every %gs for it to return",
                        self.scanner_id,
                        self.kind,
                        self.path,
                        _explain(exc),
                        self.retry_interval,
                    )
                    return
                for symbology, data in self._symbols(item):
                    at_us, at_perf_ns = now_stamps()
                    yield symbology, data, at_us, at_perf_ns
        finally:
            closed.cancel()
            if next_item is not None:
                next_item.cancel()
                await asyncio.wait({next_item})
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            partial = self._decoder.flush_stale()
            if partial:
                log.warning("scanner %s: partial scan of %d bytes lost with the device", self.scanner_id, len(partial))

    def _abandon(self) -> None:
        partial = self._decoder.flush_stale()
        log.warning(
            "scanner %s: abandoned a partial scan (%d bytes) after %gs without a key; no terminator came",
            self.scanner_id,
            len(partial),
            self.idle_timeout,
        )


def _explain(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return f"{exc.strerror}: the agent's user needs read access (a udev rule or the 'input' group)"
    if exc.errno == errno.EBUSY:
        return "busy: another process holds an exclusive grab on it"
    if exc.errno in _GONE_ERRNOS:
        return f"{exc.strerror or 'gone'}: unplugged?"
    return str(exc)
