"""HID POS bar code scanners (USB HID usage page 0x8C, "Bar Code Scanner") read from `/dev/hidrawN`.

In this USB mode the scanner types nothing: each scan arrives in Scanned Data reports that carry the AIM
symbology identifier in fields of its own, the number of data bytes, the data exactly as decoded (GS and
all, no keyboard layout in between) and a flag for "the scan goes on in the next report". The report
descriptor says where each sits (`hid_descriptor.scanner_layout`); it is read from the device at every
open, and when it cannot be, the common 64-byte layout is assumed, with one log line.

The kernel's input layer leaves these devices alone (they are no keyboard), so nothing else sees the scans.
Configure the path by a stable name (a udev symlink); hidrawN numbers follow plug order. `signal()` does
nothing yet: the POS tables define beeper output reports, but we have not tested any scanner's.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import logging
import os
import stat
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from clearpoint.scanner_agent.drivers.device_loop import DeviceLoopDriver
from clearpoint.scanner_agent.drivers.hidraw import read_reports
from clearpoint.scanner_agent.hid_descriptor import FALLBACK_LAYOUT, MAX_DESCRIPTOR, ScannerLayout, scanner_layout
from clearpoint.scanner_agent.scanner_kinds import ScannerKind

log = logging.getLogger(__name__)

# linux/hidraw.h: HIDIOCGRDESCSIZE is _IOR('H', 0x01, int); HIDIOCGRDESC is _IOR('H', 0x02, struct
# hidraw_report_descriptor), a u32 size followed by HID_MAX_DESCRIPTOR_SIZE (4096) bytes.
_DESCRIPTOR_STRUCT = 4 + MAX_DESCRIPTOR
HIDIOCGRDESCSIZE = (2 << 30) | (4 << 16) | (ord("H") << 8) | 0x01
HIDIOCGRDESC = (2 << 30) | (_DESCRIPTOR_STRUCT << 16) | (ord("H") << 8) | 0x02
SYSFS_HIDRAW = Path("/sys/class/hidraw")
_MAX_READ = 4096  # more than any scanner report; hidraw returns one report a read, however large the buffer


@dataclass(frozen=True, slots=True)
class PosScan:
    symbology: str  # the AIM identifier ("]E0"), "" when the scanner sent none (zeros)
    data: bytes


class PosReportDecoder:
    """Reports of one HID POS scanner in, whole scans out.

    A report's data is cut to the length it states (or, without one, to its NUL padding); reports flagged
    "continued" are joined with the ones after them up to the first that is not. A report that cannot be
    right (wrong size, a report id not the scanner's, a length beyond the report) is skipped with a warning,
    and takes any partial scan with it, since a part of that scan is lost. A scan that keeps going past
    `max_length` is dropped, with everything up to its last report. Nothing here raises.
    """

    def __init__(self, layout: ScannerLayout = FALLBACK_LAYOUT, max_length: int = 4096) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, not {max_length}")
        self.layout = layout
        self.max_length = max_length
        self.wrong_length = 0
        self.unknown_reports = 0
        self.bad_length = 0
        self.too_long = 0
        self._parts: list[bytes] = []
        self._symbology = ""
        self._discarding = False  # inside a scan already dropped as too long, until its last report

    @property
    def pending(self) -> bool:
        return bool(self._parts) or self._discarding

    def flush_stale(self) -> bytes:
        partial = b"".join(self._parts)
        self.reset()
        return partial

    def reset(self) -> None:
        self._parts = []
        self._symbology = ""
        self._discarding = False

    def feed(self, report: bytes) -> list[PosScan]:
        """One report as read from the device; the scan it completed, if any."""
        lay = self.layout
        if lay.report_id and report[:1] != bytes([lay.report_id]):
            if report and report[0] in lay.other_reports:
                log.debug("HID POS input report %d is not a scan; skipped", report[0])
                return []
            self.unknown_reports += 1
            shown = f"id {report[0]}" if report else "an empty report"
            return self._reject(f"HID POS report with {shown} where the scanner's report is {lay.report_id}")
        if len(report) != lay.length:
            self.wrong_length += 1
            return self._reject(f"HID POS report of {len(report)} bytes where {lay.length} were expected")
        continued = _continued(report, lay)
        data = report[lay.data : lay.data + lay.capacity]
        if lay.data_length is not None:
            at, width = lay.data_length
            count = int.from_bytes(report[at : at + width], "little")
            if count > lay.capacity:
                self.bad_length += 1
                return self._reject(f"HID POS report says {count} data bytes but holds {lay.capacity}", continued)
            data = data[:count]
        else:
            data = data.rstrip(b"\0")
        if self._discarding:
            self._discarding = continued
            return []
        if not self._parts:
            self._symbology = _symbology(report, lay)
        self._parts.append(data)
        if sum(len(part) for part in self._parts) > self.max_length:
            self.too_long += 1
            self._parts = []
            self._discarding = continued
            log.warning(
                "HID POS scan longer than max_length (%d bytes); dropped%s",
                self.max_length,
                ", and the reports that continue it" if continued else "",
            )
            return []
        if continued:
            return []
        scan = PosScan(self._symbology, b"".join(self._parts))
        self.reset()
        if not scan.data:
            log.warning("HID POS scanned data report with no data; skipped")
            return []
        return [scan]

    def _reject(self, why: str, continued: bool | None = None) -> list[PosScan]:
        """Skip a report. A scan in progress goes with it, and so do the reports that continue it: they alone
        would be a wrong scan. Where the report's own flag cannot be trusted, one in progress is assumed."""
        partial, was_pending = b"".join(self._parts), self.pending
        self.reset()
        self._discarding = was_pending if continued is None else continued
        log.warning("%s; skipped%s", why, f" (a partial scan of {len(partial)} bytes lost with it)" if partial else "")
        return []


def _continued(report: bytes, lay: ScannerLayout) -> bool:
    if lay.continued is None:
        return False
    bit, bits = lay.continued
    first, last = bit // 8, (bit + bits - 1) // 8
    return bool((int.from_bytes(report[first : last + 1], "little") >> (bit % 8)) & ((1 << bits) - 1))


def _symbology(report: bytes, lay: ScannerLayout) -> str:
    """The AIM identifier as sent; "" for none (zeros), or for bytes that cannot be one (logged)."""
    if lay.symbology is None:
        return ""
    raw = report[lay.symbology : lay.symbology + 3].rstrip(b"\0")
    if all(0x21 <= b <= 0x7E for b in raw):
        return raw.decode("ascii")
    log.warning("HID POS symbology identifier %r is not printable; read without one", raw)
    return ""


def read_descriptor(fd: int, path: str, sysfs: Path = SYSFS_HIDRAW) -> bytes:
    """The report descriptor of an open hidraw node: from the kernel (HIDIOCGRDESC), else from sysfs.

    Raises OSError when there is none to read (not a character device, no such ioctl, no sysfs entry).
    """
    if not stat.S_ISCHR(os.fstat(fd).st_mode):
        raise OSError(errno.ENOTTY, "not a character device, so no report descriptor")
    try:
        size = array.array("i", [0])
        fcntl.ioctl(fd, HIDIOCGRDESCSIZE, size, True)
        if not 0 < size[0] <= MAX_DESCRIPTOR:
            raise OSError(errno.EINVAL, f"the kernel reports a descriptor of {size[0]} bytes")
        buffer = bytearray(struct.pack("=I", size[0]) + bytes(MAX_DESCRIPTOR))
        fcntl.ioctl(fd, HIDIOCGRDESC, buffer, True)
        return bytes(buffer[4 : 4 + size[0]])
    except OSError as exc:
        node = os.path.basename(os.path.realpath(path))
        try:
            return (sysfs / node / "device/report_descriptor").read_bytes()
        except OSError:
            raise exc from None


class HidPosDriver(DeviceLoopDriver[int, bytes]):
    """A HID POS scanner's hidraw node, read with a non-blocking fd on the event loop.

    `descriptor` (a saved report descriptor) fixes the layout, for tests and for devices whose descriptor
    cannot be read where the agent runs; without it the device's own is read at every open.
    """

    kind = "HID POS scanner"
    scanner_kind = ScannerKind.HID_POS

    def __init__(
        self,
        scanner_id: str,
        path: str,
        *,
        descriptor: bytes | None = None,
        max_length: int = 4096,
        idle_timeout: float = 1.0,
        retry_interval: float = 1.0,
    ) -> None:
        # A saved descriptor that does not describe a scanner is a configuration error: raise it now.
        self.fixed_layout = scanner_layout(descriptor) if descriptor is not None else None
        self.decoder = PosReportDecoder(self.fixed_layout or FALLBACK_LAYOUT, max_length)
        super().__init__(scanner_id, path, self.decoder, idle_timeout=idle_timeout, retry_interval=retry_interval)
        self._layout_said = ""

    def _open(self) -> int:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.decoder.layout = self.fixed_layout or self._device_layout(fd)
        log.info("scanner %s: opened %s (%s layout)", self.scanner_id, self.path, self.decoder.layout.source)
        return fd

    def _device_layout(self, fd: int) -> ScannerLayout:
        try:
            layout = scanner_layout(read_descriptor(fd, self.path))
            said = f"report {layout.report_id}, {layout.length} bytes, up to {layout.capacity} data bytes a report"
        except (OSError, ValueError) as exc:
            layout = FALLBACK_LAYOUT
            said = f"no usable report descriptor ({exc}); assuming the common 64-byte report with id 2"
        if said != self._layout_said:  # once, not at every reopen of the same device
            self._layout_said = said
            level = logging.INFO if layout is not FALLBACK_LAYOUT else logging.WARNING
            log.log(level, "scanner %s: %s: %s", self.scanner_id, self.path, said)
        return layout

    def _release(self, handle: int) -> None:
        with contextlib.suppress(OSError):  # the device may already be gone
            os.close(handle)

    def _stream(self, handle: int) -> AsyncIterator[bytes]:
        return read_reports(handle, _MAX_READ)

    def _decode(self, item: bytes) -> list[bytes]:
        return [data for _, data in self._symbols(item)]

    def _symbols(self, item: bytes) -> list[tuple[str, bytes]]:
        return [(scan.symbology, scan.data) for scan in self.decoder.feed(item)]
