"""The database remembers the master key it was set up with.

A platform started with another key (a new key file created because it was started from another
working directory, a wrong environment variable) would serve until a partner's IssueVouchers
failed on an issuer key it cannot open. Checked at start, it refuses to start instead, naming the fix.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

from clearpoint.platform.core.clock import Clock
from clearpoint.platform.core.database import Database
from clearpoint.platform.keys.master_key import MasterKey, MasterKeyError
from clearpoint.platform.keys.tables import issuer_keys, master_key_check
from cryptography.exceptions import InvalidTag
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

_MISMATCH = (
    "the master key is not the one this database was set up with: give that key's file with "
    "--master-key-file (or $CLEARPOINT_MASTER_KEY); every process on one database needs the same key"
)


async def _recorded(conn: AsyncConnection) -> bytes | None:
    value = (await conn.execute(select(master_key_check.c.check_value))).scalar()
    return None if value is None else bytes(value)


async def load_bound(db: Database, path: Path | None, clock: Clock, given: MasterKey | None = None) -> MasterKey:
    """The master key (`given`, else from the environment or `path`), checked against the database;
    a database that has none recorded records this one. A key file is created only for a database
    that has none, so a missing file never silently becomes a new key."""
    async with db.read() as conn:
        if not await conn.run_sync(lambda sync: inspect(sync).has_table(master_key_check.name)):
            # A schema older than the check (opened without migrating, as a test of old rows does).
            log.warning("the database has no master key check yet (run `clearpoint platform migrate`)")
            return given or MasterKey.load(path)
        recorded = await _recorded(conn)
    master = given or MasterKey.load(path, create=recorded is None)
    if recorded is None:
        async with db.write() as conn:
            sealed = (await conn.execute(select(issuer_keys.c.kid, issuer_keys.c.private_key_sealed).limit(1))).first()
            if sealed is not None:  # set up before the check existed: its issuer keys tell
                try:
                    master.unseal(bytes(sealed.private_key_sealed), sealed.kid.encode())
                except InvalidTag:
                    raise MasterKeyError(_MISMATCH) from None
            row = {"id": 1, "check_value": master.check_value(), "created_us": clock()}
            await conn.execute(db.insert(master_key_check).values(row).on_conflict_do_nothing())
            recorded = await _recorded(conn)  # another process may have been first
    if recorded is None or not hmac.compare_digest(recorded, master.check_value()):
        raise MasterKeyError(_MISMATCH)
    return master
