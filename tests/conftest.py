"""Shared fixtures: databases (SQLite always, PostgreSQL when CLEARPOINT_TEST_DATABASE_URL is set)
and a real platform gRPC server on a loopback port."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
from clearpoint.platform.app import Platform
from clearpoint.platform.core.clock import ManualClock
from clearpoint.platform.core.principals import Role
from clearpoint.platform.keys.master_key import MasterKey
from clearpoint.platform.partners import accounts
from sqlalchemy.engine import make_url

from tests.helpers import Client, RunningPlatform

PG_ENV = "CLEARPOINT_TEST_DATABASE_URL"
REQUIRE_PG_ENV = "CLEARPOINT_REQUIRE_POSTGRES"


def _pg_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get(REQUIRE_PG_ENV) == "1":
            pytest.fail(f"{REQUIRE_PG_ENV}=1 but {PG_ENV} is not set")
        return None
    return url


async def _admin_sql(base_url: str, sql: str) -> None:
    """One statement on the server's maintenance connection (CREATE/DROP DATABASE cannot run in a transaction)."""
    import asyncpg

    url = make_url(base_url)
    admin = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database or "postgres",
    )
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


async def _fresh_pg_database(base_url: str) -> tuple[str, str]:
    """Create an empty database for this test session; returns (its URL, its name)."""
    name = f"clearpoint_test_{secrets.token_hex(4)}"
    await _admin_sql(base_url, f'CREATE DATABASE "{name}"')
    return make_url(base_url).set(database=name).render_as_string(hide_password=False), name


async def _drop_pg_database(base_url: str, name: str) -> None:
    await _admin_sql(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_apart(coro):  # type: ignore[no-untyped-def]
    """Run a coroutine on a loop of its own (sync fixtures cannot await on the tests' loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    base = _pg_url()
    if base is None:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://root@127.0.0.1:5432/test)")
    try:
        url, name = _run_apart(_fresh_pg_database(base))
    except Exception as exc:
        if os.environ.get(REQUIRE_PG_ENV) == "1":
            pytest.fail(f"PostgreSQL at {PG_ENV} is required but unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {PG_ENV} unreachable: {exc}")
    yield url
    _run_apart(_drop_pg_database(base, name))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Each test that takes this runs once on a fresh SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'clearpoint.sqlite3'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(params=["sqlite", "postgres"])
def own_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like database_url, but a PostgreSQL database of this test's own (for what reads the whole
    database, such as clearing, which every channel in it takes part in)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'clearpoint.sqlite3'}"
        return
    yield request.getfixturevalue("own_pg_url")


@pytest.fixture
def own_pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL database of this test's own, for what only PostgreSQL can show (processes on
    several hosts sharing one database, writers racing inside it)."""
    request.getfixturevalue("pg_url")  # skips, or fails where PostgreSQL is required, as the others do
    base = _pg_url()
    assert base is not None
    url, name = _run_apart(_fresh_pg_database(base))
    yield url
    _run_apart(_drop_pg_database(base, name))


# One master key for the session, as every process of one platform shares one.
MASTER_KEY_RAW = secrets.token_bytes(32)
MASTER_KEY = MasterKey(MASTER_KEY_RAW)


async def start_platform(database_url: str, clock: ManualClock | None = None) -> RunningPlatform:
    from clearpoint.platform.api import server

    clock = clock or ManualClock()
    platform = await Platform.open(database_url, master_key=MASTER_KEY, clock=clock)
    platform.progress.poll_seconds = 0.2
    running = await server.start(platform, "127.0.0.1:0")
    async with platform.db.write() as conn:
        _, operator_key = await accounts.create(conn, f"operator-{secrets.token_hex(4)}", Role.OPERATOR, clock())
    return RunningPlatform(running, clock, f"127.0.0.1:{running.port}", operator_key)


@pytest.fixture
async def platform(database_url: str) -> AsyncIterator[RunningPlatform]:
    running = await start_platform(database_url)
    await running.operator().create_key_if_none()
    yield running
    await running.close()


@pytest.fixture
async def partner(platform: RunningPlatform) -> Client:
    return await platform.new_partner()
