"""How the client commands (`ops`, `statements`, `campaigns`, `vouchers`) reach the platform: its
address, the API key, and TLS, each from a flag, else an environment variable, else the config
file, else a default; and a refusal shown as one line with its reason.

The config file is TOML, at $CLEARPOINT_CONFIG, else $XDG_CONFIG_HOME/clearpoint/config.toml
(~/.config/clearpoint/config.toml), and should be readable by its owner only:

    platform = "platform.example:50051"
    api_key = "cpk_..."
    tls_ca = "/etc/clearpoint/ca.pem"     # the CA of the platform's certificate; omit for plaintext
"""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
import sys
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from clearpoint.addresses import parse_address
from clearpoint.cliutil import CommandFailure
from clearpoint.reasons import reason_of

T = TypeVar("T")
DEFAULT_PLATFORM = "127.0.0.1:50051"
# option: (environment variable, config file key, default)
_SOURCES = {
    "platform": ("CLEARPOINT_PLATFORM", "platform", DEFAULT_PLATFORM),
    "api_key": ("CLEARPOINT_API_KEY", "api_key", ""),
    "tls_ca": ("CLEARPOINT_TLS_CA", "tls_ca", ""),
}


def config_path() -> Path:
    explicit = os.environ.get("CLEARPOINT_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "clearpoint" / "config.toml"


def options(p: argparse.ArgumentParser) -> None:
    """--platform, --api-key, --tls-ca (and --config) on a command that calls the platform."""
    where = "[env CLEARPOINT_PLATFORM; config `platform`; default 127.0.0.1:50051]"
    p.add_argument("--platform", help=f"the platform's gRPC address, HOST:PORT {where}")
    p.add_argument("--api-key", help="the API key to call with [env CLEARPOINT_API_KEY; config `api_key`]")
    p.add_argument(
        "--tls-ca", help="PEM file of the CA of the platform's certificate [env CLEARPOINT_TLS_CA; config `tls_ca`]"
    )
    p.add_argument("--config", help=f"the config file [env CLEARPOINT_CONFIG; default {config_path()}]")


@dataclass(frozen=True)
class Target:
    platform: str
    api_key: str
    tls_ca: str

    def channel(self) -> grpc.aio.Channel:
        if self.tls_ca:
            try:
                roots = Path(self.tls_ca).read_bytes()
            except OSError as exc:
                raise CommandFailure(f"cannot read --tls-ca {self.tls_ca} ({exc.strerror})") from None
            return grpc.aio.secure_channel(self.platform, grpc.ssl_channel_credentials(root_certificates=roots))
        return grpc.aio.insecure_channel(self.platform)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        if not self.api_key:
            raise CommandFailure("an API key is needed: --api-key, $CLEARPOINT_API_KEY, or api_key in the config file")
        return (("x-api-key", self.api_key),)


def _config(path: Path, explicit: bool) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        if explicit:
            raise CommandFailure(f"config file {path} does not exist") from None
        return {}
    except OSError as exc:
        raise CommandFailure(f"cannot read config file {path} ({exc.strerror})") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CommandFailure(f"config file {path} is not valid TOML: {exc}") from None
    unknown = set(values) - {key for _, key, _ in _SOURCES.values()}
    if unknown:
        raise CommandFailure(f"config file {path}: unknown setting(s) {', '.join(sorted(unknown))}")
    if "api_key" in values and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"warning: config file {path} holds an API key and is readable by others: chmod 600 it", file=sys.stderr)
    return values


def target(args: argparse.Namespace) -> Target:
    """Where and as whom to call: flag, else environment, else config file, else default."""
    explicit = args.config or os.environ.get("CLEARPOINT_CONFIG")
    config = _config(Path(explicit) if explicit else config_path(), bool(explicit))
    values: dict[str, str] = {}
    for option, (env, key, default) in _SOURCES.items():
        given = getattr(args, option)
        value = given if given is not None else os.environ.get(env) or config.get(key, default)
        values[option] = str(value)
    try:
        parse_address(values["platform"])
    except ValueError as exc:
        raise CommandFailure(f"--platform: {exc}") from None
    return Target(**values)


def refusal_line(exc: grpc.aio.AioRpcError) -> str:
    """A failed call as one line: the platform's machine-readable reason where it gave one."""
    reason = reason_of(exc)
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not reason:
        return f"cannot reach the platform ({exc.details()}): is it running, and is --platform right?"
    if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
        return f"the platform does not accept this API key ({exc.details()})"
    return f"{reason or exc.code().name}: {exc.details()}"


def call(args: argparse.Namespace, work: Callable[[grpc.aio.Channel, Target], Awaitable[T]]) -> T:
    """Run `work` on a channel to the platform; a failed call becomes one line and exit status 1."""
    where = target(args)

    async def main() -> T:
        async with where.channel() as channel:
            return await work(channel, where)

    try:
        return asyncio.run(main())
    except grpc.aio.AioRpcError as exc:
        raise CallFailed(refusal_line(exc)) from None


class CallFailed(CommandFailure):
    """The platform refused a call, or could not be reached. Exit status 1: the command was right,
    the world said no."""

    exit_status = 1
