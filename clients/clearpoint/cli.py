"""`clearpoint`: one command with a group per role.

Each group's commands are defined in its own module, imported only when that group is run, so
`clearpoint agent ...` never loads the platform's database stack, and an install without an extra
still runs the groups it has (and says which extra a missing one needs).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from clearpoint.cliutil import CommandFailure, add_subcommands

# name: (module that configures the group, one-line help, the extra it needs beyond the base install)
GROUPS: dict[str, tuple[str, str, str | None]] = {
    "platform": ("clearpoint.platform.cli", "run and administer the central platform", "platform"),
    "agent": (
        "clearpoint.scanner_agent.cli",
        "the store agent: scanners in, signed scans to the platform, prize claims back",
        "agent",
    ),
    "ops": (
        "clearpoint.ops.cli",
        "operators: partners, API and issuer keys, enrolment tokens, the fleet of store agents",
        None,
    ),
    "campaigns": ("clearpoint.campaigns_cli", "a partner's campaigns: create, list, issue vouchers", None),
    "vouchers": ("clearpoint.vouchers_cli", "check or redeem a voucher code at a store", None),
    "statements": (
        "clearpoint.statements_cli",
        "a partner's settlement statements: list, export as CSV or JSON, verify",
        None,
    ),
    "demo": (
        "clearpoint.demo",
        "run a platform on SQLite and walk through a campaign (start here)",
        "platform,agent",
    ),
}
# Top-level modules of each extra's libraries, to name the extra when one is missing.
_EXTRA_OF = {
    **dict.fromkeys(
        ("sqlalchemy", "alembic", "asyncpg", "aiosqlite", "grpc_health", "grpc_reflection", "uvloop"), "platform"
    ),
    **dict.fromkeys(("serial", "serial_asyncio_fast", "evdev"), "agent"),
}


def _version() -> str:
    try:
        return version("clearpoint")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _group_named(argv: list[str]) -> str | None:
    """The group the command line asks for: its first word that is not an option."""
    return next((word for word in argv if not word.startswith("-")), None)


class Parser(argparse.ArgumentParser):
    """Refuses a bad command line in one line that names the option and where help is, rather
    than the usage block (its sub-command parsers are made of this class too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = Parser(
        prog="clearpoint",
        description="Verified prize redemption at the store counter. Every option can also be set by the "
        "environment variable named in its help.",
    )
    parser.add_argument("--version", action="version", version=f"clearpoint {_version()}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of a failure (also $CLEARPOINT_DEBUG=1)"
    )
    groups = add_subcommands(parser, dest="group", metavar="GROUP")
    wanted = _group_named(sys.argv[1:] if argv is None else argv)
    for name, (module, help_text, _) in GROUPS.items():
        group = groups.add_parser(name, help=help_text)
        group.add_argument("--version", action="version", version=f"clearpoint {_version()}")
        if name == wanted:
            importlib.import_module(module).configure(group)
    return parser


def main(argv: list[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not hasattr(args, "run"):
            parser.print_help(sys.stderr)
            return 2
        return int(args.run(args) or 0)
    except CommandFailure as exc:
        if getattr(args, "debug", False) or os.environ.get("CLEARPOINT_DEBUG", "") not in ("", "0"):
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    except ModuleNotFoundError as exc:
        extra = _EXTRA_OF.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"error: this needs {exc.name}, which comes with the [{extra}] extra: pip install 'clearpoint[{extra}]'",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`clearpoint agent claims | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
