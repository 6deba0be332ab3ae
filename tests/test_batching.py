"""The batcher: calls arriving while a batch runs go in the next batch; failures reach every caller."""

from __future__ import annotations

import asyncio

import pytest
from clearpoint.platform.core.batching import Batcher


async def test_calls_that_arrive_together_share_a_batch_and_get_their_own_results() -> None:
    seen: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        seen.append(items)
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(run, max_batch=4)
    assert await batcher.submit(1) == 10  # alone: no waiting for company
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert seen[0] == [1] and all(len(b) <= 4 for b in seen) and len(seen) == 4
    assert sorted(i for b in seen[1:] for i in b) == list(range(10))


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def run(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise RuntimeError("database gone")
        return items

    batcher: Batcher[int, int] = Batcher(run)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    later = [asyncio.create_task(batcher.submit(i)) for i in (2, 3)]
    with pytest.raises(RuntimeError, match="database gone"):
        await first
    assert await asyncio.gather(*later) == [2, 3]


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    async def run(items: list[int]) -> list[int]:
        await asyncio.sleep(0.02)
        return items

    batcher: Batcher[int, int] = Batcher(run)
    a, b = asyncio.create_task(batcher.submit(1)), asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0.005)
    a.cancel()
    assert await b == 2
    with pytest.raises(asyncio.CancelledError):
        await a
