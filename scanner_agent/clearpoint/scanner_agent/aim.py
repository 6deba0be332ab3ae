"""AIM symbology identifiers (ISO/IEC 15424): the "]Q1"-style prefix a scanner can put before the data.

Scanners configured to send it tell us which symbology was read, which matters for GS1 data (]C1, ]d2, ]Q3:
the data carries FNC1/GS separated application identifiers) and for the console. We only strip a prefix that
is well formed: "]", a code character from the ISO/IEC 15424 list, and an alphanumeric modifier. Anything
else stays in the data untouched, because a code that merely starts with "]" is still a code.
"""

from __future__ import annotations

# Code character -> symbology family (ISO/IEC 15424 and the AIM registry of code characters).
CODE_CHARACTERS: dict[str, str] = {
    "A": "Code 39",
    "B": "Telepen",
    "C": "Code 128",
    "D": "Code One",
    "E": "EAN/UPC",
    "F": "Codabar",
    "G": "Code 93",
    "H": "Code 11",
    "I": "Interleaved 2 of 5 (ITF)",
    "K": "Code 16K",
    "L": "PDF417",
    "M": "MSI",
    "N": "Anker",
    "O": "Codablock",
    "P": "Plessey",
    "Q": "QR Code",
    "R": "Straight 2 of 5 (two-bar start/stop)",
    "S": "Straight 2 of 5 (three-bar start/stop)",
    "T": "Code 49",
    "U": "MaxiCode",
    "X": "Other bar code",
    "Y": "System expansion",
    "Z": "Non-bar-code input",
    "c": "Channel Code",
    "d": "Data Matrix",
    "e": "GS1 DataBar",
    "g": "Grid Matrix",
    "h": "Han Xin Code",
    "o": "OCR",
    "p": "Posicode",
    "s": "SuperCode",
    "z": "Aztec Code",
}

# Identifiers whose modifier changes what the symbol is called (GS1 variants, EAN-8 vs EAN-13, add-ons).
SPECIFIC_NAMES: dict[str, str] = {
    "]C1": "GS1-128",
    "]E0": "EAN-13 / UPC-A / UPC-E",
    "]E1": "EAN/UPC 2-digit add-on",
    "]E2": "EAN/UPC 5-digit add-on",
    "]E3": "EAN/UPC with add-on",
    "]E4": "EAN-8",
    "]I1": "Interleaved 2 of 5 (check digit verified)",
    "]L2": "TLC 39",
    "]Q0": "QR Code Model 1",
    "]Q3": "GS1 QR Code",
    "]Q4": "GS1 QR Code",
    "]d2": "GS1 DataMatrix",
    "]d3": "GS1 DataMatrix",
    "]e0": "GS1 DataBar",
    "]z4": "GS1 Aztec Code",
}

AIM_FLAG = ord("]")


def is_aim_identifier(ident: str) -> bool:
    """True for a well-formed identifier: "]", a listed code character, an alphanumeric ASCII modifier."""
    return (
        len(ident) == 3
        and ident[0] == "]"
        and ident[1] in CODE_CHARACTERS
        and ident[2].isascii()
        and ident[2].isalnum()
    )


def split_aim(data: bytes) -> tuple[str, bytes]:
    """(identifier, rest) when data starts with a well-formed AIM identifier; ("", data) otherwise."""
    if len(data) < 3 or data[0] != AIM_FLAG:
        return "", data
    head = data[:3]
    if not head.isascii():
        return "", data
    ident = head.decode("ascii")
    if not is_aim_identifier(ident):
        return "", data
    return ident, data[3:]


def symbology_name(ident: str) -> str:
    """Human name for logs and the console ("]Q1" -> "QR Code"); "" for no identifier, "unknown (…)" otherwise."""
    if not ident:
        return ""
    if ident in SPECIFIC_NAMES:
        return SPECIFIC_NAMES[ident]
    if is_aim_identifier(ident):
        return CODE_CHARACTERS[ident[1]]
    return f"unknown ({ident!r})"


# EAN/UPC data packets have fixed lengths (ISO/IEC 15424, the EAN/UPC modifiers): 0, the 13 digits
# of an EAN-13, UPC-A or UPC-E in full EAN form; 1 and 2, a 2- or 5-digit add-on alone; 4, EAN-8's 8
# digits. So where one of these packets ends, and whether an identifier follows, is certain; in
# other symbologies a "]" inside the data is just data.
_EAN_UPC_LENGTHS = {"]E0": 13, "]E1": 2, "]E2": 5, "]E4": 8}
_ADD_ONS = ("]E1", "]E2")
# Modifier 3: the 13 main digits and the add-on's in one packet, the form a scanner combines them in.
COMBINED = "]E3"


def split_symbols(data: bytes) -> list[tuple[str, bytes]]:
    """The symbols of one transmission, each (identifier, data) without any identifier inside the data.

    A scanner may send an EAN/UPC symbol and its add-on, or two symbols, one after the other in one
    transmission: "]E04006381333931]E212345". Each EAN/UPC packet has its fixed length, so a
    well-formed identifier right after one starts the next symbol. A main symbol followed by its
    add-on becomes the combined packet ("]E3", 13 + 2 or 5 digits), as AIM defines it; any other
    sequence comes out as separate symbols. Other symbologies have no fixed length: a well-formed
    identifier inside their data starts the next symbol ("]C0ABC]Q1..." is two), so no identifier is
    ever left inside the data sent; a "]" that does not start one is data. Data without an
    identifier is one symbol, untouched.
    """
    ident, rest = split_aim(data)
    if not ident:
        return [("", data)]
    symbols: list[tuple[str, bytes]] = []
    while True:
        length = _EAN_UPC_LENGTHS.get(ident)
        if length is None or len(rest) <= length or not rest[:length].isdigit():
            at = _next_identifier(rest)
            if at < 0:
                symbols.append((ident, rest))
                break
            symbols.append((ident, rest[:at]))
            ident, rest = split_aim(rest[at:])
            continue
        following, after = split_aim(rest[length:])
        if not following:
            symbols.append((ident, rest))
            break
        symbols.append((ident, rest[:length]))
        ident, rest = following, after
    return _combine_add_ons(symbols)


def _next_identifier(data: bytes) -> int:
    """Where a well-formed identifier starts inside `data` (after at least one byte of it), or -1."""
    at = data.find(AIM_FLAG, 1)
    while at >= 0:
        if split_aim(data[at:])[0]:
            return at
        at = data.find(AIM_FLAG, at + 1)
    return -1


def _combine_add_ons(symbols: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    combined: list[tuple[str, bytes]] = []
    for ident, data in symbols:
        main = combined[-1] if combined else ("", b"")
        whole_main = main[0] == "]E0" and len(main[1]) == _EAN_UPC_LENGTHS["]E0"] and main[1].isdigit()
        if ident in _ADD_ONS and whole_main and data.isdigit():
            combined[-1] = (COMBINED, combined[-1][1] + data)
        else:
            combined.append((ident, data))
    return combined
