"""Group commit for redemptions on PostgreSQL: concurrent redemptions share one statement.

Requests that arrive while a statement is in flight queue up and go together in the next one: one
round trip, one commit and one hold of each campaign's row lock for the whole group. A group holds
distinct vouchers and distinct request ids only (a repeat waits for the next group), so every rule
applies per item exactly as in the single statement. When any item's campaign refuses (stock,
window), the statement fails as a whole through the NOT NULL on uses_remaining and every item of
the group is retried alone, where refusals are told apart; that is rare, so it costs little.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

import asyncpg
from clearpoint.platform.db import Database

GROUP_REDEEM_SQL = """
WITH req AS (
  SELECT * FROM unnest($1::int[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[],
                       $6::varchar[], $7::varchar[], $8::bytea[], $9::varchar[])
    AS t(idx, voucher_id, campaign_id, kid, store_id, partner_id, request_id, digest, redemption_id)
),
v AS (
  UPDATE vouchers SET uses_made = vouchers.uses_made + 1
  FROM req
  WHERE vouchers.voucher_id = req.voucher_id
    AND vouchers.campaign_id = req.campaign_id
    AND vouchers.kid = req.kid
    AND vouchers.uses_made < vouchers.uses_allowed
    AND EXISTS (SELECT 1 FROM issuer_keys k WHERE k.kid = vouchers.kid AND k.state <> 'retired')
    AND EXISTS (SELECT 1 FROM campaigns cm WHERE cm.campaign_id = req.campaign_id
                AND (cm.all_stores = 1 OR EXISTS (SELECT 1 FROM campaign_stores cs
                     WHERE cs.campaign_id = cm.campaign_id AND cs.store_id = req.store_id)))
    AND NOT EXISTS (SELECT 1 FROM redemptions rd
                    WHERE rd.redeemed_by = req.partner_id AND rd.request_id = req.request_id)
    AND NOT EXISTS (SELECT 1 FROM idempotency i WHERE i.principal_id = req.partner_id
                    AND i.method = 'Redeem' AND i.request_id = req.request_id)
  RETURNING req.idx, req.campaign_id, vouchers.uses_allowed - vouchers.uses_made AS remaining
),
wanted AS (SELECT campaign_id, count(*) AS n FROM v GROUP BY campaign_id),
c AS (
  UPDATE campaigns SET redeemed = campaigns.redeemed + wanted.n
  FROM wanted
  WHERE campaigns.campaign_id = wanted.campaign_id
    AND campaigns.redeemed - campaigns.rolled_back + wanted.n <= campaigns.total_stock
    AND campaigns.valid_from_us <= $10::bigint AND campaigns.valid_until_us > $10::bigint
  RETURNING campaigns.campaign_id, campaigns.name, campaigns.prize_description
),
r AS (
  INSERT INTO redemptions (redemption_id, voucher_id, campaign_id, store_id, redeemed_by, request_id,
                           request_sha256, redeemed_us, uses_remaining)
  SELECT req.redemption_id, req.voucher_id, req.campaign_id, req.store_id, req.partner_id, req.request_id,
         req.digest, $10::bigint,
         CASE WHEN EXISTS (SELECT 1 FROM c WHERE c.campaign_id = v.campaign_id) THEN v.remaining END
  FROM v JOIN req ON req.idx = v.idx
  RETURNING redemption_id
)
SELECT v.idx, v.remaining, c.name, c.prize_description, (SELECT count(*) FROM r) AS inserted
FROM v JOIN c ON c.campaign_id = v.campaign_id
"""


@dataclass(frozen=True, slots=True)
class Item:
    voucher_id: str
    campaign_id: str
    kid: str
    store_id: str
    partner_id: str
    request_id: str
    digest: bytes
    redemption_id: str


class GroupFailed(Exception):
    """The group's statement failed as a whole: retry this item on its own."""


class GroupRedeemer:
    def __init__(self, db: Database, clock: Any, max_group: int = 64, max_in_flight: int = 4) -> None:
        self._db = db
        self._clock = clock
        self._max_group = max_group
        self._max_in_flight = max_in_flight
        self._queue: deque[tuple[Item, asyncio.Future[Any]]] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.groups = 0  # statements sent, and the largest group: how much sharing the load gave
        self.largest = 0

    async def redeem(self, item: Item) -> tuple[int, Any] | None:
        """(now, row) if the item was redeemed in a group, None if its voucher step matched nothing."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    def _take(self) -> list[tuple[Item, asyncio.Future[Any]]]:
        group: list[tuple[Item, asyncio.Future[Any]]] = []
        vouchers: set[str] = set()
        requests: set[tuple[str, str]] = set()
        kept: deque[tuple[Item, asyncio.Future[Any]]] = deque()
        while self._queue and len(group) < self._max_group:
            entry = self._queue.popleft()
            item = entry[0]
            if item.voucher_id in vouchers or (item.partner_id, item.request_id) in requests:
                kept.append(entry)  # a repeat goes in a later group, after this one's outcome
                continue
            vouchers.add(item.voucher_id)
            requests.add((item.partner_id, item.request_id))
            group.append(entry)
        self._queue.extendleft(reversed(kept))
        return group

    async def _drain(self) -> None:
        try:
            while self._queue:
                group = self._take()
                self.groups += 1
                self.largest = max(self.largest, len(group))
                now = self._clock()
                try:
                    rows = await self._run(group, now)
                except (asyncpg.exceptions.NotNullViolationError, asyncpg.exceptions.UniqueViolationError):
                    for _, future in group:
                        if not future.done():
                            future.set_exception(GroupFailed())
                    continue
                except Exception as exc:  # the database is unreachable, say: every caller hears it
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for i, (_, future) in enumerate(group):
                    if not future.done():
                        row = rows.get(i)
                        future.set_result((now, row) if row is not None else None)
        finally:
            self._in_flight -= 1

    async def _run(self, group: list[tuple[Item, asyncio.Future[Any]]], now: int) -> dict[int, Any]:
        items = [item for item, _ in group]
        args = [
            list(range(len(items))),
            [i.voucher_id for i in items],
            [i.campaign_id for i in items],
            [i.kid for i in items],
            [i.store_id for i in items],
            [i.partner_id for i in items],
            [i.request_id for i in items],
            [i.digest for i in items],
            [i.redemption_id for i in items],
            now,
        ]
        async with self._db.autocommit() as conn:
            raw = await conn.get_raw_connection()
            records = await raw.driver_connection.fetch(GROUP_REDEEM_SQL, *args)
        return {record["idx"]: record for record in records}
