"""Engines and transactions for the two supported databases.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every write transaction
starts with BEGIN IMMEDIATE: a deferred transaction that later upgrades to a write fails with
SQLITE_BUSY at once, whatever the timeout. PostgreSQL runs on asyncpg.

When PostgreSQL restarts or fails over, every pooled connection is dead at once. The first use of
one that fails is recognised (`is_disconnect`), the whole pool is replaced so no other dead
connection is handed out, and the caller gets `DatabaseUnavailable`: nothing is known to have been
applied, and a request may be sent again with its request id (exactly-once makes that safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from clearpoint.private_files import private_sqlite_file
from sqlalchemy import Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import Pool

log = logging.getLogger(__name__)

_WRITE = "clearpoint_write"
# Messages of driver errors that mean the connection itself is gone.
_GONE = ("connection is closed", "connection was closed", "terminating connection", "server closed the connection")


class DatabaseUnavailable(Exception):
    """The database could not be reached, or the connection died mid-way. Nothing is known to have
    been applied; the same request, with the same request id, may be sent again."""


def is_disconnect(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the connection to the database is gone: a restart, a
    failover, a terminated session, a refused connect. A constraint or syntax error is not."""
    for current in _causes(exc):
        if isinstance(current, DatabaseUnavailable | ConnectionError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, OSError) and not isinstance(current, FileNotFoundError | PermissionError):
            return True
        if _driver_says_gone(current):
            return True
    return False


def _driver_says_gone(exc: BaseException) -> bool:
    module = type(exc).__module__
    if not module.startswith("asyncpg"):
        return any(gone in str(exc) for gone in _GONE) and "asyncpg" in repr(type(exc))
    import asyncpg

    gone_kinds = (
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.PostgresConnectionError,  # class 08
        asyncpg.exceptions.OperatorInterventionError,  # class 57P: admin shutdown, crash, cannot connect now
        asyncpg.exceptions.InternalClientError,
    )
    return isinstance(exc, gone_kinds) or (
        isinstance(exc, asyncpg.exceptions.InterfaceError) and any(gone in str(exc) for gone in _GONE)
    )


class DatabaseUrlInvalid(ValueError):
    """A --database value that names no database the platform can use."""


_URL_FORMS = "use sqlite:///FILE or postgresql://USER@HOST:PORT/DB"


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` (or `postgres://`, as many hosts print it) and `sqlite:///` URLs
    and pick the asyncio drivers for them."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlInvalid(f"{url!r} is not a database URL: {_URL_FORMS}") from None
    backend = parsed.drivername.split("+", 1)[0]
    if backend == "sqlite":
        if not parsed.database:
            raise DatabaseUrlInvalid(f"{url!r} names no file: {_URL_FORMS}")
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise DatabaseUrlInvalid(f"unsupported database {backend!r} in {url!r}: {_URL_FORMS}")
    return parsed.render_as_string(hide_password=False)


def explain_failure(exc: BaseException, url: str) -> str | None:
    """One line saying why the database at `url` could not be used, and what to do about it, for a
    failure to connect or to open it; None for anything else (a bug shows its traceback)."""
    parsed = make_url(normalize_url(url))
    shown = parsed.render_as_string(hide_password=True)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    for cause in _causes(exc):
        name = type(cause).__name__
        if name == "InvalidCatalogNameError":
            return (
                f"database {parsed.database!r} does not exist on {where}: create it "
                f"(createdb {parsed.database}) or correct --database ({shown})"
            )
        if name in ("InvalidAuthorizationSpecificationError", "InvalidPasswordError"):
            return f"the database at {where} refused the login ({cause}): correct the user or password ({shown})"
        if isinstance(cause, socket.gaierror):
            return f"cannot find the database host {parsed.host!r} ({cause.strerror}): correct --database ({shown})"
        if isinstance(cause, ConnectionRefusedError):
            return f"nothing accepts connections at {where}: start PostgreSQL there, or correct --database ({shown})"
        if isinstance(cause, TimeoutError):
            return f"the database at {where} did not answer in time: check the network, or correct --database ({shown})"
        if name == "OperationalError" and "unable to open database file" in str(cause):
            return f"cannot open the SQLite file {parsed.database!r}: check its folder exists and is writable ({shown})"
        if isinstance(cause, PermissionError | IsADirectoryError):
            return f"cannot open the SQLite file {parsed.database!r} ({cause.strerror}): correct --database ({shown})"
        if name == "CannotConnectNowError":
            return f"the database at {where} is starting up or shutting down ({cause}): try again shortly"
        if isinstance(cause, OSError) and cause.errno is not None:
            return f"cannot reach the database at {where} ({cause.strerror}): correct --database ({shown})"
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it was raised from, drivers' own errors included, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        nxt = getattr(current, "orig", None)
        current = nxt if isinstance(nxt, BaseException) else (current.__cause__ or current.__context__)
    return seen


class Database:
    """One engine plus the two kinds of transaction the platform uses."""

    def __init__(self, url: str, *, pool_size: int = 16, echo: bool = False) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.is_postgres = not self.is_sqlite
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                private_sqlite_file(Path(parsed.database))
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # A fixed pool: overflow connections would be opened and closed under load, each a new session.
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_timeout=30, pool_pre_ping=False)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        # Shares the pool; set once here rather than on every connection that uses it.
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._replacing = asyncio.Lock()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on success, rolled back on any exception."""
        async with self._connection(self.engine) as conn:
            if self.is_sqlite:
                await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (deferred on SQLite, so it never takes the write lock)."""
        async with self._connection(self.engine) as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection where each statement is its own transaction: one round trip, no BEGIN/COMMIT."""
        async with self._connection(self._autocommit_engine) as conn:
            yield conn

    @asynccontextmanager
    async def _connection(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; one found dead is dropped with its whole pool (DatabaseUnavailable)."""
        pool = self.engine.pool
        try:
            conn = await engine.connect()
        except Exception as exc:  # refused, unknown host, database not accepting connections: all "unreachable"
            raise DatabaseUnavailable(f"cannot connect to the database ({exc})") from exc
        try:
            yield conn
        except Exception as exc:
            if not is_disconnect(exc):
                raise
            with contextlib.suppress(Exception):
                await conn.invalidate()
            await self._lost(pool, exc)
            raise DatabaseUnavailable(f"the database dropped the connection ({exc})") from exc
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _lost(self, pool: Pool, exc: BaseException) -> None:
        """The connections of `pool` died together (a restart kills every session): replace the pool
        once, so the next checkout connects afresh instead of meeting the other dead ones."""
        async with self._replacing:
            if self.engine.pool is pool:
                log.warning("lost the database connection (%s); reconnecting", exc)
                try:
                    await asyncio.wait_for(self.engine.dispose(), timeout=5)
                except Exception as closing:  # closing dead connections may fail too; the pool is new regardless
                    log.debug("closing the old pool: %r", closing)

    async def reachable(self, within_s: float = 2.0) -> bool:
        """Whether a new statement gets through now (health checking asks this)."""
        try:
            async with asyncio.timeout(within_s), self.autocommit() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that can say ON CONFLICT, which both databases speak in their own dialect."""
        return postgresql.insert(table) if self.is_postgres else sqlite.insert(table)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see the "begin" hook).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")
