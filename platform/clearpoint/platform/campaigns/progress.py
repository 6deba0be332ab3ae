"""A campaign's progress (issued, redeemed, rolled back, refusals by reason) and wake-ups for watchers.

A watcher is woken at once by changes this process commits, and re-reads the database at a short
interval to see changes committed by other platform processes; the database stays the one truth.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict

from clearpoint.platform.campaigns.records import Progress
from clearpoint.platform.campaigns.rules import REFUSAL_SHARDS
from clearpoint.platform.campaigns.tables import campaign_refusals, campaigns
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection


async def progress(conn: AsyncConnection, campaign_id: str, now_us: int) -> Progress:
    row = (
        await conn.execute(
            select(campaigns.c.issued, campaigns.c.redeemed, campaigns.c.rolled_back, campaigns.c.total_stock).where(
                campaigns.c.campaign_id == campaign_id
            )
        )
    ).one()
    rows = await conn.execute(
        select(campaign_refusals.c.reason, func.sum(campaign_refusals.c.count))
        .where(campaign_refusals.c.campaign_id == campaign_id)
        .group_by(campaign_refusals.c.reason)
    )
    refused = {reason: int(count) for reason, count in rows}
    return Progress(
        campaign_id=campaign_id,
        issued=row.issued,
        redeemed=row.redeemed,
        rolled_back=row.rolled_back,
        remaining_stock=row.total_stock - (row.redeemed - row.rolled_back),
        refused=refused,
        as_of_us=now_us,
    )


async def count_refusal(db: Database, conn: AsyncConnection, campaign_id: str, reason: Reason) -> None:
    """Add one refusal to a campaign's counts, as one upsert on one of a few shard rows."""
    statement = db.insert(campaign_refusals).values(
        campaign_id=campaign_id, reason=reason.value, shard=secrets.randbelow(REFUSAL_SHARDS), count=1
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[campaign_refusals.c.campaign_id, campaign_refusals.c.reason, campaign_refusals.c.shard],
            set_={"count": campaign_refusals.c.count + 1},
        )
    )


class ProgressHub:
    def __init__(self) -> None:
        self._events: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def notify(self, campaign_id: str) -> None:
        event = self._events.pop(campaign_id, None)
        if event is not None:
            event.set()

    async def wait(self, campaign_id: str, seconds: float) -> None:
        """Return when the campaign changes here, or after `seconds`."""
        event = self._events[campaign_id]
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            pass
