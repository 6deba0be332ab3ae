"""Group commit: requests that arrive while a batch is at the database go together in the next one.

One round trip, one commit and one hold of each hot row's lock then serve the whole batch, which is
what gets past a row every request updates (a campaign's counter) and past SQLite's cost per
transaction. Under no load an item goes alone at once, so nothing waits for company. Items with
the same key never share a batch, and a later one waits until the earlier has settled, so two
scans of one voucher apply in the order they came.

One bad item must not cost the others: a batch that fails as a whole (`Split`, or any error but
the database being away) is run again item by item, where each item's own outcome or error is told
apart. So `run` must apply all of a batch or none of it (one statement, or one transaction).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from clearpoint.platform.core import metrics
from clearpoint.platform.core.database import DatabaseUnavailable

log = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741 (item)
R = TypeVar("R")


class Split(Exception):
    """The batch failed as a whole (an item broke a constraint): run its items one at a time."""


@dataclass(slots=True)
class _Entry(Generic[I, R]):
    item: I
    future: asyncio.Future[R]
    key: Hashable | None


class Batcher(Generic[I, R]):
    """Runs `run` over batches of submitted items; each caller gets its own item's result."""

    def __init__(
        self,
        run: Callable[[Sequence[I]], Awaitable[Sequence[R]]],
        *,
        key: Callable[[I], Hashable | None] | None = None,
        max_batch: int = 64,
        max_in_flight: int = 1,
        name: str = "",
    ) -> None:
        self._run = run
        self._sizes = metrics.BATCH_ITEMS.labels(name or "unnamed")
        self._key = key
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._queue: deque[_Entry[I, R]] = deque()
        self._busy: set[Hashable] = set()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # batches sent, and the largest: how much sharing the load gave
        self.largest = 0

    async def submit(self, item: I) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Entry(item, future, self._key(item) if self._key else None))
        if self._in_flight < self.max_in_flight:
            # The sender starts on the loop's next turn, so items submitted in this turn go with it.
            self._in_flight += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while batch := self._take():
                await self._send(batch)
        finally:
            self._in_flight -= 1

    def _take(self) -> list[_Entry[I, R]]:
        batch: list[_Entry[I, R]] = []
        kept: deque[_Entry[I, R]] = deque()
        while self._queue and len(batch) < self.max_batch:
            entry = self._queue.popleft()
            if entry.future.done():
                continue  # its caller went away before it was sent: nothing was done, nothing is owed
            if entry.key is not None:
                if entry.key in self._busy:
                    kept.append(entry)  # after the earlier item with this key has settled
                    continue
                self._busy.add(entry.key)
            batch.append(entry)
        self._queue.extendleft(reversed(kept))
        return batch

    async def _send(self, batch: list[_Entry[I, R]]) -> None:
        self.batches += 1
        self._sizes.observe(len(batch))
        self.largest = max(self.largest, len(batch))
        try:
            try:
                await self._settle(batch)
            except DatabaseUnavailable as exc:  # every caller hears it; one by one would only add load
                _fail(batch, exc)
            except Exception as exc:
                if len(batch) == 1:
                    raise
                if not isinstance(exc, Split):
                    log.warning("a batch of %d failed (%r); running its items one by one", len(batch), exc)
                for entry in batch:  # rare: one item spoilt the batch; alone, each gets its own outcome
                    try:
                        await self._settle([entry])
                    except Exception as alone:
                        _fail([entry], alone)
        except Exception as exc:
            _fail(batch, exc)
        except BaseException as exc:  # cancelled (shutdown): tell the callers, then stop
            _fail(batch, exc)
            raise
        finally:
            for entry in batch:
                if entry.key is not None:
                    self._busy.discard(entry.key)

    async def _settle(self, batch: list[_Entry[I, R]]) -> None:
        results = await self._run([entry.item for entry in batch])
        for entry, result in zip(batch, results, strict=True):
            if not entry.future.done():
                entry.future.set_result(result)


def _fail(batch: Sequence[_Entry[I, R]], exc: BaseException) -> None:
    for entry in batch:
        if not entry.future.done():
            entry.future.set_exception(exc)
