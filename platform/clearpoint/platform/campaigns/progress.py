"""A campaign's progress (issued, redeemed, rolled back, refusals by reason), and its live feed.

Watchers of a campaign share one feed (core.fanout): changes this process commits are read at once,
changes other platform processes commit at the next poll; the database stays the one truth.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Collection

from clearpoint.platform.campaigns.records import Progress
from clearpoint.platform.campaigns.rules import REFUSAL_SHARDS
from clearpoint.platform.campaigns.tables import campaign_refusals, campaigns
from clearpoint.platform.core.clock import Clock
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason
from clearpoint.platform.core.fanout import Fanout
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection


async def progress(conn: AsyncConnection, campaign_id: str, now_us: int) -> Progress:
    return (await progress_of(conn, [campaign_id], now_us))[campaign_id]


async def progress_of(conn: AsyncConnection, campaign_ids: Collection[str], now_us: int) -> dict[str, Progress]:
    """The progress of every campaign named that exists, in two queries however many are named."""
    rows = await conn.execute(
        select(
            campaigns.c.campaign_id,
            campaigns.c.issued,
            campaigns.c.redeemed,
            campaigns.c.rolled_back,
            campaigns.c.total_stock,
        ).where(campaigns.c.campaign_id.in_(campaign_ids))
    )
    refused: defaultdict[str, dict[str, int]] = defaultdict(dict)
    counts = await conn.execute(
        select(campaign_refusals.c.campaign_id, campaign_refusals.c.reason, func.sum(campaign_refusals.c.count))
        .where(campaign_refusals.c.campaign_id.in_(campaign_ids))
        .group_by(campaign_refusals.c.campaign_id, campaign_refusals.c.reason)
    )
    for campaign_id, reason, count in counts:
        refused[campaign_id][reason] = int(count)
    return {
        row.campaign_id: Progress(
            campaign_id=row.campaign_id,
            issued=row.issued,
            redeemed=row.redeemed,
            rolled_back=row.rolled_back,
            remaining_stock=row.total_stock - (row.redeemed - row.rolled_back),
            refused=refused[row.campaign_id],
            as_of_us=now_us,
        )
        for row in rows
    }


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


def progress_feed(db: Database, clock: Clock, poll_seconds: float) -> Fanout[Progress]:
    """Live progress of the campaigns watched in this process, read together by one task."""

    async def read(campaign_ids: Collection[str]) -> dict[str, Progress]:
        async with db.read() as conn:
            return await progress_of(conn, campaign_ids, clock())

    return Fanout(read, poll_seconds=poll_seconds)
