"""Zebra scanners in SSI mode (`framing = "ssi"`): scans acknowledged only once they are in the journal.

The serial driver's port handling (open by /dev/serial/by-id, unplug, replug, reconnect) is inherited whole; this
driver replaces only what the bytes mean. The protocol itself is `ssi` (pure); here it meets the port:

* a decode becomes a `Read`, and the scanner hears ACK when the agent calls `recorded(read, journaled=True)`,
  i.e. after the commit, or NAK DENIED when the agent refused the scan; a damaged packet gets NAK RESEND at once;
* `signal` (the platform's answer) sends BEEP, and for a good read a flash of the decode LED. The scanner ACKs
  each command; a command sender waits for that briefly, sends once more with the retransmit bit, and logs a
  line if the scanner stays silent. The read loop never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from clearpoint.scanner_agent import ssi
from clearpoint.scanner_agent.aim import split_aim, symbology_name
from clearpoint.scanner_agent.drivers.serial import FramingMode, SerialDriver, SerialSettings
from clearpoint.scanner_agent.reads import Read

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SsiOptions:
    """What the scanner is told, beyond ACK and NAK."""

    good_beep: int = ssi.ONE_SHORT_HIGH  # BEEP code after an accepted scan (0x00-0x1A)
    bad_beep: int = ssi.TWO_SHORT_LOW  # BEEP code after a refused one
    led: bool = True  # flash the green decode LED with the good-read beep
    led_seconds: float = 0.5
    answer_timeout: float = 0.5  # seconds a command waits for the scanner's ACK before it is sent once more

    def __post_init__(self) -> None:
        for name, code in (("ssi_good_beep", self.good_beep), ("ssi_bad_beep", self.bad_beep)):
            if not 0 <= code <= ssi.MAX_BEEP_CODE:
                raise ValueError(f"{name} must be an SSI beep code from 0 to 26 (0x00 to 0x1A), not {code}")
        if self.led_seconds <= 0 or self.answer_timeout <= 0:
            raise ValueError("led_seconds and answer_timeout must be positive")


@dataclass(frozen=True, slots=True)
class _Command:
    opcode: ssi.Opcode
    data: bytes

    def payload(self, retransmit: bool) -> bytes:
        return ssi.encode(self.opcode, self.data, status=ssi.RETRANSMIT if retransmit else 0)

    def __str__(self) -> str:
        return f"{self.opcode.name} 0x{self.data.hex().upper()}"


class SsiSerialDriver(SerialDriver):
    """One Zebra scanner speaking SSI on a serial port (implements `reads.Driver`)."""

    def __init__(self, scanner_id: str, settings: SerialSettings, options: SsiOptions | None = None) -> None:
        if settings.framing != FramingMode.SSI:
            raise ValueError(f"the SSI driver needs framing = 'ssi', not {settings.framing!r}")
        super().__init__(scanner_id, settings)
        self.options = options or SsiOptions()
        self._parser = ssi.PacketParser(stale_after=settings.stale_after)
        self._conversation = ssi.Conversation(max_scan=settings.max_frame)
        self._outbox: asyncio.Queue[_Command] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._answer: asyncio.Future[ssi.Answer] | None = None
        self._led_off: asyncio.TimerHandle | None = None
        self._unheard = False  # the last command went unanswered: say so once, not per beep

    # --- framing hooks (SerialDriver) -----------------------------------------------------------------------------

    def _deadline(self) -> float | None:
        return self._parser.deadline()

    def _feed(self, data: bytes, now: float) -> list[Read]:
        return self._converse(self._parser.feed(data, now))

    def _idle(self, now: float) -> list[Read]:
        return self._converse(self._parser.idle(now))

    def _forget_partial(self) -> None:
        problem = self._parser.reset()
        if problem is not None:
            log.warning("scanner %s: %s when it went away", self.scanner_id, problem.message)
        dropped = self._conversation.drop_partial()
        if dropped:
            log.warning("scanner %s: dropped %d packet(s) of a decode when it went away", self.scanner_id, dropped)

    def _converse(self, items: list[ssi.Packet | ssi.Problem]) -> list[Read]:
        reads = []
        for item in items:
            for event in self._conversation.receive(item):
                if isinstance(event, ssi.Reply):
                    self._write(event.payload, "an SSI ACK/NAK")
                elif isinstance(event, ssi.Answer):
                    if self._answer is not None and not self._answer.done():
                        self._answer.set_result(event)
                    else:
                        log.debug("scanner %s: an SSI %s nobody waited for", self.scanner_id, event)
                elif isinstance(event, ssi.Problem):
                    log.warning("scanner %s: %s", self.scanner_id, event.message)
                    self.health.trouble(event.message)
                elif isinstance(event, ssi.Ignored):
                    log.debug("scanner %s: acknowledged SSI message 0x%02X", self.scanner_id, event.opcode)
                else:
                    reads.append(self._read(event))
        return reads

    def _read(self, scan: ssi.Scan) -> Read:
        # A scanner set to send its own AIM identifier as well knows the modifier better than the bar code type.
        ident, data = split_aim(scan.data)
        symbology = ident or scan.symbology
        log.debug(
            "scanner %s: SSI decode of %d bytes, type 0x%02X%s",
            self.scanner_id,
            len(data),
            scan.code_type,
            f" ({symbology_name(symbology)})" if symbology else "",
        )
        return Read(self.scanner_id, data, symbology, *self._stamps(scan.at))

    # --- Driver ---------------------------------------------------------------------------------------------------

    async def recorded(self, read: Read, journaled: bool) -> None:
        """ACK a decode the journal committed, NAK DENIED one the agent refused."""
        reply = self._conversation.verdict(journaled)
        if reply is not None:
            self._write(reply, "ACK" if journaled else "NAK DENIED")

    async def signal(self, good: bool) -> None:
        """The platform's answer as a beep (and a flash of the decode LED for a good one); queued, never awaited."""
        beep = _Command(ssi.Opcode.BEEP, bytes([self.options.good_beep if good else self.options.bad_beep]))
        self._order(beep)
        if good and self.options.led:
            led = bytes([ssi.DECODE_LED])
            self._order(_Command(ssi.Opcode.LED_ON, led))
            if self._led_off is not None:
                self._led_off.cancel()
            off = _Command(ssi.Opcode.LED_OFF, led)
            self._led_off = asyncio.get_running_loop().call_later(self.options.led_seconds, self._order, off)

    async def close(self) -> None:
        if self._led_off is not None:
            self._led_off.cancel()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        await super().close()

    # --- commands -------------------------------------------------------------------------------------------------

    def _order(self, command: _Command) -> None:
        if self._closed or not self.connected:
            return  # nobody to tell; a beep for an old scan after a replug would only confuse
        self._outbox.put_nowait(command)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_commands(), name=f"SSI commands to {self.scanner_id}")

    async def _send_commands(self) -> None:
        while True:
            await self._send(await self._outbox.get())

    async def _send(self, command: _Command) -> None:
        """Send, wait for the ACK; on silence (or NAK RESEND) once more with the retransmit bit, then give up."""
        for retransmit in (False, True):
            self._answer = asyncio.get_running_loop().create_future()
            try:
                if not self._write(command.payload(retransmit), str(command)):
                    return
                answer = await asyncio.wait_for(self._answer, self.options.answer_timeout)
            except TimeoutError:
                continue
            finally:
                self._answer = None
            if answer.acked or answer.cause != ssi.NakCause.RESEND:
                self._unheard = False
                if not answer.acked:
                    cause = answer.cause or 0
                    log.info("scanner %s refused SSI %s (NAK cause 0x%02X)", self.scanner_id, command, cause)
                return
        level = logging.DEBUG if self._unheard else logging.WARNING
        log.log(
            level,
            "scanner %s did not acknowledge SSI %s, sent twice; is it set to SSI with ACK/NAK handshaking?",
            self.scanner_id,
            command,
        )
        self._unheard = True
