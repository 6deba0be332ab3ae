"""Coalescing: calls that arrive while a batch is at the database go together in the next one.

The stream of one agent keeps up to a window of scans in flight; each needs the same small read
and write. Sent one by one they cost a round trip (and, on SQLite, a commit) each; coalesced, a
burst of scans costs one of each. Under no load a call goes alone at once, so nothing waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    def __init__(self, run: Callable[[list[K]], Awaitable[Sequence[V]]], max_batch: int = 128) -> None:
        self._run = run
        self.max_batch = max_batch
        self._queue: list[tuple[K, asyncio.Future[V]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0
        self.largest = 0

    async def __call__(self, item: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            self.batches += 1
            self.largest = max(self.largest, len(batch))
            try:
                results = await self._run([item for item, _ in batch])
            except Exception as exc:
                _settle(batch, exc)
                continue
            except BaseException as exc:  # cancelled: tell the callers, then stop
                _settle(batch, exc)
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


def _settle(batch: list[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
