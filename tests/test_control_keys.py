"""Control characters typed by keyboard-wedge scanners: keys mapped to GS/RS/EOT, and control-character mode.

Scanners that map control characters to keys send GS as a key that types nothing (F8 on some wedges, the
Down arrow on serial scanners with keyboard emulation); in control-character mode they send Ctrl + a key
(Ctrl+] for GS). The key positions are the USB HID Usage Tables 1.5, section 10 (Keyboard/Keypad page
0x07): F8 is usage 0x41, Down Arrow 0x51, "] }" 0x30, "6 ^" 0x23, "d D" 0x07, Left Control 0xE0, Left
Shift 0xE1. The kernel reports each as an EV_MSC/MSC_SCAN of 0x70000 + usage before its EV_KEY.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from clearpoint.scanner_agent import config
from clearpoint.scanner_agent import keymaps as k
from clearpoint.scanner_agent.drivers.hidraw import BootReportDecoder, HidrawDriver
from clearpoint.scanner_agent.drivers.keyboard_wedge import KeyboardWedgeDriver
from clearpoint.scanner_agent.scan_rules import control_bytes
from clearpoint.scanner_agent.wedge import WedgeDecoder, control_keys_from_names
from evdev import InputEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_hidraw import fifo_scanner, report, running, until
from tests.test_keyboard_wedge import SCANNER, FakeDevice, FakeKernel, kernel_events, literal, scanner_keys, take

GS, RS, EOT = "\x1d", "\x1e", "\x04"
GS1 = f"0109501101530003{GS}17250101{GS}10ABC123"
F8_GS = {k.KEY_F8: 0x1D}


def wedge_decode(events: Iterable[InputEvent], layout: str = "us", **options: object) -> list[bytes]:
    """Kernel events through the evdev driver's own event handling."""
    driver = KeyboardWedgeDriver("test", SCANNER, layout, open_device=_no_device, **options)  # type: ignore[arg-type]
    return [scan for event in events for scan in driver._decode(event)]


def boot_decode(reports: Iterable[bytes], **options: object) -> list[bytes]:
    decoder = BootReportDecoder(**options)  # type: ignore[arg-type]
    return [scan for r in reports for scan in decoder.feed(r)]


def _no_device(path: str) -> object:
    raise AssertionError("decoding must not open anything")


# --- hand-written recordings --------------------------------------------------------------------------


def test_f8_as_gs_from_kernel_events() -> None:
    """ "01" F8 "17" Enter, as the kernel delivers it: MSC_SCAN 0x70041 then KEY_F8 (66)."""
    events = literal(
        [
            (4, 4, 0x70027), (1, 11, 1), (0, 0, 0), (4, 4, 0x70027), (1, 11, 0), (0, 0, 0),  # 0
            (4, 4, 0x7001E), (1, 2, 1), (0, 0, 0), (4, 4, 0x7001E), (1, 2, 0), (0, 0, 0),  # 1
            (4, 4, 0x70041), (1, 66, 1), (0, 0, 0), (4, 4, 0x70041), (1, 66, 0), (0, 0, 0),  # F8 -> GS
            (4, 4, 0x7001E), (1, 2, 1), (0, 0, 0), (4, 4, 0x7001E), (1, 2, 0), (0, 0, 0),  # 1
            (4, 4, 0x70024), (1, 8, 1), (0, 0, 0), (4, 4, 0x70024), (1, 8, 0), (0, 0, 0),  # 7
            (4, 4, 0x70028), (1, 28, 1), (0, 0, 0), (4, 4, 0x70028), (1, 28, 0), (0, 0, 0),  # Enter
        ]
    )  # fmt: skip
    assert wedge_decode(events, control_keys=F8_GS) == [b"01\x1d17"]


def test_f8_unmapped_is_dropped_with_a_hint(caplog: pytest.LogCaptureFixture) -> None:
    """Without the mapping the separator is lost, and the warning says how to keep it."""
    keys = [(k.KEY_0, 1), (k.KEY_0, 0), (k.KEY_F8, 1), (k.KEY_F8, 0), (k.KEY_1, 1), (k.KEY_1, 0)]
    with caplog.at_level(logging.WARNING):
        assert wedge_decode(kernel_events([*keys, (k.KEY_ENTER, 1), (k.KEY_ENTER, 0)])) == [b"01"]
    assert "F8 (66)" in caplog.text and "control_keys" in caplog.text


def test_down_arrow_as_gs_in_boot_reports() -> None:
    """Boot reports (HID 1.11 appendix B.1): "0", Down Arrow (usage 0x51), "1", Enter."""
    reports = [
        bytes.fromhex("0000270000000000"), bytes(8),
        bytes.fromhex("0000510000000000"), bytes(8),
        bytes.fromhex("00001e0000000000"), bytes(8),
        bytes.fromhex("0000280000000000"), bytes(8),
    ]  # fmt: skip
    assert boot_decode(reports, control_keys={k.KEY_DOWN: 0x1D}) == [b"0\x1d1"]
    assert boot_decode(reports) == [b"01"]


def test_ctrl_right_bracket_is_gs_in_control_character_mode() -> None:
    """Left Control (usage 0xE0, KEY_LEFTCTRL 29) held around "]" (usage 0x30, KEY_RIGHTBRACE 27)."""
    events = literal(
        [
            (4, 4, 0x7001E), (1, 2, 1), (0, 0, 0), (4, 4, 0x7001E), (1, 2, 0), (0, 0, 0),  # 1
            (4, 4, 0x700E0), (1, 29, 1), (0, 0, 0),  # Left Control down
            (4, 4, 0x70030), (1, 27, 1), (0, 0, 0), (4, 4, 0x70030), (1, 27, 0), (0, 0, 0),  # ] -> GS
            (4, 4, 0x700E0), (1, 29, 0), (0, 0, 0),  # Left Control up
            (4, 4, 0x7001F), (1, 3, 1), (0, 0, 0), (4, 4, 0x7001F), (1, 3, 0), (0, 0, 0),  # 2
            (4, 4, 0x70028), (1, 28, 1), (0, 0, 0), (4, 4, 0x70028), (1, 28, 0), (0, 0, 0),  # Enter
        ]
    )  # fmt: skip
    assert wedge_decode(events, control_chars=True) == [b"1\x1d2"]
    assert wedge_decode(events) == [b"12"]  # off by default: a chord, ignored as before


def test_control_character_mode_keys_on_each_layout() -> None:
    """Ctrl+letter follows the layout's letters; the six others stay on the US positions (Ctrl+] is GS on the
    German "+" key and the French "$" key, Ctrl+Shift+6 is RS)."""
    ctrl = [(k.KEY_LEFTCTRL, 1)]
    up = [(k.KEY_LEFTCTRL, 0)]
    cases = {
        "us": (k.KEY_D, k.KEY_RIGHTBRACE, k.KEY_6),
        "de": (k.KEY_D, k.KEY_RIGHTBRACE, k.KEY_6),
        "fr": (k.KEY_D, k.KEY_RIGHTBRACE, k.KEY_6),
    }
    for layout, (d, bracket, six) in cases.items():
        keys = [*ctrl, (d, 1), (d, 0), (bracket, 1), (bracket, 0)]
        keys += [(k.KEY_LEFTSHIFT, 1), (six, 1), (six, 0), (k.KEY_LEFTSHIFT, 0), *up]
        keys += [(k.KEY_ENTER, 1), (k.KEY_ENTER, 0)]
        assert wedge_decode(kernel_events(keys), layout, control_chars=True) == [b"\x04\x1d\x1e"], layout
    # Ctrl + the French A key (KEY_Q) is 0x01; on US the same key is Q, 0x11.
    keys = [(k.KEY_LEFTCTRL, 1), (k.KEY_Q, 1), (k.KEY_Q, 0), (k.KEY_LEFTCTRL, 0), (k.KEY_ENTER, 1)]
    assert wedge_decode(kernel_events(keys), "fr", control_chars=True) == [b"\x01"]
    assert wedge_decode(kernel_events(keys), "us", control_chars=True) == [b"\x11"]


def test_chords_that_are_not_control_characters_stay_ignored() -> None:
    """Ctrl+Alt, Ctrl+Meta and Ctrl+F5 type nothing even in control-character mode; Ctrl+Enter does not end a scan."""
    keys = [(k.KEY_A, 1), (k.KEY_A, 0)]
    keys += [(k.KEY_LEFTCTRL, 1), (k.KEY_LEFTALT, 1), (k.KEY_D, 1), (k.KEY_D, 0), (k.KEY_LEFTALT, 0)]
    keys += [(k.KEY_LEFTMETA, 1), (k.KEY_D, 1), (k.KEY_D, 0), (k.KEY_LEFTMETA, 0)]
    keys += [(k.KEY_F5, 1), (k.KEY_F5, 0), (k.KEY_ENTER, 1), (k.KEY_ENTER, 0), (k.KEY_LEFTCTRL, 0)]
    keys += [(k.KEY_B, 1), (k.KEY_B, 0), (k.KEY_ENTER, 1), (k.KEY_ENTER, 0)]
    decoder = WedgeDecoder("us", control_chars=True)
    assert [scan for key in keys if (scan := decoder.feed(*key)) is not None] == [b"ab"]
    assert decoder.stats.chords_ignored == 4


def test_a_control_byte_other_than_gs_rs_eot_is_still_refused() -> None:
    """Control-character mode decodes Ctrl+H faithfully; the agent's one rule then refuses the scan."""
    keys = [(k.KEY_A, 1), (k.KEY_A, 0), (k.KEY_LEFTCTRL, 1), (k.KEY_H, 1), (k.KEY_H, 0), (k.KEY_LEFTCTRL, 0)]
    (scan,) = wedge_decode(kernel_events([*keys, (k.KEY_ENTER, 1), (k.KEY_ENTER, 0)]), control_chars=True)
    assert scan == b"a\x08"
    assert control_bytes(scan) == [(1, 0x08)]
    assert control_bytes(b"a\x1d\x1e\x04") == []


# --- through the real driver loops ---------------------------------------------------------------------


async def test_evdev_driver_with_mapped_keys_and_control_mode() -> None:
    mapped = FakeDevice(kernel_events(typed(GS1, "us", "mapped", {GS: k.KEY_F8})))
    driver = KeyboardWedgeDriver(
        "till-1", SCANNER, control_keys=F8_GS, open_device=FakeKernel({SCANNER: [mapped]}).open
    )
    assert [r.data for r in await take(driver, 1)] == [GS1.encode()]
    ctrl = FakeDevice(kernel_events(typed(GS1, "us", "control")))
    driver = KeyboardWedgeDriver("till-1", SCANNER, control_chars=True, open_device=FakeKernel({SCANNER: [ctrl]}).open)
    assert [r.data for r in await take(driver, 1)] == [GS1.encode()]


async def test_hidraw_driver_reads_gs_from_a_mapped_key_and_ctrl(tmp_path: Path) -> None:
    node = tmp_path / "hidraw0"
    scanner = await fifo_scanner(node)
    driver = HidrawDriver("till-2", str(node), "de", control_keys={k.KEY_DOWN: 0x1D}, control_chars=True)
    async with running(driver, scanner) as reads:
        await scanner.send(boot_reports(typed(GS1, "de", "mapped", {GS: k.KEY_DOWN})))
        await scanner.send(boot_reports(typed(GS1, "de", "control")))
        await until(reads, 2)
    assert [r.data for r in reads] == [GS1.encode(), GS1.encode()]


# --- configuration ---------------------------------------------------------------------------------------


def _config(tmp_path: Path, scanner: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'[agent]\nplatform = "127.0.0.1:50051"\n\n[[scanner]]\nid = "till"\n{scanner}\n')
    return path


@pytest.mark.parametrize("kind", ["keyboard", "hidraw"])
def test_config_reads_control_keys_and_control_chars(tmp_path: Path, kind: str) -> None:
    text = f'type = "{kind}"\npath = "dev0"\ncontrol_keys = {{ F8 = "GS", down = "gs", F7 = "RS", F9 = "EOT" }}\n'
    loaded = config.load(_config(tmp_path, text + "control_chars = true"))
    (driver,) = loaded.drivers()
    decoder = driver.decoder if isinstance(driver, KeyboardWedgeDriver) else driver.decoder.keys  # type: ignore[attr-defined]
    assert decoder.control_keys == {k.KEY_F8: 0x1D, k.KEY_DOWN: 0x1D, k.KEY_F7: 0x1E, k.KEY_F9: 0x04}
    assert decoder._control_codes[k.KEY_RIGHTBRACE] == 0x1D


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ('control_keys = { F13X = "GS" }', "unknown key 'F13X'"),
        ('control_keys = { F8 = "CR" }', "F8 = 'CR'; a key may stand for GS, RS, EOT"),
        ("control_keys = { F8 = 29 }", "F8 = 29"),
        ('control_keys = { ENTER = "GS" }', "ENTER (28) is a terminator"),
        ('control_keys = { LEFTSHIFT = "GS" }', "is a modifier"),
        ('control_keys = "F8"', "control_keys must be dict"),
        ('control_chars = "yes"', "control_chars must be bool"),
    ],
)
def test_config_refuses_bad_control_options(tmp_path: Path, option: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.load(_config(tmp_path, f'type = "keyboard"\npath = "dev0"\n{option}'))
    assert message in str(err.value)


def test_control_keys_from_names() -> None:
    assert control_keys_from_names({"f8": "gs", "KPENTER": "EOT"}) == {k.KEY_F8: 0x1D, k.KEY_KPENTER: 0x04}
    with pytest.raises(ValueError, match="unknown key"):
        control_keys_from_names({"": "GS"})


# --- round trips: text -> key events or boot reports -> decoder -> the same text --------------------------

MODES = ("plain", "alt", "control", "mapped")
MAPPED = {GS: k.KEY_F8, RS: k.KEY_DOWN, EOT: k.KEY_F12}
CONTROL_POSITIONS = {GS: (k.KEY_RIGHTBRACE, False), RS: (k.KEY_6, True), EOT: (k.KEY_D, False)}


def typed(text: str, layout: str, mode: str, mapped: dict[str, int] | None = None) -> list[tuple[int, int]]:
    """Key events a scanner in `mode` sends for `text` ending in Enter: separators as Alt codes (plain, alt),
    Ctrl + key (control) or a mapped key (mapped); everything as Alt codes in alt mode."""
    keys: list[tuple[int, int]] = []
    for char in text:
        if char in CONTROL_POSITIONS and mode == "control":
            code, shift = CONTROL_POSITIONS[char]
            if char == EOT:  # Ctrl + the layout's D key
                code = k.get_layout(layout).stroke_for("d")[0][0]
            held = [k.KEY_LEFTCTRL, *([k.KEY_LEFTSHIFT] if shift else [])]
            keys += [(m, 1) for m in held] + [(code, 1), (code, 0)] + [(m, 0) for m in reversed(held)]
        elif char in CONTROL_POSITIONS and mode == "mapped":
            code = (mapped or MAPPED)[char]
            keys += [(code, 1), (code, 0)]
        else:
            keys += scanner_keys(char, layout, terminator=None, alt_mode=[char] if mode == "alt" else [])
    return [*keys, (k.KEY_ENTER, 1), (k.KEY_ENTER, 0)]


def boot_reports(keys: Sequence[tuple[int, int]]) -> list[bytes]:
    """A boot report after every key event: the modifier byte, a reserved byte, the keys down in press order."""
    usage_of = {code: usage for usage, code in sorted(k.HID_USAGE_TO_KEY.items(), reverse=True)}
    bits = {code: 1 << bit for bit, code in enumerate(k.HID_MODIFIER_KEYS)}
    modifiers, down, out = 0, [], []
    for code, value in keys:
        if code in bits:
            modifiers = modifiers | bits[code] if value else modifiers & ~bits[code]
        elif value:
            down.append(usage_of[code])
        else:
            down.remove(usage_of[code])
        out.append(report(modifiers, *down))
    return out


def _mapping(mode: str) -> dict[str, object]:
    if mode == "control":
        return {"control_chars": True}
    if mode == "mapped":
        return {"control_keys": {code: ord(char) for char, code in MAPPED.items()}}
    return {}


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=string.printable[:95] + GS + RS + EOT, min_size=1, max_size=25),
    layout=st.sampled_from(["us", "de", "fr"]),
    mode=st.sampled_from(MODES),
)
def test_round_trip_every_layout_and_mode(text: str, layout: str, mode: str) -> None:
    keys = typed(text, layout, mode)
    assert wedge_decode(kernel_events(keys), layout, **_mapping(mode)) == [text.encode("ascii")]
    assert boot_decode(boot_reports(keys), layout=layout, **_mapping(mode)) == [text.encode("ascii")]


def test_a_key_may_stand_for_exactly_the_separators_a_scan_may_hold() -> None:
    from clearpoint.scanner_agent.scan_rules import ALLOWED_CONTROLS
    from clearpoint.scanner_agent.wedge import CONTROL_BYTES

    assert set(CONTROL_BYTES.values()) == ALLOWED_CONTROLS
