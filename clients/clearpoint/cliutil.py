"""Small helpers shared by the command groups: options that fall back to environment variables."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any


def env_option(parser: argparse.ArgumentParser, flag: str, env: str, default: Any, help: str, **kw: Any) -> None:
    """An option whose default comes from $env, then from `default`; the help says both."""
    value = os.environ.get(env, default)
    parser.add_argument(flag, default=value, help=f"{help} [env {env}; default {default!r}]", **kw)


def add_subcommands(
    parser: argparse.ArgumentParser, dest: str = "command", metavar: str = "COMMAND"
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return parser.add_subparsers(dest=dest, metavar=metavar, required=True)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
