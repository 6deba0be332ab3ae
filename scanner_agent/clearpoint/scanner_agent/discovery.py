"""Finding the barcode scanners plugged into this machine, for `clearpoint agent scanners`.

A scanner reaches Linux in one of three ways: as a serial port (USB CDC-ACM, or an RS-232 scanner behind a
USB-serial adapter), as a keyboard through the input layer (evdev), or as a raw HID device (hidraw, where
HID POS scanners live). To the kernel the store keyboard looks just like a keyboard-wedge scanner, so each
candidate carries a best guess and the reason for it: whoever installs the till picks; we only narrow the list.

Everything is read from what the kernel (sysfs) and udev (the /dev/.../by-id links) expose, relative to a
root folder, so tests run against a fake tree and nothing here needs privileges, udev or pyudev.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from clearpoint.scanner_agent import hotplug
from clearpoint.scanner_agent.scanner_kinds import ScannerKind
from clearpoint.scanner_agent.usb_identity import describe, read_hex, read_text, usb_device

log = logging.getLogger(__name__)

# USB vendor ids of barcode scanner makers, as registered in the USB ID repository (usb.ids).
SCANNER_VENDORS: dict[int, str] = {
    0x0C2E: "Honeywell",  # Metrologic Instruments
    0x0536: "Honeywell",  # Hand Held Products (Welch Allyn)
    0x067E: "Honeywell",  # Intermec Technologies
    0x05E0: "Zebra",  # Symbol Technologies
    0x05F9: "Datalogic",  # PSC Scanning
    0x080C: "Datalogic",
    0x1EAB: "Newland",  # Fujian Newland Computer
    0x065A: "Opticon",  # Optoelectronics Co.
}
# Generic USB-serial bridge chips: an RS-232 scanner may sit behind one, but so may anything else.
USB_SERIAL_ADAPTERS: dict[int, str] = {
    0x0403: "FTDI",
    0x067B: "Prolific",
    0x10C4: "Silicon Labs",
    0x1A86: "QinHeng (CH340)",
}
NAME_HINTS = ("barcode", "bar code", "scanner")

NO_CANDIDATES = (
    "no candidate devices found; is the scanner plugged in? serial scanners appear under /dev/serial/by-id, "
    "keyboard-mode scanners under /dev/input/by-id"
)

# Linux input key codes (linux/input-event-codes.h) that tell a keyboard from other devices with keys.
_LETTER_KEYS = frozenset([*range(16, 26), *range(30, 39), *range(44, 51)])  # KEY_Q..KEY_P, KEY_A..KEY_L, KEY_Z..KEY_M
_DIGIT_KEYS = frozenset(range(2, 12))  # KEY_1..KEY_0
_ENTER_KEYS = frozenset({28, 96})  # KEY_ENTER, KEY_KPENTER
# The kernel prints input bitmaps in words of the *reading* process's `long` (32-bit readers get 32-bit words).
_WORD_BITS = struct.calcsize("L") * 8

_HID_POS_PAGE = 0x8C  # HID Usage Page "Bar Code Scanner" (HID POS)
_HID_KEYBOARD = (0x01, 0x06)  # Generic Desktop / Keyboard


@dataclass(frozen=True, slots=True)
class Candidate:
    """One device that might be a scanner, with the path to configure and why we think what we think."""

    kind: ScannerKind
    # The path to put in the agent's configuration: the udev by-id link when there is one, since
    # /dev/ttyACM0 or /dev/input/event5 can change number across reboots and replugs.
    path: str
    # The kernel's own node (/dev/ttyACM0, /dev/input/event5, /dev/hidraw1).
    node: str
    name: str
    vendor_id: int | None
    product_id: int | None
    serial: str | None
    likely_scanner: bool
    why: str
    aliases: tuple[str, ...] = ()
    # hidraw only: what the HID report descriptor says the device is.
    hid_keyboard: bool | None = None
    hid_pos: bool | None = None
    # Which USB device it is, as the agent reports it (usb_identity): model, then serial number or USB port.
    identity: str = ""

    @property
    def vendor_product(self) -> str:
        if self.vendor_id is None or self.product_id is None:
            return "-"
        return f"{self.vendor_id:04x}:{self.product_id:04x}"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["aliases"] = list(self.aliases)
        out["vendor_product"] = self.vendor_product
        return out


class HidUsages(NamedTuple):
    keyboard: bool
    pos: bool


def parse_report_descriptor(data: bytes) -> HidUsages:
    """Whether a HID report descriptor declares a keyboard application and/or the HID POS scanner page.

    Walks the short items (HID 1.11 section 6.2.2); a truncated descriptor yields what was seen before the cut.
    """
    page = 0
    pushed: list[int] = []
    pages: set[int] = set()
    applications: set[tuple[int, int]] = set()
    pending: list[tuple[int, int]] = []  # local Usage items: (size, value), resolved at the main item
    i = 0
    while i < len(data):
        prefix = data[i]
        if prefix == 0xFE:  # long item: size byte, tag byte, data
            if i + 1 >= len(data):
                break
            i += 3 + data[i + 1]
            continue
        size = (0, 1, 2, 4)[prefix & 0x03]
        item_type, tag = (prefix >> 2) & 0x03, prefix >> 4
        if i + 1 + size > len(data):
            log.debug("report descriptor truncated at byte %d", i)
            break
        value = int.from_bytes(data[i + 1 : i + 1 + size], "little")
        i += 1 + size
        if item_type == 1:  # global
            if tag == 0x0:
                page = value
                pages.add(value)
            elif tag == 0xA:
                pushed.append(page)
            elif tag == 0xB and pushed:
                page = pushed.pop()
        elif item_type == 2 and tag == 0x0:  # local Usage
            pending.append((size, value))
        elif item_type == 0:  # main: Collection(Application) takes the usage before it
            usages = [(v >> 16, v & 0xFFFF) if s == 4 else (page, v) for s, v in pending]
            if tag == 0xA and value == 0x01 and usages:
                applications.add(usages[0])
            pages.update(p for p, _ in usages)
            pending.clear()
    return HidUsages(keyboard=_HID_KEYBOARD in applications, pos=_HID_POS_PAGE in pages)


def decode_bitmap(text: str, word_bits: int = _WORD_BITS) -> set[int]:
    """The set bits of a sysfs input bitmap: hex words separated by spaces, most significant word first."""
    bits: set[int] = set()
    for index, word in enumerate(reversed(text.split())):
        value = int(word, 16)
        while value:
            low = value & -value
            bits.add(index * word_bits + low.bit_length() - 1)
            value ^= low
    return bits


def discover(root: Path = Path("/")) -> list[Candidate]:
    """Every serial, keyboard-like input and keyboard/POS hidraw device under `root`, likely scanners first."""
    found = _by_port([*_serial(root), *_evdev(root), *_hidraw(root)])
    return sorted(found, key=_order)


SAME_MODEL = "two of this model without serial numbers"


def _by_port(found: list[Candidate]) -> list[Candidate]:
    """Candidates of one kind and model without serial numbers share one by-id link (it points at whichever
    enumerated last), so each is configured by its USB port instead: its by-path link."""
    ports: dict[tuple[str, str], set[str]] = {}
    for c in found:
        if c.serial is None and c.vendor_id is not None and c.identity:
            ports.setdefault((c.kind, c.vendor_product), set()).add(c.identity)
    out = []
    for c in found:
        if c.serial is None and len(ports.get((c.kind, c.vendor_product), ())) > 1:
            suffix = "-event-kbd" if c.kind == ScannerKind.KEYBOARD else ""
            by_path = [a for a in c.aliases if "/by-path/" in a]
            path = next((a for a in by_path if a.endswith(suffix)), by_path[0] if by_path else None)
            if path is not None:
                c = replace(c, path=path, why=f"{c.why}; {SAME_MODEL}: configured by USB port")
            else:
                c = replace(c, why=f"{c.why}; {SAME_MODEL}: /dev/{c.node.rsplit('/', 1)[-1]} follows plug order")
        out.append(c)
    return out


# Within equal likelihood, candidates are listed keyboards first, then hidraw nodes (wedge, then HID POS), then serial
# ports.
_KIND_ORDER = (ScannerKind.KEYBOARD, ScannerKind.HIDRAW, ScannerKind.HID_POS, ScannerKind.SERIAL)


def _order(c: Candidate) -> tuple[bool, int, str]:
    return (not c.likely_scanner, _KIND_ORDER.index(c.kind), c.path)


# --- reading the tree ---------------------------------------------------------------------------------------


def _shown(path: Path, root: Path) -> str:
    """`path` as it is on the machine being described, whatever `root` the tree was read from."""
    try:
        return "/" + path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _entries(folder: Path, pattern: str) -> list[Path]:
    """Matching entries, in the kernel's numbering order (event2 before event10)."""
    try:
        return sorted(folder.glob(pattern), key=lambda p: (len(p.name), p.name))
    except OSError as exc:
        log.debug("cannot list %s: %s", folder, exc)
        return []


def _aliases(root: Path, folders: Iterable[str]) -> dict[str, list[str]]:
    """Kernel node name -> the udev links pointing at it in the given /dev alias folders."""
    out: dict[str, list[str]] = {}
    for folder in folders:
        for link in _entries(root / folder, "*"):
            try:
                target = os.readlink(link)
            except OSError as exc:
                log.debug("skipping %s: not a symlink (%s)", link, exc)
                continue
            out.setdefault(Path(target).name, []).append(_shown(link, root))
    return out


def _preferred(aliases: list[str], node: str, suffix: str = "") -> str:
    """The most stable name: a by-id link (ending in `suffix` if any does), then by-path, then the node."""
    by_id = [a for a in aliases if "/by-id/" in a]
    for group in ([a for a in by_id if a.endswith(suffix)], by_id, [a for a in aliases if "/by-path/" in a]):
        if group:
            return group[0]
    return node


def _reasons(vendor_id: int | None, text: str) -> list[str]:
    """Why a device looks like a scanner: its vendor makes scanners, or it says so in its name."""
    reasons = []
    if vendor_id in SCANNER_VENDORS:
        reasons.append(f"vendor {vendor_id:04x} is {SCANNER_VENDORS[vendor_id]}")
    hint = next((h for h in NAME_HINTS if h in text.lower()), None)
    if hint:
        reasons.append(f"name contains '{hint}'")
    return reasons


# --- the three kinds ----------------------------------------------------------------------------------------


def _serial(root: Path) -> list[Candidate]:
    aliases = _aliases(root, ("dev/serial/by-id", "dev/serial/by-path"))
    names: set[str] = set()
    for name, links in aliases.items():
        if (root / "dev" / name).exists():
            names.add(name)
        else:
            log.debug("skipping %s: it points at /dev/%s, which does not exist", links, name)
    for pattern in ("ttyUSB*", "ttyACM*"):
        names.update(p.name for p in _entries(root / "dev", pattern))
    return [_serial_one(root, name, aliases.get(name, [])) for name in sorted(names)]


def _serial_one(root: Path, name: str, aliases: list[str]) -> Candidate:
    usb = usb_device(root / "sys/class/tty" / name / "device")
    vendor_id = product_id = None
    product = manufacturer = serial = None
    if usb is not None:
        vendor_id, product_id = read_hex(usb / "idVendor"), read_hex(usb / "idProduct")
        product, manufacturer = read_text(usb / "product"), read_text(usb / "manufacturer")
        serial = read_text(usb / "serial")
    reasons = _reasons(vendor_id, f"{manufacturer or ''} {product or ''}")
    likely = bool(reasons)
    if usb is None:
        reasons.append("serial port without USB details in sysfs")
    elif vendor_id in USB_SERIAL_ADAPTERS:
        reasons.append(f"usb-serial adapter ({USB_SERIAL_ADAPTERS[vendor_id]}); a serial scanner may be behind it")
    elif not likely:
        reasons.append("serial port; vendor is not a scanner maker")
    node = f"/dev/{name}"
    return Candidate(
        kind=ScannerKind.SERIAL,
        path=_preferred(aliases, node),
        node=node,
        name=product or manufacturer or "",
        vendor_id=vendor_id,
        product_id=product_id,
        serial=serial or None,
        likely_scanner=likely,
        why="; ".join(reasons),
        aliases=tuple(aliases),
        identity=describe(usb) if usb is not None else "",
    )


def _evdev(root: Path) -> list[Candidate]:
    aliases = _aliases(root, ("dev/input/by-id", "dev/input/by-path"))
    found = []
    for event in _entries(root / "sys/class/input", "event*"):
        candidate = _evdev_one(event, aliases.get(event.name, []))
        if candidate is not None:
            found.append(candidate)
    return found


def _evdev_one(event: Path, aliases: list[str]) -> Candidate | None:
    device = event / "device"
    name, key_bitmap = read_text(device / "name"), read_text(device / "capabilities/key")
    if name is None or key_bitmap is None:
        log.debug("skipping %s: no name or key capabilities", event.name)
        return None
    try:
        keys = decode_bitmap(key_bitmap)
    except ValueError:
        log.debug("skipping %s: unreadable key bitmap %r", event.name, key_bitmap)
        return None
    letters = _LETTER_KEYS <= keys
    if not (keys & _ENTER_KEYS and (letters or _DIGIT_KEYS <= keys)):
        log.debug("skipping %s (%s): not keyboard-like", event.name, name)
        return None
    vendor_id, product_id = read_hex(device / "id/vendor"), read_hex(device / "id/product")
    serial = read_text(device / "uniq")
    usb = usb_device(device)
    if not serial and usb is not None:
        serial = read_text(usb / "serial")
    reasons = _reasons(vendor_id, name)
    likely = bool(reasons)
    if not likely:
        has = "letter keys" if letters else "digits and Enter"
        reasons.append(f"keyboard: has {has} but vendor is not a scanner maker")
    node = f"/dev/input/{event.name}"
    return Candidate(
        kind=ScannerKind.KEYBOARD,
        path=_preferred(aliases, node, "-event-kbd"),
        node=node,
        name=name,
        vendor_id=vendor_id,
        product_id=product_id,
        serial=serial or None,
        likely_scanner=likely,
        why="; ".join(reasons),
        aliases=tuple(aliases),
        identity=describe(usb) if usb is not None else "",
    )


def _hidraw(root: Path) -> list[Candidate]:
    found = []
    for hidraw in _entries(root / "sys/class/hidraw", "hidraw*"):
        candidate = _hidraw_one(hidraw)
        if candidate is not None:
            found.append(candidate)
    return found


def _read_uevent(path: Path) -> dict[str, str] | None:
    text = read_text(path)
    if text is None:
        return None
    pairs = (line.partition("=") for line in text.splitlines())
    return {key: value for key, sep, value in pairs if sep}


def _parse_hid_id(value: str) -> tuple[int | None, int | None]:
    """(vendor, product) from HID_ID, "bus:vendor:product" in hex (0003:00000C2E:00000B81)."""
    try:
        _bus, vendor, product = (int(part, 16) for part in value.split(":"))
    except ValueError:
        return None, None
    return vendor, product


def _hidraw_one(hidraw: Path) -> Candidate | None:
    device = hidraw / "device"
    uevent = _read_uevent(device / "uevent")
    if uevent is None:
        log.debug("skipping %s: no uevent", hidraw.name)
        return None
    vendor_id, product_id = _parse_hid_id(uevent.get("HID_ID", ""))
    name = uevent.get("HID_NAME", "")
    try:
        usages = parse_report_descriptor((device / "report_descriptor").read_bytes())
    except OSError as exc:
        log.debug("%s: no report descriptor (%s)", hidraw.name, exc)
        usages = HidUsages(keyboard=False, pos=False)
    reasons = _reasons(vendor_id, name)
    if usages.pos:
        reasons.append(f"HID POS barcode scanner (usage page 0x{_HID_POS_PAGE:02X})")
    likely = bool(reasons)
    if not (likely or usages.keyboard):
        log.debug("skipping %s (%s): neither a keyboard nor a scanner", hidraw.name, name)
        return None
    if usages.keyboard:
        reasons.append("HID keyboard" if likely else "HID keyboard; vendor is not a scanner maker")
    serial = uevent.get("HID_UNIQ") or None
    usb = usb_device(device)
    if serial is None and usb is not None:
        serial = read_text(usb / "serial") or None
    node = f"/dev/{hidraw.name}"
    return Candidate(
        # A HID POS scanner is read by its own driver; the KIND is the `type` to configure.
        kind=ScannerKind.HID_POS if usages.pos else ScannerKind.HIDRAW,
        path=node,
        node=node,
        name=name,
        vendor_id=vendor_id,
        product_id=product_id,
        serial=serial,
        likely_scanner=likely,
        why="; ".join(reasons),
        hid_keyboard=usages.keyboard,
        hid_pos=usages.pos,
        identity=describe(usb) if usb is not None else "",
    )


# --- hotplug ------------------------------------------------------------------------------------------------


async def watch(
    root: Path = Path("/"),
    interval: float = 1.0,
    *,
    known: Iterable[Candidate] | None = None,
    monitor: hotplug.MonitorFactory | None = None,
) -> AsyncIterator[tuple[str, Candidate]]:
    """("added", c) / ("removed", c) as candidates come and go, compared with `known` (default: those present
    when iteration starts). Rescans every `interval` seconds, and at once on udev events where udev is followed
    (`hotplug`; only for the root "/", since udev describes this machine, not a tree elsewhere, unless
    `monitor` says which udev to follow).

    A device whose details change (its by-id link appearing after its node, say) is reported removed, then added.
    """
    wakeup = hotplug.Waiter(monitor) if monitor is not None or root == Path("/") else None
    try:
        if wakeup is not None:
            wakeup.start()  # before the first scan, so a change during it is not missed
        current = set(known) if known is not None else set(await asyncio.to_thread(discover, root))
        while True:
            if wakeup is not None:
                await wakeup.wait(interval)
            else:
                await asyncio.sleep(interval)
            latest = set(await asyncio.to_thread(discover, root))
            for candidate in sorted(current - latest, key=_order):
                yield "removed", candidate
            for candidate in sorted(latest - current, key=_order):
                yield "added", candidate
            current = latest
    finally:
        if wakeup is not None:
            wakeup.close()


# --- output -------------------------------------------------------------------------------------------------

_COLUMNS = ("KIND", "LIKELY", "PATH", "VENDOR:PRODUCT", "NAME", "WHY")


def _row(c: Candidate) -> tuple[str, ...]:
    return (c.kind, "yes" if c.likely_scanner else "no", c.path, c.vendor_product, c.name or "-", c.why)


def format_table(cands: Iterable[Candidate]) -> str:
    """Aligned columns for a terminal; the last column (WHY) is left ragged."""
    rows = [_COLUMNS, *(_row(c) for c in cands)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def format_change(event: str, c: Candidate) -> str:
    """One line per hotplug event; the table's columns, prefixed by what happened."""
    return "  ".join([event.ljust(7), *_row(c)]).rstrip()


async def _print_changes(root: Path, interval: float, json_output: bool, known: list[Candidate]) -> None:
    async for event, candidate in watch(root, interval, known=known):
        if json_output:
            print(json.dumps({"event": event, **candidate.as_dict()}), flush=True)
        else:
            print(format_change(event, candidate), flush=True)


def run_scanners_command(json_output: bool, watch: bool, root: Path = Path("/"), *, interval: float = 1.0) -> int:
    """`clearpoint agent scanners [--json] [--watch]`: list candidates, then (with watch) follow hotplug until ^C.

    Results go to stdout (a table, or one JSON object a line); advice goes to stderr so it never mixes with them.
    """
    cands = discover(root)
    if json_output:
        for candidate in cands:
            print(json.dumps(candidate.as_dict()))
    elif cands:
        print(format_table(cands))
    if not cands:
        print(NO_CANDIDATES, file=sys.stderr)
    if not watch:
        return 0
    sys.stdout.flush()
    print("watching for devices being plugged in or out; Ctrl-C to stop", file=sys.stderr)
    try:
        asyncio.run(_print_changes(root, interval, json_output, cands))
    except KeyboardInterrupt:
        return 0
    return 0
