"""`clearpoint platform ...`: run and administer the central platform."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearpoint.cliutil import add_subcommands, env_option, setup_logging
from clearpoint.platform.clearing import schedule as clearing_schedule
from clearpoint.platform.core.streams import DEFAULT_PER_CALLER

if TYPE_CHECKING:
    from clearpoint.platform.app import Platform

DEFAULT_DATABASE_URL = "sqlite:///clearpoint-data/clearpoint.sqlite3"
DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_MASTER_KEY_FILE = "clearpoint-data/master.key"
DEFAULT_SCHEDULE = clearing_schedule.DEFAULT
DEFAULT_LEASE_SECONDS = clearing_schedule.DEFAULT_LEASE_SECONDS


def _common(p: argparse.ArgumentParser) -> None:
    env_option(
        p,
        "--database",
        "CLEARPOINT_DATABASE_URL",
        DEFAULT_DATABASE_URL,
        "database URL: sqlite:///FILE (embedded) or postgresql://USER@HOST:PORT/DB",
    )
    env_option(
        p,
        "--master-key-file",
        "CLEARPOINT_MASTER_KEY_FILE",
        DEFAULT_MASTER_KEY_FILE,
        "file with the key that seals issuer private keys (created, mode 0600, if absent); "
        "$CLEARPOINT_MASTER_KEY (base64) overrides it",
    )
    env_option(p, "--log-level", "CLEARPOINT_LOG_LEVEL", "info", "debug, info, warning or error")


def _schedule_option(p: argparse.ArgumentParser) -> None:
    env_option(
        p,
        "--clearing-schedule",
        "CLEARPOINT_CLEARING_SCHEDULE",
        DEFAULT_SCHEDULE,
        "when clearing periods end, in UTC: hourly, daily, daily@HH:MM, or a five-field cron expression "
        "('0 */6 * * *'); every process of one platform must be given the same",
    )
    env_option(
        p,
        "--clearing-lease-seconds",
        "CLEARPOINT_CLEARING_LEASE_SECONDS",
        DEFAULT_LEASE_SECONDS,
        "how long a clearing run's claim lasts unless renewed: if its process dies, another may take over after this",
        type=float,
    )


def configure(group: argparse.ArgumentParser) -> None:
    """The `clearpoint platform` commands."""
    group.description = "Run and administer the central platform."
    commands = add_subcommands(group)

    serve = commands.add_parser("serve", help="serve the gRPC API (migrates the database first)")
    env_option(serve, "--listen", "CLEARPOINT_LISTEN", DEFAULT_LISTEN, "HOST:PORT to listen on")
    env_option(
        serve,
        "--tls-cert",
        "CLEARPOINT_TLS_CERT",
        "",
        "PEM certificate chain; with --tls-key, serve only over TLS (needed beyond loopback: "
        "API keys travel in call metadata)",
    )
    env_option(serve, "--tls-key", "CLEARPOINT_TLS_KEY", "", "PEM private key of --tls-cert")
    env_option(
        serve,
        "--workers",
        "CLEARPOINT_WORKERS",
        1,
        "server processes sharing the port (SO_REUSEPORT); the platform keeps no state the database "
        "does not, so each core can run one",
        type=int,
    )
    env_option(
        serve,
        "--max-streams-per-caller",
        "CLEARPOINT_MAX_STREAMS_PER_CALLER",
        DEFAULT_PER_CALLER,
        "streams (progress watches, scan streams) one API key's holder or one agent may hold open at once, "
        "per worker; the next is refused with TOO_MANY_STREAMS",
        type=int,
    )
    serve.add_argument("--skip-migrations", action="store_true", help=argparse.SUPPRESS)
    _schedule_option(serve)
    _common(serve)
    serve.set_defaults(run=_serve)

    clear = commands.add_parser(
        "clear",
        help="close the clearing periods that have ended and write their signed statements",
        description="Close, in order, every clearing period that has ended (or those up to --period), "
        "writing one signed statement per channel and period. A period already closed is never "
        "changed; a run that was killed resumes where it stopped. One process clears at a time: "
        "a running platform's own scheduled run included.",
    )
    clear.add_argument(
        "--period",
        default="due",
        help="'due' (every period that has ended) or the end of the last period to close, as a UTC time "
        "such as 2026-12-03T00:00:00Z [due]",
    )
    clear.add_argument("-o", "--output", choices=("table", "json"), default="table", help="how to print [table]")
    _schedule_option(clear)
    _common(clear)
    clear.set_defaults(run=_clear)

    reconcile = commands.add_parser(
        "reconcile",
        help="check a closed period's statements against the ledger, point for point",
        description="Compare a closed period's ledger totals with its statements per channel and "
        "direction, clear the period again to check the stored statements are the same bytes, and "
        "check their signatures. Exits 1 where anything disagrees, naming it.",
    )
    reconcile.add_argument("--period", type=int, required=True, help="the period's number (1, 2, ...)")
    reconcile.add_argument("-o", "--output", choices=("table", "json"), default="table", help="how to print [table]")
    _schedule_option(reconcile)
    _common(reconcile)
    reconcile.set_defaults(run=_reconcile)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date and exit")
    _common(migrate)
    migrate.set_defaults(run=_migrate)

    operator = commands.add_parser(
        "create-operator",
        help="create an operator and print its API key (bootstrap: works on the database directly)",
    )
    operator.add_argument("--name", required=True, help="operator name, unique")
    _common(operator)
    operator.set_defaults(run=_create_operator)

    token = commands.add_parser(
        "create-enrolment-token",
        help="create a single-use token with which one store agent enrols (works on the database directly)",
    )
    token.add_argument("--partner", required=True, help="partner id whose store the agent serves (ptn_...)")
    token.add_argument("--store", required=True, help="store id the agent redeems at")
    token.add_argument("--ttl-seconds", type=int, default=86_400, help="how long the token may be used [86400]")
    _common(token)
    token.set_defaults(run=_create_enrolment_token)


async def _open(args: argparse.Namespace, *, migrate: bool = True) -> Platform:
    from clearpoint.platform.app import Platform
    from clearpoint.platform.clearing import schedule

    return await Platform.open(
        args.database,
        master_key_file=Path(args.master_key_file),
        run_migrations=migrate,
        streams_per_caller=getattr(args, "max_streams_per_caller", DEFAULT_PER_CALLER),
        clearing=schedule.parse(getattr(args, "clearing_schedule", DEFAULT_SCHEDULE)),
        clearing_lease_seconds=getattr(args, "clearing_lease_seconds", DEFAULT_LEASE_SECONDS),
    )


def _bad_schedule(args: argparse.Namespace) -> str | None:
    from clearpoint.platform.clearing import schedule

    try:
        schedule.parse(args.clearing_schedule)
    except schedule.ScheduleInvalid as exc:
        return str(exc)
    if not 1 <= args.clearing_lease_seconds <= 3600:
        return "--clearing-lease-seconds must be 1 to 3600"
    return None


def _run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """uvloop where installed: asyncpg and the loop's own bookkeeping cost less CPU on it."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def _serve(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    if bool(args.tls_cert) != bool(args.tls_key):
        print("error: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    host = args.listen.rsplit(":", 1)[0].strip("[]")
    if not args.tls_cert and host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving plaintext on {host}: API keys cross the network in clear; use --tls-cert/--tls-key",
            file=sys.stderr,
        )
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.max_streams_per_caller < 1:
        print("error: --max-streams-per-caller must be at least 1", file=sys.stderr)
        return 2
    bad = _bad_schedule(args)
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    if args.workers > 1:
        return _supervise(args)

    async def main() -> None:
        from clearpoint.platform.api import server

        tls = server.tls_credentials(args.tls_cert, args.tls_key) if args.tls_cert else None
        platform = await _open(args, migrate=not args.skip_migrations)
        running = await server.start(platform, args.listen, tls)
        print(f"clearpoint platform serving on {args.listen.rsplit(':', 1)[0]}:{running.port}", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("stopping: finishing calls in flight", file=sys.stderr)
        await running.stop()
        await platform.close()

    _run_loop(main())
    return 0


def _supervise(args: argparse.Namespace) -> int:
    """Run `--workers` server processes on one port: migrate once, start them, stop them together."""
    if args.listen.rsplit(":", 1)[-1] == "0":
        print("error: --workers needs a fixed port (processes share it)", file=sys.stderr)
        return 2

    async def prepare() -> None:
        platform = await _open(args)  # migrates, and creates the master key file, once
        await platform.close()

    asyncio.run(prepare())
    argv = [sys.executable, "-m", "clearpoint.cli", "platform", "serve", "--workers", "1", "--skip-migrations"]
    flags = (
        "listen",
        "tls_cert",
        "tls_key",
        "database",
        "master_key_file",
        "log_level",
        "max_streams_per_caller",
        "clearing_schedule",
        "clearing_lease_seconds",
    )
    for flag in flags:
        argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    children = [subprocess.Popen(argv) for _ in range(args.workers)]  # noqa: S603 (this interpreter, our own argv)
    print(
        f"clearpoint platform: {args.workers} workers, pids {' '.join(str(c.pid) for c in children)}", file=sys.stderr
    )

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # A worker that exits takes the others down with it, so a supervisor above restarts the whole.
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    forward(signal.SIGTERM, None)
    codes = [child.wait() for child in children]
    # A worker still starting when the stop came dies of the signal itself: that is a stop, not a failure.
    stopped = (0, -signal.SIGTERM, -signal.SIGINT)
    return max((abs(c) for c in codes if c not in stopped), default=0)


def _migrate(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)

    async def main() -> None:
        from clearpoint.platform.migrate import current_revision

        platform = await _open(args)
        print(f"schema at revision {await current_revision(platform.db)}", file=sys.stderr)
        await platform.close()

    asyncio.run(main())
    return 0


def _create_operator(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)

    async def main() -> str:
        from clearpoint.platform.core.principals import Role
        from clearpoint.platform.partners import accounts

        platform = await _open(args)
        try:
            async with platform.db.write() as conn:
                _, key = await accounts.create(conn, args.name, Role.OPERATOR, platform.clock())
        finally:
            await platform.close()
        return key

    from clearpoint.platform.core.errors import Refusal

    try:
        key = asyncio.run(main())
    except Refusal as exc:  # an existing name, or a name that cannot be one
        print(f"error: could not create operator {args.name!r}: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"error: could not create operator {args.name!r}: {exc.__class__.__name__}", file=sys.stderr)
        return 1
    print(key)
    print("this API key is shown once; keep it safe", file=sys.stderr)
    return 0


def _create_enrolment_token(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)

    async def main() -> str:
        from clearpoint.platform.agents import enrolment

        platform = await _open(args)
        try:
            async with platform.db.write() as conn:
                made = await enrolment.create_token(conn, args.partner, args.store, args.ttl_seconds, platform.clock())
        finally:
            await platform.close()
        return made.token

    from clearpoint.platform.core.errors import Refusal

    try:
        token = asyncio.run(main())
    except Refusal as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(token)
    print("give this token to the store agent: clearpoint agent enrol --config FILE --token TOKEN", file=sys.stderr)
    return 0


def _clear(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    bad = _bad_schedule(args)
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    from clearpoint.platform.clearing import summaries
    from clearpoint.platform.clearing.runner import ClearingBusy

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    async def main() -> list[dict[str, Any]]:
        platform = await _open(args)
        try:
            through = summaries.through(platform.clearing.schedule, args.period, platform.clock())
            closed = await platform.clearing.run(through, progress=say)
            return [summaries.closed(c) for c in closed]
        finally:
            await platform.close()

    try:
        closed = asyncio.run(main())
    except (ClearingBusy, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(closed, indent=2))
    elif not closed:
        print("no clearing period to close", file=sys.stderr)
    else:
        print(summaries.closed_table(closed))
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    from clearpoint.platform.clearing import summaries
    from clearpoint.platform.clearing.reconciliation import reconcile
    from clearpoint.platform.core.errors import Refusal

    async def main() -> dict[str, Any]:
        platform = await _open(args)
        try:
            return summaries.report(await reconcile(platform.clearing, args.period))
        finally:
            await platform.close()

    try:
        report = asyncio.run(main())
    except Refusal as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.output == "json" else summaries.report_table(report))
    return 0 if report["agrees"] else 1
