"""A serial barcode scanner simulated on a pseudo-terminal, for the demo, the tests and the benchmarks.

The agent opens the pty's slave side exactly as it opens a real /dev/ttyUSB0 or /dev/ttyACM0 (optionally through a
symlink standing in for /dev/serial/by-id/...), so the whole serial driver runs for real. A pty accepts any baud
rate in termios but delivers bytes instantly, so `send` paces the bytes itself at the wire rate of the simulated
baud rate; `unplug`/`replug` close and recreate the pty the way a USB cable does; `uart_misread` produces the bytes
a UART set to the wrong baud rate really delivers.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import time
import tty
from typing import Literal

# Pacing granularity: bytes are released in chunks of about this much wire time (like a UART FIFO + USB frame).
_PACE_SECONDS = 0.002


class VirtualScanner:
    """A scanner on a pty. `port` is the path the agent should open (the symlink when one was asked for)."""

    def __init__(self, link_path: str | os.PathLike[str] | None = None) -> None:
        self.link_path = os.fspath(link_path) if link_path is not None else None
        self._master: int | None = None
        self._slave: int | None = None
        self.slave_path = ""
        self._open()

    @property
    def port(self) -> str:
        return self.link_path or self.slave_path

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def _open(self) -> None:
        master, slave = os.openpty()
        # Raw: no echo, no CR/LF translation, no signals, so bytes pass through exactly.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.slave_path = os.ttyname(slave)
        if self.link_path is not None:
            # Replace atomically, as udev does, so the path never points nowhere while plugged.
            tmp = f"{self.link_path}.tmp{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(self.slave_path, tmp)
            os.replace(tmp, self.link_path)

    def unplug(self) -> None:
        """Pull the cable: close the pty (the agent's reads fail with EIO) and remove the symlink."""
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link_path)
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def replug(self) -> None:
        """Plug it back in: a new pty (a new /dev/pts/N, as a new ttyUSBn) behind the same symlink."""
        if self.plugged:
            self.unplug()
        self._open()

    def close(self) -> None:
        self.unplug()

    def __enter__(self) -> VirtualScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def send(self, data: bytes, baud: int = 9600, bits_per_char: int = 10) -> None:
        """Write `data` as a UART at `baud` would deliver it: each byte arrives bits_per_char/baud after the last.

        Bytes are released in small chunks on a monotonic-clock schedule (not a sleep per chunk), so the total
        time matches the wire time without drift. If the agent is not reading and the pty fills up, this waits,
        like hardware flow control would.
        """
        if self._master is None:
            raise OSError("virtual scanner is unplugged")
        byte_time = bits_per_char / baud
        chunk = max(1, int(_PACE_SECONDS / byte_time))
        start = time.monotonic()
        for offset in range(0, len(data), chunk):
            piece = data[offset : offset + chunk]
            # A byte is available to the receiver once its stop bit is on the wire.
            due = start + (offset + len(piece)) * byte_time
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._write_all(piece)

    async def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._master is None:
                raise OSError("virtual scanner was unplugged while sending")
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            view = view[written:]

    def read_feedback(self) -> bytes:
        """Everything the agent has written to the scanner so far (good-read / bad-read commands), without waiting."""
        if self._master is None:
            return b""
        chunks = []
        while True:
            try:
                data = os.read(self._master, 4096)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    async def wait_feedback(self, nbytes: int, within: float = 2.0) -> bytes:
        """Read feedback until at least `nbytes` came back or `within` seconds passed."""
        got = bytearray()
        deadline = time.monotonic() + within
        while len(got) < nbytes and time.monotonic() < deadline:
            got += self.read_feedback()
            if len(got) < nbytes:
                await asyncio.sleep(0.005)
        return bytes(got)


FramingErrorMode = Literal["keep", "nul", "drop"]


def uart_misread(
    data: bytes,
    sender_baud: int,
    receiver_baud: int,
    *,
    framing_error: FramingErrorMode = "keep",
) -> bytes:
    """The bytes a UART set to `receiver_baud` reads when an 8N1 sender at `sender_baud` sends `data`.

    The sender's line signal is built bit by bit (idle high, start bit low, 8 data bits LSB first, stop bit high,
    characters back to back as a scanner bursts them). The receiver waits for a falling edge, checks the start bit
    is still low half a bit later (else it was a glitch), samples each data bit in the middle of its bit time,
    and expects the stop bit high; then it looks for the next falling edge.

    A missing stop bit is a framing error, and what the application then sees depends on termios: with INPCK set
    and IGNPAR/PARMRK clear, Linux's line discipline delivers the byte as 0x00 ("nul"); with IGNPAR it drops it
    ("drop"); with INPCK clear, which is how pyserial configures the port (and so what the agent sees), the byte is
    delivered as sampled ("keep"). Parity errors do not arise here: the simulation is 8N1 on both sides.
    """
    if sender_baud <= 0 or receiver_baud <= 0:
        raise ValueError("baud rates must be positive")
    # Line level per sender bit time: one idle bit, then 10 bits per character, then two characters of idle.
    line = [1]
    for byte in data:
        line.append(0)
        line.extend((byte >> i) & 1 for i in range(8))
        line.append(1)
    line.extend([1] * 20)
    falling = [k for k in range(1, len(line)) if line[k - 1] == 1 and line[k] == 0]
    sender_bit = 1.0 / sender_baud
    receiver_bit = 1.0 / receiver_baud

    def level(t: float) -> int:
        k = int(t / sender_bit)
        return line[k] if k < len(line) else 1

    out = bytearray()
    t = 0.0
    while True:
        i = bisect.bisect_left(falling, t / sender_bit - 1e-9)
        if i >= len(falling):
            break
        edge = falling[i] * sender_bit
        if level(edge + 0.5 * receiver_bit) != 0:
            t = edge + 0.5 * receiver_bit  # a glitch, not a start bit
            continue
        value = 0
        for bit in range(8):
            value |= level(edge + (1.5 + bit) * receiver_bit) << bit
        stop_at = edge + 9.5 * receiver_bit
        if level(stop_at) == 1:
            out.append(value)
        elif framing_error == "nul":
            out.append(0)
        elif framing_error == "keep":
            out.append(value)
        t = stop_at
    return bytes(out)
