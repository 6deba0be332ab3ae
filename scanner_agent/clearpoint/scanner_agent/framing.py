"""Turning a serial byte stream into whole scans, and saying clearly what went wrong when it can't.

Serial scanners send one scan as a burst of bytes, but the bytes reach us in arbitrary chunks. A framer is
fed the chunks as they arrive and hands back whole frames, plus structured `Problem`s (overlong line, LRC
mismatch, noise, bytes that are not text) so the driver can log one clear line instead of a stack trace or,
worse, a bogus scan. Three ways of finding the frame boundary cover the scanners we meet:

* `TerminatorFramer`: the scanner's suffix (CR, LF, CRLF, TAB, or any byte sequence) ends a scan.
* `StxEtxFramer`: STX (0x02) data ETX (0x03), optionally followed by a one-byte LRC.
* `TimeoutFramer`: no suffix at all; a scan ends when the line stays quiet for a while.

All three are pure (no I/O, no clock of their own): the caller passes `now` (seconds, any monotonic clock)
with each chunk and calls `idle(now)` when `deadline()` passes, which makes them easy to test exactly.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import reduce
from operator import xor
from typing import Protocol

log = logging.getLogger(__name__)

STX = 0x02
ETX = 0x03
DEFAULT_MAX_LEN = 4096
# A healthy scanner sends a scan as one burst; a partial frame that sees no byte for this long is dead.
DEFAULT_STALE_AFTER = 1.0

CR = b"\r"
LF = b"\n"
CRLF = b"\r\n"
TAB = b"\t"


class ProblemKind(StrEnum):
    OVERFLOW = "overflow"  # longer than max_len without a frame end; discarded up to the next frame start
    INCOMPLETE = "incomplete"  # a partial frame dropped: the line went quiet, the device went away, or STX came early
    LRC_MISMATCH = "lrc_mismatch"
    NOISE = "noise"  # bytes outside STX ... ETX
    GARBAGE = "garbage"  # a complete frame that is not text, so not a scan


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the driver should log: `message` is a complete sentence (without the scanner's name)."""

    kind: ProblemKind
    nbytes: int
    # Bytes that look like UART receive errors (0x00, 0xFF, high-bit bytes that are not UTF-8).
    line_error_bytes: int
    message: str


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole frame (terminator, STX/ETX and LRC removed). `at` is the `now` given with its last byte."""

    data: bytes
    at: float | None


Output = Frame | Problem


class Framer(Protocol):
    max_len: int

    def feed(self, data: bytes, now: float | None = None) -> list[Output]:
        """Bytes as they arrived (any chunking); returns the frames and problems they complete, in order."""
        ...

    def idle(self, now: float) -> list[Output]:
        """Called when no bytes came by `deadline()`: ends a timeout frame or drops a stale partial one."""
        ...

    def deadline(self) -> float | None:
        """When `idle` should next be called, or None when nothing is pending."""
        ...

    def reset(self) -> Problem | None:
        """Forget any partial frame (the device went away); reports what was thrown away, if anything."""
        ...

    @property
    def pending(self) -> bool:
        """Part of a frame is held: a stop now would cut it."""
        ...

    def resync(self) -> None:
        """The next bytes start in the middle of a frame (its head was lost): drop them up to the next frame
        boundary, as a problem, never as a scan."""
        ...


# --- what counts as text -------------------------------------------------------------------------------------------

# Scanners send printable ASCII, GS/RS/FS/EOT inside GS1 and ISO/IEC 15434 data, the odd TAB/CR/LF inside
# multi-line 2D codes, and UTF-8 (or, from QR byte mode, ISO-8859-1) text. Bytes are decoded as UTF-8 with
# surrogateescape, so each byte that is not UTF-8 becomes one code point U+DC80..U+DCFF. Two grades of "not text":
# control characters (other C0 controls, DEL, C1 controls, stray 0x80..0x9F bytes) are not text in any encoding a
# scanner uses; stray 0xA0..0xFF bytes might be ISO-8859-1 letters, so only a high share of them condemns a frame.
_CONTROL = re.compile("[\x00-\x03\x05-\x08\x0b\x0c\x0e-\x1b\x1f\x7f-\x9f\udc80-\udc9f]")
_LATIN1_MAYBE = re.compile("[\udca0-\udcff]")
_INVALID_BYTE = re.compile("[\udc80-\udcff]")
_WHITESPACE = frozenset(b"\r\n\t ")
# Outside STX ... ETX a scanner may also end a transmission with EOT (Honeywell's "STX, Code ID, data, ETX, EOT").
_QUIET_OUTSIDE = _WHITESPACE | {0x04}


@dataclass(frozen=True, slots=True)
class TextProfile:
    """How text-like some bytes are."""

    nbytes: int
    control: int  # control characters: never in a scan we can use
    not_text: int  # control characters plus stray high bytes
    line_errors: int  # the kind a wrong baud rate / parity produces: NUL, and bytes that are not UTF-8 (0xFF, 0x80...)
    has_nul: bool

    def __add__(self, other: TextProfile) -> TextProfile:
        return TextProfile(
            self.nbytes + other.nbytes,
            self.control + other.control,
            self.not_text + other.not_text,
            self.line_errors + other.line_errors,
            self.has_nul or other.has_nul,
        )

    @property
    def is_garbage(self) -> bool:
        """NUL never appears in a scan; nor do more than 10% control characters or 25% bytes that are not text."""
        return self.has_nul or self.control * 10 > self.nbytes or self.not_text * 4 > self.nbytes

    @property
    def looks_like_line_errors(self) -> bool:
        return self.line_errors > 0 and self.line_errors * 4 >= self.nbytes

    def hint(self) -> str:
        if not self.looks_like_line_errors:
            return ""
        return f"; {self.line_errors} bytes were not text — wrong baud rate or parity?"


EMPTY_PROFILE = TextProfile(0, 0, 0, 0, False)


def text_profile(data: bytes | bytearray) -> TextProfile:
    """Grade bytes as text (chunk-wise counts may misjudge a UTF-8 character split at a chunk boundary)."""
    if not data:
        return EMPTY_PROFILE
    text = bytes(data).decode("utf-8", errors="surrogateescape")
    nul = text.count("\x00")
    control = len(_CONTROL.findall(text))
    invalid = len(_INVALID_BYTE.findall(text))
    return TextProfile(len(data), control, control + len(_LATIN1_MAYBE.findall(text)), nul + invalid, nul > 0)


def tail_message(n: int) -> str:
    return f"discarded {n} bytes up to the first frame boundary: the end of a frame cut when the agent last stopped"


def _preview(data: bytes | bytearray, limit: int = 16) -> str:
    head = bytes(data[:limit]).hex(" ")
    return head + (" …" if len(data) > limit else "")


class _Base:
    """Shared: max length, stale-partial handling, and the text check on finished frames."""

    def __init__(self, max_len: int, stale_after: float | None) -> None:
        if max_len < 1:
            raise ValueError("max_len must be at least 1")
        self.max_len = max_len
        self.stale_after = stale_after
        self._last_at: float | None = None

    def _finish(self, data: bytes, at: float | None, out: list[Output]) -> None:
        if not data:
            log.debug("empty frame dropped")
            return
        profile = text_profile(data)
        if profile.is_garbage:
            out.append(
                Problem(
                    ProblemKind.GARBAGE,
                    len(data),
                    profile.line_errors,
                    f"dropped a {len(data)}-byte frame that is not text ({_preview(data)}){profile.hint()}",
                )
            )
            return
        out.append(Frame(data, at))

    def _is_stale(self, now: float | None) -> bool:
        return (
            now is not None
            and self.stale_after is not None
            and self._last_at is not None
            and now - self._last_at >= self.stale_after
        )


# --- terminator ----------------------------------------------------------------------------------------------------


class TerminatorFramer(_Base):
    """Frames end at `terminator` (any non-empty byte sequence).

    With CR as terminator, an LF right after the CR (a scanner sending CRLF) is skipped, even when it arrives in
    the next chunk; with LF as terminator, a CR right before it is stripped. Empty frames are dropped. A partial
    frame that sees no byte for `stale_after` seconds is dropped with a problem (the suffix is probably not what
    we expect), so it cannot glue itself to the front of the next scan.
    """

    def __init__(
        self,
        terminator: bytes = CR,
        *,
        max_len: int = DEFAULT_MAX_LEN,
        stale_after: float | None = DEFAULT_STALE_AFTER,
    ) -> None:
        super().__init__(max_len, stale_after)
        if not terminator:
            raise ValueError("terminator must not be empty")
        self.terminator = bytes(terminator)
        self._buf = bytearray()
        self._scan_from = 0  # where the next terminator search starts (a terminator may straddle chunks)
        self._discarded = 0  # > 0 while throwing away an overlong line
        self._discarded_profile = EMPTY_PROFILE
        self._skip_lf = False
        self._tail = False  # resync(): the bytes up to the next terminator are the end of a cut frame

    @property
    def pending(self) -> bool:
        return bool(self._buf) or self._discarded > 0

    def resync(self) -> None:
        self._tail = True

    def feed(self, data: bytes, now: float | None = None) -> list[Output]:
        out: list[Output] = []
        if self._is_stale(now):
            self._drop_stale(out)
        if not data:
            return out
        if self._skip_lf:
            self._skip_lf = False
            if data[0] == 0x0A:
                data = data[1:]
                if not data:
                    return out
        self._last_at = now
        term, tlen = self.terminator, len(self.terminator)
        buf = self._buf
        buf += data
        start = 0
        search = self._scan_from
        while (end := buf.find(term, search)) >= 0:
            self._end_line(buf, start, end, now, out)
            start = search = end + tlen
            if term == CR:
                if start < len(buf) and buf[start] == 0x0A:
                    start = search = start + 1
                elif start == len(buf):
                    self._skip_lf = True
        del buf[:start]
        if self._discarded:
            self._discard_head(len(buf) - (tlen - 1))
        elif len(buf) > self.max_len + tlen - 1:
            self._discarded_profile = EMPTY_PROFILE
            self._discard_head(len(buf) - (tlen - 1))
        self._scan_from = max(0, len(buf) - tlen + 1)
        if not buf and not self._discarded:
            self._last_at = None
        return out

    def _discard_head(self, n: int) -> None:
        """Drop the first n buffered bytes of an overlong line, keeping a tail that may start the terminator."""
        if n <= 0:
            return
        self._discarded_profile += text_profile(self._buf[:n])
        self._discarded += n
        del self._buf[:n]

    def _end_line(self, buf: bytearray, start: int, end: int, now: float | None, out: list[Output]) -> None:
        if self._tail:
            self._tail = False
            self._discarded_profile += text_profile(buf[start:end])
            self._discarded += end - start
            n, profile = self._discarded, self._discarded_profile
            self._discarded, self._discarded_profile = 0, EMPTY_PROFILE
            out.append(Problem(ProblemKind.INCOMPLETE, n, profile.line_errors, tail_message(n)))
            return
        if self._discarded:
            self._discard_head_range(buf, start, end)
            out.append(self._overflow_problem("without a terminator"))
            return
        if end - start > self.max_len:
            self._discarded_profile = text_profile(buf[start:end])
            self._discarded = end - start
            out.append(self._overflow_problem("without a terminator"))
            return
        line = bytes(buf[start:end])
        if self.terminator == LF and line.endswith(CR):
            line = line[:-1]
        self._finish(line, now, out)

    def _discard_head_range(self, buf: bytearray, start: int, end: int) -> None:
        self._discarded_profile += text_profile(buf[start:end])
        self._discarded += end - start

    def _overflow_problem(self, why: str) -> Problem:
        n, profile = self._discarded, self._discarded_profile
        self._discarded, self._discarded_profile = 0, EMPTY_PROFILE
        return Problem(
            ProblemKind.OVERFLOW,
            n,
            profile.line_errors,
            f"discarded {n} bytes {why} (max {self.max_len}) — check the scanner's suffix setting{profile.hint()}",
        )

    def _drop_stale(self, out: list[Output]) -> None:
        if self._discarded:
            self._discard_head(len(self._buf))
            out.append(self._overflow_problem("without a terminator"))
        elif self._buf:
            profile = text_profile(self._buf)
            n = len(self._buf)
            out.append(
                Problem(
                    ProblemKind.INCOMPLETE,
                    n,
                    profile.line_errors,
                    f"discarded {n} bytes that never got a terminator ({_preview(self._buf)}) — "
                    f"check the scanner's suffix setting{profile.hint()}",
                )
            )
        self._buf.clear()
        self._scan_from = 0
        self._last_at = None
        self._tail = False

    def idle(self, now: float) -> list[Output]:
        out: list[Output] = []
        if self._is_stale(now):
            self._drop_stale(out)
        return out

    def deadline(self) -> float | None:
        if self._last_at is None or self.stale_after is None or not (self._buf or self._discarded):
            return None
        return self._last_at + self.stale_after

    def reset(self) -> Problem | None:
        n = self._discarded + len(self._buf)
        profile = self._discarded_profile + text_profile(self._buf)
        self._buf.clear()
        self._scan_from = self._discarded = 0
        self._discarded_profile = EMPTY_PROFILE
        self._skip_lf = False
        self._tail = False
        self._last_at = None
        if not n:
            return None
        return Problem(ProblemKind.INCOMPLETE, n, profile.line_errors, f"discarded a half frame of {n} bytes")


# --- STX ... ETX [LRC] ---------------------------------------------------------------------------------------------


class LrcCoverage(StrEnum):
    """Which bytes the LRC (XOR of bytes, starting from 0) covers. Scanners differ:

    * "data+etx": everything after STX up to and including ETX, the classic block-check convention (e.g.
      Honeywell's default "start LRC on the second byte" with an STX prefix and ETX suffix).
    * "stx+data+etx": STX, data and ETX (e.g. Newland's "ESC_Bank pack": BCC = XOR of STX + DATA + ETX).
    * "data": the data bytes only.

    Since XOR(STX, ETX) = 0x01 and ETX = 0x03, the three differ only by a constant; check the scanner's manual.
    """

    DATA = "data"
    DATA_ETX = "data+etx"
    STX_DATA_ETX = "stx+data+etx"


def lrc(data: bytes | bytearray, coverage: LrcCoverage = LrcCoverage.DATA_ETX) -> int:
    """The LRC byte a scanner appends after ETX for this data."""
    value = reduce(xor, data, 0)
    if coverage in (LrcCoverage.DATA_ETX, LrcCoverage.STX_DATA_ETX):
        value ^= ETX
    if coverage == LrcCoverage.STX_DATA_ETX:
        value ^= STX
    return value


_OUT, _IN, _LRC = 0, 1, 2


class StxEtxFramer(_Base):
    """Frames are STX data ETX, followed by one LRC byte when `check_lrc`; other bytes are noise.

    Noise made only of CR/LF/TAB/space/EOT (a scanner that adds CRLF or EOT after ETX) is ignored quietly; other
    noise is reported once per run. A new STX before ETX drops the partial frame (its ETX was lost) and starts anew.
    """

    def __init__(
        self,
        *,
        check_lrc: bool = False,
        lrc_coverage: LrcCoverage = LrcCoverage.DATA_ETX,
        max_len: int = DEFAULT_MAX_LEN,
        stale_after: float | None = DEFAULT_STALE_AFTER,
    ) -> None:
        super().__init__(max_len, stale_after)
        self.check_lrc = check_lrc
        self.lrc_coverage = LrcCoverage(lrc_coverage)
        self._state = _OUT
        self._buf = bytearray()
        self._discarded = 0
        self._discarded_profile = EMPTY_PROFILE
        self._noise = 0
        self._noise_profile = EMPTY_PROFILE
        self._noise_blank = True
        self._tail = False  # resync(): the noise before the next STX is the end of a cut frame

    @property
    def pending(self) -> bool:
        return self._state != _OUT

    def resync(self) -> None:
        self._tail = True

    def feed(self, data: bytes, now: float | None = None) -> list[Output]:
        out: list[Output] = []
        if self._is_stale(now):
            self._drop_stale(out)
        if not data:
            return out
        self._last_at = now
        pos, n = 0, len(data)
        while pos < n:
            if self._state == _OUT:
                start = data.find(STX, pos)
                self._add_noise(data[pos : n if start < 0 else start])
                if start < 0:
                    break
                self._flush_noise(out)
                self._begin()
                pos = start + 1
            elif self._state == _IN:
                etx = data.find(ETX, pos)
                stx = data.find(STX, pos, n if etx < 0 else etx)
                if stx >= 0:
                    self._append(data[pos:stx])
                    self._drop_partial("a frame with no ETX before the next STX", out)
                    self._begin()
                    pos = stx + 1
                elif etx >= 0:
                    self._append(data[pos:etx])
                    pos = etx + 1
                    if self.check_lrc:
                        self._state = _LRC
                    else:
                        self._end_frame(None, now, out)
                else:
                    self._append(data[pos:])
                    break
            else:
                self._end_frame(data[pos], now, out)
                pos += 1
        if self._state == _OUT and not self._noise:
            self._last_at = None
        return out

    def _begin(self) -> None:
        self._state = _IN
        self._buf.clear()

    def _append(self, chunk: bytes) -> None:
        if self._discarded:
            self._discarded += len(chunk)
            self._discarded_profile += text_profile(chunk)
            return
        self._buf += chunk
        if len(self._buf) > self.max_len:
            self._discarded = len(self._buf)
            self._discarded_profile = text_profile(self._buf)
            self._buf.clear()

    def _end_frame(self, lrc_byte: int | None, now: float | None, out: list[Output]) -> None:
        self._state = _OUT
        if self._discarded:
            out.append(self._overflow_problem())
            return
        data = bytes(self._buf)
        self._buf.clear()
        if lrc_byte is not None:
            expected = lrc(data, self.lrc_coverage)
            if lrc_byte != expected:
                profile = text_profile(data)
                out.append(
                    Problem(
                        ProblemKind.LRC_MISMATCH,
                        len(data),
                        profile.line_errors,
                        f"LRC mismatch: got 0x{lrc_byte:02x}, expected 0x{expected:02x} over {self.lrc_coverage} "
                        f"— frame of {len(data)} bytes dropped ({_preview(data)}){profile.hint()}",
                    )
                )
                return
        self._finish(data, now, out)

    def _overflow_problem(self) -> Problem:
        n, profile = self._discarded, self._discarded_profile
        self._discarded, self._discarded_profile = 0, EMPTY_PROFILE
        return Problem(
            ProblemKind.OVERFLOW,
            n,
            profile.line_errors,
            f"discarded {n} bytes after STX without an ETX (max {self.max_len}) — "
            f"check the scanner's prefix/suffix setting{profile.hint()}",
        )

    def _drop_partial(self, what: str, out: list[Output]) -> None:
        if self._discarded:
            out.append(self._overflow_problem())
        else:
            profile = text_profile(self._buf)
            n = len(self._buf)
            out.append(Problem(ProblemKind.INCOMPLETE, n, profile.line_errors, f"discarded {what} ({n} bytes)"))
        self._buf.clear()
        self._state = _OUT

    def _add_noise(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._noise += len(chunk)
        self._noise_profile += text_profile(chunk)
        if self._noise_blank and not _QUIET_OUTSIDE.issuperset(chunk):
            self._noise_blank = False

    def _flush_noise(self, out: list[Output]) -> None:
        tail, self._tail = self._tail, False
        if not self._noise:
            return
        n, profile, blank = self._noise, self._noise_profile, self._noise_blank
        self._noise, self._noise_profile, self._noise_blank = 0, EMPTY_PROFILE, True
        if tail:
            out.append(Problem(ProblemKind.INCOMPLETE, n, profile.line_errors, tail_message(n)))
            return
        if blank:
            log.debug("ignored %d whitespace or EOT bytes outside STX/ETX", n)
            return
        out.append(
            Problem(
                ProblemKind.NOISE,
                n,
                profile.line_errors,
                f"ignored {n} bytes of noise outside STX/ETX{profile.hint()}",
            )
        )

    def _drop_stale(self, out: list[Output]) -> None:
        if self._state != _OUT:
            self._drop_partial("a frame that never got its ETX/LRC (the line went quiet)", out)
        self._flush_noise(out)
        self._last_at = None

    def idle(self, now: float) -> list[Output]:
        out: list[Output] = []
        if self._is_stale(now):
            self._drop_stale(out)
        return out

    def deadline(self) -> float | None:
        if self._last_at is None or self.stale_after is None:
            return None
        if self._state == _OUT and not self._noise:
            return None
        return self._last_at + self.stale_after

    def reset(self) -> Problem | None:
        out: list[Output] = []
        if self._state != _OUT:
            self._drop_partial("a half frame", out)
        self._noise, self._noise_profile, self._noise_blank = 0, EMPTY_PROFILE, True
        self._tail = False
        self._last_at = None
        return out[0] if out and isinstance(out[0], Problem) else None


# --- inter-character timeout ---------------------------------------------------------------------------------------


class TimeoutFramer(_Base):
    """A frame ends when no byte arrives for `timeout` seconds (for scanners configured without any suffix).

    `now` is required on every feed. Trailing bytes in `strip` (CR/LF by default) are removed, so a scanner that
    does send a suffix still works. An overlong burst is discarded up to the next quiet gap.
    """

    def __init__(self, timeout: float = 0.05, *, max_len: int = DEFAULT_MAX_LEN, strip: bytes = CRLF) -> None:
        super().__init__(max_len, None)
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self.strip = strip
        self._buf = bytearray()
        self._discarded = 0
        self._discarded_profile = EMPTY_PROFILE
        self._drop_burst = False  # resync(): the next burst is dropped whole

    @property
    def pending(self) -> bool:
        return self._last_at is not None

    def resync(self) -> None:
        """Without a suffix nothing marks where a frame ends inside a burst: bytes the port held while no agent
        read it come as one burst, several scans glued together (and perhaps a cut one), so all are dropped."""
        self._drop_burst = True

    def feed(self, data: bytes, now: float | None = None) -> list[Output]:
        if now is None:
            raise ValueError("TimeoutFramer needs the arrival time of every chunk")
        out = self.idle(now)
        if not data:
            return out
        self._last_at = now
        if self._discarded:
            self._discarded += len(data)
            self._discarded_profile += text_profile(data)
            return out
        self._buf += data
        if len(self._buf) > self.max_len:
            self._discarded = len(self._buf)
            self._discarded_profile = text_profile(self._buf)
            self._buf.clear()
        return out

    def idle(self, now: float) -> list[Output]:
        out: list[Output] = []
        if self._last_at is None or now - self._last_at < self.timeout:
            return out
        at, self._last_at = self._last_at, None
        if self._drop_burst:
            self._drop_burst = False
            n = len(self._buf) + self._discarded
            profile = text_profile(self._buf) + self._discarded_profile
            self._buf.clear()
            self._discarded, self._discarded_profile = 0, EMPTY_PROFILE
            out.append(
                Problem(
                    ProblemKind.INCOMPLETE,
                    n,
                    profile.line_errors,
                    f"discarded {n} bytes the port held while no agent read it: without a suffix the scans in them "
                    "cannot be told apart — set the scanner to send one (CR) and use terminator framing",
                )
            )
            return out
        if self._discarded:
            n, profile = self._discarded, self._discarded_profile
            self._discarded, self._discarded_profile = 0, EMPTY_PROFILE
            out.append(
                Problem(
                    ProblemKind.OVERFLOW,
                    n,
                    profile.line_errors,
                    f"discarded a burst of {n} bytes with no quiet gap of {self.timeout * 1000:g} ms "
                    f"(max {self.max_len}){profile.hint()}",
                )
            )
            return out
        data = bytes(self._buf).rstrip(self.strip) if self.strip else bytes(self._buf)
        self._buf.clear()
        self._finish(data, at, out)
        return out

    def deadline(self) -> float | None:
        return None if self._last_at is None else self._last_at + self.timeout

    def reset(self) -> Problem | None:
        n = self._discarded + len(self._buf)
        profile = self._discarded_profile + text_profile(self._buf)
        self._buf.clear()
        self._discarded, self._discarded_profile = 0, EMPTY_PROFILE
        self._last_at = None
        self._drop_burst = False
        if not n:
            return None
        return Problem(ProblemKind.INCOMPLETE, n, profile.line_errors, f"discarded a half frame of {n} bytes")
