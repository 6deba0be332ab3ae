"""How a scanner reaches the agent, by one name: the KIND that `agent scanners` prints is the `type` a
[[scanner]] table takes, so a listed device can be pasted into the configuration."""

from __future__ import annotations

from enum import StrEnum


class ScannerKind(StrEnum):
    SERIAL = "serial"  # RS-232 or a USB virtual COM port
    KEYBOARD = "keyboard"  # a keyboard-wedge scanner, read through the kernel's input layer (evdev)
    HIDRAW = "hidraw"  # a keyboard-wedge scanner's raw HID reports (/dev/hidrawN)
    HID_POS = "hidpos"  # a HID POS bar code scanner (usage page 0x8C) on /dev/hidrawN
