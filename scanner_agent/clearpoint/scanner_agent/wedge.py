"""Turn a keyboard-wedge scanner's key presses back into the bytes it scanned.

Pure and synchronous: the evdev driver feeds it kernel key events, the hidraw driver feeds it
the same events rebuilt from boot-keyboard reports, and tests feed it recordings. One decoder
serves one scanner; never merge two devices' events into one decoder.

Decisions worth knowing:

* Output bytes are one byte per character: Latin-1 where the character is in it, otherwise its
  Windows-1252 byte (the AltGr+E euro sign becomes 0x80); anything else is counted and dropped.
  Alt-mode codes 0..255 are taken as that byte value, with or without the leading 0 that selects
  the Windows ANSI code page, which is how GS (0x1D) arrives inside GS1 codes.
* NumLock and ScrollLock presses are ignored, and keypad digits always decode as digits. The
  scanner sends keypad keys meaning digits (or Alt-mode codes); the host's NumLock state is not
  visible in a grabbed device's stream, and guessing it would only turn digits into cursor keys.
* CapsLock presses in the stream toggle a CapsLock state (starting off) that swaps the case of
  letters, as it would on the host for scanners that send CapsLock around their data.
* Any key pressed while Ctrl, Meta, or Alt without keypad digits is held is a chord (such as the
  Ctrl+Shift+J some scanners send after Enter) and is ignored, never turned into text, unless the
  scanner is set to control-character mode (`control_chars`): then Ctrl+key is the control byte a PC
  types for it (Ctrl+] is GS; see keymaps.control_codes for which keys).
* Keys that type nothing can be configured to stand for a control byte (`control_keys`: F8 or the
  Down arrow for GS, as scanners that map control characters to keys send it). Unmapped, such a key
  is counted and skipped with a warning, and a GS1 code would lose its separators.
* Autorepeat events are ignored: a scanner never holds a key long enough, and a stuck key must
  not multiply characters.
* Dead keys (^ on German, ^ and ¨ on French) compose with the next key the way the host would:
  dead key then space gives the accent itself, dead key then a letter the accented letter.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from clearpoint.scanner_agent import keymaps as k

log = logging.getLogger(__name__)

PRESS, RELEASE, REPEAT = 1, 0, 2

_TERMINATOR_KEYS = {"enter": frozenset({k.KEY_ENTER, k.KEY_KPENTER}), "tab": frozenset({k.KEY_TAB})}
_IGNORED_KEYS = frozenset({k.KEY_NUMLOCK, k.KEY_SCROLLLOCK})
_SHIFT_KEYS = frozenset({k.KEY_LEFTSHIFT, k.KEY_RIGHTSHIFT})
_CTRL_KEYS = frozenset({k.KEY_LEFTCTRL, k.KEY_RIGHTCTRL})
_META_KEYS = frozenset({k.KEY_LEFTMETA, k.KEY_RIGHTMETA})
_MODIFIER_KEYS = k.MODIFIER_KEYS
# Spacing accent -> combining mark, to compose dead key + letter through Unicode normalisation.
_COMBINING = {"^": "\u0302", "`": "\u0300", "\u00b4": "\u0301", "~": "\u0303", "\u00a8": "\u0308"}
# What a configured key may stand for: the separators a scan may hold (scan_rules.py refuses the rest).
CONTROL_BYTES = {"GS": 0x1D, "RS": 0x1E, "EOT": 0x04}
_KEY_NAME_OF_CODE = {code: name for name, code in sorted(k.NAMED_KEYS.items(), reverse=True)}


def terminator_codes(terminators: Iterable[str]) -> frozenset[int]:
    """Key codes that end a scan, from configured names ("enter", "tab")."""
    names = {name.lower() for name in terminators}
    unknown = names - _TERMINATOR_KEYS.keys()
    if unknown or not names:
        raise ValueError(f"terminators must be a non-empty subset of {sorted(_TERMINATOR_KEYS)}, got {sorted(names)}")
    return frozenset().union(*(_TERMINATOR_KEYS[name] for name in names))


def char_byte(char: str) -> int | None:
    """The single byte for a decoded character (Latin-1, else Windows-1252), or None."""
    if ord(char) < 0x100:
        return ord(char)
    try:
        encoded = char.encode("cp1252")
    except UnicodeEncodeError:
        return None
    return encoded[0] if len(encoded) == 1 else None


@dataclass
class WedgeStats:
    """Counters for the health log: what the decoder had to skip or throw away."""

    scans: int = 0
    unknown_keys: int = 0
    chords_ignored: int = 0
    unmappable: int = 0
    overlong: int = 0
    abandoned: int = 0
    resets: int = 0


class WedgeDecoder:
    """Key events of one wedge scanner in, whole scans out (terminator removed)."""

    def __init__(
        self,
        layout: str | k.Layout = "us",
        terminators: Iterable[str] = ("enter",),
        max_length: int = 4096,
        *,
        control_keys: Mapping[int, int] | None = None,
        control_chars: bool = False,
    ) -> None:
        if max_length < 1:
            raise ValueError("max_length must be positive")
        self.layout = k.get_layout(layout)
        self.terminators = terminator_codes(terminators)
        self.max_length = max_length
        self.control_keys = _checked_control_keys(control_keys or {}, self.terminators)
        # Ctrl+key -> control byte, in control-character mode only.
        self._control_codes = k.control_codes(self.layout) if control_chars else {}
        self.stats = WedgeStats()
        self._warned_keys: set[int] = set()
        self._held: set[int] = set()
        self._caps = False
        self._buffer = bytearray()
        self._overflow = False
        self._dead: str | None = None
        # Keypad digits typed while Alt is held; None when not in an Alt-mode character.
        self._alt_digits: str | None = None

    # --- public -------------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """Whether a scan is under way (so an idle gap would abandon it)."""
        return bool(self._buffer) or self._overflow or self._dead is not None or bool(self._alt_digits)

    def feed(self, code: int, value: int) -> bytes | None:
        """One key event (value 1 press, 0 release, 2 autorepeat); the scan when a terminator is pressed."""
        if value == REPEAT:
            return None
        if value not in (PRESS, RELEASE):
            self._unknown(code, f"value {value}")
            return None
        if code in _MODIFIER_KEYS:
            self._modifier(code, value == PRESS)
            return None
        if value == RELEASE:
            return None
        return self._press(code)

    def flush_stale(self) -> bytes:
        """Abandon a partial scan after an idle gap; returns what had arrived (b"" if nothing).

        Held modifiers are kept: only the scan in progress is dropped, so decoding resyncs cleanly
        at the next key. The caller logs; the bytes are returned for the log line's length.
        """
        partial = bytes(self._buffer)
        if self.pending:
            self.stats.abandoned += 1
        self._clear_scan()
        return partial

    def reset(self) -> None:
        """Forget everything, held keys included (after the kernel dropped events, or a reopen)."""
        self.stats.resets += 1
        self._held.clear()
        self._caps = False
        self._clear_scan()

    # --- state machine ------------------------------------------------------------------------

    def _clear_scan(self) -> None:
        self._buffer.clear()
        self._overflow = False
        self._dead = None
        self._alt_digits = None

    def _alt_held(self) -> bool:
        return k.KEY_LEFTALT in self._held or (k.KEY_RIGHTALT in self._held and not self.layout.has_altgr)

    def _modifier(self, code: int, pressed: bool) -> None:
        is_alt = code == k.KEY_LEFTALT or (code == k.KEY_RIGHTALT and not self.layout.has_altgr)
        if pressed:
            self._held.add(code)
            if is_alt and self._alt_digits is None:
                self._alt_digits = ""
            return
        self._held.discard(code)
        if is_alt and not self._alt_held():
            digits, self._alt_digits = self._alt_digits, None
            if digits:
                self._alt_code(int(digits))

    def _alt_code(self, value: int) -> None:
        if value > 0xFF:
            self.stats.unmappable += 1
            log.warning("Alt-mode code %d is above 255; skipped", value)
            return
        self._flush_dead()
        self._append(value)

    def _press(self, code: int) -> bytes | None:
        if code == k.KEY_CAPSLOCK:
            self._caps = not self._caps
            return None
        if code in _IGNORED_KEYS:
            return None
        if self._alt_held() and not self._held & _CTRL_KEYS:
            if code in k.KEYPAD_DIGITS and self._alt_digits is not None:
                self._alt_digits += str(k.KEYPAD_DIGITS[code])
            else:
                self._alt_digits = None  # an Alt chord, not an Alt-mode character
                self.stats.chords_ignored += 1
            return None
        if self._held & _CTRL_KEYS and not self._held & _META_KEYS and not self._alt_held():
            if code in self._control_codes and code not in self.terminators:
                self._flush_dead()
                self._append(self._control_codes[code])
            else:
                self.stats.chords_ignored += 1
            return None
        if self._held & (_CTRL_KEYS | _META_KEYS) or self._alt_held():
            self.stats.chords_ignored += 1
            return None
        if code in self.terminators:
            return self._terminate()
        if code in self.control_keys:
            self._flush_dead()
            self._append(self.control_keys[code])
            return None
        self._symbol(code)
        return None

    def _symbol(self, code: int) -> None:
        shift = bool(self._held & _SHIFT_KEYS)
        altgr = self.layout.has_altgr and k.KEY_RIGHTALT in self._held
        if self._caps and not altgr and self.layout.caps_applies(code):
            shift = not shift
        level = (k.ALTGR if altgr else k.PLAIN) + (1 if shift else 0)
        char = self.layout.symbol(code, level)
        if not char:
            self._unknown(code, f"level {level}")
            return
        if self.layout.is_dead(code, level):
            self._flush_dead()
            self._dead = char
            return
        if self._dead is not None:
            accent, self._dead = self._dead, None
            self._text(self._compose(accent, char))
            return
        self._text(char)

    @staticmethod
    def _compose(accent: str, char: str) -> str:
        if char == " ":
            return accent
        composed = unicodedata.normalize("NFC", char + _COMBINING.get(accent, ""))
        if len(composed) == 1 and char_byte(composed) is not None:
            return composed
        return accent + char  # no such accented letter: the host would type both

    def _flush_dead(self) -> None:
        if self._dead is not None:
            accent, self._dead = self._dead, None
            self._text(accent)

    def _text(self, text: str) -> None:
        for char in text:
            byte = char_byte(char)
            if byte is None:
                self.stats.unmappable += 1
                log.warning("character U+%04X has no single-byte form; skipped", ord(char))
                continue
            self._append(byte)

    def _append(self, byte: int) -> None:
        if self._overflow:
            return
        if len(self._buffer) >= self.max_length:
            log.warning("scan longer than %d bytes; discarding it up to the next terminator", self.max_length)
            self._overflow = True
            self._buffer.clear()
            return
        self._buffer.append(byte)

    def _terminate(self) -> bytes | None:
        self._flush_dead()
        data, overflow = bytes(self._buffer), self._overflow
        self._clear_scan()
        if overflow:
            self.stats.overlong += 1
            return None
        if not data:
            return None  # a lone terminator (or the second of CR LF) is not a scan
        self.stats.scans += 1
        return data

    def _unknown(self, code: int, detail: str) -> None:
        self.stats.unknown_keys += 1
        level = logging.DEBUG if code in self._warned_keys else logging.WARNING
        self._warned_keys.add(code)
        hint = (
            "" if self.layout.keys.get(code) else "; if the scanner sends it for GS, RS or EOT, map it in control_keys"
        )
        log.log(
            level, "key %s (%s) means nothing on layout %r; skipped%s", _key_name(code), detail, self.layout.name, hint
        )


def _key_name(code: int) -> str:
    name = _KEY_NAME_OF_CODE.get(code)
    return f"{name.upper()} ({code})" if name else str(code)


def control_keys_from_names(names: Mapping[str, str]) -> dict[int, int]:
    """The `control_keys` option, {"F8": "GS", "DOWN": "GS"}, as key code -> byte; ValueError naming a bad entry."""
    keys: dict[int, int] = {}
    for key, meaning in names.items():
        if not isinstance(meaning, str) or meaning.upper() not in CONTROL_BYTES:
            raise ValueError(f"control_keys: {key} = {meaning!r}; a key may stand for {', '.join(CONTROL_BYTES)}")
        keys[k.key_code(key)] = CONTROL_BYTES[meaning.upper()]
    return keys


def _checked_control_keys(keys: Mapping[int, int], terminators: frozenset[int]) -> dict[int, int]:
    for code, byte in keys.items():
        if code in k.MODIFIER_KEYS or code in terminators:
            what = "a modifier" if code in k.MODIFIER_KEYS else "a terminator"
            raise ValueError(f"control_keys: {_key_name(code)} is {what} and cannot stand for a character")
        if byte not in CONTROL_BYTES.values():
            raise ValueError(f"control_keys: byte 0x{byte:02x} is not one of {', '.join(CONTROL_BYTES)}")
    return dict(keys)
