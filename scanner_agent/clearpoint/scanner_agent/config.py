"""The agent's one TOML configuration file, read strictly: a typo is an error that names it.

    [agent]
    platform = "platform.example:50051"   # host:port of the Clearpoint platform
    data_dir = "agent-data"               # device key, enrolment and journal (relative to this file)

    [[scanner]]
    id = "front-till"
    type = "serial"                       # serial | keyboard | hidraw | hidpos
    path = "/dev/serial/by-id/usb-Honeywell_Imaging___Mobility_1900-if00"

Every option and its default is in `clearpoint agent run --help` and docs/agent.md.
"""

from __future__ import annotations

import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearpoint.addresses import parse_address
from clearpoint.scanner_agent.reads import Driver
from clearpoint.scanner_agent.scanner_kinds import ScannerKind
from clearpoint.scanner_agent.uplink import UplinkSettings
from clearpoint.scanner_agent.wedge import control_keys_from_names

TERMINATORS = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n", "TAB": b"\t"}
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file, the place and the fix."""


@dataclass(frozen=True)
class ScannerConfig:
    scanner_id: str
    kind: ScannerKind
    options: dict[str, Any]


@dataclass(frozen=True)
class AgentConfig:
    path: Path
    platform: str
    data_dir: Path
    name: str = field(default_factory=lambda: socket.gethostname()[:200] or "agent")
    max_backlog: int = 100_000
    backlog_warn_fraction: float = 0.8
    window: int = 32
    answer_wait_seconds: float = 1.5
    reconnect_initial_seconds: float = 0.5
    reconnect_max_seconds: float = 30.0
    keepalive_seconds: float = 20.0
    answer_timeout_seconds: float = 30.0
    claims_retention_days: int = 400
    tls_ca_file: str = ""
    # HOST:PORT to serve Prometheus metrics on (GET /metrics); off when empty.
    metrics_listen: str = ""
    scanners: tuple[ScannerConfig, ...] = ()

    @property
    def journal_path(self) -> Path:
        return self.data_dir / "journal.sqlite3"

    def uplink(self) -> UplinkSettings:
        return UplinkSettings(
            target=self.platform,
            window=self.window,
            reconnect_initial_s=self.reconnect_initial_seconds,
            reconnect_max_s=self.reconnect_max_seconds,
            keepalive_s=self.keepalive_seconds,
            answer_timeout_s=self.answer_timeout_seconds,
            tls_ca_file=self.tls_ca_file or None,
        )

    def drivers(self) -> list[Driver]:
        return [build_driver(s, self.data_dir) for s in self.scanners]


_AGENT_KEYS: dict[str, type | tuple[type, ...]] = {
    "platform": str,
    "data_dir": str,
    "name": str,
    "max_backlog": int,
    "backlog_warn_fraction": (int, float),
    "window": int,
    "answer_wait_seconds": (int, float),
    "reconnect_initial_seconds": (int, float),
    "reconnect_max_seconds": (int, float),
    "keepalive_seconds": (int, float),
    "answer_timeout_seconds": (int, float),
    "claims_retention_days": int,
    "tls_ca_file": str,
    "metrics_listen": str,
}
_COMMON = {"id": str, "type": str, "path": str}
_SCANNER_KEYS: dict[ScannerKind, dict[str, type | tuple[type, ...]]] = {
    ScannerKind.SERIAL: {
        **_COMMON,
        "baud": int,
        "parity": str,
        "data_bits": int,
        "stop_bits": (int, float),
        "framing": str,
        "terminator": str,
        "check_lrc": bool,
        "lrc_coverage": str,
        "char_timeout_ms": int,
        "max_length": int,
        "good_read": (str, list),
        "bad_read": (str, list),
        "reconnect_seconds": (int, float),
        "ssi_good_beep": int,
        "ssi_bad_beep": int,
        "ssi_led": bool,
        "code_id": str,
        "flow_control": str,
    },
    ScannerKind.KEYBOARD: {
        **_COMMON,
        "layout": str,
        "terminator": (str, list),
        "grab": bool,
        "aim_prefix": bool,
        "max_length": int,
        "idle_timeout_ms": int,
        "control_keys": dict,
        "control_chars": bool,
    },
    ScannerKind.HIDRAW: {
        **_COMMON,
        "layout": str,
        "terminator": (str, list),
        "report_id": int,
        "aim_prefix": bool,
        "max_length": int,
        "idle_timeout_ms": int,
        "control_keys": dict,
        "control_chars": bool,
    },
    ScannerKind.HID_POS: {
        **_COMMON,
        "descriptor_file": str,
        "max_length": int,
        "idle_timeout_ms": int,
    },
}


def _check(where: str, table: dict[str, Any], allowed: dict[str, type | tuple[type, ...]]) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(f"{where}: unknown option {key!r}; known: {', '.join(sorted(allowed))}")
        want = allowed[key]
        if isinstance(value, bool) and want is not bool and bool not in (want if isinstance(want, tuple) else ()):
            raise ConfigError(f"{where}: {key} must not be true/false")
        if not isinstance(value, want):
            names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
            raise ConfigError(f"{where}: {key} must be {names}, not {type(value).__name__} {value!r}")


def _bytes(where: str, key: str, value: str | list[Any]) -> bytes:
    """Byte sequences: a string whose characters are bytes ("\\u0007" is BEL), or a list of 0-255."""
    try:
        if isinstance(value, str):
            return value.encode("latin-1")
        return bytes(value)
    except (UnicodeEncodeError, ValueError, TypeError):
        raise ConfigError(f"{where}: {key} must be a string of \\u0000-\\u00ff characters or a 0-255 list") from None


def load(path: Path) -> AgentConfig:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(raw) - {"agent", "scanner"}
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; expected [agent] and [[scanner]]")
    agent = raw.get("agent")
    if not isinstance(agent, dict):
        raise ConfigError(f"{path}: an [agent] table with at least `platform` is required")
    _check(f"{path} [agent]", agent, _AGENT_KEYS)
    if "platform" not in agent:
        raise ConfigError(f"{path} [agent]: `platform` (host:port of the platform) is required")
    try:
        parse_address(agent["platform"])
    except ValueError as exc:
        raise ConfigError(f"{path} [agent]: platform: {exc}") from None
    if agent.get("metrics_listen"):
        try:
            parse_address(agent["metrics_listen"])
        except ValueError as exc:
            raise ConfigError(f"{path} [agent]: metrics_listen: {exc}") from None
    base = path.resolve().parent
    values: dict[str, Any] = dict(agent)
    values["data_dir"] = base / agent.get("data_dir", "agent-data")
    if values.get("tls_ca_file"):
        values["tls_ca_file"] = str(base / values["tls_ca_file"])
    for key in ("max_backlog", "window", "claims_retention_days"):
        if key in values and values[key] < 1:
            raise ConfigError(f"{path} [agent]: {key} must be at least 1")
    scanners_raw = raw.get("scanner", [])
    if not isinstance(scanners_raw, list):
        raise ConfigError(f"{path}: scanners are [[scanner]] tables")
    scanners: list[ScannerConfig] = []
    for n, table in enumerate(scanners_raw, 1):
        where = f"{path} [[scanner]] #{n}"
        kind = table.get("type")
        if kind not in _SCANNER_KEYS:
            raise ConfigError(f"{where}: type must be one of {', '.join(_SCANNER_KEYS)}, not {kind!r}")
        _check(where, table, _SCANNER_KEYS[kind])
        scanner_id = table.get("id", "")
        if not _ID.fullmatch(scanner_id):
            raise ConfigError(f"{where}: id must be 1 to 64 of A-Z a-z 0-9 . _ - (it names the scanner in every scan)")
        if any(s.scanner_id == scanner_id for s in scanners):
            raise ConfigError(f"{where}: id {scanner_id!r} is used twice")
        if "path" not in table:
            raise ConfigError(f"{where}: path is required (see `clearpoint agent scanners`)")
        options = {k: v for k, v in table.items() if k not in ("id", "type")}
        options["path"] = str(base / options["path"])
        if "descriptor_file" in options:
            options["descriptor_file"] = str(base / options["descriptor_file"])
        scanner = ScannerConfig(scanner_id, ScannerKind(kind), options)
        try:
            build_driver(scanner)
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"{where} ({scanner_id}): {exc}") from None
        scanners.append(scanner)
    values["scanners"] = tuple(scanners)
    return AgentConfig(path=path, **values)


def _terminators(value: str | list[str]) -> tuple[str, ...]:
    return tuple(t.lower() for t in ([value] if isinstance(value, str) else value))


def build_driver(s: ScannerConfig, data_dir: Path | None = None) -> Driver:
    """The driver for one [[scanner]] table. Constructing one opens nothing, so `load` builds each
    once to check its options (a bad value raises ValueError naming it)."""
    o = s.options
    if s.kind == ScannerKind.SERIAL:
        from clearpoint.scanner_agent.drivers.serial import SerialDriver, SerialSettings

        terminator = o.get("terminator", "CR")
        settings = SerialSettings(
            path=o["path"],
            baud=o.get("baud", 9600),
            parity=o.get("parity", "none"),
            data_bits=o.get("data_bits", 8),
            stop_bits=o.get("stop_bits", 1),
            framing=o.get("framing", "terminator"),
            terminator=TERMINATORS.get(terminator.upper(), terminator.encode("latin-1")),
            check_lrc=o.get("check_lrc", False),
            lrc_coverage=o.get("lrc_coverage", "data+etx"),
            char_timeout=o.get("char_timeout_ms", 50) / 1000,
            max_frame=o.get("max_length", 4096),
            good_read=_bytes(s.scanner_id, "good_read", o.get("good_read", "")),
            bad_read=_bytes(s.scanner_id, "bad_read", o.get("bad_read", "")),
            reconnect_interval=o.get("reconnect_seconds", 1.0),
            code_id=o.get("code_id", ""),
            flow_control=o.get("flow_control", "none"),
        )
        if settings.framing == "ssi":
            # A Zebra scanner in SSI mode: its beeps are SSI commands, so byte-string feedback has no place.
            from clearpoint.scanner_agent.drivers.ssi_serial import SsiOptions, SsiSerialDriver

            if "good_read" in o or "bad_read" in o:
                raise ValueError('with framing = "ssi", use ssi_good_beep / ssi_bad_beep, not good_read / bad_read')
            given = {"good_beep": "ssi_good_beep", "bad_beep": "ssi_bad_beep", "led": "ssi_led"}
            ssi = SsiOptions(**{name: o[key] for name, key in given.items() if key in o})
            return SsiSerialDriver(s.scanner_id, settings, ssi)
        if any(k.startswith("ssi_") for k in o):
            raise ValueError('the ssi_ options apply only with framing = "ssi"')
        return SerialDriver(s.scanner_id, settings, data_dir)
    if s.kind == ScannerKind.HID_POS:
        from clearpoint.scanner_agent.drivers.hid_pos import HidPosDriver

        descriptor = None
        if "descriptor_file" in o:
            try:
                descriptor = Path(o["descriptor_file"]).read_bytes()
            except OSError as exc:
                raise ValueError(f"descriptor_file: cannot read it: {exc.strerror or exc}") from None
        return HidPosDriver(
            s.scanner_id,
            o["path"],
            descriptor=descriptor,
            max_length=o.get("max_length", 4096),
            idle_timeout=o.get("idle_timeout_ms", 1000) / 1000,
        )
    wedge: dict[str, Any] = {
        "layout": o.get("layout", "us"),
        "terminators": _terminators(o.get("terminator", "enter")),
        "max_length": o.get("max_length", 4096),
        "aim_prefix": o.get("aim_prefix", False),
        "idle_timeout": o.get("idle_timeout_ms", 1000) / 1000,
        "control_keys": control_keys_from_names(o.get("control_keys", {})),
        "control_chars": o.get("control_chars", False),
    }
    if s.kind == ScannerKind.KEYBOARD:
        from clearpoint.scanner_agent.drivers.keyboard_wedge import KeyboardWedgeDriver

        return KeyboardWedgeDriver(s.scanner_id, o["path"], grab=o.get("grab", True), **wedge)
    from clearpoint.scanner_agent.drivers.hidraw import HidrawDriver

    return HidrawDriver(s.scanner_id, o["path"], report_id=o.get("report_id"), **wedge)
