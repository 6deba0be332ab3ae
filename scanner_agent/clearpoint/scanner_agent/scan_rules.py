"""What a decoded scan may hold, checked once for every path (serial, keyboard wedge, hidraw) before
the journal: a scan with a control byte other than the separators of GS1 and ISO/IEC 15434 data is
not what the barcode said. A backspace typed by a keyboard wedge (Alt+08 where a scanner meant
Alt+080 and the input layer dropped the repeated key), a NUL from line noise, an ESC from a
scanner's command mode: signed and sent, it would be a wrong scan that looks right.
"""

from __future__ import annotations

# GS separates GS1 element strings; RS and EOT frame ISO/IEC 15434 messages (GS1 and ASC MH10 data
# in 2D codes). Every other C0 control and DEL is refused.
ALLOWED_CONTROLS = frozenset({0x04, 0x1D, 0x1E})
_NAMES = {0x00: "NUL", 0x08: "BS", 0x09: "TAB", 0x0A: "LF", 0x0D: "CR", 0x1B: "ESC", 0x7F: "DEL"}


def control_bytes(data: bytes) -> list[tuple[int, int]]:
    """(position, byte) of every control byte the scan may not hold, in order."""
    return [(i, b) for i, b in enumerate(data) if (b < 0x20 or b == 0x7F) and b not in ALLOWED_CONTROLS]


def describe(found: list[tuple[int, int]]) -> str:
    """'BS at 2, 0x01 at 7' (the first few): what a person checking the scanner's set-up needs."""
    shown = ", ".join(f"{_NAMES.get(b, f'0x{b:02X}')} at {i}" for i, b in found[:4])
    return shown + (f" and {len(found) - 4} more" if len(found) > 4 else "")
