"""Keyboard layouts for keyboard-wedge scanners, as data both wedge decoders share.

A wedge scanner does not send characters: it sends the key presses a person would make on a
keyboard of the layout it was configured for. Turning those back into the scanned text therefore
needs the same layout the scanner assumed; a US scanner read as German swaps Y and Z and turns
"$" into "§". Keys are Linux evdev key codes (the `KEY_*` values of linux/input-event-codes.h,
which are kernel ABI and equal to `evdev.ecodes`); they are defined here so this module and the
decoders built on it stay pure and importable where python-evdev is not installed. USB HID
boot-keyboard usage ids are mapped onto the same codes (`HID_USAGE_TO_KEY`), so the hidraw driver
reuses the layouts and the decoder unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# --- Linux input event types and codes (linux/input-event-codes.h) ---------------------------

EV_SYN = 0x00
EV_KEY = 0x01
EV_MSC = 0x04
SYN_REPORT = 0
SYN_DROPPED = 3
MSC_SCAN = 4

KEY_ESC = 1
KEY_1, KEY_2, KEY_3, KEY_4, KEY_5, KEY_6, KEY_7, KEY_8, KEY_9, KEY_0 = range(2, 12)
KEY_MINUS = 12
KEY_EQUAL = 13
KEY_BACKSPACE = 14
KEY_TAB = 15
KEY_Q, KEY_W, KEY_E, KEY_R, KEY_T, KEY_Y, KEY_U, KEY_I, KEY_O, KEY_P = range(16, 26)
KEY_LEFTBRACE = 26
KEY_RIGHTBRACE = 27
KEY_ENTER = 28
KEY_LEFTCTRL = 29
KEY_A, KEY_S, KEY_D, KEY_F, KEY_G, KEY_H, KEY_J, KEY_K, KEY_L = range(30, 39)
KEY_SEMICOLON = 39
KEY_APOSTROPHE = 40
KEY_GRAVE = 41
KEY_LEFTSHIFT = 42
KEY_BACKSLASH = 43
KEY_Z, KEY_X, KEY_C, KEY_V, KEY_B, KEY_N, KEY_M = range(44, 51)
KEY_COMMA = 51
KEY_DOT = 52
KEY_SLASH = 53
KEY_RIGHTSHIFT = 54
KEY_KPASTERISK = 55
KEY_LEFTALT = 56
KEY_SPACE = 57
KEY_CAPSLOCK = 58
KEY_F1, KEY_F2, KEY_F3, KEY_F4, KEY_F5, KEY_F6, KEY_F7, KEY_F8, KEY_F9, KEY_F10 = range(59, 69)
KEY_NUMLOCK = 69
KEY_SCROLLLOCK = 70
KEY_KP7, KEY_KP8, KEY_KP9, KEY_KPMINUS = 71, 72, 73, 74
KEY_KP4, KEY_KP5, KEY_KP6, KEY_KPPLUS = 75, 76, 77, 78
KEY_KP1, KEY_KP2, KEY_KP3, KEY_KP0, KEY_KPDOT = 79, 80, 81, 82, 83
KEY_102ND = 86
KEY_F11 = 87
KEY_F12 = 88
KEY_RO = 89
KEY_KPENTER = 96
KEY_RIGHTCTRL = 97
KEY_KPSLASH = 98
KEY_SYSRQ = 99
KEY_RIGHTALT = 100
KEY_HOME, KEY_UP, KEY_PAGEUP, KEY_LEFT, KEY_RIGHT, KEY_END, KEY_DOWN, KEY_PAGEDOWN = range(102, 110)
KEY_INSERT = 110
KEY_DELETE = 111
KEY_KPEQUAL = 117
KEY_PAUSE = 119
KEY_KPCOMMA = 121
KEY_YEN = 124
KEY_LEFTMETA = 125
KEY_RIGHTMETA = 126
KEY_COMPOSE = 127

KEYPAD_DIGITS: Mapping[int, int] = MappingProxyType(
    {
        KEY_KP0: 0,
        KEY_KP1: 1,
        KEY_KP2: 2,
        KEY_KP3: 3,
        KEY_KP4: 4,
        KEY_KP5: 5,
        KEY_KP6: 6,
        KEY_KP7: 7,
        KEY_KP8: 8,
        KEY_KP9: 9,
    }
)

# Levels of a key: which modifiers choose the symbol.
PLAIN, SHIFT, ALTGR, SHIFT_ALTGR = 0, 1, 2, 3

_NUMBER_ROW = (KEY_1, KEY_2, KEY_3, KEY_4, KEY_5, KEY_6, KEY_7, KEY_8, KEY_9, KEY_0, KEY_MINUS, KEY_EQUAL)
_TOP_ROW = (KEY_Q, KEY_W, KEY_E, KEY_R, KEY_T, KEY_Y, KEY_U, KEY_I, KEY_O, KEY_P, KEY_LEFTBRACE, KEY_RIGHTBRACE)
_HOME_ROW = (KEY_A, KEY_S, KEY_D, KEY_F, KEY_G, KEY_H, KEY_J, KEY_K, KEY_L, KEY_SEMICOLON, KEY_APOSTROPHE)
_BOTTOM_ROW = (KEY_Z, KEY_X, KEY_C, KEY_V, KEY_B, KEY_N, KEY_M, KEY_COMMA, KEY_DOT, KEY_SLASH)


@dataclass(frozen=True)
class Layout:
    """One keyboard layout: which symbol each key gives at each level, and which are dead keys."""

    name: str
    # key code -> symbols by level (PLAIN, SHIFT, ALTGR, SHIFT_ALTGR); "" where the level gives nothing.
    keys: Mapping[int, tuple[str, ...]]
    # (key code, level) of dead keys -> the accent's spacing form (dead key then space gives it).
    dead: Mapping[tuple[int, int], str] = field(default_factory=dict)
    # Whether right Alt is AltGr (a third level) rather than a second Alt key.
    has_altgr: bool = False
    # Filled on first use by stroke_for(): char -> strokes (the reverse of `keys`).
    _strokes: dict[str, tuple[tuple[int, int], ...]] | None = field(default=None, init=False, repr=False, compare=False)

    def symbol(self, code: int, level: int) -> str:
        """The symbol at that level, or "" when the key or level means nothing on this layout."""
        symbols = self.keys.get(code, ())
        return symbols[level] if level < len(symbols) else ""

    def is_dead(self, code: int, level: int) -> bool:
        return (code, level) in self.dead

    def caps_applies(self, code: int) -> bool:
        """CapsLock swaps plain and shifted letters only (not digits or punctuation), as on Linux."""
        plain, shifted = self.symbol(code, PLAIN), self.symbol(code, SHIFT)
        return plain.isalpha() and len(plain) == 1 and shifted == plain.upper() and shifted != plain

    def stroke_for(self, char: str) -> list[tuple[int, int]]:
        """How a scanner types `char` on this layout: [(key code, level)], a dead accent then space.

        Prefers main-block keys over the keypad and plain keys over dead ones, as scanner firmware
        does; raises KeyError when the layout cannot type the character (scanners then use Alt mode).
        """
        if self._strokes is None:
            object.__setattr__(self, "_strokes", _strokes(self))
        assert self._strokes is not None
        return list(self._strokes[char])


def _strokes(layout: Layout) -> dict[str, tuple[tuple[int, int], ...]]:
    found: dict[str, tuple[tuple[int, int], ...]] = {}
    main = [code for code in layout.keys if code not in _KEYPAD]
    keypad = [code for code in layout.keys if code in _KEYPAD]
    for codes in (main, keypad):
        for level in (PLAIN, SHIFT, ALTGR, SHIFT_ALTGR):
            for code in codes:
                char = layout.symbol(code, level)
                if char and not layout.is_dead(code, level):
                    found.setdefault(char, ((code, level),))
    for (code, level), accent in layout.dead.items():
        found.setdefault(accent, ((code, level), (KEY_SPACE, PLAIN)))
    return found


def _rows(*rows: tuple[tuple[int, ...], str, str]) -> dict[int, tuple[str, ...]]:
    """Keys from (codes, plain symbols, shifted symbols) rows; one character per key."""
    keys: dict[int, tuple[str, ...]] = {}
    for codes, plain, shifted in rows:
        assert len(codes) == len(plain) == len(shifted), (codes, plain, shifted)
        for code, p, s in zip(codes, plain, shifted, strict=True):
            keys[code] = (p, s)
    return keys


def _with_altgr(keys: dict[int, tuple[str, ...]], altgr: Mapping[int, str]) -> dict[int, tuple[str, ...]]:
    for code, char in altgr.items():
        plain, shifted = keys.get(code, ("", ""))[:2]
        keys[code] = (plain, shifted, char)
    return keys


# Keys every layout shares. Keypad digits are digits whatever NumLock says (see wedge.py).
_COMMON: dict[int, tuple[str, ...]] = {
    KEY_SPACE: (" ", " "),
    KEY_ENTER: ("\r", "\r"),
    KEY_KPENTER: ("\r", "\r"),
    KEY_TAB: ("\t", "\t"),
}
_KEYPAD: dict[int, tuple[str, ...]] = {
    **{code: (str(digit), str(digit)) for code, digit in KEYPAD_DIGITS.items()},
    KEY_KPDOT: (".", "."),
    KEY_KPPLUS: ("+", "+"),
    KEY_KPMINUS: ("-", "-"),
    KEY_KPASTERISK: ("*", "*"),
    KEY_KPSLASH: ("/", "/"),
}

US = Layout(
    name="us",
    keys=MappingProxyType(
        {
            **_rows(
                ((KEY_GRAVE, *_NUMBER_ROW), "`1234567890-=", "~!@#$%^&*()_+"),
                ((*_TOP_ROW, KEY_BACKSLASH), "qwertyuiop[]\\", "QWERTYUIOP{}|"),
                (_HOME_ROW, "asdfghjkl;'", 'ASDFGHJKL:"'),
                (_BOTTOM_ROW, "zxcvbnm,./", "ZXCVBNM<>?"),
            ),
            **_COMMON,
            **_KEYPAD,
        }
    ),
)

_ACUTE = "\u00b4"  # spelled out: it looks like a quote or a backtick in source

# German QWERTZ (Linux "de" / Windows German): circumflex, acute and grave are dead keys;
# AltGr gives @ € { [ ] } \ ~ | µ.
DE = Layout(
    name="de",
    keys=MappingProxyType(
        {
            **_with_altgr(
                _rows(
                    ((KEY_GRAVE, *_NUMBER_ROW), "^1234567890ß" + _ACUTE, '°!"§$%&/()=?`'),
                    (_TOP_ROW, "qwertzuiopü+", "QWERTZUIOPÜ*"),
                    ((*_HOME_ROW, KEY_BACKSLASH), "asdfghjklöä#", "ASDFGHJKLÖÄ'"),
                    ((KEY_102ND, *_BOTTOM_ROW), "<yxcvbnm,.-", ">YXCVBNM;:_"),
                ),
                {
                    KEY_2: "²",
                    KEY_3: "³",
                    KEY_7: "{",
                    KEY_8: "[",
                    KEY_9: "]",
                    KEY_0: "}",
                    KEY_MINUS: "\\",
                    KEY_Q: "@",
                    KEY_E: "€",
                    KEY_RIGHTBRACE: "~",
                    KEY_102ND: "|",
                    KEY_M: "µ",
                },
            ),
            **_COMMON,
            **_KEYPAD,
            KEY_KPDOT: (",", ","),
        }
    ),
    dead=MappingProxyType({(KEY_GRAVE, PLAIN): "^", (KEY_EQUAL, PLAIN): _ACUTE, (KEY_EQUAL, SHIFT): "`"}),
    has_altgr=True,
)

# French AZERTY (Windows French; Linux "fr" matches for everything a scanner sends). The digits
# need Shift here: a scanner set to US that sends plain KEY_1 is read as "&", the classic trap.
# ^ and ¨ (KEY_LEFTBRACE) and AltGr ~ and ` are dead keys; AltGr+9 gives a plain ^.
FR = Layout(
    name="fr",
    keys=MappingProxyType(
        {
            **_with_altgr(
                _rows(
                    (_NUMBER_ROW, "&é\"'(-è_çà)=", "1234567890°+"),
                    (_TOP_ROW, "azertyuiop^$", "AZERTYUIOP¨£"),
                    ((*_HOME_ROW, KEY_BACKSLASH), "qsdfghjklmù*", "QSDFGHJKLM%µ"),
                    ((KEY_102ND, *_BOTTOM_ROW), "<wxcvbn,;:!", ">WXCVBN?./§"),
                ),
                {
                    KEY_2: "~",
                    KEY_3: "#",
                    KEY_4: "{",
                    KEY_5: "[",
                    KEY_6: "|",
                    KEY_7: "`",
                    KEY_8: "\\",
                    KEY_9: "^",
                    KEY_0: "@",
                    KEY_MINUS: "]",
                    KEY_EQUAL: "}",
                    KEY_E: "€",
                    KEY_RIGHTBRACE: "¤",
                },
            ),
            KEY_GRAVE: ("²", ""),
            **_COMMON,
            **_KEYPAD,
        }
    ),
    dead=MappingProxyType(
        {(KEY_LEFTBRACE, PLAIN): "^", (KEY_LEFTBRACE, SHIFT): "¨", (KEY_2, ALTGR): "~", (KEY_7, ALTGR): "`"}
    ),
    has_altgr=True,
)

LAYOUTS: Mapping[str, Layout] = MappingProxyType({layout.name: layout for layout in (US, DE, FR)})


def get_layout(layout: str | Layout) -> Layout:
    """The layout for a configured name ("us", "de", "fr"); a Layout passes through."""
    if isinstance(layout, Layout):
        return layout
    try:
        return LAYOUTS[layout.lower()]
    except KeyError:
        raise ValueError(f"unknown keyboard layout {layout!r}; known: {', '.join(sorted(LAYOUTS))}") from None


# --- USB HID keyboard page (0x07) usage ids -> evdev key codes --------------------------------

_HID_LETTERS = (
    KEY_A, KEY_B, KEY_C, KEY_D, KEY_E, KEY_F, KEY_G, KEY_H, KEY_I, KEY_J, KEY_K, KEY_L, KEY_M,
    KEY_N, KEY_O, KEY_P, KEY_Q, KEY_R, KEY_S, KEY_T, KEY_U, KEY_V, KEY_W, KEY_X, KEY_Y, KEY_Z,
)  # fmt: skip

HID_USAGE_TO_KEY: Mapping[int, int] = MappingProxyType(
    {
        **{0x04 + i: code for i, code in enumerate(_HID_LETTERS)},  # a..z
        **{0x1E + i: code for i, code in enumerate(_NUMBER_ROW[:10])},  # 1..9, 0
        0x28: KEY_ENTER,
        0x29: KEY_ESC,
        0x2A: KEY_BACKSPACE,
        0x2B: KEY_TAB,
        0x2C: KEY_SPACE,
        0x2D: KEY_MINUS,
        0x2E: KEY_EQUAL,
        0x2F: KEY_LEFTBRACE,
        0x30: KEY_RIGHTBRACE,
        0x31: KEY_BACKSLASH,
        0x32: KEY_BACKSLASH,  # "Non-US # and ~": the ISO key left of Enter, which Linux also calls backslash
        0x33: KEY_SEMICOLON,
        0x34: KEY_APOSTROPHE,
        0x35: KEY_GRAVE,
        0x36: KEY_COMMA,
        0x37: KEY_DOT,
        0x38: KEY_SLASH,
        0x39: KEY_CAPSLOCK,
        **{0x3A + i: KEY_F1 + i for i in range(10)},  # F1..F10
        0x44: KEY_F11,
        0x45: KEY_F12,
        0x46: KEY_SYSRQ,
        0x47: KEY_SCROLLLOCK,
        0x48: KEY_PAUSE,
        0x49: KEY_INSERT,
        0x4A: KEY_HOME,
        0x4B: KEY_PAGEUP,
        0x4C: KEY_DELETE,
        0x4D: KEY_END,
        0x4E: KEY_PAGEDOWN,
        0x4F: KEY_RIGHT,
        0x50: KEY_LEFT,
        0x51: KEY_DOWN,
        0x52: KEY_UP,
        0x53: KEY_NUMLOCK,
        0x54: KEY_KPSLASH,
        0x55: KEY_KPASTERISK,
        0x56: KEY_KPMINUS,
        0x57: KEY_KPPLUS,
        0x58: KEY_KPENTER,
        0x59: KEY_KP1,
        0x5A: KEY_KP2,
        0x5B: KEY_KP3,
        0x5C: KEY_KP4,
        0x5D: KEY_KP5,
        0x5E: KEY_KP6,
        0x5F: KEY_KP7,
        0x60: KEY_KP8,
        0x61: KEY_KP9,
        0x62: KEY_KP0,
        0x63: KEY_KPDOT,
        0x64: KEY_102ND,  # "Non-US \ and |": the ISO key right of left Shift (< > on German keyboards)
        0x65: KEY_COMPOSE,
        0x67: KEY_KPEQUAL,
        0x85: KEY_KPCOMMA,
        0x87: KEY_RO,
        0x89: KEY_YEN,
    }
)

# --- keys named in the configuration --------------------------------------------------------

# "F8", "down", "kpenter"... -> key code: the kernel's KEY_* names without the prefix, any case.
NAMED_KEYS: Mapping[str, int] = MappingProxyType(
    {name[4:].lower(): code for name, code in globals().items() if name.startswith("KEY_") and isinstance(code, int)}
)
MODIFIER_KEYS: frozenset[int] = frozenset(
    {KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_RIGHTALT, KEY_LEFTMETA, KEY_RIGHTMETA}
)


def key_code(name: str) -> int:
    """The key code for a configured key name ("F8", "DOWN"); ValueError naming the choices."""
    try:
        return NAMED_KEYS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown key {name!r}; keys are named as the kernel names them: F1-F12, UP, DOWN, LEFT, "
            "RIGHT, HOME, END, PAGEUP, PAGEDOWN, INSERT, DELETE, ESC, PAUSE, SYSRQ..."
        ) from None


# Control-character mode (Ctrl + key): Ctrl+letter is the letter's position in the alphabet (Ctrl+A
# 0x01 ... Ctrl+Z 0x1A) on the letter's key of the layout; the six others are on the keys where a US
# keyboard has @ [ \ ] ^ _, whatever the layout prints there, as Windows keyboard layouts place them
# (Ctrl+] is GS on the German "+" key and the French "$" key).
CONTROL_PUNCTUATION: Mapping[int, int] = MappingProxyType(
    {KEY_2: 0x00, KEY_LEFTBRACE: 0x1B, KEY_BACKSLASH: 0x1C, KEY_RIGHTBRACE: 0x1D, KEY_6: 0x1E, KEY_MINUS: 0x1F}
)


def control_codes(layout: Layout) -> dict[int, int]:
    """Key code -> the control byte Ctrl+that key types on `layout`, in control-character mode."""
    codes = {
        code: ord(plain) - 0x60
        for code in layout.keys
        if len(plain := layout.symbol(code, PLAIN)) == 1 and "a" <= plain <= "z" and code not in _KEYPAD
    }
    for code, byte in CONTROL_PUNCTUATION.items():
        codes.setdefault(code, byte)
    return codes


# Bits of the boot report's modifier byte, lowest first (also usages 0xE0..0xE7).
HID_MODIFIER_KEYS: tuple[int, ...] = (
    KEY_LEFTCTRL,
    KEY_LEFTSHIFT,
    KEY_LEFTALT,
    KEY_LEFTMETA,
    KEY_RIGHTCTRL,
    KEY_RIGHTSHIFT,
    KEY_RIGHTALT,
    KEY_RIGHTMETA,
)
