"""Which USB device a scanner's node belongs to, in words that survive an unplug and a replug.

Node numbers (/dev/ttyACM0, /dev/input/event5, /dev/hidraw1) follow plug order, and a udev by-id link is
built from the device's serial number: two scanners of one model without serial numbers get the same
link, and it points at whichever enumerated last. The identity is the model (vendor:product) and the
serial number where the device has one, else the USB port it sits in (the kernel's name for the USB
device, "1-1.2": bus 1, root port 1, hub port 2), which stays put as long as no cable is moved.

Read from sysfs relative to a root folder, so tests run against a fake tree; nothing here raises.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

# The sysfs classes of the nodes scanners are read through, by where their nodes sit under /dev.
_CLASS_OF_FOLDER = {"input": "input"}
_CLASS_OF_PREFIX = (("hidraw", "hidraw"), ("tty", "tty"))


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except (OSError, ValueError) as exc:
        log.debug("cannot read %s: %s", path, exc)
        return None


def read_hex(path: Path) -> int | None:
    text = read_text(path)
    try:
        return int(text, 16) if text else None
    except ValueError:
        log.debug("not a hex number in %s: %r", path, text)
        return None


def usb_device(device_link: Path, levels: int = 5) -> Path | None:
    """The USB device folder (the one with idVendor) at or above a sysfs device.

    For ttyACM the tty's device is the USB interface and the USB device is its parent; for usb-serial
    (ttyUSB) there is one more level (the port); for input and hidraw, the HID device and interface sit between.
    """
    try:
        here = device_link.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        log.debug("cannot resolve %s: %s", device_link, exc)
        return None
    for _ in range(levels):
        if (here / "idVendor").is_file():
            return here
        here = here.parent
    return None


def describe(usb: Path) -> str:
    """The model and serial number ("usb 0c2e:0b81 serial 17321B4C01"), or without one the port ("... port 1-1.2")."""
    vendor, product = read_hex(usb / "idVendor"), read_hex(usb / "idProduct")
    if vendor is None or product is None:
        return ""
    serial = read_text(usb / "serial")
    where = f"serial {serial}" if serial else f"port {usb.name}"
    return f"usb {vendor:04x}:{product:04x} {where}"


def of_class_device(class_entry: Path) -> str:
    """The identity of /sys/class/<class>/<name>; "" when it is no USB device (a built-in serial port, a pty)."""
    usb = usb_device(class_entry / "device")
    return describe(usb) if usb is not None else ""


def identify(path: str | Path, root: Path = Path("/")) -> str:
    """The identity of the device an opened path leads to (a udev link or the node itself), or "" if unknown."""
    try:
        base = root.resolve(strict=True)
        node = Path(path).resolve(strict=True).relative_to(base / "dev")
    except (OSError, RuntimeError, ValueError) as exc:
        log.debug("no sysfs identity for %s: %s", path, exc)
        return ""
    folder, name = node.parent.as_posix(), node.name
    sys_class = _CLASS_OF_FOLDER.get(folder)
    if sys_class is None and folder == ".":
        sys_class = next((c for prefix, c in _CLASS_OF_PREFIX if name.startswith(prefix)), None)
    if sys_class is None:
        log.debug("no sysfs identity for %s: %s is not a node of a scanner's kind", path, node)
        return ""
    return of_class_device(base / "sys/class" / sys_class / name)


class PathIdentity:
    """The device one scanner's configured path leads to, open after open: logged at each open, and a
    warning when a replug left the path leading to another device than before."""

    def __init__(self, scanner_id: str, path: str, root: Path = Path("/")) -> None:
        self.scanner_id = scanner_id
        self.path = path
        self.root = root  # where sysfs and /dev are: "/", or a fake tree in tests
        self.known = ""  # the last device the path was seen to lead to

    def opened(self) -> str:
        """The device the path leads to now ("" if unknown); call right after each open."""
        device = identify(self.path, self.root)
        if not device:
            return ""
        before, self.known = self.known, device
        if before and before != device:
            log.warning(
                "scanner %s: %s now leads to %s, not %s as before: another device took the path (a node numbered "
                "by plug order, or a by-id link two of one model without serial numbers share); configure such "
                "scanners by their /dev/.../by-path links (USB port)",
                self.scanner_id,
                self.path,
                device,
                before,
            )
        else:
            log.info("scanner %s: %s is %s", self.scanner_id, self.path, device)
        return device
