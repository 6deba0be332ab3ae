"""Schema migrations with Alembic, run over the platform's own async engine."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from clearpoint.platform.core.database import Database
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run on every start (a no-op when current)."""

    def _run(sync_conn: Connection) -> tuple[str | None, str | None]:
        from alembic.runtime.migration import MigrationContext

        before = MigrationContext.configure(sync_conn).get_current_revision()
        command.upgrade(alembic_config(sync_conn), revision)
        return before, MigrationContext.configure(sync_conn).get_current_revision()

    async with db.engine.begin() as conn:
        before, after = await conn.run_sync(_run)
    if before != after:
        log.info("database schema upgraded from %s to %s", before or "empty", after)


async def downgrade(db: Database, revision: str) -> None:
    """Take the schema back to `revision` (an operator's way out of a release)."""

    def _run(sync_conn: Connection) -> None:
        command.downgrade(alembic_config(sync_conn), revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(_run)


async def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _get(sync_conn: Connection) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(_get)
