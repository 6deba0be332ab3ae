"""Serial barcode scanners: RS-232 and USB virtual COM ports (/dev/ttyUSBn, /dev/ttyACMn).

Open the port by its stable /dev/serial/by-id/... symlink so the right scanner is found after a replug or a reboot.
The driver reads chunks with pyserial-asyncio-fast, frames them (`framing`), strips the AIM identifier (`aim`) and
yields `Read`s stamped when the frame's last byte arrived. Device trouble never raises out of `reads()`: an unplug
(EIO / SerialException on read) or a path that is not there yet puts the driver in a waiting state that tries the
path again when udev announces a change (`hotplug`) and every `reconnect_interval` in any case, until it opens; bad
input is logged as one clear line per incident and skipped. Each open says which USB device the path led to.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import serial
import serial_asyncio_fast
from clearpoint.scanner_agent import code_ids, hotplug, usb_identity
from clearpoint.scanner_agent.aim import split_symbols, symbology_name
from clearpoint.scanner_agent.drivers.cut_marker import CutMarker, device_identity
from clearpoint.scanner_agent.framing import (
    DEFAULT_MAX_LEN,
    DEFAULT_STALE_AFTER,
    Frame,
    Framer,
    LrcCoverage,
    Problem,
    StxEtxFramer,
    TerminatorFramer,
    TimeoutFramer,
)
from clearpoint.scanner_agent.reads import Read, ScannerHealth, now_stamps

log = logging.getLogger(__name__)


class FramingMode(StrEnum):
    TERMINATOR = "terminator"
    STX_ETX = "stx_etx"
    TIMEOUT = "timeout"
    SSI = "ssi"  # Zebra SSI packets, acknowledged once journaled (drivers/ssi_serial.py)


_PARITY = {
    "none": serial.PARITY_NONE,
    "even": serial.PARITY_EVEN,
    "odd": serial.PARITY_ODD,
    "mark": serial.PARITY_MARK,
    "space": serial.PARITY_SPACE,
}
# POSIX has no 1.5 stop bits: on Linux, pyserial sets two (CSTOPB) for 1.5 as well.
_STOP_BITS = {1: serial.STOPBITS_ONE, 1.5: serial.STOPBITS_ONE_POINT_FIVE, 2: serial.STOPBITS_TWO}


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """How to talk to one serial scanner. Defaults match a scanner fresh out of the box: 9600 8N1, CR suffix."""

    path: str
    baud: int = 9600
    parity: str = "none"  # none / even / odd / mark / space
    data_bits: int = 8  # 5..8; scanners use 8, or 7 with even/odd parity
    stop_bits: float = 1  # 1, 1.5 or 2
    framing: FramingMode | str = FramingMode.TERMINATOR  # terminator / stx_etx / timeout / ssi
    terminator: bytes = b"\r"  # terminator mode: the scanner's suffix (CR, LF, CRLF, TAB, any bytes)
    check_lrc: bool = False  # stx_etx mode: an LRC byte follows ETX
    lrc_coverage: LrcCoverage | str = LrcCoverage.DATA_ETX  # stx_etx: data / data+etx / stx+data+etx
    char_timeout: float = 0.05  # timeout mode: seconds of silence that end a scan
    max_frame: int = DEFAULT_MAX_LEN  # longer frames are discarded with a warning
    stale_after: float = DEFAULT_STALE_AFTER  # seconds of silence after which a partial frame is dropped
    good_read: bytes = b""  # bytes that make the scanner beep "good read"; empty: no feedback
    bad_read: bytes = b""  # bytes that make the scanner signal "bad read"; empty: no feedback
    reconnect_interval: float = 1.0  # seconds between attempts to reopen a missing or unplugged port
    code_id: str = ""  # a vendor's Code ID letter leads each frame ("honeywell", code_ids.py); "": none
    flow_control: str = "none"  # "rtscts": the scanner holds its data while no agent reads the port

    def __post_init__(self) -> None:
        if self.baud <= 0:
            raise ValueError(f"baud must be positive, not {self.baud}")
        if self.parity not in _PARITY:
            raise ValueError(f"parity must be one of {', '.join(_PARITY)}, not {self.parity!r}")
        if self.data_bits not in (5, 6, 7, 8):
            raise ValueError(f"data_bits must be 5, 6, 7 or 8, not {self.data_bits}")
        if self.stop_bits not in _STOP_BITS:
            raise ValueError(f"stop_bits must be 1, 1.5 or 2, not {self.stop_bits}")
        FramingMode(self.framing)
        LrcCoverage(self.lrc_coverage)
        if self.code_id and self.code_id not in code_ids.TABLES:
            raise ValueError(f"code_id must be one of {', '.join(code_ids.TABLES)}, not {self.code_id!r}")
        if self.flow_control not in ("none", "rtscts"):
            raise ValueError(f"flow_control must be none or rtscts, not {self.flow_control!r}")
        if self.framing == FramingMode.TERMINATOR and not self.terminator:
            raise ValueError("terminator framing needs a non-empty terminator")
        if self.reconnect_interval <= 0:
            raise ValueError("reconnect_interval must be positive")

    def make_framer(self) -> Framer:
        mode = FramingMode(self.framing)
        if mode == FramingMode.SSI:
            raise ValueError("SSI is a packet protocol, not a framing: its driver is drivers.ssi_serial")
        if mode == FramingMode.STX_ETX:
            return StxEtxFramer(
                check_lrc=self.check_lrc,
                lrc_coverage=LrcCoverage(self.lrc_coverage),
                max_len=self.max_frame,
                stale_after=self.stale_after,
            )
        if mode == FramingMode.TIMEOUT:
            return TimeoutFramer(self.char_timeout, max_len=self.max_frame)
        return TerminatorFramer(self.terminator, max_len=self.max_frame, stale_after=self.stale_after)

    def pyserial_kwargs(self) -> dict[str, object]:
        return {
            "baudrate": self.baud,
            "parity": _PARITY[self.parity],
            "bytesize": self.data_bits,
            "stopbits": _STOP_BITS[self.stop_bits],
            # An advisory lock, so a second agent (or a stray terminal program) cannot silently share the port.
            "exclusive": True,
            "rtscts": self.flow_control == "rtscts",
        }


# What the transport's protocol hands the read loop.
@dataclass(frozen=True, slots=True)
class _Chunk:
    data: bytes
    at_us: int
    at_perf_ns: int


class _Resync:
    """The port's first bytes start inside a frame: its head left with an agent that stopped."""


@dataclass(frozen=True, slots=True)
class _Lost:
    exc: Exception | None


class _Stop:
    pass


_Item = _Chunk | _Resync | _Lost | _Stop
# Bytes taken from the kernel at a time. The port is read only once the scans of the previous chunk are in the
# journal, so a stop (even SIGKILL) loses at most one chunk's scans; the rest wait in the kernel for the next agent.
_READ_SIZE = 64


class _Protocol(asyncio.Protocol):
    """Stamps each chunk the moment it is read and queues it for the read loop, then stops reading until the loop
    asks for more (`more`); `taken` hears of the chunk in the same callback as the read."""

    def __init__(self, queue: asyncio.Queue[_Item], taken: Callable[[bytes, float], None]) -> None:
        self.queue = queue
        self.taken = taken
        self.lost = asyncio.get_running_loop().create_future()
        self.transport: asyncio.ReadTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        at_us, at_perf_ns = now_stamps()
        self.taken(data, at_perf_ns / 1e9)
        self.queue.put_nowait(_Chunk(data, at_us, at_perf_ns))
        if self.transport is not None:
            self.transport.pause_reading()

    def more(self) -> None:
        """The previous chunk's scans are taken: read the next one."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(_Lost(exc))
        if not self.lost.done():
            self.lost.set_result(None)


class _KeepHeldInput(serial.Serial):  # type: ignore[misc]  # pyserial has no type information
    """A port opened without discarding its input: pyserial's open() flushes what the kernel holds (TCIFLUSH),
    which is every scan sent while no agent was reading, after a restart say."""

    _opening = False

    def open(self) -> None:
        self._opening = True
        try:
            super().open()
        finally:
            self._opening = False

    def _reset_input_buffer(self) -> None:
        if not self._opening:
            super()._reset_input_buffer()


def _reason(exc: BaseException) -> str:
    """The OS's reason ("No such file or directory"), not pyserial's message that repeats the path twice."""
    code = getattr(exc, "errno", None)
    return os.strerror(code) if isinstance(code, int) else str(exc)


class SerialDriver:
    """One serial scanner (implements `reads.Driver`)."""

    def __init__(self, scanner_id: str, settings: SerialSettings, state_dir: Path | None = None) -> None:
        self.scanner_id = scanner_id
        self.settings = settings
        self.health = ScannerHealth("serial", settings.path)
        # None for SSI, whose driver (drivers/ssi_serial.py) replaces the framing hooks below.
        self._framer = None if settings.framing == FramingMode.SSI else settings.make_framer()
        # Where the stream stands as the kernel sees it: fed in the callback that read the bytes (the real
        # framer runs later, in the read loop), so the cut mark is right whenever the process is killed.
        self._shadow = None if self._framer is None else settings.make_framer()
        self._marker = CutMarker(None if state_dir is None else state_dir / f"serial-{scanner_id}.frame")
        self._device = ""
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._closed = False
        # Wakes the wait for a missing port on udev events (tests put one over a fake monitor in its place).
        self.hotplug = hotplug.Waiter()
        # Which USB device the path leads to at each open (tests point its root at a fake tree).
        self.identity = usb_identity.PathIdentity(scanner_id, settings.path)
        self._was_connected = False
        # (now given to the framer, stamps) of the latest chunk, to stamp a frame that ends in it.
        self._last_chunk: tuple[float, int, int] | None = None

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def reads(self) -> AsyncIterator[Read]:
        try:
            while not self._closed:
                if self._transport is None and not await self._connect():
                    return
                deadline = self._deadline()
                timeout = None if deadline is None else max(0.0, deadline - time.perf_counter())
                try:
                    item = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    now = time.perf_counter()
                    if self._shadow is not None:
                        self._shadow.idle(now)
                        self._mark()
                    for read in self._idle(now):
                        yield read
                    continue
                if isinstance(item, _Stop):
                    return
                if isinstance(item, _Lost):
                    self._on_lost(item.exc)
                    continue
                if isinstance(item, _Resync):
                    if self._framer is not None:
                        self._framer.resync()
                    continue
                now = item.at_perf_ns / 1e9
                self._last_chunk = (now, item.at_us, item.at_perf_ns)
                for read in self._feed(item.data, now):
                    yield read
                if self._protocol is not None:
                    self._protocol.more()
        finally:
            self.hotplug.release()

    # --- framing hooks: what the bytes mean (drivers/ssi_serial.py speaks SSI in their place) ---

    def _deadline(self) -> float | None:
        """When `_idle` is due (a timeout frame ends, a stale partial one is dropped), or None."""
        return self._framer.deadline() if self._framer is not None else None

    def _feed(self, data: bytes, now: float) -> list[Read]:
        return self._handle(self._framer.feed(data, now)) if self._framer is not None else []

    def _idle(self, now: float) -> list[Read]:
        return self._handle(self._framer.idle(now)) if self._framer is not None else []

    def _forget_partial(self) -> None:
        """The device went away: drop a partial frame, saying so."""
        problem = self._framer.reset() if self._framer is not None else None
        if problem is not None:
            log.warning("scanner %s: %s when it went away", self.scanner_id, problem.message)

    def _symbols(self, frame: bytes) -> list[tuple[str, bytes]]:
        """The symbols of one frame: after a Code ID letter when the scanner sends one, else by AIM identifiers."""
        if not self.settings.code_id:
            return split_symbols(frame)
        split = code_ids.split_code_id(self.settings.code_id, frame)
        if isinstance(split, code_ids.CodeIdError):
            log.warning("scanner %s: dropped a frame: %s", self.scanner_id, split.message)
            self.health.trouble(split.message)
            return []
        return [split]

    def _handle(self, outputs: list[Frame | Problem]) -> list[Read]:
        reads = []
        for out in outputs:
            if isinstance(out, Problem):
                log.warning("scanner %s: %s", self.scanner_id, out.message)
                self.health.trouble(out.message)
                continue
            at_us, at_perf_ns = self._stamps(out.at)
            for symbology, data in self._symbols(out.data):
                log.debug(
                    "scanner %s: read %d bytes%s",
                    self.scanner_id,
                    len(data),
                    f" ({symbology_name(symbology)})" if symbology else "",
                )
                reads.append(Read(self.scanner_id, data, symbology, at_us, at_perf_ns))
        return reads

    def _stamps(self, at: float | None) -> tuple[int, int]:
        """The stamps of the chunk that held the frame's last byte (derived from its perf time if not the latest)."""
        if self._last_chunk is None:
            return now_stamps()
        now, at_us, at_perf_ns = self._last_chunk
        if at is None or at == now:
            return at_us, at_perf_ns
        perf_ns = round(at * 1e9)
        return at_us - (at_perf_ns - perf_ns) // 1000, perf_ns

    async def _connect(self) -> bool:
        """Open the port, trying on udev events and every `reconnect_interval` until it opens; False if closed."""
        path = self.settings.path
        self.hotplug.start()  # from before the first try: a port that appears after it is not missed
        # After an unplug the path is expected to be missing: no second line for that.
        last_reason = os.strerror(errno.ENOENT) if self._was_connected else ""
        while not self._closed:
            try:
                transport, protocol = await self._open_port()
            except (serial.SerialException, OSError, ValueError) as exc:
                reason = _reason(exc)
                self.health.down(f"cannot open: {reason}")
                if reason != last_reason:
                    # One line per distinct reason (missing, permission denied, busy), not one per poll.
                    if not self._was_connected and not last_reason:
                        log.warning("scanner %s not available (%s): %s; waiting for it", self.scanner_id, path, reason)
                    else:
                        log.info("scanner %s still not available (%s): %s", self.scanner_id, path, reason)
                    last_reason = reason
                await self._sleep(self.settings.reconnect_interval)
                continue
            if self._closed:
                transport.close()
                return False
            self._transport, self._protocol = transport, protocol
            self.health.device = self.identity.opened()
            self.health.up()
            if self._was_connected:
                log.info("scanner %s back (%s)", self.scanner_id, path)
            else:
                log.info("scanner %s connected (%s)", self.scanner_id, path)
            self._was_connected = True
            return True
        return False

    async def _open_port(self) -> tuple[asyncio.Transport, _Protocol]:
        loop = asyncio.get_running_loop()
        opening = functools.partial(_KeepHeldInput, self.settings.path, **self.settings.pyserial_kwargs())
        port = await loop.run_in_executor(None, opening)
        try:
            self._device = device_identity(port.fileno())
            held = port.in_waiting
        except BaseException:
            port.close()
            raise
        if held and self._shadow is not None:
            cut = self._marker.was_cut(self._device)
            log.info(
                "scanner %s: %d bytes waited in the port while no agent read it%s",
                self.scanner_id,
                held,
                "; they begin with the end of a frame cut when the agent stopped" if cut else "",
            )
            # Without a suffix nothing in held bytes says where one scan ends and the next begins.
            if cut or isinstance(self._shadow, TimeoutFramer):
                self._shadow.resync()
                self._queue.put_nowait(_Resync())
        self._mark()
        protocol = _Protocol(self._queue, self._track)
        transport, _ = await serial_asyncio_fast.connection_for_serial(loop, lambda: protocol, port)
        # The library reads 1 KiB at a time and offers no setting for it; a smaller read bounds what a stop can lose.
        if hasattr(transport, "_max_read_size"):
            transport._max_read_size = _READ_SIZE
        return transport, protocol

    def _track(self, data: bytes, now: float) -> None:
        if self._shadow is not None:
            self._shadow.feed(data, now)
            self._mark()

    def _mark(self) -> None:
        if self._shadow is not None and self._device:
            self._marker.record(self._device, self._shadow.pending)

    def _on_lost(self, exc: Exception | None) -> None:
        self._transport = self._protocol = None
        if self._closed:
            return
        log.warning("scanner %s unplugged (%s); waiting for it to return", self.scanner_id, self.settings.path)
        self.health.down("unplugged")
        log.debug("scanner %s: connection lost: %s", self.scanner_id, exc)
        self._forget_partial()
        if self._shadow is not None:
            self._shadow.reset()
            self._mark()

    async def _sleep(self, seconds: float) -> None:
        """Until udev reports a change, the driver is closed, or `seconds` at most."""
        await self.hotplug.wait(seconds)

    async def signal(self, good: bool) -> None:
        payload = self.settings.good_read if good else self.settings.bad_read
        if payload:
            self._write(payload, f"{'good' if good else 'bad'}-read signal")

    async def recorded(self, read: Read, journaled: bool) -> None:
        """A plain serial scanner is told nothing of the journal; `signal` follows the platform's answer."""

    def _write(self, payload: bytes, what: str) -> bool:
        """Send bytes to the scanner if it is there; False (and one log line if it just failed) if not."""
        port = self._transport.get_extra_info("serial") if self._transport is not None and self.connected else None
        if port is None:
            return False
        try:
            # Straight to the (non-blocking) port rather than through the transport's buffer: a few bytes always
            # fit, and a port that just vanished then costs one log line instead of a transport-level error report.
            port.write(payload)
        except (serial.SerialException, OSError) as exc:
            log.info("scanner %s: could not send %s: %s", self.scanner_id, what, exc)
            return False
        return True

    async def close(self) -> None:
        self._closed = True
        self.hotplug.close()
        self._queue.put_nowait(_Stop())
        transport, protocol = self._transport, self._protocol
        self._transport = self._protocol = None
        if transport is not None:
            transport.close()
            if protocol is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(protocol.lost), 2.0)
