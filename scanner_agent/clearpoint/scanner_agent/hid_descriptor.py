"""HID report descriptors read into the fields of each input report, and where in those reports a HID POS
bar code scanner puts a scan.

A descriptor (USB Device Class Definition for HID 1.11, section 6.2.2) is a list of items: Global items
(Usage Page, Report ID, Report Size, Report Count, Push, Pop) set state that lasts, Local items (Usage,
Usage Minimum/Maximum) describe only the next Main item, and Main items (Input, Output, Feature,
Collection, End Collection) lay out the reports. From them we work out, for each input report, which bits
hold which usages; from that, where a scanner in HID POS mode (usage page 0x8C, HID Point of Sale Usage
Tables) puts the symbology identifier, the data length, the data and the "more follows" flag.

Pure: bytes in, descriptions out. A descriptor we cannot read raises one ValueError that says what is wrong
and at which byte, never IndexError, so the driver can fall back on a known layout with one log line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

# Bounds past which a descriptor is broken (or hostile) rather than unusual, after those the Linux HID core
# applies (include/linux/hid.h: HID_MAX_DESCRIPTOR_SIZE, HID_MAX_USAGES, HID_MAX_BUFFER_SIZE; hid-core.c
# refuses a Report Size over 256 bits).
MAX_DESCRIPTOR = 4096
MAX_USAGES = 12288  # usages, and elements (Report Count), of one Main item
MAX_REPORT_SIZE = 256  # bits of one element
MAX_REPORT_BYTES = 16384
MAX_PUSH = 16  # ours, and generous: the kernel keeps four
MAX_COLLECTION_DEPTH = 64  # ours

# Item types and tags (HID 1.11, sections 6.2.2.4 to 6.2.2.8).
_MAIN, _GLOBAL, _LOCAL = 0, 1, 2
_INPUT, _OUTPUT, _COLLECTION, _FEATURE, _END_COLLECTION = 0x8, 0x9, 0xA, 0xB, 0xC
_USAGE_PAGE, _REPORT_SIZE, _REPORT_ID, _REPORT_COUNT, _PUSH, _POP = 0x0, 0x7, 0x8, 0x9, 0xA, 0xB
_USAGE, _USAGE_MINIMUM, _USAGE_MAXIMUM = 0x0, 0x1, 0x2
_LONG_ITEM = 0xFE  # HID 1.11 section 6.2.2.3: prefix, data size, long item tag, data


@dataclass(frozen=True, slots=True)
class Field:
    """One Input item: `count` elements of `size` bits each, starting `bit_offset` bits into the report's
    data (after the report id byte, where there is one; HID 1.11 section 8.4 lays reports out low bit first)."""

    report_id: int
    bit_offset: int
    size: int
    count: int
    # The Input item's data bits: bit 0 Constant, bit 1 Variable, bit 8 Buffered Bytes (HID 1.11 6.2.2.5).
    flags: int
    # The Usage Page in effect at the item.
    usage_page: int
    # Extended usages (page << 16 | id) as inclusive ranges, in the order declared: a Usage item is a range of one.
    usages: tuple[tuple[int, int], ...]
    # Extended usages of the enclosing collections, outermost first (0 for a collection without a usage).
    collections: tuple[int, ...] = ()

    @property
    def constant(self) -> bool:
        return bool(self.flags & 0x01)

    def usage(self, index: int) -> int | None:
        """The usage of element `index`: the declared usages in turn, the last one standing for every element
        after it (HID 1.11 section 6.2.2.8); None for an item without usages (padding)."""
        for first, last in self.usages:
            if index <= last - first:
                return first + index
            index -= last - first + 1
        return self.usages[-1][1] if self.usages else None

    def element_bits(self, index: int) -> int:
        """Where element `index` starts, in bits from the start of the report's data."""
        return self.bit_offset + index * self.size


@dataclass(frozen=True, slots=True)
class InputReport:
    report_id: int  # 0 when the descriptor numbers no reports (hidraw then delivers them without an id byte)
    fields: tuple[Field, ...]
    bits: int

    @property
    def length(self) -> int:
        """Bytes of one report as hidraw delivers it, the id byte included."""
        return (self.bits + 7) // 8 + (1 if self.report_id else 0)


@dataclass(slots=True)
class _Globals:
    usage_page: int = 0
    report_id: int = 0
    report_size: int = 0
    report_count: int = 0


@dataclass(slots=True)
class _Locals:
    usages: list[tuple[int, int, int]] = field(default_factory=list)  # (first, last, item size), pages unresolved
    minimum: tuple[int, int] | None = None  # (value, item size) of a Usage Minimum awaiting its Maximum


def _items(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """(offset, type, tag, size, unsigned value) of each short item; long items are skipped (none is defined)."""
    i = 0
    while i < len(data):
        prefix = data[i]
        if prefix == _LONG_ITEM:
            if i + 2 >= len(data):
                raise ValueError(f"HID report descriptor truncated: the long item at byte {i} has no header")
            end = i + 3 + data[i + 1]
            if end > len(data):
                raise ValueError(f"HID report descriptor truncated: the long item at byte {i} runs past the end")
            i = end
            continue
        size = (0, 1, 2, 4)[prefix & 0x03]
        if i + 1 + size > len(data):
            raise ValueError(
                f"HID report descriptor truncated: the item at byte {i} (0x{prefix:02X}) needs {size} data "
                f"byte(s), {len(data) - i - 1} left"
            )
        yield i, (prefix >> 2) & 0x03, prefix >> 4, size, int.from_bytes(data[i + 1 : i + 1 + size], "little")
        i += 1 + size


def input_reports(descriptor: bytes) -> dict[int, InputReport]:
    """The input reports a descriptor declares, by report id (0 when it numbers none), in declaration order.

    Raises ValueError for a descriptor that cannot be right: truncated, Pop without Push, End Collection
    without Collection, a collection never closed, absurd sizes, ids or counts.
    """
    if not descriptor:
        raise ValueError("HID report descriptor is empty")
    if len(descriptor) > MAX_DESCRIPTOR:
        raise ValueError(f"HID report descriptor of {len(descriptor)} bytes; at most {MAX_DESCRIPTOR} are possible")
    state, local = _Globals(), _Locals()
    stack: list[_Globals] = []
    collections: list[int] = []
    fields: dict[int, list[Field]] = {}
    bits: dict[tuple[int, int], int] = {}  # (main item tag, report id) -> bits laid out so far
    ids_used = False
    for at, kind, tag, size, value in _items(descriptor):
        where = f"HID report descriptor, byte {at}"
        if kind == _GLOBAL:
            if tag == _USAGE_PAGE:
                if value > 0xFFFF:
                    raise ValueError(f"{where}: Usage Page 0x{value:X} is wider than 16 bits")
                state.usage_page = value
            elif tag == _REPORT_ID:
                if not 1 <= value <= 255:
                    raise ValueError(f"{where}: Report ID {value} (1 to 255 are possible)")
                state.report_id, ids_used = value, True
            elif tag == _REPORT_SIZE:
                if value > MAX_REPORT_SIZE:
                    raise ValueError(f"{where}: Report Size {value} bits (at most {MAX_REPORT_SIZE})")
                state.report_size = value
            elif tag == _REPORT_COUNT:
                if value > MAX_USAGES:
                    raise ValueError(f"{where}: Report Count {value} (at most {MAX_USAGES})")
                state.report_count = value
            elif tag == _PUSH:
                if len(stack) >= MAX_PUSH:
                    raise ValueError(f"{where}: Push nested deeper than {MAX_PUSH}")
                stack.append(replace(state))
            elif tag == _POP:
                if not stack:
                    raise ValueError(f"{where}: Pop without a Push")
                state = stack.pop()
            # Logical/Physical extents, units and exponents say nothing about where the bits are.
        elif kind == _LOCAL:
            _local_item(where, local, tag, size, value)
        elif kind == _MAIN:
            usages = _resolve(where, local, state.usage_page)
            local = _Locals()  # Local items describe only the Main item that follows them
            if tag == _COLLECTION:
                if len(collections) >= MAX_COLLECTION_DEPTH:
                    raise ValueError(f"{where}: collections nested deeper than {MAX_COLLECTION_DEPTH}")
                collections.append(usages[0][0] if usages else 0)
            elif tag == _END_COLLECTION:
                if not collections:
                    raise ValueError(f"{where}: End Collection without a Collection")
                collections.pop()
            elif tag in (_INPUT, _OUTPUT, _FEATURE):
                key = (tag, state.report_id)
                offset = bits.get(key, 0)
                bits[key] = offset + state.report_size * state.report_count
                if bits[key] > MAX_REPORT_BYTES * 8:
                    raise ValueError(f"{where}: report {state.report_id} grows past {MAX_REPORT_BYTES} bytes")
                if tag == _INPUT:
                    item = Field(
                        state.report_id,
                        offset,
                        state.report_size,
                        state.report_count,
                        value,
                        state.usage_page,
                        usages,
                        tuple(collections),
                    )
                    fields.setdefault(state.report_id, []).append(item)
            # Other main tags are reserved (HID 1.11 6.2.2.4); like the kernel, we pass over them.
        # Type 3 is reserved for short items: passed over too.
    if collections:
        raise ValueError(f"HID report descriptor ends inside {len(collections)} open collection(s)")
    if ids_used and any(report_id == 0 for _tag, report_id in bits):
        raise ValueError("HID report descriptor lays out items before its first Report ID while numbering reports")
    return {
        report_id: InputReport(report_id, tuple(items), bits[(_INPUT, report_id)])
        for report_id, items in fields.items()
    }


def _local_item(where: str, local: _Locals, tag: int, size: int, value: int) -> None:
    if tag == _USAGE:
        local.usages.append((value, value, size))
    elif tag == _USAGE_MINIMUM:
        local.minimum = (value, size)
    elif tag == _USAGE_MAXIMUM:
        if local.minimum is None:
            raise ValueError(f"{where}: Usage Maximum without a Usage Minimum")
        first, first_size = local.minimum
        local.minimum = None
        if value < first or (first_size == 4) != (size == 4) or (size == 4 and value >> 16 != first >> 16):
            raise ValueError(f"{where}: Usage Minimum 0x{first:X} to Maximum 0x{value:X} is no range")
        local.usages.append((first, value, size))
    # Designators, strings and delimiters name nothing we need.


def _resolve(where: str, local: _Locals, page: int) -> tuple[tuple[int, int], ...]:
    """Extended usages: a four-byte usage carries its own page; a shorter one takes the Usage Page in effect
    at the Main item (HID 1.11 section 6.2.2.8)."""
    resolved: list[tuple[int, int]] = []
    total = 0
    for first, last, size in local.usages:
        total += last - first + 1
        if total > MAX_USAGES:
            raise ValueError(f"{where}: more than {MAX_USAGES} usages for one item")
        base = 0 if size == 4 else page << 16
        resolved.append((base | first, base | last))
    return tuple(resolved)


# --- HID POS bar code scanners ------------------------------------------------------------------------------

# Usages of the Bar Code Scanner page, 0x8C (HID Point of Sale Usage Tables 1.02, USB-IF pos1_02.pdf; the same
# ids are in the page 0x8C chapter of the HID Usage Tables). We read them from reproductions of that table
# (Apple's HID usage headers, Haiku's USB HID page headers, HID usage databases), which agree; not from the PDF.
BAR_CODE_SCANNER = 0x8C_0002  # CA: the scanner's application collection
SCANNED_DATA_REPORT = 0x8C_0012  # CL: the report that carries a decoded scan
SYMBOLOGY_IDENTIFIERS = (0x8C_00FB, 0x8C_00FC, 0x8C_00FD)  # DV: the three characters of the AIM identifier
DECODED_DATA = 0x8C_00FE  # DV: the scan's bytes
DECODE_DATA_CONTINUED = 0x8C_00FF  # DF: set when the scan goes on in the next report
# The number of valid data bytes. We found no usage for it on page 0x8C (none we could confirm in the POS
# tables); scanners that send one declare Generic Desktop "Byte Count" (page 0x01, usage 0x3B, HID Usage Tables).
# Without it, the data runs up to its trailing NUL padding.
BYTE_COUNT = 0x01_003B


@dataclass(frozen=True, slots=True)
class ScannerLayout:
    """Where a HID POS scanner puts one scan (or one part of a long one) in its report. Offsets count bytes of
    the report as hidraw delivers it: the report id, where there is one, is byte 0."""

    report_id: int  # 0: the device numbers no reports
    length: int  # bytes of one report, the id byte included
    data: int  # offset of the data
    capacity: int  # data bytes one report holds
    symbology: int | None = None  # offset of the three AIM identifier bytes
    data_length: tuple[int, int] | None = None  # (offset, bytes) of the little-endian count of valid data bytes
    continued: tuple[int, int] | None = None  # (bit offset, bits) of Decode Data Continued
    other_reports: frozenset[int] = frozenset()  # the device's other input reports: not scans, passed over
    source: str = "descriptor"


# The common 64-byte Scanned Data report, for when the descriptor cannot be read: byte 0 report id 2, byte 1
# the number of data bytes in this report, bytes 2-4 the AIM identifier, bytes 5-60 up to 56 data bytes,
# byte 61 a further (vendor) symbology identifier, byte 62 reserved, bit 0 of byte 63 "data continued".
# Documented in the Access-IS product manuals (ATR110, LSR116, LSR118: the "HID reports" section, "Receive
# data"). The report descriptor in published Honeywell (Hand Held Products) HID POS firmware declares the same
# 64 bytes (Report ID 2, Byte Count, Symbology Identifier 1-3, 56 bytes of Decoded Data, two vendor bytes,
# Decode Data Continued). Other makers' scanners are read through their descriptor; this is only the guess
# for when there is none.
FALLBACK_LAYOUT = ScannerLayout(
    report_id=2,
    length=64,
    data=5,
    capacity=56,
    symbology=2,
    data_length=(1, 1),
    continued=(63 * 8, 1),
    source="fallback",
)


def scanner_layout(descriptor: bytes) -> ScannerLayout:
    """The layout of the Scanned Data report a HID POS scanner's descriptor declares.

    The report is the input report holding Decoded Data, preferring one inside a Scanned Data Report
    collection. Raises ValueError when the descriptor is unreadable, declares no such report, or places its
    bytes off byte boundaries.
    """
    reports = input_reports(descriptor)
    holding = [r for r in reports.values() if _elements(r, DECODED_DATA)]
    if not holding:
        raise ValueError("HID report descriptor declares no input report with Decoded Data (usage 0x8C:0xFE)")
    in_collection = [r for r in holding if any(SCANNED_DATA_REPORT in f.collections for f in r.fields)]
    report = (in_collection or holding)[0]
    id_bits = 8 if report.report_id else 0
    data = [id_bits + bit for bit, size in _elements(report, DECODED_DATA)]
    _bytes_in_a_row("Decoded Data", data, _elements(report, DECODED_DATA))
    symbology = [(id_bits + bit, size) for usage in SYMBOLOGY_IDENTIFIERS for bit, size in _elements(report, usage)[:1]]
    if symbology and len(symbology) != 3:
        raise ValueError("HID POS scanned data report declares only part of the symbology identifier")
    _bytes_in_a_row("the symbology identifier", [bit for bit, _ in symbology], symbology)
    count = _elements(report, BYTE_COUNT)[:1]
    if count and (count[0][0] % 8 or count[0][1] not in (8, 16)):
        raise ValueError("HID POS scanned data report: its Byte Count is not one or two whole bytes")
    flag = _elements(report, DECODE_DATA_CONTINUED)[:1]
    return ScannerLayout(
        report_id=report.report_id,
        length=report.length,
        data=data[0] // 8,
        capacity=len(data),
        symbology=symbology[0][0] // 8 if symbology else None,
        data_length=((id_bits + count[0][0]) // 8, count[0][1] // 8) if count else None,
        continued=(id_bits + flag[0][0], flag[0][1]) if flag else None,
        other_reports=frozenset(reports) - {report.report_id},
    )


def _elements(report: InputReport, usage: int) -> list[tuple[int, int]]:
    """(bit offset in the report's data, bits) of each element of `report` with this usage."""
    return [
        (f.element_bits(i), f.size)
        for f in report.fields
        if not f.constant and f.usages
        for i in range(f.count)
        if f.usage(i) == usage
    ]


def _bytes_in_a_row(what: str, bits: list[int], elements: list[tuple[int, int]]) -> None:
    if any(size != 8 for _, size in elements) or any(bit != bits[0] + 8 * n for n, bit in enumerate(bits)):
        raise ValueError(f"HID POS scanned data report: {what} is not whole bytes in a row")
    if bits and bits[0] % 8:
        raise ValueError(f"HID POS scanned data report: {what} does not start on a byte boundary")
