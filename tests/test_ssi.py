"""Zebra SSI: the packet parser and the host's side of the conversation with exact bytes, then the SSI driver with a
real agent journal against a virtual SSI scanner on a pseudo-terminal (tests/ssi_scanner.py).

Checksums in these tests are computed by the guide's rule (the two's complement of the 16-bit sum of every byte
before the checksum, high byte first), in `tests.ssi_scanner.packet`, not with the module under test.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clearpoint.scanner_agent import identity as ident
from clearpoint.scanner_agent import ssi
from clearpoint.scanner_agent.agent import Agent
from clearpoint.scanner_agent.config import ConfigError, load
from clearpoint.scanner_agent.console import Console
from clearpoint.scanner_agent.drivers.serial import SerialSettings
from clearpoint.scanner_agent.drivers.ssi_serial import SsiOptions, SsiSerialDriver
from clearpoint.scanner_agent.journal import Journal, read_claims
from clearpoint.scanner_agent.uplink import UplinkSettings
from clearpoint.scanner_agent.virtual_scanner import VirtualScanner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ssi_scanner import DENIED, RESEND, SsiScanner, packet
from tests.test_framing import split_at
from tests.test_serial_driver import wait_log

AGENT = "agt_0011223344556677"
BAUD = 115200
EAN13 = 0x0B


def decode(data: bytes, code_type: int = EAN13, status: int = 0) -> bytes:
    return packet(ssi.Opcode.DECODE_DATA, bytes([code_type]) + data, status=status)


def parse(*chunks: bytes, parser: ssi.PacketParser | None = None) -> list[ssi.Packet | ssi.Problem]:
    parser = parser or ssi.PacketParser()
    return [out for chunk in chunks for out in parser.feed(chunk)]


# -- packets ---------------------------------------------------------------------------------------


def test_packets_as_the_guide_writes_them() -> None:
    # SSI Programmer's Guide, chapter 2, "Packet format": Length (every byte but the checksum), Opcode, Message
    # Source, Status, data, checksum high byte first. A DECODE_DATA (0xF3) from the decoder (source 0) for the
    # EAN-13 (bar code type 0x0B) 4006381333931: 18 bytes before the checksum, which sum to 0x03AC.
    wire = bytes.fromhex("12 F3 00 00 0B 34 30 30 36 33 38 31 33 33 33 39 33 31 FC 54")
    assert parse(wire) == [ssi.Packet(0xF3, 0x00, 0x00, b"\x0b4006381333931")]
    # Chapter 2, CMD_ACK and CMD_NAK, as the host (source 4) sends them.
    assert ssi.ack() == bytes.fromhex("04 D0 04 00 FF 28")
    assert ssi.nak(ssi.NakCause.RESEND) == bytes.fromhex("05 D1 04 00 01 FF 25")
    assert ssi.nak(ssi.NakCause.DENIED) == bytes.fromhex("05 D1 04 00 06 FF 20")


def test_encoding_follows_the_checksum_rule() -> None:
    for opcode, data, status in [(0xE6, b"\x00", 0), (0xE7, b"\x01", ssi.RETRANSMIT), (0xD0, b"", 0)]:
        wire = ssi.encode(opcode, data, status=status)
        assert wire == packet(opcode, data, source=ssi.Source.HOST, status=status)
        assert wire[0] == len(wire) - 2 and (sum(wire[:-2]) + int.from_bytes(wire[-2:], "big")) % 0x10000 == 0
    assert ssi.encode(0xE6, b"\x19") == bytes.fromhex("05 E6 04 00 19 FE F8")
    with pytest.raises(ValueError, match="at most 251 data bytes"):
        ssi.encode(0xF3, bytes(252))


_packets = st.lists(
    st.tuples(
        st.sampled_from([0xF3, 0xF6, 0xD0, 0xD1, 0xA4]),
        st.integers(0, 0x0B),
        st.binary(max_size=40),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(_packets, st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_chunking_gives_the_same_packets(packets: list[tuple[int, int, bytes]], cuts: list[int]) -> None:
    stream = b"".join(packet(op, data, status=status) for op, status, data in packets)
    assert parse(*split_at(stream, cuts)) == [ssi.Packet(op, 0, status, data) for op, status, data in packets]


def test_garbage_before_and_between_packets_is_one_problem_each() -> None:
    ean = decode(b"4006381333931")
    out = parse(b"\x00\x01\x03" + ean + b"\x02\x00", b"\x00" + ean)
    assert [type(o).__name__ for o in out] == ["Problem", "Packet", "Problem", "Packet"]
    first, second = out[0], out[2]
    assert isinstance(first, ssi.Problem) and isinstance(second, ssi.Problem)
    assert first.kind == ssi.ProblemKind.GARBAGE and first.nbytes == 3
    assert "length byte 0x00 is under the minimum of 4" in first.message
    assert "is the scanner in SSI mode" in first.message
    assert second.nbytes == 3


def test_a_length_byte_over_the_maximum_is_garbage() -> None:
    parser = ssi.PacketParser(max_length=32)
    out = parse(b"\x40\x41" + decode(b"123"), parser=parser)
    assert isinstance(out[0], ssi.Problem) and out[0].kind == ssi.ProblemKind.GARBAGE
    assert "length byte 0x40 is over the maximum of 32" in out[0].message
    assert out[1] == ssi.Packet(0xF3, 0, 0, b"\x0b123")
    with pytest.raises(ValueError, match="max_length"):
        ssi.PacketParser(max_length=3)


def test_a_truncated_packet_is_dropped_when_the_line_goes_quiet() -> None:
    parser = ssi.PacketParser(stale_after=0.5)
    ean = decode(b"4006381333931")
    assert parser.feed(ean[:9], now=10.0) == [] and parser.deadline() == 10.5
    assert parser.idle(10.4) == []
    (problem,) = parser.idle(10.5)
    assert isinstance(problem, ssi.Problem) and problem.kind == ssi.ProblemKind.INCOMPLETE
    assert problem.message == "dropped an SSI packet cut short after 9 of 20 bytes"
    assert parser.deadline() is None
    assert parser.feed(ean, now=11.0) == [ssi.Packet(0xF3, 0, 0, b"\x0b4006381333931", 11.0)]
    parser.feed(ean[:3], now=12.0)
    reset = parser.reset()
    assert reset is not None and reset.nbytes == 3 and parser.reset() is None


def test_a_bad_checksum_is_naked_resend_and_the_next_packet_still_parses() -> None:
    damaged = bytearray(decode(b"4006381333931"))
    damaged[7] ^= 0x01  # one flipped bit in the data
    out = parse(bytes(damaged) + decode(b"96385074"))
    assert isinstance(out[0], ssi.Problem) and out[0].kind == ssi.ProblemKind.BAD_CHECKSUM
    assert "(opcode 0xF3, 20 bytes) failed its checksum (0xFC54, expected 0xFC53)" in out[0].message
    assert out[1] == ssi.Packet(0xF3, 0, 0, b"\x0b96385074")
    assert ssi.Conversation().receive(out[0]) == [out[0], ssi.Reply(bytes.fromhex("05 D1 04 00 01 FF 25"))]
    assert "is the scanner set to SSI" not in out[0].message
    # A scanner still sending text ("4006381333931" CR): '4' (0x34) looks like a length, the rest fails the checksum.
    (text,) = parse(b"4006381333931\r" * 4)
    assert isinstance(text, ssi.Problem) and text.kind == ssi.ProblemKind.BAD_CHECKSUM
    assert "(source byte 0x30: is the scanner set to SSI?)" in text.message


# -- the conversation ------------------------------------------------------------------------------


def receive(talk: ssi.Conversation, wire: bytes) -> list[ssi.Event]:
    return [event for item in parse(wire) for event in talk.receive(item)]


ACK = ssi.Reply(bytes.fromhex("04 D0 04 00 FF 28"))
NAK_DENIED = ssi.Reply(bytes.fromhex("05 D1 04 00 06 FF 20"))


def test_a_decode_is_answered_only_by_the_verdict() -> None:
    talk = ssi.Conversation()
    assert receive(talk, decode(b"https://clearpoint.test/v/1", 0x1C)) == [
        ssi.Scan(0x1C, b"https://clearpoint.test/v/1", None)
    ]
    assert talk.verdict(True) == ACK.payload
    assert talk.verdict(True) is None  # nothing waits any more
    (scan,) = receive(talk, decode(b"AB\x08C", 0x03))
    assert isinstance(scan, ssi.Scan) and scan.symbology == "]C0"
    assert talk.verdict(False) == NAK_DENIED.payload


def test_multipacket_continuation_is_one_scan() -> None:
    talk = ssi.Conversation()
    first = decode(b"0104006381333931", 0x1B, status=ssi.CONTINUATION)
    middle = decode(b"\x1d10ABC", 0x1B, status=ssi.CONTINUATION)
    assert receive(talk, first) == [ACK] and receive(talk, middle) == [ACK]  # each part ACKed at once
    # A lost ACK of a part: the part comes again and is not added twice.
    assert receive(talk, decode(b"\x1d10ABC", 0x1B, status=ssi.CONTINUATION | ssi.RETRANSMIT)) == [ACK]
    assert receive(talk, decode(b"\x1d21XYZ", 0x1B)) == [ssi.Scan(0x1B, b"0104006381333931\x1d10ABC\x1d21XYZ", None)]


def test_a_multipacket_decode_longer_than_the_limit_is_refused() -> None:
    talk = ssi.Conversation(max_scan=20)
    assert receive(talk, decode(b"A" * 15, status=ssi.CONTINUATION)) == [ACK]
    problem, reply = receive(talk, decode(b"B" * 15))
    assert isinstance(problem, ssi.Problem) and problem.kind == ssi.ProblemKind.OVERSIZE
    assert reply == NAK_DENIED
    (scan,) = receive(talk, decode(b"C" * 5))  # the parts were dropped: the next decode stands alone
    assert scan == ssi.Scan(EAN13, b"CCCCC", None)


def test_a_retransmission_of_the_last_decode_is_answered_again_not_journaled_again() -> None:
    talk = ssi.Conversation()
    ean = b"4006381333931"
    assert len(receive(talk, decode(ean))) == 1
    assert receive(talk, decode(ean, status=ssi.RETRANSMIT)) == []  # the journal has not decided: the verdict answers
    assert talk.verdict(True) == ACK.payload
    assert receive(talk, decode(ean, status=ssi.RETRANSMIT)) == [ACK]  # our ACK was lost: ACK again, no scan
    assert receive(talk, decode(ean, status=ssi.RETRANSMIT)) == [ACK]
    # The same code scanned again is a new decode (no retransmit bit): a new scan.
    assert receive(talk, decode(ean)) == [ssi.Scan(EAN13, ean, None)]
    assert talk.verdict(False) == NAK_DENIED.payload
    assert receive(talk, decode(ean, status=ssi.RETRANSMIT)) == [NAK_DENIED]  # a lost NAK is repeated too


def test_damage_on_the_line_ends_the_memory_of_the_last_decode() -> None:
    """A new scan of the same code whose first transmission was damaged comes back with the retransmit bit: it
    must not be taken for the old one (a lost scan); a double entry is the lesser harm."""
    talk = ssi.Conversation()
    ean = b"4006381333931"
    receive(talk, decode(ean))
    talk.verdict(True)
    damaged = bytearray(decode(ean))
    damaged[-1] ^= 0xFF
    assert receive(talk, bytes(damaged))[1] == ssi.Reply(ssi.nak(ssi.NakCause.RESEND))
    assert receive(talk, decode(ean, status=ssi.RETRANSMIT)) == [ssi.Scan(EAN13, ean, None)]


def test_other_messages_and_answers() -> None:
    talk = ssi.Conversation()
    assert receive(talk, packet(ssi.Opcode.EVENT, b"\x01")) == [ssi.Ignored(0xF6), ACK]
    assert receive(talk, packet(ssi.Opcode.REPLY_REVISION, b"NBRXXA 1.0")) == [ssi.Ignored(0xA4), ACK]
    assert receive(talk, packet(ssi.Opcode.CMD_ACK)) == [ssi.Answer(True)]
    assert receive(talk, packet(ssi.Opcode.CMD_NAK, b"\x02")) == [ssi.Answer(False, 2)]
    problem, reply = receive(talk, packet(ssi.Opcode.DECODE_DATA))  # no bar code type byte
    assert isinstance(problem, ssi.Problem) and problem.kind == ssi.ProblemKind.MALFORMED
    assert reply == ssi.Reply(bytes.fromhex("05 D1 04 00 02 FF 24"))  # NAK BAD_CONTEXT


@pytest.mark.parametrize(
    ("code_type", "aim"),
    [
        (0x01, "]A0"),  # Code 39
        (0x03, "]C0"),  # Code 128
        (0x08, "]E0"),  # UPC-A
        (0x0A, "]E4"),  # EAN-8
        (0x0B, "]E0"),  # EAN-13
        (0x0F, "]C1"),  # GS1-128
        (0x11, "]L2"),  # PDF417
        (0x1A, ""),  # Micro PDF417: the modifier depends on the symbol
        (0x1B, "]d1"),  # Data Matrix
        (0x1C, "]Q1"),  # QR Code
        (0x25, ""),  # MaxiCode: the mode decides the modifier
        (0xFF, ""),
    ],
)
def test_bar_code_types_map_to_aim_identifiers(code_type: int, aim: str) -> None:
    assert ssi.aim_identifier(code_type) == aim


# -- configuration ---------------------------------------------------------------------------------


def _config(tmp_path: Path, scanner: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[agent]\nplatform = "127.0.0.1:50051"\n\n[[scanner]]\nid = "till-1"\ntype = "serial"\n'
        f'path = "/dev/ttyUSB0"\n{scanner}\n'
    )
    return path


def test_ssi_configuration(tmp_path: Path) -> None:
    config = load(_config(tmp_path, 'framing = "ssi"\nssi_good_beep = 0x01\nssi_bad_beep = 0x1A\nssi_led = false'))
    (driver,) = config.drivers()
    assert isinstance(driver, SsiSerialDriver)
    assert (driver.options.good_beep, driver.options.bad_beep, driver.options.led) == (1, 0x1A, False)
    (default,) = load(_config(tmp_path, 'framing = "ssi"')).drivers()
    assert isinstance(default, SsiSerialDriver) and default.options == SsiOptions()


@pytest.mark.parametrize(
    ("scanner", "message"),
    [
        ('framing = "ssi"\nssi_good_beep = 27', "ssi_good_beep must be an SSI beep code from 0 to 26 (0x00 to 0x1A)"),
        ('framing = "ssi"\nssi_bad_beep = -1', "ssi_bad_beep must be an SSI beep code"),
        ('framing = "ssi"\nssi_led = "yes"', "ssi_led must be bool"),
        ("ssi_good_beep = 1", 'the ssi_ options apply only with framing = "ssi"'),
        ('framing = "ssi"\ngood_read = "\\u0007"', "use ssi_good_beep / ssi_bad_beep, not good_read / bad_read"),
    ],
)
def test_ssi_configuration_errors(tmp_path: Path, scanner: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(_config(tmp_path, scanner))


# -- the driver with a real journal, against a virtual SSI scanner on a pty ------------------------


@dataclass
class Till:
    scanner: SsiScanner
    driver: SsiSerialDriver
    journal_path: Path

    def claims(self) -> list[tuple[str, bytes]]:
        return [(c.symbology, c.data) for c in read_claims(self.journal_path)]


async def _pump(driver: SsiSerialDriver, agent: Agent) -> None:
    async for read in driver.reads():
        await agent.take(read)


async def _connected(driver: SsiSerialDriver, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not driver.connected:
        assert time.monotonic() < deadline, "driver never connected"
        await asyncio.sleep(0.01)


@pytest.fixture
async def till(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Till]:
    caplog.set_level(logging.INFO, logger="clearpoint.scanner_agent")
    key = Ed25519PrivateKey.generate()
    journal_path = tmp_path / "journal.sqlite3"
    journal = await Journal.open(journal_path, AGENT, key)
    identity = ident.Identity(AGENT, "ptn_000000000000", "store-1", "till", "127.0.0.1:1")
    with VirtualScanner(tmp_path / "usb-Zebra_Technologies_Symbol_Bar_Code_Scanner-if00") as pty:
        serial_settings = SerialSettings(pty.port, baud=BAUD, framing="ssi", reconnect_interval=0.1, stale_after=0.2)
        driver = SsiSerialDriver("till-1", serial_settings, SsiOptions(answer_timeout=0.5, led_seconds=0.05))
        agent = Agent(identity, key, journal, [driver], UplinkSettings("127.0.0.1:1"), Console(io.StringIO()))
        pump = asyncio.create_task(_pump(driver, agent))
        await _connected(driver)

        def in_journal(data: bytes) -> bool:
            return any(c.data == data for c in read_claims(journal_path))

        scanner = SsiScanner(pty, BAUD, journaled=in_journal, timeout=1.0)
        async with scanner.running():
            yield Till(scanner, driver, journal_path)
        await driver.close()
        await asyncio.wait_for(pump, 3.0)
    await journal.close()


async def test_every_decode_is_journaled_once_and_acked_only_after_the_commit(till: Till) -> None:
    scanner = till.scanner
    plain = await scanner.decode(EAN13, b"4006381333931")
    # The scanner never hears the first ACK, waits out its timeout and sends the decode again (retransmit bit).
    lost = await scanner.decode(0x1C, b"https://clearpoint.test/v/6BFOXN", lose_acks=1)
    # A damaged checksum: NAK RESEND at once, and the resend is journaled once.
    damaged = await scanner.decode(0x03, b"CODE128-0042", corrupt=1)
    # A Data Matrix over three packets (continuation bit), one scan.
    long = b"0104006381333931\x1d10" + b"L" * 500
    multi = await scanner.decode(0x1B, long, chunk=200)
    again = await scanner.decode(EAN13, b"4006381333931")  # the same code scanned again: a second scan

    assert plain.verdicts == [("ACK", None)] and plain.sends == 1
    assert lost.verdicts == [("ACK", None), ("ACK", None)] and lost.sends == 2
    assert damaged.verdicts == [("NAK", RESEND), ("ACK", None)] and damaged.sends == 2
    assert multi.verdicts == [("ACK", None)] * 3 and multi.sends == 3
    assert again.verdicts == [("ACK", None)]
    # Every ACK of a decode came when the scan was already in the journal file.
    for delivery in (plain, lost, damaged, multi, again):
        assert delivery.journaled_at_ack and all(delivery.journaled_at_ack)
    assert till.claims() == [
        ("]E0", b"4006381333931"),
        ("]Q1", b"https://clearpoint.test/v/6BFOXN"),
        ("]C0", b"CODE128-0042"),
        ("]d1", long),
        ("]E0", b"4006381333931"),
    ]
    assert scanner.commands == [] and scanner.bad_host_packets == 0  # no beep before the platform answers


async def test_a_refused_scan_gets_nak_denied_then_the_bad_beep(till: Till) -> None:
    scanner = till.scanner
    refused = await scanner.decode(0x03, b"AB\x08C")  # a backspace: never what a bar code said
    assert refused.verdicts == [("NAK", DENIED)] and refused.journaled_at_ack == []
    (beep,) = await scanner.wait_commands(1)
    assert (beep.opcode, beep.source, beep.status, beep.data) == (ssi.Opcode.BEEP, ssi.Source.HOST, 0, b"\x06")
    assert till.claims() == []
    ok = await scanner.decode(EAN13, b"4006381333931")  # and the scanner is not stuck
    assert ok.verdicts == [("ACK", None)] and till.claims() == [("]E0", b"4006381333931")]


async def test_good_signal_beeps_and_flashes_and_a_missed_command_is_sent_once_more(till: Till) -> None:
    scanner = till.scanner
    scanner.ignore_commands = 1  # the scanner misses the first BEEP
    await till.driver.signal(True)
    commands = await scanner.wait_commands(4)
    assert [(c.opcode, c.status, c.data) for c in commands] == [
        (ssi.Opcode.BEEP, 0, b"\x00"),
        (ssi.Opcode.BEEP, ssi.RETRANSMIT, b"\x00"),  # resent after silence, retransmit bit set
        (ssi.Opcode.LED_ON, 0, b"\x01"),
        (ssi.Opcode.LED_OFF, 0, b"\x01"),
    ]


async def test_a_silent_scanner_costs_one_log_line_and_never_blocks_reading(
    till: Till, caplog: pytest.LogCaptureFixture
) -> None:
    scanner = till.scanner
    scanner.ignore_commands = 100
    started = time.monotonic()
    await till.driver.signal(False)
    await till.driver.signal(False)
    assert time.monotonic() - started < 0.1  # queued, not awaited
    ok = await scanner.decode(EAN13, b"4006381333931")  # read and ACKed while the commands wait in vain
    assert ok.verdicts == [("ACK", None)]
    await scanner.wait_commands(4, within=5.0)
    await asyncio.sleep(0.6)
    assert caplog.text.count("did not acknowledge SSI BEEP 0x06, sent twice") == 1
    assert [(c.opcode, c.status, c.data) for c in scanner.commands] == [
        (ssi.Opcode.BEEP, 0, b"\x06"),
        (ssi.Opcode.BEEP, ssi.RETRANSMIT, b"\x06"),
    ] * 2


async def test_a_packet_cut_by_an_unplug_is_dropped_and_the_scanner_works_after_the_replug(
    till: Till, caplog: pytest.LogCaptureFixture
) -> None:
    pty = till.scanner.pty
    await pty.send(decode(b"4006381333931")[:9], BAUD)
    await asyncio.sleep(0.05)
    pty.unplug()
    await wait_log(caplog, "dropped an SSI packet cut short after 9 of 20 bytes when it went away")
    pty.replug()
    await wait_log(caplog, "scanner till-1 back")
    ok = await till.scanner.decode(EAN13, b"96385074")
    assert ok.verdicts == [("ACK", None)] and all(ok.journaled_at_ack)
    assert till.claims() == [("]E0", b"96385074")]
