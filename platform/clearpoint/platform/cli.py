"""`clearpoint platform ...`: run and administer the central platform."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearpoint.addresses import Address, parse_address
from clearpoint.cliutil import CommandFailure, add_subcommands, env_option, logging_options, setup_logging
from clearpoint.platform.agents.fleet import DEFAULT_HEARTBEAT_S, DEFAULT_STALE_AFTER_S
from clearpoint.platform.clearing import schedule as clearing_schedule
from clearpoint.platform.core.streams import DEFAULT_PER_CALLER

if TYPE_CHECKING:
    from clearpoint.platform.app import Platform

# Alembic announces its plugins and its context at INFO on every start: noise before a platform's
# first line. The platform says itself when it changes the schema (migrate.upgrade).
logging.getLogger("alembic").setLevel(logging.WARNING)

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
    logging_options(p)


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
    env_option(
        serve,
        "--listen",
        "CLEARPOINT_LISTEN",
        DEFAULT_LISTEN,
        "HOST:PORT to listen on ([::]:PORT for every address; port 0 picks a free one)",
        type=_listen_address,
    )
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
    env_option(
        serve,
        "--agent-heartbeat-seconds",
        "CLEARPOINT_AGENT_HEARTBEAT_SECONDS",
        DEFAULT_HEARTBEAT_S,
        "how often store agents report their state on their stream",
        type=float,
    )
    env_option(
        serve,
        "--agent-stale-after-seconds",
        "CLEARPOINT_AGENT_STALE_AFTER_SECONDS",
        DEFAULT_STALE_AFTER_S,
        "an agent not heard from for this long is shown stale (make it a few heartbeats)",
        type=float,
    )
    env_option(
        serve,
        "--metrics-listen",
        "CLEARPOINT_METRICS_LISTEN",
        "",
        "HOST:PORT to serve Prometheus metrics on (GET /metrics), one endpoint for all workers; off if empty",
    )
    serve.add_argument("--skip-migrations", action="store_true", help=argparse.SUPPRESS)
    # One of a supervisor's workers: shares the port the supervisor holds, and runs one process.
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
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


async def _open(args: argparse.Namespace, *, migrate: bool = True) -> Platform:
    """The platform on --database with its master key; what stops it from opening is a
    CommandFailure naming the fix (a bad URL, a database not there, a master key not its own)."""
    from clearpoint.platform.app import Platform
    from clearpoint.platform.clearing import schedule
    from clearpoint.platform.core.database import DatabaseUrlInvalid, explain_failure
    from clearpoint.platform.keys.master_key import MasterKeyError

    try:
        return await Platform.open(
            args.database,
            master_key_file=Path(args.master_key_file),
            run_migrations=migrate,
            streams_per_caller=getattr(args, "max_streams_per_caller", DEFAULT_PER_CALLER),
            clearing=schedule.parse(getattr(args, "clearing_schedule", DEFAULT_SCHEDULE)),
            clearing_lease_seconds=getattr(args, "clearing_lease_seconds", DEFAULT_LEASE_SECONDS),
            heartbeat_seconds=getattr(args, "agent_heartbeat_seconds", DEFAULT_HEARTBEAT_S),
            stale_after_seconds=getattr(args, "agent_stale_after_seconds", DEFAULT_STALE_AFTER_S),
        )
    except (DatabaseUrlInvalid, MasterKeyError) as exc:
        raise CommandFailure(str(exc)) from exc
    except Exception as exc:
        reason = explain_failure(exc, args.database)
        if reason is None:
            raise
        raise CommandFailure(reason) from exc


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


def _listen_address(text: str) -> Address:
    try:
        return parse_address(text, any_port=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check_serve_options(args: argparse.Namespace) -> None:
    if args.worker and args.workers != 1:
        raise CommandFailure("a worker runs one process: --worker goes with --workers 1")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise CommandFailure(
            "--tls-cert and --tls-key go together: give both (or neither, to serve plaintext on loopback)"
        )
    if args.workers < 1:
        raise CommandFailure("--workers must be at least 1")
    if args.workers > 1 and args.listen.port == 0:
        raise CommandFailure("--workers needs a fixed port, which the workers share: give --listen HOST:PORT")
    if args.max_streams_per_caller < 1:
        raise CommandFailure("--max-streams-per-caller must be at least 1")
    if not 0.1 <= args.agent_heartbeat_seconds <= 3600:
        raise CommandFailure("--agent-heartbeat-seconds must be 0.1 to 3600")
    if args.agent_stale_after_seconds <= args.agent_heartbeat_seconds:
        raise CommandFailure("--agent-stale-after-seconds must be longer than --agent-heartbeat-seconds")
    bad = _bad_schedule(args)
    if bad:
        raise CommandFailure(bad)
    if args.metrics_listen:
        try:
            args.metrics_listen = parse_address(args.metrics_listen)
        except ValueError as exc:
            raise CommandFailure(f"--metrics-listen: {exc}") from None


def _serve(args: argparse.Namespace) -> int:
    from clearpoint.platform.api import listening, metrics_http

    setup_logging(args.log_level, args.log_format)
    _check_serve_options(args)
    if not args.tls_cert and args.listen.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving plaintext on {args.listen.host}: API keys cross the network in clear; "
            "use --tls-cert/--tls-key",
            file=sys.stderr,
        )
    held: list[socket.socket] = []
    try:
        tls = listening.tls_credentials(args.tls_cert, args.tls_key) if args.tls_cert else None
        # A worker's port is checked and held by its supervisor; port 0 is a new one by definition.
        if not args.worker and args.listen.port != 0:
            held = listening.claim(args.listen, hold=args.workers > 1)
    except listening.ListenError as exc:
        raise CommandFailure(str(exc)) from None
    if args.workers > 1:
        try:
            return _supervise(args)
        finally:
            for sock in held:
                sock.close()
    if args.metrics_listen and not args.worker:
        try:
            metrics_http.serve(args.metrics_listen)
        except listening.ListenError as exc:
            raise CommandFailure(str(exc)) from None

    async def main() -> None:
        from clearpoint.platform.api import server

        platform = await _open(args, migrate=not args.skip_migrations)
        try:
            running = await server.start(platform, str(args.listen), tls, share_port=args.worker)
        except listening.ListenError as exc:
            await platform.close()
            raise CommandFailure(str(exc)) from None
        print(f"clearpoint platform serving on {args.listen.host}:{running.port}", file=sys.stderr)
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
    """Run `--workers` server processes on one port: migrate once, then start and keep them."""
    from clearpoint.platform.api import metrics_http
    from clearpoint.platform.api.listening import ListenError
    from clearpoint.platform.supervisor import supervise

    async def prepare() -> None:
        platform = await _open(args)  # migrates, and checks (or creates) the master key, once
        await platform.close()

    asyncio.run(prepare())
    argv = [
        sys.executable,
        "-m",
        "clearpoint.cli",
        "platform",
        "serve",
        "--worker",
        "--workers",
        "1",
        "--skip-migrations",
    ]
    flags = (
        "listen",
        "tls_cert",
        "tls_key",
        "database",
        "master_key_file",
        "log_level",
        "log_format",
        "max_streams_per_caller",
        "clearing_schedule",
        "clearing_lease_seconds",
        "agent_heartbeat_seconds",
        "agent_stale_after_seconds",
    )
    for flag in flags:
        argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if not args.metrics_listen:
        return supervise(argv, args.workers)
    with metrics_http.shared_directory() as shared:
        os.environ[metrics_http.MULTIPROC_ENV] = shared  # the workers inherit it; they write, this serves
        try:
            metrics_http.serve(args.metrics_listen, multiprocess_dir=shared)
        except ListenError as exc:
            raise CommandFailure(str(exc)) from None
        return supervise(argv, args.workers, on_exit=lambda pid: metrics_http.worker_gone(shared, pid))


def _migrate(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)

    async def main() -> None:
        from clearpoint.platform.migrate import current_revision

        platform = await _open(args)
        print(f"schema at revision {await current_revision(platform.db)}", file=sys.stderr)
        await platform.close()

    asyncio.run(main())
    return 0


def _create_operator(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)

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


def _clear(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)
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
    setup_logging(args.log_level, args.log_format)
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
