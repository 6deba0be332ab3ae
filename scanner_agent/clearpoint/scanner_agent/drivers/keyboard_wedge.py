"""USB keyboard-wedge scanners through the Linux input layer (evdev), grabbed so scans stay ours.

Configuration names the scanner by its stable `/dev/input/by-id/usb-<maker>_<model>_<serial>-event-kbd`
path (the `/dev/input/eventN` numbers change with plug order and reboots). The driver opens only
that device and grabs it (EVIOCGRAB), so its key presses stop reaching the till's focused window;
the store's own keyboard is never opened. `looks_like_scanner()` helps an installer tell the two
apart, and the driver warns when the configured device does not look like a scanner.

A keyboard-wedge scanner cannot be told to beep through evdev, so `signal()` does nothing.

The shared device loop (open with retries, read, idle flush, reopen after unplug) lives here in
`DeviceLoopDriver` and is reused by the hidraw driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from clearpoint.scanner_agent import keymaps as k
from clearpoint.scanner_agent.aim import split_aim
from clearpoint.scanner_agent.discovery import SCANNER_VENDORS
from clearpoint.scanner_agent.reads import Read, now_stamps
from clearpoint.scanner_agent.wedge import PRESS, WedgeDecoder

log = logging.getLogger(__name__)

_SCANNER_WORDS = re.compile(
    r"bar ?code|scanner|imager|honeywell|metrologic|hand held products|symbol|zebra|datalogic|newland|zebex|opticon",
    re.IGNORECASE,
)
_GONE_ERRNOS = frozenset({errno.ENODEV, errno.ENOENT, errno.EIO, errno.ENXIO, errno.ESHUTDOWN})


def looks_like_scanner(name: str, vendor: int | None = None, product: int | None = None, path: str = "") -> bool:
    """Whether an input device is probably a barcode scanner rather than the store's keyboard.

    Evidence is a scanner maker's USB vendor id (`discovery.SCANNER_VENDORS`), or a scanner word
    or maker in the device name or its by-id path. `product` is accepted so callers can pass the
    whole identity, but is not needed: these vendors make no keyboards. Cheap no-name scanners
    often show neither (they call themselves "USB Keyboard"), so False means "unproven".
    """
    del product
    if vendor is not None and vendor in SCANNER_VENDORS:
        return True
    text = f"{name} {path}".replace("_", " ").replace("-", " ")
    return _SCANNER_WORDS.search(text) is not None


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

    kind = "device"

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
        self.idle_timeout = idle_timeout
        self.retry_interval = retry_interval
        self.aim_prefix = aim_prefix
        self._decoder = decoder
        self._closed = asyncio.Event()
        self._handle: H | None = None

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

    # --- Driver -------------------------------------------------------------------------------

    async def reads(self) -> AsyncIterator[Read]:
        while not self._closed.is_set():
            handle = await self._open_when_available()
            if handle is None:
                return
            try:
                async with contextlib.aclosing(self._read_until_gone(handle)) as scans:
                    async for data, at_us, at_perf_ns in scans:
                        symbology, data = split_aim(data) if self.aim_prefix else ("", data)
                        yield Read(self.scanner_id, data, symbology, at_us, at_perf_ns)
            finally:
                self._drop(handle)
            # Gone (or ended): give it a moment before reopening, so a device that opens but fails
            # every read cannot spin the loop.
            await self._pause(self.retry_interval)

    async def signal(self, good: bool) -> None:
        """Keyboard-wedge scanners take no commands over this path; they beep on their own."""

    async def close(self) -> None:
        self._closed.set()
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
                self._handle = handle
                self._decoder.reset()
                return handle
            await self._pause(self.retry_interval)
        return None

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the driver is closed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    async def _read_until_gone(self, handle: H) -> AsyncIterator[tuple[bytes, int, int]]:
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
                done, _ = await asyncio.wait({next_item, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if closed in done:
                    return
                if not done:
                    self._abandon()
                    continue
                finished, next_item = next_item, None
                try:
                    item = finished.result()
                except StopAsyncIteration:
                    log.warning(
                        "scanner %s: %s %s ended; waiting for it to return", self.scanner_id, self.kind, self.path
                    )
                    return
                except OSError as exc:
                    log.warning(
                        "scanner %s: %s %s went away (%s); polling every %gs for it to return",
                        self.scanner_id,
                        self.kind,
                        self.path,
                        _explain(exc),
                        self.retry_interval,
                    )
                    return
                for data in self._decode(item):
                    at_us, at_perf_ns = now_stamps()
                    yield data, at_us, at_perf_ns
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


class InputDeviceLike(Protocol):
    """The part of `evdev.InputDevice` the driver uses (tests pass a fake)."""

    name: str

    def grab(self) -> None: ...

    def ungrab(self) -> None: ...

    def close(self) -> None: ...

    def async_read_loop(self) -> Any: ...


def open_evdev(path: str) -> InputDeviceLike:
    """The real device. python-evdev is imported here so the rest works where it is missing."""
    import evdev

    return evdev.InputDevice(path)


class KeyboardWedgeDriver(DeviceLoopDriver[InputDeviceLike, Any]):
    """A wedge scanner's `/dev/input/by-id/...-event-kbd` device, grabbed and decoded."""

    kind = "input device"

    def __init__(
        self,
        scanner_id: str,
        path: str,
        layout: str | k.Layout = "us",
        terminators: Iterable[str] = ("enter",),
        *,
        max_length: int = 4096,
        grab: bool = True,
        idle_timeout: float = 1.0,
        retry_interval: float = 1.0,
        aim_prefix: bool = False,
        open_device: Callable[[str], InputDeviceLike] = open_evdev,
    ) -> None:
        self.decoder = WedgeDecoder(layout, terminators, max_length)
        super().__init__(
            scanner_id,
            path,
            self.decoder,
            idle_timeout=idle_timeout,
            retry_interval=retry_interval,
            aim_prefix=aim_prefix,
        )
        self.grab = grab
        self._open_device = open_device
        self._dropping = False
        if path.startswith("/dev/input/event"):
            log.warning(
                "scanner %s: %s is numbered by plug order; configure its /dev/input/by-id/ path instead",
                scanner_id,
                path,
            )

    def _open(self) -> InputDeviceLike:
        device = self._open_device(self.path)
        try:
            if self.grab:
                device.grab()
        except OSError:
            with contextlib.suppress(OSError):
                device.close()
            raise
        info = getattr(device, "info", None)
        vendor, product = getattr(info, "vendor", None), getattr(info, "product", None)
        name = getattr(device, "name", "") or ""
        log.info(
            "scanner %s: opened %s (%r, usb %s:%s)%s",
            self.scanner_id,
            self.path,
            name,
            f"{vendor:04x}" if isinstance(vendor, int) else "?",
            f"{product:04x}" if isinstance(product, int) else "?",
            ", grabbed" if self.grab else ", NOT grabbed: scans also type into the focused window",
        )
        if not looks_like_scanner(name, vendor, product, self.path):
            log.warning(
                "scanner %s: %s (%r) does not look like a barcode scanner; if it is the store keyboard, "
                "the till has lost its keyboard to this agent",
                self.scanner_id,
                self.path,
                name,
            )
        self._dropping = False
        return device

    def _release(self, handle: InputDeviceLike) -> None:
        if self.grab:
            with contextlib.suppress(OSError):
                handle.ungrab()
        with contextlib.suppress(OSError):
            handle.close()

    def _stream(self, handle: InputDeviceLike) -> AsyncIterator[Any]:
        return handle.async_read_loop()

    def _decode(self, event: Any) -> list[bytes]:
        if event.type == k.EV_SYN:
            if event.code == k.SYN_DROPPED:
                # The kernel's buffer overflowed: the scan in progress has holes. Drop it, ignore
                # events up to the next SYN_REPORT, then re-read which modifiers are down.
                log.warning("scanner %s: the kernel dropped input events; scan in progress discarded", self.scanner_id)
                self.decoder.reset()
                self._dropping = True
            elif event.code == k.SYN_REPORT and self._dropping:
                self._dropping = False
                self._resync_modifiers()
            return []
        if event.type != k.EV_KEY or self._dropping:
            return []
        data = self.decoder.feed(event.code, event.value)
        return [data] if data is not None else []

    def _resync_modifiers(self) -> None:
        active_keys = getattr(self._handle, "active_keys", None)
        if active_keys is None:
            return
        try:
            down = active_keys()
        except OSError:
            return
        for code in down:
            if code in k.HID_MODIFIER_KEYS:
                self.decoder.feed(code, PRESS)
