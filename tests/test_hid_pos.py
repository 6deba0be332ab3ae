"""HID POS bar code scanners: the report descriptor parser, the scanned-data layout, the report decoder,
and the driver over a real FIFO standing in for /dev/hidrawN."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest
from clearpoint.scanner_agent.config import ConfigError, load
from clearpoint.scanner_agent.drivers.hid_pos import HidPosDriver, PosReportDecoder, PosScan, read_descriptor
from clearpoint.scanner_agent.hid_descriptor import (
    BAR_CODE_SCANNER,
    DECODE_DATA_CONTINUED,
    DECODED_DATA,
    FALLBACK_LAYOUT,
    SCANNED_DATA_REPORT,
    ScannerLayout,
    input_reports,
    scanner_layout,
)
from clearpoint.scanner_agent.scanner_kinds import ScannerKind
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_hidraw import fifo_scanner, running, until

GS = b"\x1d"

# A HID POS scanner's report descriptor, item by item, as such a scanner publishes it. Item prefixes are
# bTag (4 bits), bType (2), bSize (2): HID 1.11 section 6.2.2.2; Main items 6.2.2.4-6.2.2.6, Global items
# 6.2.2.7 (Push and Pop too), Local items 6.2.2.8. Usages: HID Point of Sale Usage Tables 1.02, Bar Code Scanner
# page 0x8C (Bar Code Scanner 0x02, Scanned Data Report 0x12, Symbology Identifier 1-3 0xFB-0xFD, Decoded Data
# 0xFE, Decode Data Continued 0xFF); the length is Generic Desktop's Byte Count (HID Usage Tables, 0x01:0x3B).
SCANNER_DESCRIPTOR = bytes(
    [
        *(0x05, 0x8C),  # Usage Page (Bar Code Scanner)
        *(0x09, 0x02),  # Usage (Bar Code Scanner)
        *(0xA1, 0x01),  # Collection (Application)
        *(0x09, 0x12),  #   Usage (Scanned Data Report)
        *(0xA1, 0x02),  #   Collection (Logical)
        *(0x85, 0x02),  #     Report ID (2): byte 0 of the report
        *(0x15, 0x00),  #     Logical Minimum (0)
        *(0x26, 0xFF, 0x00),  # Logical Maximum (255), two data bytes
        *(0x75, 0x08),  #     Report Size (8)
        *(0x95, 0x01),  #     Report Count (1)
        0xA4,  #              Push: keep the scanner page while the length is declared
        *(0x05, 0x01),  #     Usage Page (Generic Desktop)
        *(0x09, 0x3B),  #     Usage (Byte Count)
        *(0x81, 0x02),  #     Input (Data, Variable, Absolute): byte 1
        0xB4,  #              Pop: the Bar Code Scanner page again
        *(0x95, 0x03),  #     Report Count (3)
        *(0x09, 0xFB, 0x09, 0xFC, 0x09, 0xFD),  # Usage (Symbology Identifier 1), (2), (3)
        *(0x81, 0x02),  #     Input: bytes 2-4, the AIM identifier
        *(0x95, 0x38),  #     Report Count (56)
        *(0x09, 0xFE),  #     Usage (Decoded Data)
        *(0x82, 0x02, 0x01),  # Input (Data, Variable, Absolute, Buffered Bytes): bytes 5-60
        *(0x06, 0x00, 0xFF),  # Usage Page (vendor defined, 0xFF00)
        *(0x95, 0x02),  #     Report Count (2)
        *(0x09, 0x01),  #     Usage (vendor 1)
        *(0x81, 0x02),  #     Input: bytes 61-62, the maker's own symbology code and a reserved byte
        *(0x05, 0x8C),  #     Usage Page (Bar Code Scanner)
        *(0x25, 0x01),  #     Logical Maximum (1)
        *(0x75, 0x01),  #     Report Size (1)
        *(0x95, 0x01),  #     Report Count (1)
        *(0x09, 0xFF),  #     Usage (Decode Data Continued)
        *(0x81, 0x02),  #     Input: bit 0 of byte 63
        *(0x75, 0x07),  #     Report Size (7)
        *(0x81, 0x03),  #     Input (Constant): the other bits of byte 63
        0xC0,  #            End Collection
        *(0x06, 0x00, 0xFF),  # Usage Page (vendor defined, 0xFF00)
        *(0x09, 0x02),  #   Usage (vendor 2)
        *(0xA1, 0x02),  #   Collection (Logical)
        *(0x85, 0x03),  #     Report ID (3): another input report, not a scan
        *(0x75, 0x08),  #     Report Size (8)
        *(0x95, 0x04),  #     Report Count (4)
        *(0x09, 0x03),  #     Usage (vendor 3)
        *(0x81, 0x02),  #     Input
        0xC0,  #            End Collection
        *(0x05, 0x8C),  #   Usage Page (Bar Code Scanner)
        *(0x09, 0x14),  #   Usage (Trigger Report)
        *(0xA1, 0x02),  #   Collection (Logical)
        *(0x85, 0x04),  #     Report ID (4): an output report, which takes no part in the input layout
        *(0x75, 0x08),  #     Report Size (8)
        *(0x95, 0x01),  #     Report Count (1)
        *(0x09, 0x00),  #     Usage (undefined)
        *(0x91, 0x02),  #     Output (Data, Variable, Absolute)
        0xC0,  #            End Collection
        0xC0,  #          End Collection
    ]
)

# A smaller scanner: no report ids, no length (the data is NUL-padded), 20 data bytes, and the continuation flag
# declared as one usage for eight one-bit fields (the last usage stands for the rest: HID 1.11 section 6.2.2.8),
# with a four-byte usage (page and id in one item: 6.2.2.8) for the data.
SMALL_DESCRIPTOR = bytes(
    [
        *(0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01),  # Usage Page (Bar Code Scanner), Usage (Bar Code Scanner), Application
        *(0x75, 0x08, 0x95, 0x03),  # Report Size (8), Report Count (3)
        *(0x19, 0xFB, 0x29, 0xFD),  # Usage Minimum (Symbology Identifier 1), Usage Maximum (Symbology Identifier 3)
        *(0x81, 0x02),  # Input: bytes 0-2
        *(0x05, 0x01),  # Usage Page (Generic Desktop): the four-byte usage below carries its own page
        *(0x95, 0x14),  # Report Count (20)
        *(0x0B, 0xFE, 0x00, 0x8C, 0x00),  # Usage (0x008C:0x00FE, Decoded Data)
        *(0x81, 0x02),  # Input: bytes 3-22
        *(0x05, 0x8C, 0x75, 0x01, 0x95, 0x08),  # Usage Page (Bar Code Scanner), Report Size (1), Report Count (8)
        *(0x09, 0xFF),  # Usage (Decode Data Continued)
        *(0x81, 0x02),  # Input: byte 23, bit 0 first
        0xC0,
    ]
)
SMALL_LAYOUT = ScannerLayout(report_id=0, length=24, data=3, capacity=20, symbology=0, continued=(23 * 8, 1))


# --- the descriptor parser ----------------------------------------------------------------------------------


def test_a_scanners_descriptor_item_by_item() -> None:
    reports = input_reports(SCANNER_DESCRIPTOR)
    assert list(reports) == [2, 3]  # report 4 is an output report
    scan = reports[2]
    assert (scan.length, scan.bits) == (64, 63 * 8)
    layout = [(f.bit_offset, f.size, f.count, f.usage_page, f.usage(0), f.constant) for f in scan.fields]
    assert layout == [
        (0, 8, 1, 0x01, 0x01_003B, False),  # Byte Count, on the page pushed over
        (8, 8, 3, 0x8C, 0x8C_00FB, False),  # Symbology Identifier 1 ...
        (32, 8, 56, 0x8C, DECODED_DATA, False),
        (480, 8, 2, 0xFF00, 0xFF00_0001, False),
        (496, 1, 1, 0x8C, DECODE_DATA_CONTINUED, False),
        (497, 7, 1, 0x8C, None, True),  # padding has no usage
    ]
    assert [scan.fields[1].usage(i) for i in range(3)] == [0x8C_00FB, 0x8C_00FC, 0x8C_00FD]
    assert scan.fields[2].usage(55) == DECODED_DATA  # one usage stands for all 56 bytes
    assert scan.fields[2].collections == (BAR_CODE_SCANNER, SCANNED_DATA_REPORT)
    assert (reports[3].length, reports[3].fields[0].bit_offset) == (5, 0)


def test_the_layout_of_a_scanners_descriptor_is_the_common_one() -> None:
    layout = scanner_layout(SCANNER_DESCRIPTOR)
    assert layout.other_reports == {3} and layout.source == "descriptor"
    assert replace(layout, other_reports=frozenset(), source="fallback") == FALLBACK_LAYOUT


def test_no_report_ids_ranges_four_byte_usages_and_repeated_last_usage() -> None:
    assert scanner_layout(SMALL_DESCRIPTOR) == SMALL_LAYOUT
    flags = input_reports(SMALL_DESCRIPTOR)[0].fields[2]
    assert [flags.usage(i) for i in range(8)] == [DECODE_DATA_CONTINUED] * 8


def test_long_items_are_skipped() -> None:
    long_item = bytes([0xFE, 0x03, 0xF1, 0xAA, 0xBB, 0xCC])  # HID 1.11 6.2.2.3: size 3, tag 0xF1, data
    assert scanner_layout(long_item + SCANNER_DESCRIPTOR) == scanner_layout(SCANNER_DESCRIPTOR)


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        (b"", "empty"),
        (bytes(5000), "at most 4096"),
        (bytes([0x05]), "truncated: the item at byte 0"),
        (bytes([0x26, 0xFF]), "needs 2 data byte"),
        (bytes([0x05, 0x8C, 0xFE, 0x09, 0x00]), "long item at byte 2 runs past the end"),
        (bytes([0x05, 0x8C, 0xFE]), "long item at byte 2 has no header"),
        (bytes([0xB4]), "Pop without a Push"),
        (bytes([0xC0]), "End Collection without a Collection"),
        (bytes([0x05, 0x8C, 0xA1, 0x01]), "open collection"),
        (bytes([0x85, 0x00]), "Report ID 0"),
        (bytes([0x76, 0x00, 0x10]), "Report Size 4096"),
        (bytes([0x96, 0xFF, 0xFF]), "Report Count 65535"),
        (bytes([0x07, 0x00, 0x00, 0x01, 0x00]), "wider than 16 bits"),
        (bytes([0x29, 0x05]), "Usage Maximum without a Usage Minimum"),
        (bytes([0x19, 0x05, 0x29, 0x01]), "is no range"),
        (bytes([0xA4] * 17), "Push nested deeper"),
        (bytes([0x75, 0x08, 0x95, 0x01, 0x81, 0x02, 0x85, 0x01, 0x81, 0x02]), "before its first Report ID"),
        (bytes([0x75, 0xFF, 0x96, 0x00, 0x30, *[0x81, 0x02] * 2]), "grows past 16384 bytes"),
    ],
)
def test_bad_descriptors_raise_one_clear_error(descriptor: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        input_reports(descriptor)


def test_every_cut_of_a_descriptor_is_a_value_error() -> None:
    for end in range(1, len(SCANNER_DESCRIPTOR)):
        with pytest.raises(ValueError, match="HID report descriptor"):
            scanner_layout(SCANNER_DESCRIPTOR[:end])


def test_a_keyboard_is_no_scanner() -> None:
    boot_keyboard = bytes.fromhex(
        "05010906a101050719e029e71500250175019508810295017508810195067508150025650507190029658100c0"
    )
    assert input_reports(boot_keyboard)[0].length == 8
    with pytest.raises(ValueError, match="no input report with Decoded Data"):
        scanner_layout(boot_keyboard)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((b"\x95\x03\x09\xfb\x09\xfc\x09\xfd", b"\x95\x03\x09\xfb\x09\xfc\x09\x00"), "part of the symbology"),
        # A four-bit Byte Count, with four bits of padding after it.
        ((b"\x09\x3b\x81\x02", b"\x75\x04\x09\x3b\x81\x02\x81\x03"), "not one or two whole bytes"),
    ],
)
def test_a_layout_off_byte_boundaries_is_refused(change: tuple[bytes, bytes], message: str) -> None:
    assert SCANNER_DESCRIPTOR.count(change[0]) == 1
    with pytest.raises(ValueError, match=message):
        scanner_layout(SCANNER_DESCRIPTOR.replace(*change))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_descriptors_parse_or_raise_value_error(garbage: bytes) -> None:
    with contextlib.suppress(ValueError):
        scanner_layout(garbage)
    with contextlib.suppress(ValueError):
        scanner_layout(SCANNER_DESCRIPTOR[:40] + garbage)


# --- the decoder, on exact report bytes (the 64-byte layout) ------------------------------------------------


def report(data: bytes, aim: bytes = b"]E0", *, continued: bool = False, length: int | None = None) -> bytes:
    """Report id 2, the data length, the AIM identifier, 56 data bytes, 2 vendor bytes, the continuation byte."""
    assert len(data) <= 56 and len(aim) == 3
    count = len(data) if length is None else length
    return bytes([0x02, count]) + aim + data.ljust(56, b"\0") + b"\0\0" + bytes([continued])


def decode(reports: list[bytes], decoder: PosReportDecoder | None = None) -> list[PosScan]:
    decoder = decoder or PosReportDecoder()
    return [scan for r in reports for scan in decoder.feed(r)]


def test_one_report_one_scan() -> None:
    ean = bytes([0x02, 0x0D]) + b"]E0" + b"4006381333931" + bytes(43) + bytes([0x00, 0x00, 0x00])
    assert len(ean) == 64 and ean == report(b"4006381333931")
    assert decode([ean]) == [PosScan("]E0", b"4006381333931")]


def test_a_long_code_in_continued_reports() -> None:
    # A 200-byte PDF417 (AIM ]L2) holding GS1-style fields separated by GS: 56 + 56 + 56 + 32 bytes.
    pdf = (b"0109501101530003" + GS + b"10LOT" + GS + b"21" + b"S" * 200)[:199] + b"Z"
    assert len(pdf) == 200 and pdf.count(GS) == 2
    reports = [report(pdf[i : i + 56], b"]L2", continued=i + 56 < 200) for i in range(0, 200, 56)]
    assert [r[63] for r in reports] == [1, 1, 1, 0] and [r[1] for r in reports] == [56, 56, 56, 32]
    decoder = PosReportDecoder()
    assert decode(reports[:3], decoder) == [] and decoder.pending
    assert decode(reports[3:], decoder) == [PosScan("]L2", pdf)] and not decoder.pending


def test_zero_aim_identifier_is_no_symbology() -> None:
    assert decode([report(b"CP1:ABC", bytes(3))]) == [PosScan("", b"CP1:ABC")]


def test_padding_is_cut_to_the_reported_length() -> None:
    # Whatever follows the stated length is padding, even when it is not zeros (and a NUL inside is data).
    noisy = bytes([0x02, 0x05]) + b"]C1" + b"12\x0034" + b"JUNK" * 12 + b"JUN" + b"\0\0" + bytes([0x00])
    assert len(noisy) == 64 and decode([noisy]) == [PosScan("]C1", b"12\x0034")]


def test_reports_that_cannot_be_right_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    decoder = PosReportDecoder()
    with caplog.at_level(logging.WARNING):
        assert decode([report(b"ABC")[:63], report(b"ABC") + b"\0"], decoder) == []
        assert decode([b"\x05" + report(b"ABC")[1:], b""], decoder) == []
        assert decode([report(b"ABC", length=57)], decoder) == []
    assert (decoder.wrong_length, decoder.unknown_reports, decoder.bad_length) == (2, 2, 1)
    assert "63 bytes where 64 were expected" in caplog.text
    assert "id 5 where the scanner's report is 2" in caplog.text and "an empty report" in caplog.text
    assert "says 57 data bytes but holds 56" in caplog.text
    assert decode([report(b"OK")], decoder) == [PosScan("]E0", b"OK")]  # and it goes on reading


def test_a_bad_report_inside_a_scan_takes_the_whole_scan_with_it(caplog: pytest.LogCaptureFixture) -> None:
    first, middle, last = (report(b"A" * 56, continued=True), report(b"B" * 56, continued=True), report(b"C"))
    with caplog.at_level(logging.WARNING):
        # The middle report arrives cut short: what came after it must not pass for a scan of its own.
        assert decode([first, middle[:40], last, report(b"NEXT")]) == [PosScan("]E0", b"NEXT")]
        # A stated length beyond the report, on a report that says the scan goes on.
        assert decode([first, report(b"B" * 56, continued=True, length=99), last, report(b"NEXT")]) == [
            PosScan("]E0", b"NEXT")
        ]
    assert "partial scan of 56 bytes lost with it" in caplog.text


def test_other_input_reports_of_the_scanner_are_passed_over(caplog: pytest.LogCaptureFixture) -> None:
    decoder = PosReportDecoder(scanner_layout(SCANNER_DESCRIPTOR))
    with caplog.at_level(logging.WARNING):
        scans = decode([report(b"A" * 56, continued=True), b"\x03\x01\x02\x03\x04", report(b"B")], decoder)
    assert scans == [PosScan("]E0", b"A" * 56 + b"B")] and caplog.text == ""


def test_a_continuation_that_never_ends(caplog: pytest.LogCaptureFixture) -> None:
    decoder = PosReportDecoder(max_length=120)
    with caplog.at_level(logging.WARNING):
        assert decode([report(bytes([0x30 + n % 10]) * 56, continued=True) for n in range(50)], decoder) == []
        assert decoder.pending  # still inside the dropped scan
        assert decode([report(b"TAIL")], decoder) == []  # its last report, not a scan
    assert decoder.too_long == 1 and "longer than max_length (120 bytes)" in caplog.text
    assert decode([report(b"NEXT")], decoder) == [PosScan("]E0", b"NEXT")]
    # Finished but too long is dropped too; one that fits exactly is not.
    assert (
        decode([report(b"x" * 56, continued=True), report(b"x" * 56, continued=True), report(b"xxxxxxxxx")], decoder)
        == []
    )
    assert decode(
        [report(b"y" * 56, continued=True), report(b"y" * 56, continued=True), report(b"y" * 8)], decoder
    ) == [PosScan("]E0", b"y" * 120)]


def test_an_abandoned_partial_scan_is_flushed() -> None:
    decoder = PosReportDecoder()
    decode([report(b"HALF", continued=True)], decoder)
    assert decoder.pending and decoder.flush_stale() == b"HALF" and not decoder.pending
    assert decode([report(b"WHOLE")], decoder) == [PosScan("]E0", b"WHOLE")]


def test_empty_scans_and_odd_identifiers(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert decode([report(b"")]) == []
        assert decode([report(b"DATA", b"]\x07\x00")]) == [PosScan("", b"DATA")]
    assert "no data" in caplog.text and "not printable" in caplog.text


def test_without_a_length_the_data_runs_to_its_padding() -> None:
    decoder = PosReportDecoder(SMALL_LAYOUT)
    first = b"]Q1" + b"A" * 20 + b"\x01"
    last = b"]Q1" + b"BC" + GS + b"D" + bytes(16) + b"\x00"
    assert decode([first, last], decoder) == [PosScan("]Q1", b"A" * 20 + b"BC\x1dD")]


# --- round trip: any data and identifier, encoded as a scanner would, decoded back -----------------------


def encode(layout: ScannerLayout, aim: bytes, data: bytes) -> list[bytes]:
    """The reports a scanner sends for one scan, built from the layout alone."""
    assert layout.data_length is not None and layout.continued is not None and layout.symbology is not None
    chunks = [data[i : i + layout.capacity] for i in range(0, len(data), layout.capacity)]
    reports = []
    for n, chunk in enumerate(chunks):
        out = bytearray(layout.length)
        if layout.report_id:
            out[0] = layout.report_id
        at, width = layout.data_length
        out[at : at + width] = len(chunk).to_bytes(width, "little")
        out[layout.symbology : layout.symbology + 3] = aim
        out[layout.data : layout.data + len(chunk)] = chunk
        if n < len(chunks) - 1:
            bit, _bits = layout.continued
            out[bit // 8] |= 1 << bit % 8
        reports.append(bytes(out))
    return reports


aim_identifiers = st.one_of(
    st.just(bytes(3)),
    st.builds(
        lambda code, modifier: b"]" + code.encode() + modifier.encode(),
        st.sampled_from("ACEFGILQdez"),
        st.sampled_from("0123456789"),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=600).map(lambda b: b.replace(b"\x00", GS)),
    aim=aim_identifiers,
    layout=st.sampled_from([FALLBACK_LAYOUT, scanner_layout(SCANNER_DESCRIPTOR)]),
)
def test_round_trip(data: bytes, aim: bytes, layout: ScannerLayout) -> None:
    """Any data (GS included) and identifier -> reports built from the layout -> the same scan."""
    expected = PosScan(aim.decode() if any(aim) else "", data)
    assert decode(encode(layout, aim, data), PosReportDecoder(layout)) == [expected]


# --- the driver over a FIFO standing in for /dev/hidraw0 ---------------------------------------------


async def test_hid_pos_driver_end_to_end(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    node = tmp_path / "hidraw0"
    scanner = await fifo_scanner(node)
    driver = HidPosDriver("till-4", str(node), descriptor=SCANNER_DESCRIPTOR, retry_interval=0.02)
    assert driver.health.kind == "hidpos" == ScannerKind.HID_POS
    pdf = b"]L2 is data here" + GS + b"0" * 150
    async with running(driver, scanner) as reads:
        await scanner.send([report(b"ABC")[:10]])  # wrong length: skipped
        await scanner.send([report(b"4006381333931")])
        await scanner.send(encode(FALLBACK_LAYOUT, b"]L2", pdf))
        await scanner.send([report(b"HALF", continued=True)])  # lost with the device
        with caplog.at_level(logging.WARNING):
            await scanner.replug()
            await scanner.send([report(b"AFTER", bytes(3))])
        await until(reads, 3)
    assert [(r.scanner_id, r.data, r.symbology) for r in reads] == [
        ("till-4", b"4006381333931", "]E0"),
        ("till-4", pdf, "]L2"),  # an identifier at the start of the data stays data
        ("till-4", b"AFTER", ""),
    ]
    assert reads[0].at_us <= reads[1].at_us <= reads[2].at_us
    assert driver.decoder.wrong_length == 1
    assert "went away" in caplog.text and "cannot open" in caplog.text
    assert "partial scan of 4 bytes lost with the device" in caplog.text
    await driver.signal(True)


async def test_without_a_descriptor_the_common_layout_is_assumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = tmp_path / "hidraw1"
    scanner = await fifo_scanner(node)
    driver = HidPosDriver("till-5", str(node), retry_interval=0.02, idle_timeout=0.05)
    with caplog.at_level(logging.INFO):
        async with running(driver, scanner) as reads:
            await scanner.send([report(b"ONE", b"]C1")])
            await scanner.send([report(b"STUCK", continued=True)])
            await asyncio.sleep(0.2)  # no next report: the partial scan is abandoned after idle_timeout
            await scanner.replug()  # the fallback is not announced again
            await scanner.send([report(b"TWO")])
            await until(reads, 2)
    assert [(r.data, r.symbology) for r in reads] == [(b"ONE", "]C1"), (b"TWO", "]E0")]
    assert caplog.text.count("no usable report descriptor") == 1
    assert "not a character device" in caplog.text and "abandoned a partial scan (5 bytes)" in caplog.text


def test_reading_a_descriptor(tmp_path: Path) -> None:
    fifo = tmp_path / "hidraw2"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        with pytest.raises(OSError, match="not a character device"):
            read_descriptor(fd, str(fifo))
    finally:
        os.close(fd)
    # A character device without the hidraw ioctls: the sysfs copy is read instead, by the node's own name.
    sysfs = tmp_path / "sys/class/hidraw"
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        with pytest.raises(OSError):
            read_descriptor(fd, "/dev/null", sysfs)
        (sysfs / "null/device").mkdir(parents=True)
        (sysfs / "null/device/report_descriptor").write_bytes(SCANNER_DESCRIPTOR)
        assert read_descriptor(fd, "/dev/null", sysfs) == SCANNER_DESCRIPTOR
    finally:
        os.close(fd)


# --- configuration --------------------------------------------------------------------------------------


def test_configured_as_hidpos(tmp_path: Path) -> None:
    (tmp_path / "scanner.rdesc").write_bytes(SCANNER_DESCRIPTOR)
    config = tmp_path / "agent.toml"
    table = '[[scanner]]\nid = "till-6"\ntype = "hidpos"\npath = "/dev/hidraw0"\n'
    config.write_text(
        f'[agent]\nplatform = "127.0.0.1:1"\n{table}max_length = 300\nidle_timeout_ms = 250\n'
        f'{table.replace("till-6", "till-7")}descriptor_file = "scanner.rdesc"\n'
    )
    first, second = load(config).drivers()
    assert isinstance(first, HidPosDriver) and isinstance(second, HidPosDriver)
    assert (first.decoder.max_length, first.idle_timeout, first.fixed_layout) == (300, 0.25, None)
    assert second.fixed_layout == scanner_layout(SCANNER_DESCRIPTOR)
    assert first.health.kind == second.health.kind == "hidpos"

    (tmp_path / "scanner.rdesc").write_bytes(SCANNER_DESCRIPTOR[:-1])
    with pytest.raises(ConfigError, match=r"till-7.*open collection"):
        load(config)
    (tmp_path / "scanner.rdesc").unlink()
    with pytest.raises(ConfigError, match="descriptor_file: cannot read it"):
        load(config)
    config.write_text(f'[agent]\nplatform = "127.0.0.1:1"\n{table}layout = "de"\n')
    with pytest.raises(ConfigError, match="unknown option 'layout'"):
        load(config)
