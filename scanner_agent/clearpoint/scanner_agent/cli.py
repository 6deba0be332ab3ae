"""`clearpoint agent ...`: run the store agent, enrol it, find scanners, read the claim book."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import re
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from clearpoint.addresses import parse_address
from clearpoint.cliutil import CommandFailure, add_subcommands, env_option, logging_options, setup_logging
from clearpoint.scanner_agent.outcomes import PENDING, Outcome

if TYPE_CHECKING:
    from clearpoint.scanner_agent.config import AgentConfig
    from clearpoint.scanner_agent.journal import ClaimBookEntry

log = logging.getLogger("clearpoint.scanner_agent")

CONFIG_HELP = "the agent's TOML configuration file (see docs/agent.md)"


def configure(group: argparse.ArgumentParser) -> None:
    """The `clearpoint agent` commands."""
    group.description = (
        "The store-side agent. Typical first run: `clearpoint agent scanners` to find the "
        "scanner, write a config file, `clearpoint agent enrol --config FILE --token TOKEN` with the "
        "operator's token, then `clearpoint agent run --config FILE`."
    )
    commands = add_subcommands(group)

    run = commands.add_parser(
        "run",
        help="read the configured scanners and stream every scan to the platform",
        description="Read the configured scanners, journal and sign every scan, stream it to the platform "
        "and print one line per scan for the cashier (stdout); logs go to stderr. SIGINT or SIGTERM stops "
        "it cleanly; scans not yet answered stay in the journal and are sent on the next start.",
    )
    env_option(run, "--config", "CLEARPOINT_AGENT_CONFIG", "clearpoint-agent.toml", CONFIG_HELP)
    env_option(
        run,
        "--token",
        "CLEARPOINT_ENROLMENT_TOKEN",
        "",
        "enrolment token: enrol first if this agent is not enrolled yet",
    )
    logging_options(run)
    run.set_defaults(run=_run)

    enrol = commands.add_parser(
        "enrol",
        help="create the device key and enrol with a single-use token from the operator",
        description="Generate this agent's Ed25519 device key (readable by its owner only) and register it "
        "with the platform using a single-use enrolment token. Prints the agent id.",
    )
    env_option(enrol, "--config", "CLEARPOINT_AGENT_CONFIG", "clearpoint-agent.toml", CONFIG_HELP)
    env_option(enrol, "--token", "CLEARPOINT_ENROLMENT_TOKEN", "", "the enrolment token (cpe_...)")
    logging_options(enrol)
    enrol.set_defaults(run=_enrol)

    scanners = commands.add_parser(
        "scanners",
        help="list the serial, keyboard-wedge and hidraw devices that could be scanners",
        description="List candidate scanner devices with their stable paths (for the config file), and "
        "say which look like barcode scanners and why. With --watch, keep listing devices as they are "
        "plugged in and out.",
    )
    scanners.add_argument("-o", "--output", choices=("table", "json"), default="table", help="output format [table]")
    scanners.add_argument("--watch", action="store_true", help="follow devices being plugged in and out")
    scanners.add_argument("--root", default="/", help=argparse.SUPPRESS)
    scanners.set_defaults(run=_scanners)

    claims = commands.add_parser(
        "claims",
        help="list or export the claim book: every scan and the answer it got",
        description="The store's prize-claim record: each scan with its answer (prize, campaign, "
        "redemption id, or the reason it was refused). Safe to run while the agent runs.",
    )
    env_option(claims, "--config", "CLEARPOINT_AGENT_CONFIG", "clearpoint-agent.toml", CONFIG_HELP)
    claims.add_argument(
        "--since", default="", help="only scans from then on: an ISO date/time (UTC) or an age like 30m, 24h, 7d"
    )
    claims.add_argument(
        "--outcome",
        choices=(*(outcome.value for outcome in Outcome), PENDING),
        help="only scans with this answer (pending: not answered yet)",
    )
    claims.add_argument("-o", "--output", choices=("table", "csv", "json"), default="table", help="format [table]")
    claims.add_argument("--file", default="", help="write to this file instead of stdout")
    claims.set_defaults(run=_claims)


def _load_config(path: str) -> AgentConfig | None:
    from clearpoint.scanner_agent.config import ConfigError, load

    try:
        return load(Path(path))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


@contextlib.contextmanager
def _only_agent_on(data_dir: Path) -> Iterator[None]:
    """Hold data_dir's lock for the command's life; another agent on it is a start-up failure."""
    from clearpoint.scanner_agent.data_lock import DataDirBusy, DataDirLock

    lock = DataDirLock(data_dir)
    try:
        lock.acquire()
    except DataDirBusy as exc:
        raise CommandFailure(str(exc)) from None
    try:
        yield
    finally:
        lock.release()


def _enrol(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)
    config = _load_config(args.config)
    if config is None:
        return 2
    if not args.token:
        print("error: --token is required (ask the platform operator for an enrolment token)", file=sys.stderr)
        return 2
    from clearpoint.scanner_agent.enrol import EnrolError, enrol
    from clearpoint.scanner_agent.identity import IdentityError

    with _only_agent_on(config.data_dir):
        try:
            identity = asyncio.run(enrol(config.uplink(), config.data_dir, args.token, config.name))
        except (EnrolError, IdentityError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(identity.agent_id)
    print(f"enrolled for store {identity.store_id} at {identity.platform}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)
    config = _load_config(args.config)
    if config is None:
        return 2
    if not config.scanners:
        print(f"error: {config.path} has no [[scanner]]; `clearpoint agent scanners` finds them", file=sys.stderr)
        return 2
    from clearpoint.scanner_agent.enrol import EnrolError
    from clearpoint.scanner_agent.identity import IdentityError
    from clearpoint.scanner_agent.journal import JournalError

    with _only_agent_on(config.data_dir):
        try:
            return asyncio.run(_run_agent(config, args.token))
        except (EnrolError, IdentityError, JournalError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1


async def _run_agent(config: AgentConfig, token: str) -> int:
    from clearpoint.scanner_agent import identity as ident
    from clearpoint.scanner_agent.agent import Agent
    from clearpoint.scanner_agent.console import Console
    from clearpoint.scanner_agent.enrol import enrol
    from clearpoint.scanner_agent.journal import Journal

    if token and not (config.data_dir / ident.IDENTITY_FILE).exists():
        enrolled = await enrol(config.uplink(), config.data_dir, token, config.name)
        log.info("enrolled as %s for store %s", enrolled.agent_id, enrolled.store_id)
    identity = ident.load_identity(config.data_dir)
    key = ident.load_key(config.data_dir)
    if config.metrics_listen:
        from clearpoint.scanner_agent import metrics

        try:
            metrics.serve(parse_address(config.metrics_listen))
        except OSError as exc:
            raise CommandFailure(
                f"cannot serve metrics on {config.metrics_listen} ({exc.strerror}): see metrics_listen"
            ) from None
    journal = await Journal.open(config.journal_path, identity.agent_id, key, config.max_backlog)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    agent = Agent(
        identity,
        key,
        journal,
        config.drivers(),
        config.uplink(),
        Console(answer_wait_s=config.answer_wait_seconds),
        config.backlog_warn_fraction,
        config.claims_retention_days,
    )
    try:
        await agent.run(stop)
    finally:
        await journal.close()
    return 0


def _scanners(args: argparse.Namespace) -> int:
    from clearpoint.scanner_agent.discovery import run_scanners_command

    return run_scanners_command(json_output=args.output == "json", watch=args.watch, root=Path(args.root))


_AGE = re.compile(r"(\d+)\s*([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now_s: float | None = None) -> int | None:
    """An ISO date/time (UTC unless it says otherwise) or an age like 24h, as UTC microseconds."""
    if not text:
        return None
    age = _AGE.fullmatch(text.strip())
    if age:
        now_s = time.time() if now_s is None else now_s
        return int((now_s - int(age.group(1)) * _UNIT_S[age.group(2)]) * 1_000_000)
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def _iso(us: int | None) -> str:
    if us is None:
        return ""
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


CSV_COLUMNS = (
    "sequence",
    "scanned_at",
    "scanner",
    "symbology",
    "barcode",
    "barcode_hex",
    "outcome",
    "reason",
    "message",
    "prize",
    "campaign_id",
    "campaign_name",
    "voucher_id",
    "redemption_id",
    "answered_at",
)


def claim_row(c: ClaimBookEntry) -> dict[str, object]:
    return {
        "sequence": c.sequence,
        "scanned_at": _iso(c.scan_us),
        "scanner": c.scanner_id,
        "symbology": c.symbology,
        "barcode": c.data.decode("utf-8", "backslashreplace"),
        "barcode_hex": c.data.hex(),
        "outcome": c.outcome,
        "reason": c.reason,
        "message": c.message,
        "prize": c.prize,
        "campaign_id": c.campaign_id,
        "campaign_name": c.campaign_name,
        "voucher_id": c.voucher_id,
        "redemption_id": c.redemption_id,
        "answered_at": _iso(c.answered_us),
    }


def _claims(args: argparse.Namespace) -> int:
    config = _load_config(args.config)
    if config is None:
        return 2
    from clearpoint.scanner_agent.console import shown_data
    from clearpoint.scanner_agent.journal import JournalError, read_claims

    try:
        since = parse_since(args.since)
    except ValueError:
        print(f"error: --since {args.since!r} is neither an ISO date/time nor an age like 24h", file=sys.stderr)
        return 2
    try:
        claims = read_claims(config.journal_path, since, args.outcome)
    except JournalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = open(args.file, "w", newline="") if args.file else sys.stdout
    try:
        if args.output == "csv":
            writer = csv.DictWriter(out, CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(claim_row(c) for c in claims)
        elif args.output == "json":
            for c in claims:
                out.write(json.dumps(claim_row(c), ensure_ascii=False) + "\n")
        else:
            out.write(f"{'SEQ':>6}  {'SCANNED (UTC)':<24} {'SCANNER':<10} {'OUTCOME':<13} {'BARCODE':<24} DETAIL\n")
            for c in claims:
                detail = c.prize if c.outcome == Outcome.ACCEPTED else (c.reason or c.message)
                out.write(
                    f"{c.sequence:>6}  {_iso(c.scan_us):<24} {c.scanner_id:<10} {c.outcome:<13} "
                    f"{shown_data(c.data, 24):<24} {detail}\n"
                )
    finally:
        if args.file:
            out.close()
    if args.file or args.output == "table":
        print(f"{len(claims)} scan(s)" + (f" written to {args.file}" if args.file else ""), file=sys.stderr)
    return 0
