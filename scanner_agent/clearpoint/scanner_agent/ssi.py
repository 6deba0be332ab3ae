"""Zebra SSI (Simple Serial Interface): the packet protocol Zebra (formerly Symbol) scanners speak on a serial port.

Why a protocol and not a framing: in SSI mode the scanner waits for the host to acknowledge every decode before it
considers the scan delivered, and retransmits when no answer comes. Answering only once the scan is on disk makes the
scanner's "delivered" mean "journaled"; refusing with a NAK tells it (and the cashier) that the scan was not kept.

Every packet, either way (SSI Programmer's Guide, chapter 2, "Packet format")::

    Length | Opcode | Message Source | Status | Data ... | Checksum (2 bytes, high byte first)

`Length` counts every byte but the checksum (so 4 for a packet without data); the checksum is the two's complement
of the 16-bit sum of all bytes before it, so that sum plus checksum is 0 modulo 2**16.

This module is pure (no I/O, no clock of its own, like `framing`): `PacketParser` turns chunks into packets and
problems, `Conversation` decides what each packet means (a scan, a reply to send, the scanner's answer to one of
our commands) and `encode` builds what we send. drivers/ssi_serial.py does the I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from clearpoint.scanner_agent.framing import DEFAULT_MAX_LEN, DEFAULT_STALE_AFTER

HEADER_LENGTH = 4  # Length, Opcode, Message Source, Status: the smallest valid Length byte
MAX_LENGTH = 0xFF  # the Length byte is one byte


class Opcode(IntEnum):
    """The opcodes this agent sends or understands; any other decoder message is acknowledged and ignored."""

    REPLY_REVISION = 0xA4
    PARAM_SEND = 0xC6
    CMD_ACK = 0xD0
    CMD_NAK = 0xD1
    BEEP = 0xE6
    LED_ON = 0xE7
    LED_OFF = 0xE8
    DECODE_DATA = 0xF3
    EVENT = 0xF6


class NakCause(IntEnum):
    RESEND = 0x01  # the packet arrived damaged (checksum): send it again
    BAD_CONTEXT = 0x02  # understood, but it makes no sense here (an empty decode, say)
    DENIED = 0x06  # understood and refused: the agent did not keep this scan


class Source(IntEnum):
    DECODER = 0x00
    HOST = 0x04


# Status byte bits.
RETRANSMIT = 0x01  # this packet was sent before (its answer never came)
CONTINUATION = 0x02  # more packets of this message follow
CHANGE_TYPE = 0x08  # parameters: permanent rather than temporary

# Beep codes run 0x00 (one short high) to 0x1A (high-high-low-low).
MAX_BEEP_CODE = 0x1A
ONE_SHORT_HIGH = 0x00
TWO_SHORT_LOW = 0x06
DECODE_LED = 0x01  # LED_ON / LED_OFF selection bit of the green decode LED

# SSI bar code type -> AIM symbology identifier (ISO/IEC 15424). Only types whose identifier does not depend on
# settings the host cannot see; any other type goes on with an empty symbology rather than a guessed one.
_AIM = {
    0x01: "]A0",  # Code 39
    0x02: "]F0",  # Codabar
    0x03: "]C0",  # Code 128
    0x06: "]I0",  # Interleaved 2 of 5
    0x07: "]G0",  # Code 93
    0x08: "]E0",  # UPC-A
    0x09: "]E0",  # UPC-E0
    0x0A: "]E4",  # EAN-8
    0x0B: "]E0",  # EAN-13
    0x0F: "]C1",  # GS1-128 (EAN-128)
    0x10: "]E0",  # UPC-E1
    0x11: "]L2",  # PDF417
    0x16: "]E0",  # Bookland EAN
    0x1B: "]d1",  # Data Matrix
    0x1C: "]Q1",  # QR Code
    0x30: "]e0",  # GS1 DataBar (RSS-14)
    0x31: "]e0",  # GS1 DataBar Limited
    0x32: "]e0",  # GS1 DataBar Expanded
}


def aim_identifier(code_type: int) -> str:
    """The AIM identifier for an SSI bar code type, "" where the type does not pin one down."""
    return _AIM.get(code_type, "")


def checksum(body: bytes) -> bytes:
    """Two bytes, high first, that bring the 16-bit sum of body + checksum to zero."""
    return ((-sum(body)) & 0xFFFF).to_bytes(2, "big")


def encode(opcode: int, data: bytes = b"", *, source: int = Source.HOST, status: int = 0) -> bytes:
    if HEADER_LENGTH + len(data) > MAX_LENGTH:
        raise ValueError(f"an SSI packet holds at most {MAX_LENGTH - HEADER_LENGTH} data bytes, not {len(data)}")
    body = bytes([HEADER_LENGTH + len(data), opcode, source, status]) + data
    return body + checksum(body)


def ack() -> bytes:
    return encode(Opcode.CMD_ACK)


def nak(cause: NakCause) -> bytes:
    return encode(Opcode.CMD_NAK, bytes([cause]))


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet whose checksum was right. `at` is the `now` given with its last byte."""

    opcode: int
    source: int
    status: int
    data: bytes
    at: float | None = None

    @property
    def retransmit(self) -> bool:
        return bool(self.status & RETRANSMIT)

    @property
    def continuation(self) -> bool:
        return bool(self.status & CONTINUATION)

    def encode(self) -> bytes:
        return encode(self.opcode, self.data, source=self.source, status=self.status)

    def same_message(self, other: Packet) -> bool:
        """The same packet sent again: equal but for the retransmit bit (and hence the checksum)."""
        return (self.opcode, self.source, self.status | RETRANSMIT, self.data) == (
            other.opcode,
            other.source,
            other.status | RETRANSMIT,
            other.data,
        )


class ProblemKind(StrEnum):
    BAD_CHECKSUM = "bad_checksum"  # answered with NAK RESEND
    GARBAGE = "garbage"  # bytes that cannot start a packet (Length byte too small or too large)
    INCOMPLETE = "incomplete"  # a packet cut short: the line went quiet or the device went away
    OVERSIZE = "oversize"  # a multipacket decode longer than the agent takes
    MALFORMED = "malformed"  # a valid packet that cannot be what it says (a decode without a bar code type)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something to log: `message` is a complete sentence (without the scanner's name)."""

    kind: ProblemKind
    nbytes: int
    message: str


class PacketParser:
    """Bytes in any chunking -> packets and problems, in order. Never raises on what the line delivers.

    Synchronisation rests on the Length byte: a byte that cannot be one (under 4, or over `max_length`) is garbage
    and skipped; a plausible one is taken as a packet start, and a wrong checksum throws the whole packet away
    (one NAK RESEND for it, not one per byte inside it).
    """

    def __init__(self, max_length: int = MAX_LENGTH, stale_after: float = DEFAULT_STALE_AFTER) -> None:
        if not HEADER_LENGTH <= max_length <= MAX_LENGTH:
            raise ValueError(f"max_length must be {HEADER_LENGTH} to {MAX_LENGTH}, not {max_length}")
        self.max_length = max_length
        self.stale_after = stale_after
        self._buf = bytearray()
        self._garbage = 0
        self._first_garbage = 0
        self._last_at: float | None = None

    def feed(self, data: bytes, now: float | None = None) -> list[Packet | Problem]:
        self._buf += data
        if data:
            self._last_at = now
        out: list[Packet | Problem] = []
        while self._buf:
            length = self._buf[0]
            if not HEADER_LENGTH <= length <= self.max_length:
                if not self._garbage:
                    self._first_garbage = length
                self._garbage += 1
                del self._buf[0]
                continue
            if len(self._buf) < length + 2:
                break
            raw = bytes(self._buf[: length + 2])
            del self._buf[: length + 2]
            self._flush_garbage(out)
            if raw[length:] != checksum(raw[:length]):
                out.append(self._bad_checksum(raw))
                continue
            out.append(Packet(raw[1], raw[2], raw[3], raw[HEADER_LENGTH:length], now))
        return out

    def _bad_checksum(self, raw: bytes) -> Problem:
        length = raw[0]
        want, got = checksum(raw[:length]).hex(), raw[length:].hex()
        # Text from a scanner not set to SSI also gets here; its "source" byte gives it away.
        hint = "" if raw[2] in tuple(Source) else f" (source byte 0x{raw[2]:02X}: is the scanner set to SSI?)"
        return Problem(
            ProblemKind.BAD_CHECKSUM,
            len(raw),
            f"SSI packet (opcode 0x{raw[1]:02X}, {len(raw)} bytes) failed its checksum "
            f"(0x{got.upper()}, expected 0x{want.upper()}); asked the scanner to resend{hint}",
        )

    def _flush_garbage(self, out: list[Packet | Problem]) -> None:
        if not self._garbage:
            return
        n, first = self._garbage, self._first_garbage
        self._garbage = 0
        why = "under the minimum of 4" if first < HEADER_LENGTH else f"over the maximum of {self.max_length}"
        out.append(
            Problem(
                ProblemKind.GARBAGE,
                n,
                f"skipped {n} byte(s) that cannot start an SSI packet (length byte 0x{first:02X} is {why})"
                " — is the scanner in SSI mode, at this baud rate?",
            )
        )

    def deadline(self) -> float | None:
        """When a partial packet counts as cut short (`idle` then drops it), or None."""
        if (not self._buf and not self._garbage) or self._last_at is None:
            return None
        return self._last_at + self.stale_after

    def idle(self, now: float) -> list[Packet | Problem]:
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return []
        out: list[Packet | Problem] = []
        self._flush_garbage(out)
        problem = self.reset()
        if problem is not None:
            out.append(problem)
        return out

    def reset(self) -> Problem | None:
        """Forget a partial packet (the line went quiet, or the device went away); says what was dropped."""
        pending = bytes(self._buf)
        self._buf.clear()
        self._garbage = 0
        if not pending:
            return None
        return Problem(
            ProblemKind.INCOMPLETE,
            len(pending),
            f"dropped an SSI packet cut short after {len(pending)} of {pending[0] + 2} bytes",
        )


@dataclass(frozen=True, slots=True)
class Scan:
    """A whole decode (every packet of a multipacket one joined), waiting for the agent's verdict."""

    code_type: int
    data: bytes
    at: float | None

    @property
    def symbology(self) -> str:
        return aim_identifier(self.code_type)


@dataclass(frozen=True, slots=True)
class Reply:
    """Bytes to send the scanner now (an ACK or NAK of one of its packets)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """The scanner's ACK or NAK of a command we sent; `cause` is the NAK's cause byte."""

    acked: bool
    cause: int | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """A decoder message the agent has no use for (EVENT, REPLY_REVISION...): acknowledged, then logged."""

    opcode: int


Event = Scan | Reply | Answer | Ignored | Problem


@dataclass(slots=True)
class _Accepted:
    """The last packet accepted, and what it was answered (None while the journal has not decided)."""

    packet: Packet
    reply: bytes | None


@dataclass(slots=True)
class Conversation:
    """The host's side of SSI's stop-and-wait: what each packet (or damaged one) from the scanner calls for.

    A decode is answered by `verdict` once the agent has journaled (ACK) or refused (NAK DENIED) it. Packets of a
    multipacket decode and other messages are ACKed at once, a damaged packet is NAKed RESEND at once.

    SSI has no sequence numbers, so a packet with the retransmit bit that equals the last one accepted is taken to
    be that packet again (our answer got lost): it gets that answer again and no second scan, or nothing while the
    journal has yet to decide, as the verdict will answer it. Damage on the line in between means the scanner may
    be resending a new scan of the same code, so damage ends that memory: a rare double entry (which the platform
    answers as a repeat) rather than a lost scan.
    """

    max_scan: int = DEFAULT_MAX_LEN
    _last: _Accepted | None = None
    _parts: list[Packet] = field(default_factory=list)
    _waiting: deque[_Accepted] = field(default_factory=deque)

    def receive(self, item: Packet | Problem) -> list[Event]:
        if isinstance(item, Problem):
            self._last = None
            return [item, Reply(nak(NakCause.RESEND))] if item.kind == ProblemKind.BAD_CHECKSUM else [item]
        packet = item
        if packet.retransmit and self._last is not None and self._last.packet.same_message(packet):
            return [] if self._last.reply is None else [Reply(self._last.reply)]
        if packet.opcode == Opcode.CMD_ACK:
            return [Answer(True)]
        if packet.opcode == Opcode.CMD_NAK:
            return [Answer(False, packet.data[0] if packet.data else None)]
        if packet.opcode != Opcode.DECODE_DATA:
            return self._answer(packet, ack(), Ignored(packet.opcode))
        if not packet.data:
            return self._refuse(packet, NakCause.BAD_CONTEXT, ProblemKind.MALFORMED, "a decode without a bar code type")
        if sum(len(p.data) - 1 for p in self._parts) + len(packet.data) - 1 > self.max_scan:
            self._parts.clear()
            return self._refuse(packet, NakCause.DENIED, ProblemKind.OVERSIZE, f"a decode over {self.max_scan} bytes")
        if packet.continuation:
            self._parts.append(packet)
            return self._answer(packet, ack())
        parts, self._parts = [*self._parts, packet], []
        self._last = _Accepted(packet, None)
        self._waiting.append(self._last)
        return [Scan(parts[0].data[0], b"".join(p.data[1:] for p in parts), packet.at)]

    def verdict(self, journaled: bool) -> bytes | None:
        """The answer to the oldest decode still waiting: ACK once journaled, NAK DENIED when refused."""
        if not self._waiting:
            return None
        accepted = self._waiting.popleft()
        accepted.reply = ack() if journaled else nak(NakCause.DENIED)
        return accepted.reply

    def drop_partial(self) -> int:
        """Forget a multipacket decode in progress (the device went away); how many packets were dropped."""
        dropped = len(self._parts)
        self._parts.clear()
        return dropped

    def _answer(self, packet: Packet, reply: bytes, *events: Event) -> list[Event]:
        self._last = _Accepted(packet, reply)
        return [*events, Reply(reply)]

    def _refuse(self, packet: Packet, cause: NakCause, kind: ProblemKind, what: str) -> list[Event]:
        message = f"refused {what} (NAK {cause.name.replace('_', ' ')})"
        return self._answer(packet, nak(cause), Problem(kind, len(packet.data), message))
