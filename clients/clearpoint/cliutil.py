"""Small helpers shared by the command groups: options that fall back to environment variables,
checked option values, logging set-up, and the one way a command fails at start-up."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


class CommandFailure(Exception):
    """A command cannot start or go on for a reason its user can fix: shown as one line naming the
    problem and the fix, exit status 2, no traceback (`--debug` shows it)."""

    exit_status = 2


def env_option(parser: argparse.ArgumentParser, flag: str, env: str, default: Any, help: str, **kw: Any) -> None:
    """An option whose default comes from $env, then from `default`; the help says both.

    A value from $env goes through the option's `type` like one typed on the command line, so a bad
    one is refused the same way (argparse would otherwise take a default as it stands)."""
    value = os.environ.get(env, default)
    parser.add_argument(flag, default=value, help=f"{help} [env {env}; default {default!r}]", **kw)


def one_of(*names: str) -> Callable[[str], str]:
    """An argparse `type` that takes one of `names` (any case): unlike `choices`, it also checks a
    value that came from the environment."""

    def check(text: str) -> str:
        if text.lower() not in names:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(names)}")
        return text.lower()

    check.__name__ = "value"
    return check


def logging_options(parser: argparse.ArgumentParser, default_level: str = "info") -> None:
    """--log-level, --log-format and --debug: the same on every long-running command."""
    levels = one_of(*LOG_LEVELS)
    env_option(parser, "--log-level", "CLEARPOINT_LOG_LEVEL", default_level, "debug, info, warning, error", type=levels)
    env_option(
        parser,
        "--log-format",
        "CLEARPOINT_LOG_FORMAT",
        "text",
        "text (for people) or json (one object per line, for log collectors)",
        type=one_of(*LOG_FORMATS),
    )
    debug_option(parser)


def debug_option(parser: argparse.ArgumentParser) -> None:
    """--debug on a command; SUPPRESS keeps it from hiding `clearpoint --debug ...` given before the group."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of a failure (also $CLEARPOINT_DEBUG=1)",
    )


def add_subcommands(
    parser: argparse.ArgumentParser, dest: str = "command", metavar: str = "COMMAND"
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return parser.add_subparsers(dest=dest, metavar=metavar, required=True)


def setup_logging(level: str, fmt: str = "text") -> None:
    """Logs to stderr, as text for people or as JSON lines for a collector."""
    from clearpoint.logfmt import JsonFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
