"""USB keyboard-wedge scanners through the Linux input layer (evdev), grabbed so scans stay ours.

Configuration names the scanner by its stable `/dev/input/by-id/usb-<maker>_<model>_<serial>-event-kbd`
path (the `/dev/input/eventN` numbers change with plug order and reboots). The driver opens only
that device and grabs it (EVIOCGRAB), so its key presses stop reaching the till's focused window;
the store's own keyboard is never opened. `looks_like_scanner()` helps an installer tell the two
apart, and the driver warns when the configured device does not look like a scanner.

A keyboard-wedge scanner cannot be told to beep through evdev, so `signal()` does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Protocol

from clearpoint.scanner_agent import keymaps as k
from clearpoint.scanner_agent.discovery import SCANNER_VENDORS
from clearpoint.scanner_agent.drivers.device_loop import DeviceLoopDriver
from clearpoint.scanner_agent.scanner_kinds import ScannerKind
from clearpoint.scanner_agent.wedge import PRESS, WedgeDecoder

log = logging.getLogger(__name__)

_SCANNER_WORDS = re.compile(
    r"bar ?code|scanner|imager|honeywell|metrologic|hand held products|symbol|zebra|datalogic|newland|zebex|opticon",
    re.IGNORECASE,
)


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


class InputEventLike(Protocol):
    """The part of `evdev.InputEvent` the driver reads."""

    @property
    def type(self) -> int: ...

    @property
    def code(self) -> int: ...

    @property
    def value(self) -> int: ...


class InputDeviceLike(Protocol):
    """The part of `evdev.InputDevice` the driver uses (tests pass a fake)."""

    name: str

    def grab(self) -> None: ...

    def ungrab(self) -> None: ...

    def close(self) -> None: ...

    def async_read_loop(self) -> AsyncIterator[InputEventLike]: ...


def open_evdev(path: str) -> InputDeviceLike:
    """The real device. python-evdev is imported here so the rest works where it is missing."""
    import evdev

    return evdev.InputDevice(path)


class KeyboardWedgeDriver(DeviceLoopDriver[InputDeviceLike, InputEventLike]):
    """A wedge scanner's `/dev/input/by-id/...-event-kbd` device, grabbed and decoded."""

    kind = "input device"
    scanner_kind = ScannerKind.KEYBOARD

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
        control_keys: Mapping[int, int] | None = None,
        control_chars: bool = False,
        open_device: Callable[[str], InputDeviceLike] = open_evdev,
    ) -> None:
        self.decoder = WedgeDecoder(
            layout, terminators, max_length, control_keys=control_keys, control_chars=control_chars
        )
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

    def _stream(self, handle: InputDeviceLike) -> AsyncIterator[InputEventLike]:
        return handle.async_read_loop()

    def _decode(self, event: InputEventLike) -> list[bytes]:
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
