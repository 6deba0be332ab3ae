"""Client commands as a table: each one's arguments, the gRPC call(s) it makes, and how its result
prints (aligned columns for people, `-o json` for scripts, a key or token shown once alone on
stdout). `clearpoint ops`, `campaigns` and `vouchers` are built from such tables.
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from clearpoint import connection, tables
from clearpoint.cliutil import add_subcommands
from clearpoint.connection import Target
from google.protobuf import json_format
from google.protobuf.message import Message

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def duration_seconds(text: str) -> int:
    """'90s', '15m', '1h', '7d' (or a plain number of seconds) as seconds."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 15m, 1h or 7d")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def rid() -> str:
    """A request id for one command's call: a retry of the command is a new request."""
    return secrets.token_hex(12)


def plain(message: Message) -> dict[str, Any]:
    """A message as the JSON a script reads (proto field names, times as RFC 3339)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


@dataclass(frozen=True)
class Command:
    """One `clearpoint ops` command: its arguments, the call(s) it makes, and how its rows print."""

    path: tuple[str, ...]
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    # The call(s) it makes, returning rows to print; None for a command with its own `run`.
    work: Callable[[grpc.aio.Channel, Target, argparse.Namespace], Any] | None
    columns: Sequence[str] = ()
    # A command that prints in its own way: it gets the parsed arguments and returns the exit status.
    run: Callable[[argparse.Namespace], int] | None = None
    # The verb a noun runs when none is given (`clearpoint ops agents` lists them).
    default: bool = False
    shown_once: str = ""  # a field shown once (a new key): printed alone on stdout, a note on stderr


def none(_p: argparse.ArgumentParser) -> None:
    """A command without arguments of its own."""
    return None


def add_commands(group: argparse.ArgumentParser, table: Sequence[Command]) -> None:
    """One parser per command of `table`: "verb" or "noun verb"."""
    commands = add_subcommands(group)
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for command in table:
        if len(command.path) == 1:
            parser = commands.add_parser(command.path[0], help=command.help, description=command.help)
        else:
            noun, verb = command.path
            if noun not in groups:
                noun_parser = commands.add_parser(noun, help=f"{noun.replace('-', ' ')}: " + _verbs(table, noun))
                default = next((c for c in table if c.path[0] == noun and c.default), None)
                groups[noun] = noun_parser.add_subparsers(dest="verb", metavar="COMMAND", required=default is None)
                if default is not None:  # the noun alone runs its default verb, with that verb's options
                    _configure(noun_parser, default)
            parser = groups[noun].add_parser(verb, help=command.help, description=command.help)
        _configure(parser, command)


def _configure(parser: argparse.ArgumentParser, command: Command) -> None:
    command.arguments(parser)
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table", help="how to print [table]")
    connection.options(parser)

    def run(args: argparse.Namespace) -> int:
        return command.run(args) if command.run is not None else _run(command, args)

    parser.set_defaults(run=run)


def _verbs(table: Sequence[Command], noun: str) -> str:
    return ", ".join(c.path[1] for c in table if c.path[0] == noun)


def _run(command: Command, args: argparse.Namespace) -> int:
    work = command.work
    assert work is not None, f"{command.path} has neither work nor run"
    rows = connection.call(args, lambda ch, t: work(ch, t, args))
    if args.output == "json":  # a list from `list`, else the one object (or the pair a rotation makes)
        print(tables.as_json(rows if command.path[-1] == "list" or len(rows) != 1 else rows[0]))
        return 0
    shown = [row.pop(command.shown_once) for row in rows if command.shown_once and row.get(command.shown_once)]
    if shown:  # the secret alone on stdout, so `KEY=$(clearpoint ops ...)` takes just it
        print(*shown, sep="\n")
        print(tables.render(rows, command.columns), file=sys.stderr)
        print(f"the {command.shown_once.replace('_', ' ')} above is shown once; keep it safe", file=sys.stderr)
        return 0
    print(tables.render(rows, command.columns) if rows else "(none)")
    return 0
