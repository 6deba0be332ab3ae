"""Vendor Code IDs: the one letter some scanners put before the data instead of an AIM identifier.

A Honeywell scanner set to send its Code ID (its "STX, Code ID, data, ETX" set-up, say) puts one
letter from its symbology chart in front of the data: `j` for Code 128, `d` for EAN-13. Left in
place, that letter would be signed and sent as the first character of the code. The agent takes it
off when the scanner's configuration says one is there, and passes the symbology on as the AIM
identifier of the same symbology, so the platform sees one kind of identifier whatever the scanner.

A Code ID names the symbology and, for GS1-128, its GS1 form; it says nothing of the things AIM's
modifier records (check digits verified, ECI), so the identifier given is the symbology's plain
form: `]C0` for Code 128, `]C1` for GS1-128. A letter not in the chart is refused rather than
guessed at: the frame is not what the configuration says the scanner sends.
"""

from __future__ import annotations

from dataclasses import dataclass

# Honeywell's Code ID chart (the "Symbology Charts" appendix of its scanners' user guides), for the
# symbologies a store counter meets, with the AIM identifier (ISO/IEC 15424) of the same symbology.
HONEYWELL: dict[str, str] = {
    "a": "]F0",  # Codabar
    "b": "]A0",  # Code 39
    "c": "]E0",  # UPC-A
    "d": "]E0",  # EAN-13
    "D": "]E4",  # EAN-8
    "E": "]E0",  # UPC-E
    "e": "]I0",  # Interleaved 2 of 5
    "h": "]H0",  # Code 11
    "i": "]G0",  # Code 93
    "I": "]C1",  # GS1-128
    "j": "]C0",  # Code 128
    "r": "]L0",  # PDF417
    "R": "]L0",  # MicroPDF417
    "s": "]Q1",  # QR Code (Model 2)
    "w": "]d1",  # Data Matrix (ECC 200)
    "x": "]U0",  # MaxiCode
    "y": "]e0",  # GS1 DataBar
    "z": "]z0",  # Aztec Code
}

TABLES: dict[str, dict[str, str]] = {"honeywell": HONEYWELL}


@dataclass(frozen=True, slots=True)
class CodeIdError:
    """A frame that does not start with a Code ID of the configured chart; `message` is a whole sentence."""

    message: str


def split_code_id(chart: str, data: bytes) -> tuple[str, bytes] | CodeIdError:
    """(AIM identifier, data without the Code ID), or why the frame does not start with one."""
    table = TABLES[chart]
    if not data:
        return CodeIdError("an empty frame has no Code ID")
    letter = chr(data[0])
    aim = table.get(letter)
    if aim is None:
        return CodeIdError(
            f"the frame starts with {data[:1]!r}, not a {chart} Code ID; is the scanner set to send its Code ID?"
        )
    return aim, data[1:]
