"""Alembic environment: runs on a connection the platform hands over (see clearpoint.platform.migrate)."""

from __future__ import annotations

import clearpoint.platform.app  # noqa: F401  (every room's tables join the one MetaData)
from alembic import context
from clearpoint.platform.core.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `clearpoint platform migrate`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
