"""`clearpoint`: one command with a group per role."""

from __future__ import annotations

import argparse
import os
import sys

from clearpoint.cliutil import add_subcommands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clearpoint",
        description="Verified prize redemption at the store counter. Every option can also be set by the "
        "environment variable named in its help.",
    )
    groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
    from clearpoint.platform import cli as platform_cli

    platform_cli.register(groups)
    from clearpoint.scanner_agent import cli as agent_cli

    agent_cli.register(groups)
    from clearpoint import demo

    demo.register(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`clearpoint agent claims | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


__all__ = ["add_subcommands", "main"]

if __name__ == "__main__":
    sys.exit(main())
