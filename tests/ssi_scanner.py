"""A Zebra scanner in SSI mode on a pseudo-terminal, for the SSI driver's end-to-end tests.

It behaves as the SSI Programmer's Guide has the decoder behave: it sends a decode, waits for the host's ACK or NAK,
sends the packet again with the retransmit bit on silence or NAK RESEND, and gives up after a few tries; it ACKs
the host's commands (BEEP, LED_ON...). Packets are built and read here by the guide's rules, not with the module
under test, so the two cannot share a mistake.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from clearpoint.scanner_agent.virtual_scanner import VirtualScanner

CMD_ACK, CMD_NAK, DECODE_DATA = 0xD0, 0xD1, 0xF3
RESEND, DENIED = 0x01, 0x06
DECODER, HOST = 0x00, 0x04
RETRANSMIT, CONTINUATION = 0x01, 0x02


def packet(opcode: int, data: bytes = b"", *, source: int = DECODER, status: int = 0) -> bytes:
    """Length (all but the checksum), opcode, source, status, data, then the two's complement of the 16-bit sum."""
    body = bytes([4 + len(data), opcode, source, status]) + data
    return body + ((0x10000 - sum(body) % 0x10000) % 0x10000).to_bytes(2, "big")


@dataclass(frozen=True)
class Heard:
    """A packet from the host."""

    opcode: int
    source: int
    status: int
    data: bytes


@dataclass
class Delivery:
    """What happened to one decode."""

    sends: int = 0  # transmissions of its packets, retransmissions included
    answers: list[Heard] = field(default_factory=list)  # every ACK / NAK it got, in order
    journaled_at_ack: list[bool] = field(default_factory=list)  # for each ACK of its last packet: in the journal?

    @property
    def verdicts(self) -> list[tuple[str, int | None]]:
        return [("ACK", None) if a.opcode == CMD_ACK else ("NAK", a.data[0]) for a in self.answers]


class SsiScanner:
    """Decodes out, answers in. `journaled(data)` says whether a scan is in the agent's journal right now."""

    def __init__(
        self,
        pty: VirtualScanner,
        baud: int,
        *,
        journaled: Callable[[bytes], bool] | None = None,
        timeout: float = 0.4,
        tries: int = 3,
    ) -> None:
        self.pty = pty
        self.baud = baud
        self.journaled = journaled
        self.timeout = timeout
        self.tries = tries
        self.commands: list[Heard] = []  # the host's commands (BEEP, LED_ON...), retransmissions included
        self.ignore_commands = 0  # how many host commands to leave unanswered (a scanner that missed them)
        self.bad_host_packets = 0
        self._answers: asyncio.Queue[Heard] = asyncio.Queue()
        self._heard = asyncio.Event()
        self._buf = bytearray()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SsiScanner]:
        listener = asyncio.create_task(self._listen())
        try:
            yield self
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def decode(
        self, code_type: int, data: bytes, *, chunk: int = 240, lose_acks: int = 0, corrupt: int = 0
    ) -> Delivery:
        """Send one decode in packets of at most `chunk` data bytes. `lose_acks`: ACKs of the last packet to act
        as if never received; `corrupt`: transmissions to send with a damaged checksum."""
        pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
        delivery = Delivery()
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            status = 0 if last else CONTINUATION
            for attempt in range(self.tries):
                wire = bytearray(
                    packet(DECODE_DATA, bytes([code_type]) + piece, status=status | (RETRANSMIT if attempt else 0))
                )
                if corrupt:
                    corrupt -= 1
                    wire[-1] ^= 0x5A
                while not self._answers.empty():
                    self._answers.get_nowait()
                await self.pty.send(bytes(wire), self.baud)
                delivery.sends += 1
                try:
                    answer = await asyncio.wait_for(self._answers.get(), self.timeout)
                except TimeoutError:
                    continue  # silence: send it again, retransmit bit set
                delivery.answers.append(answer)
                if answer.opcode == CMD_NAK:
                    if answer.data[:1] == bytes([RESEND]):
                        continue
                    return delivery  # DENIED, BAD_CONTEXT: the host will not take it
                if not last:
                    break
                if self.journaled is not None:
                    delivery.journaled_at_ack.append(self.journaled(data))
                if lose_acks:
                    lose_acks -= 1
                    await asyncio.sleep(self.timeout)  # as if this ACK never arrived: the scanner waits it out
                    continue  # and sends the decode again
                break
            else:
                return delivery  # gave up, as a scanner does after its retries
        return delivery

    async def wait_commands(self, count: int, within: float = 3.0) -> list[Heard]:
        """The host's commands once `count` have come, or all there are after `within` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while len(self.commands) < count:
                    self._heard.clear()
                    await self._heard.wait()
        return self.commands

    async def _listen(self) -> None:
        while True:
            self._buf += self.pty.read_feedback()
            for heard in self._packets():
                if heard.opcode in (CMD_ACK, CMD_NAK):
                    self._answers.put_nowait(heard)
                    continue
                self.commands.append(heard)
                self._heard.set()
                if self.ignore_commands:
                    self.ignore_commands -= 1
                else:
                    await self.pty.send(packet(CMD_ACK), self.baud)
            await asyncio.sleep(0.002)

    def _packets(self) -> list[Heard]:
        out = []
        while self._buf and len(self._buf) >= self._buf[0] + 2:
            length = self._buf[0]
            raw, self._buf = bytes(self._buf[: length + 2]), self._buf[length + 2 :]
            if length < 4 or (sum(raw[:length]) + int.from_bytes(raw[length:], "big")) % 0x10000 != 0:
                self.bad_host_packets += 1
                continue
            out.append(Heard(raw[1], raw[2], raw[3], raw[4:length]))
        return out
