"""Scanner discovery against fake sysfs and /dev trees laid out as the kernel and udev lay them out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest
from clearpoint.scanner_agent import discovery
from clearpoint.scanner_agent.config import load
from clearpoint.scanner_agent.discovery import (
    Candidate,
    decode_bitmap,
    discover,
    format_table,
    parse_report_descriptor,
    run_scanners_command,
    watch,
)

USB = "sys/devices/pci0000:00/0000:00:14.0/usb1"

# capabilities/key as a 64-bit kernel prints it: a full USB keyboard (keys 1..63 all set in the last word) ...
KEYBOARD_KEYS = "1000000000007 ff9f207ac14057ff febeffdfffefffff fffffffffffffffe\n"
# ... the same keyboard's second interface (media keys: volume, play, ...): no letters, no digits ...
MEDIA_KEYS = "3f000303ff 0 0 483ffff17aff32d bfd4444600000000 1 130ff38b17c000 0 0\n"
# ... a mouse (BTN_LEFT..BTN_TASK, codes 0x110..0x114) and the ACPI power button (KEY_POWER, 116).
MOUSE_KEYS = "1f0000 0 0 0 0\n"
POWER_KEYS = "10000000000000 0\n"

# HID 1.11 appendix B.1: the boot keyboard report descriptor.
BOOT_KEYBOARD_DESCRIPTOR = bytes.fromhex(
    "05010906a101"  # Usage Page (Generic Desktop), Usage (Keyboard), Collection (Application)
    "050719e029e715002501750195088102"  # modifiers
    "950175088101"  # reserved byte
    "950575010508190129059102950175039101"  # LEDs and padding
    "95067508150025650507190029658100"  # key array
    "c0"
)
# A HID POS bar code scanner: Usage Page (0x008C, two bytes), Usage (Bar Code Scanner), Collection (Application),
# holding a Scanned Data report.
POS_SCANNER_DESCRIPTOR = bytes.fromhex(
    "068c00"  # Usage Page (0x008C, Bar Code Scanner)
    "0902a101"  # Usage (Bar Code Scanner), Collection (Application)
    "0912a102"  # Usage (Scanned Data Report), Collection (Logical)
    "8502150026ff007508953209fe8102"  # Report ID 2, 50 bytes of decoded data
    "c0c0"
)


def _kernel_link(link: Path, target: Path) -> None:
    """A sysfs symlink written the way kernfs writes it: up to an ancestor of the target's parent, then down."""
    base, ups = link.parent, 0
    while not target.parent.is_relative_to(base):
        base, ups = base.parent, ups + 1
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("../" * ups + target.relative_to(base).as_posix())


def _udev_link(link: Path, target: Path) -> None:
    """A /dev alias written the way udev writes it: relative to the link's folder (../../ttyACM0)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


class Tree:
    """Builds the sysfs and /dev entries of USB devices under a fake root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def usb_device(self, port: str, vid: int, pid: int, manufacturer: str, product: str, serial: str | None) -> str:
        rel = f"{USB}/{port}"
        self.write(f"{rel}/idVendor", f"{vid:04x}\n")
        self.write(f"{rel}/idProduct", f"{pid:04x}\n")
        self.write(f"{rel}/manufacturer", f"{manufacturer}\n")
        self.write(f"{rel}/product", f"{product}\n")
        self.write(f"{rel}/bDeviceClass", "00\n")
        if serial is not None:
            self.write(f"{rel}/serial", f"{serial}\n")
        return rel

    def interface(self, usb: str, port: str, number: int = 0) -> str:
        rel = f"{usb}/{port}:1.{number}"
        self.write(f"{rel}/bInterfaceNumber", f"{number:02x}\n")
        return rel

    def tty(self, parent: str, name: str, minor: int, device: str, by_id: str | None, by_path: str | None) -> None:
        """tty/<name> under `parent`, its `device` link to `device`, the class link, the node and udev links."""
        major = 166 if name.startswith("ttyACM") else 188
        tty = f"{parent}/tty/{name}"
        self.write(f"{tty}/dev", f"{major}:{minor}\n")
        self.write(f"{tty}/uevent", f"MAJOR={major}\nMINOR={minor}\nDEVNAME={name}\n")
        _kernel_link(self.root / tty / "device", self.root / device)
        _kernel_link(self.root / "sys/class/tty" / name, self.root / tty)
        self.write(f"dev/{name}", "")
        for folder, alias in (("by-id", by_id), ("by-path", by_path)):
            if alias:
                _udev_link(self.root / "dev/serial" / folder / alias, self.root / "dev" / name)

    def acm(self, port: str, n: int, vid: int, pid: int, manufacturer: str, product: str, serial: str) -> None:
        """A CDC-ACM serial device: the tty hangs off the USB interface."""
        usb = self.usb_device(port, vid, pid, manufacturer, product, serial)
        iface = self.interface(usb, port)
        by_id = f"usb-{manufacturer}_{product}_{serial}-if00".replace(" ", "_").replace("&", "_")
        self.tty(iface, f"ttyACM{n}", n, iface, by_id, f"pci-0000:00:14.0-usb-0:{port[2:]}:1.0")

    def usb_serial(self, port: str, n: int, vid: int, pid: int, manufacturer: str, product: str, serial: str) -> None:
        """A usb-serial adapter: interface -> port device (ttyUSBn) -> tty/ttyUSBn."""
        usb = self.usb_device(port, vid, pid, manufacturer, product, serial)
        iface = self.interface(usb, port)
        name = f"ttyUSB{n}"
        port_dev = f"{iface}/{name}"
        self.write(f"{port_dev}/port_number", "0\n")
        by_id = f"usb-{manufacturer}_{product}_{serial}-if00-port0".replace(" ", "_")
        self.tty(port_dev, name, n, port_dev, by_id, None)

    def hid_interface(self, port: str, vid: int, pid: int, name: str, uniq: str, seq: int, number: int = 0) -> str:
        """The HID device the kernel creates under a USB interface (0003:VVVV:PPPP.NNNN)."""
        usb = self.usb_device(port, vid, pid, name.split(" ")[0], " ".join(name.split(" ")[1:]), uniq or None)
        iface = self.interface(usb, port, number)
        hid = f"{iface}/0003:{vid:04X}:{pid:04X}.{seq:04X}"
        self.write(
            f"{hid}/uevent",
            f"DRIVER=hid-generic\nHID_ID=0003:{vid:08X}:{pid:08X}\nHID_NAME={name}\n"
            f"HID_PHYS=usb-0000:00:14.0-{port[2:]}/input{number}\nHID_UNIQ={uniq}\n"
            f"MODALIAS=hid:b0003g0001v{vid:08X}p{pid:08X}\n",
        )
        return hid

    def event(self, hid: str, vid: int, pid: int, name: str, uniq: str, keys: str, n: int, by_id: str | None) -> None:
        """inputN/eventN under a HID device, with the class link, the node and udev's by-id link."""
        inp = f"{hid}/input/input{n}"
        self.write(f"{inp}/name", f"{name}\n")
        self.write(f"{inp}/uniq", f"{uniq}\n")
        self.write(f"{inp}/phys", "usb-0000:00:14.0-1/input0\n")
        self.write(f"{inp}/id/bustype", "0003\n")
        self.write(f"{inp}/id/vendor", f"{vid:04x}\n")
        self.write(f"{inp}/id/product", f"{pid:04x}\n")
        self.write(f"{inp}/id/version", "0110\n")
        self.write(f"{inp}/capabilities/ev", "120013\n")
        self.write(f"{inp}/capabilities/key", keys)
        event = f"{inp}/event{n}"
        self.write(f"{event}/dev", f"13:{64 + n}\n")
        self.write(f"{event}/uevent", f"MAJOR=13\nMINOR={64 + n}\nDEVNAME=input/event{n}\n")
        _kernel_link(self.root / event / "device", self.root / inp)
        _kernel_link(self.root / "sys/class/input" / f"input{n}", self.root / inp)
        _kernel_link(self.root / "sys/class/input" / f"event{n}", self.root / event)
        self.write(f"dev/input/event{n}", "")
        if by_id:
            _udev_link(self.root / "dev/input/by-id" / by_id, self.root / f"dev/input/event{n}")

    def hidraw(self, hid: str, n: int, descriptor: bytes) -> None:
        self.write(f"{hid}/report_descriptor", descriptor)
        node = f"{hid}/hidraw/hidraw{n}"
        self.write(f"{node}/dev", f"241:{n}\n")
        _kernel_link(self.root / node / "device", self.root / hid)
        _kernel_link(self.root / "sys/class/hidraw" / f"hidraw{n}", self.root / node)
        self.write(f"dev/hidraw{n}", "")

    # -- the devices of a typical till --

    def honeywell_serial(self) -> None:
        self.acm("1-2", 0, 0x0C2E, 0x0B6A, "Honeywell Imaging & Mobility", "1900G", "18073B4F2A")

    def ftdi_adapter(self, product: str = "FT232R USB UART") -> None:
        self.usb_serial("1-3", 0, 0x0403, 0x6001, "FTDI", product, "A50285BI")

    def honeywell_keyboard_mode(self) -> None:
        name = "Honeywell Imaging & Mobility 1400g"
        hid = self.hid_interface("1-4", 0x0C2E, 0x0B81, name, "13056B5B22", 1)
        by_id = "usb-Honeywell_Imaging___Mobility_1400g_13056B5B22-event-kbd"
        self.event(hid, 0x0C2E, 0x0B81, name, "13056B5B22", KEYBOARD_KEYS, 5, by_id)
        self.hidraw(hid, 0, BOOT_KEYBOARD_DESCRIPTOR)

    def store_keyboard(self) -> None:
        name = "Dell KB216 Wired Keyboard"
        hid = self.hid_interface("1-5", 0x413C, 0x2113, name, "", 2)
        self.event(hid, 0x413C, 0x2113, name, "", KEYBOARD_KEYS, 3, "usb-Dell_KB216_Wired_Keyboard-event-kbd")
        self.hidraw(hid, 1, BOOT_KEYBOARD_DESCRIPTOR)
        media = f"{USB}/1-5/1-5:1.1/0003:413C:2113.0003"
        self.write(f"{USB}/1-5/1-5:1.1/bInterfaceNumber", "01\n")
        self.event(media, 0x413C, 0x2113, name, "", MEDIA_KEYS, 4, "usb-Dell_KB216_Wired_Keyboard-if01-event-kbd")

    def mouse(self) -> None:
        name = "PixArt USB Optical Mouse"
        hid = self.hid_interface("1-6", 0x093A, 0x2510, name, "", 4)
        self.event(hid, 0x093A, 0x2510, name, "", MOUSE_KEYS, 6, "usb-PixArt_USB_Optical_Mouse-event-mouse")

    def power_button(self) -> None:
        inp = "sys/devices/LNXSYSTM:00/LNXPWRBN:00/input/input0"
        self.write(f"{inp}/name", "Power Button\n")
        self.write(f"{inp}/id/vendor", "0000\n")
        self.write(f"{inp}/id/product", "0001\n")
        self.write(f"{inp}/capabilities/key", POWER_KEYS)
        _kernel_link(self.root / inp / "event0/device", self.root / inp)
        _kernel_link(self.root / "sys/class/input/event0", self.root / inp / "event0")

    def newland_pos(self) -> None:
        hid = self.hid_interface("1-7", 0x1EAB, 0x0110, "Newland HR200", "", 5)
        self.hidraw(hid, 2, POS_SCANNER_DESCRIPTOR)

    def unknown_pos(self) -> None:
        """A HID POS scanner from a vendor we do not know: only its descriptor gives it away."""
        hid = self.hid_interface("1-8", 0x1234, 0x5678, "ACME Imager", "", 6)
        self.hidraw(hid, 3, POS_SCANNER_DESCRIPTOR)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


def by_node(cands: list[Candidate]) -> dict[str, Candidate]:
    return {c.node: c for c in cands}


# -- serial ---------------------------------------------------------------------------------------------------


def test_honeywell_acm_found_by_its_by_id_path_and_likely(tree: Tree) -> None:
    tree.honeywell_serial()
    assert os.readlink(tree.root / "sys/class/tty/ttyACM0/device") == "../../../1-2:1.0"
    [c] = discover(tree.root)
    assert c.kind == "serial"
    assert c.path == "/dev/serial/by-id/usb-Honeywell_Imaging___Mobility_1900G_18073B4F2A-if00"
    assert c.node == "/dev/ttyACM0"
    assert "/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0" in c.aliases
    assert (c.vendor_id, c.product_id, c.serial, c.name) == (0x0C2E, 0x0B6A, "18073B4F2A", "1900G")
    assert c.likely_scanner
    assert c.why == "vendor 0c2e is Honeywell"


def test_ftdi_adapter_listed_but_not_likely(tree: Tree) -> None:
    tree.ftdi_adapter()
    assert os.readlink(tree.root / "sys/class/tty/ttyUSB0/device") == "../../../ttyUSB0"
    [c] = discover(tree.root)
    assert c.path == "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"
    assert (c.vendor_id, c.product_id, c.serial) == (0x0403, 0x6001, "A50285BI")
    assert not c.likely_scanner
    assert "usb-serial adapter (FTDI)" in c.why


def test_ftdi_adapter_named_as_a_scanner_is_likely(tree: Tree) -> None:
    tree.ftdi_adapter(product="Barcode Scanner")
    [c] = discover(tree.root)
    assert c.likely_scanner
    assert "name contains 'barcode'" in c.why


# -- evdev ----------------------------------------------------------------------------------------------------


def test_keyboard_mode_scanner_vs_store_keyboard_and_mouse(tree: Tree) -> None:
    tree.honeywell_keyboard_mode()
    tree.store_keyboard()
    tree.mouse()
    tree.power_button()
    evdev = by_node([c for c in discover(tree.root) if c.kind == "keyboard"])
    assert set(evdev) == {"/dev/input/event5", "/dev/input/event3"}  # no media keys, mouse or power button

    scanner = evdev["/dev/input/event5"]
    assert scanner.path == "/dev/input/by-id/usb-Honeywell_Imaging___Mobility_1400g_13056B5B22-event-kbd"
    assert scanner.likely_scanner and scanner.why == "vendor 0c2e is Honeywell"
    assert (scanner.vendor_id, scanner.product_id, scanner.serial) == (0x0C2E, 0x0B81, "13056B5B22")

    keyboard = evdev["/dev/input/event3"]
    assert keyboard.path == "/dev/input/by-id/usb-Dell_KB216_Wired_Keyboard-event-kbd"
    assert not keyboard.likely_scanner
    assert keyboard.why == "keyboard: has letter keys but vendor is not a scanner maker"
    assert keyboard.serial is None


def test_likely_scanners_sort_first(tree: Tree) -> None:
    tree.store_keyboard()
    tree.honeywell_keyboard_mode()
    cands = discover(tree.root)
    assert [c.likely_scanner for c in cands] == sorted((c.likely_scanner for c in cands), reverse=True)


def test_decode_bitmap() -> None:
    assert decode_bitmap(MOUSE_KEYS) == {0x110, 0x111, 0x112, 0x113, 0x114}
    assert decode_bitmap(POWER_KEYS) == {116}
    assert decode_bitmap("0") == set()
    # A 32-bit reader gets 32-bit words: KEY_POWER is then in the fourth word from the right.
    assert decode_bitmap("100000 0 0 0", word_bits=32) == {116}
    assert {28, *range(16, 26)} <= decode_bitmap(KEYBOARD_KEYS)


# -- hidraw ---------------------------------------------------------------------------------------------------


def test_report_descriptors() -> None:
    assert parse_report_descriptor(BOOT_KEYBOARD_DESCRIPTOR) == (True, False)
    assert parse_report_descriptor(POS_SCANNER_DESCRIPTOR) == (False, True)
    # The one-byte form of the page, and a four-byte usage carrying its own page.
    assert parse_report_descriptor(bytes.fromhex("058c0902a101c0")).pos
    assert parse_report_descriptor(bytes.fromhex("0b06000100a101c0")).keyboard
    # A mouse, a truncated descriptor and an empty one are neither.
    assert parse_report_descriptor(bytes.fromhex("05010902a101c0")) == (False, False)
    assert parse_report_descriptor(bytes.fromhex("0501 0906 a1".replace(" ", ""))) == (False, False)
    assert parse_report_descriptor(b"") == (False, False)


def test_hidraw_boot_keyboard_vs_hid_pos(tree: Tree) -> None:
    tree.store_keyboard()
    tree.honeywell_keyboard_mode()
    tree.newland_pos()
    tree.unknown_pos()
    tree.mouse()
    hidraw = by_node([c for c in discover(tree.root) if c.kind in ("hidraw", "hidpos")])
    assert set(hidraw) == {"/dev/hidraw0", "/dev/hidraw1", "/dev/hidraw2", "/dev/hidraw3"}  # the mouse has none

    dell = hidraw["/dev/hidraw1"]
    assert (dell.hid_keyboard, dell.hid_pos, dell.likely_scanner) == (True, False, False)
    assert dell.why == "HID keyboard; vendor is not a scanner maker"

    honeywell = hidraw["/dev/hidraw0"]
    assert (honeywell.hid_keyboard, honeywell.hid_pos, honeywell.likely_scanner) == (True, False, True)
    assert (honeywell.vendor_id, honeywell.product_id, honeywell.serial) == (0x0C2E, 0x0B81, "13056B5B22")

    newland = hidraw["/dev/hidraw2"]
    assert (newland.hid_keyboard, newland.hid_pos, newland.likely_scanner) == (False, True, True)
    assert (newland.kind, honeywell.kind, dell.kind) == ("hidpos", "hidraw", "hidraw")  # POS has a driver of its own
    assert newland.why == "vendor 1eab is Newland; HID POS barcode scanner (usage page 0x8C)"
    assert newland.name == "Newland HR200"

    acme = hidraw["/dev/hidraw3"]
    assert acme.likely_scanner and acme.why == "HID POS barcode scanner (usage page 0x8C)"


# -- broken trees ---------------------------------------------------------------------------------------------


def test_broken_entries_are_skipped_not_fatal(tree: Tree) -> None:
    tree.honeywell_serial()
    root = tree.root
    # A by-id link left behind by a device that is gone, and a stray regular file among the links.
    _udev_link(root / "dev/serial/by-id/usb-Gone_Scanner_X-if00", root / "dev/ttyACM7")
    tree.write("dev/serial/by-id/not-a-link", "")
    tree.write("dev/input/by-id/also-not-a-link", "")
    # A ttyUSB node with nothing in sysfs behind it.
    tree.write("dev/ttyUSB3", "")
    # Input entries: one with no files, one dangling, one with a garbled bitmap, one whose name is a folder.
    (root / "sys/class/input/event9/device").mkdir(parents=True)
    (root / "sys/class/input/event10").symlink_to("../../devices/virtual/input/input99/event10")
    tree.write("sys/class/input/event11/device/name", "Garbled\n")
    tree.write("sys/class/input/event11/device/capabilities/key", "zz 0\n")
    (root / "sys/class/input/event12/device/name").mkdir(parents=True)
    # hidraw: no uevent at all; a garbled HID_ID with a truncated POS descriptor; a missing descriptor.
    (root / "sys/class/hidraw/hidraw5/device").mkdir(parents=True)
    tree.write("sys/class/hidraw/hidraw6/device/uevent", "HID_ID=garbage\nHID_NAME=Odd\nno equals sign\n")
    tree.write("sys/class/hidraw/hidraw6/device/report_descriptor", bytes.fromhex("068c000902a1"))
    tree.write("sys/class/hidraw/hidraw7/device/uevent", "HID_ID=0003:0000413C:00002113\nHID_NAME=Dell\n")

    cands = by_node(discover(root))
    assert set(cands) == {"/dev/ttyACM0", "/dev/ttyUSB3", "/dev/hidraw6"}
    assert cands["/dev/ttyACM0"].likely_scanner
    orphan = cands["/dev/ttyUSB3"]
    assert (orphan.path, orphan.vendor_id, orphan.likely_scanner) == ("/dev/ttyUSB3", None, False)
    assert orphan.why == "serial port without USB details in sysfs"
    odd = cands["/dev/hidraw6"]
    assert (odd.vendor_id, odd.hid_pos, odd.likely_scanner) == (None, True, True)


def test_empty_or_missing_root(tmp_path: Path) -> None:
    assert discover(tmp_path) == []
    assert discover(tmp_path / "nowhere") == []


# -- output ---------------------------------------------------------------------------------------------------


def test_table_and_json(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree.honeywell_serial()
    tree.store_keyboard()
    table = format_table(discover(tree.root)).splitlines()
    assert table[0].split() == ["KIND", "LIKELY", "PATH", "VENDOR:PRODUCT", "NAME", "WHY"]
    assert table[1].split()[:4] == [
        "serial",
        "yes",
        "/dev/serial/by-id/usb-Honeywell_Imaging___Mobility_1900G_18073B4F2A-if00",
        "0c2e:0b6a",
    ]
    assert len({line.index("/dev/") for line in table[1:]}) == 1  # PATH column aligned

    assert run_scanners_command(json_output=False, watch=False, root=tree.root) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == table and err == ""

    assert run_scanners_command(json_output=True, watch=False, root=tree.root) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["kind"] == "serial" and rows[0]["vendor_id"] == 0x0C2E and rows[0]["vendor_product"] == "0c2e:0b6a"
    assert rows[0]["likely_scanner"] is True and isinstance(rows[0]["aliases"], list)


def test_listed_kinds_and_paths_paste_into_the_config(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree.honeywell_serial()
    tree.honeywell_keyboard_mode()
    tree.newland_pos()
    assert run_scanners_command(json_output=True, watch=False, root=tree.root) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["kind"] for row in rows] == ["keyboard", "hidraw", "hidpos", "serial"]
    config = tree.root / "agent.toml"
    config.write_text(
        '[agent]\nplatform = "127.0.0.1:1"\n'
        + "".join(f'[[scanner]]\nid = "s{n}"\ntype = "{r["kind"]}"\npath = "{r["path"]}"\n' for n, r in enumerate(rows))
    )
    assert [(s.kind, s.options["path"]) for s in load(config).scanners] == [(r["kind"], r["path"]) for r in rows]


def test_nothing_found_advises_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_scanners_command(json_output=False, watch=False, root=tmp_path) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "no candidate devices found" in err and "/dev/serial/by-id" in err


def test_watch_command_stops_cleanly_on_interrupt(
    tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(discovery, "_print_changes", interrupted)
    tree.honeywell_serial()
    assert run_scanners_command(json_output=False, watch=True, root=tree.root) == 0
    out, err = capsys.readouterr()
    assert "/dev/serial/by-id/" in out and "Ctrl-C" in err


# -- hotplug --------------------------------------------------------------------------------------------------


async def _next(events: asyncio.Queue[tuple[str, Candidate]], event: str, path: str) -> Candidate:
    """The next `event` for `path`, skipping the half-built states a rescan may catch mid-plug."""
    async with asyncio.timeout(5):
        while True:
            kind, candidate = await events.get()
            if kind == event and candidate.path == path:
                return candidate


async def test_watch_reports_plug_and_unplug(tree: Tree) -> None:
    tree.store_keyboard()
    events: asyncio.Queue[tuple[str, Candidate]] = asyncio.Queue()

    async def follow() -> None:
        async for item in watch(tree.root, interval=0.02, known=discover(tree.root)):
            await events.put(item)

    task = asyncio.create_task(follow())
    try:
        await asyncio.sleep(0.05)
        assert events.empty()  # what was there at the start is not news

        tree.honeywell_serial()
        by_id = "/dev/serial/by-id/usb-Honeywell_Imaging___Mobility_1900G_18073B4F2A-if00"
        added = await _next(events, "added", by_id)
        assert added.likely_scanner

        shutil.rmtree(tree.root / USB / "1-2")
        for gone in ("sys/class/tty/ttyACM0", "dev/ttyACM0", f"dev/serial/by-id/{by_id.rsplit('/', 1)[1]}"):
            (tree.root / gone).unlink()
        removed = await _next(events, "removed", by_id)
        assert removed == added
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()


async def test_watch_rescans_at_once_on_udev_events(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Where pyudev and udev exist, a udev event triggers the rescan without waiting for the interval."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)

    class Monitor:
        filters: list[str] = []

        def filter_by(self, subsystem: str) -> None:
            self.filters.append(subsystem)

        def start(self) -> None:
            return None

        def fileno(self) -> int:
            return read_end

        def poll(self, timeout: float) -> object | None:
            try:
                return os.read(read_end, 1)
            except BlockingIOError:
                return None

    present: list[Candidate] = []
    monkeypatch.setattr(discovery, "discover", lambda root: list(present))
    tree = Tree(tmp_path)
    tree.honeywell_serial()
    [scanner] = discover(tmp_path)

    changes = watch(Path("/"), interval=60, known=[], monitor=Monitor)
    try:
        pending = asyncio.ensure_future(anext(changes))
        await asyncio.sleep(0.05)
        present.append(scanner)
        os.write(write_end, b"x")
        async with asyncio.timeout(5):
            assert await pending == ("added", scanner)
        assert set(Monitor.filters) == {"tty", "input", "hidraw"}
    finally:
        await changes.aclose()
        os.close(read_end)
        os.close(write_end)
