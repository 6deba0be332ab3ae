"""The platform's parts wired together once, shared by the servicers of every room."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from clearpoint.platform import migrate
from clearpoint.platform.agents.fleet import DEFAULT_HEARTBEAT_S, DEFAULT_STALE_AFTER_S, Fleet
from clearpoint.platform.agents.ingest import SCAN_LOG, ScanIngest
from clearpoint.platform.campaigns.progress import progress_feed
from clearpoint.platform.campaigns.records import Progress
from clearpoint.platform.clearing import published
from clearpoint.platform.clearing import schedule as clearing_schedule
from clearpoint.platform.clearing.runner import Clearing
from clearpoint.platform.clearing.statements import StatementKey
from clearpoint.platform.core.clock import Clock, system_clock
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.fanout import Fanout
from clearpoint.platform.core.paging import PageTokens
from clearpoint.platform.core.streams import DEFAULT_PER_CALLER, StreamLimit
from clearpoint.platform.exchange.exchanges import Instruction, QuoteTokens, instruction_feed
from clearpoint.platform.keys import binding
from clearpoint.platform.keys.keystore import KeyStore
from clearpoint.platform.keys.master_key import MasterKey
from clearpoint.platform.partners.authentication import Authenticator
from clearpoint.platform.redemption.redeemer import Redeemer


@dataclass
class Platform:
    db: Database
    clock: Clock
    keys: KeyStore
    auth: Authenticator
    progress: Fanout[Progress]
    redeemer: Redeemer
    pages: PageTokens
    ingest: ScanIngest
    streams: StreamLimit
    quotes: QuoteTokens
    instructions: Fanout[tuple[Instruction, ...]]
    clearing: Clearing
    statements: Fanout[int]
    fleet: Fleet

    @classmethod
    async def open(
        cls,
        database_url: str,
        master_key: MasterKey | None = None,
        master_key_file: Path | None = None,
        clock: Clock = system_clock,
        run_migrations: bool = True,
        pool_size: int = 16,
        streams_per_caller: int = DEFAULT_PER_CALLER,
        watch_poll_seconds: float = 1.0,
        clearing: clearing_schedule.Schedule | None = None,
        clearing_lease_seconds: float = clearing_schedule.DEFAULT_LEASE_SECONDS,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_S,
        stale_after_seconds: float = DEFAULT_STALE_AFTER_S,
    ) -> Platform:
        db = Database(database_url, pool_size=pool_size)
        if run_migrations:
            try:
                await migrate.upgrade(db)
            except BaseException:
                await db.dispose()
                raise
        try:
            master = await binding.load_bound(db, master_key_file, clock, given=master_key)
        except BaseException:
            await db.dispose()
            raise
        keys = KeyStore(master, clock)
        feed = progress_feed(db, clock, watch_poll_seconds)
        async with db.read() as conn:
            await keys.load_public_keys(conn)
        page_secret = hmac.new(master.derive(b"page-tokens"), b"", hashlib.sha256).digest()
        # Scans are redeemed by the same redeemer, with their row in the scan log written alongside.
        redeemer = Redeemer(db, keys, clock, feed, attachment=SCAN_LOG)
        ingest = ScanIngest(db, redeemer, clock)
        pages = PageTokens(page_secret)
        quotes = QuoteTokens(master.derive(b"quote-tokens"))
        newest_statements = published.newest_feed(db, watch_poll_seconds)
        return cls(
            db,
            clock,
            keys,
            Authenticator(clock),
            feed,
            redeemer,
            pages,
            ingest,
            StreamLimit(streams_per_caller),
            quotes,
            instruction_feed(db, watch_poll_seconds),
            Clearing(
                db,
                clock,
                clearing or clearing_schedule.parse(clearing_schedule.DEFAULT),
                StatementKey.derived(master),
                lease_seconds=clearing_lease_seconds,
                announce=newest_statements.changed,
            ),
            newest_statements,
            Fleet(
                db,
                clock,
                heartbeat_us=int(heartbeat_seconds * 1_000_000),
                stale_after_us=int(stale_after_seconds * 1_000_000),
            ),
        )

    async def close(self) -> None:
        await self.progress.close()
        await self.instructions.close()
        await self.statements.close()
        await self.db.dispose()
