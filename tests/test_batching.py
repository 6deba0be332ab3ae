"""The batcher: calls arriving while a batch runs go in the next batch; failures reach every caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from clearpoint.platform.core.batching import Batcher, Split


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


async def test_items_with_one_key_never_share_a_batch_and_keep_their_order() -> None:
    seen: list[list[tuple[str, int]]] = []

    async def run(items: Sequence[tuple[str, int]]) -> list[int]:
        seen.append(list(items))
        await asyncio.sleep(0.01)
        return [n for _, n in items]

    batcher: Batcher[tuple[str, int], int] = Batcher(run, key=lambda item: item[0], max_in_flight=2)
    items = [("a", 1), ("a", 2), ("b", 3), ("a", 4), ("c", 5)]
    assert await asyncio.gather(*(batcher.submit(i) for i in items)) == [1, 2, 3, 4, 5]
    assert all(len({key for key, _ in batch}) == len(batch) for batch in seen)
    order_of_a = [n for batch in seen for key, n in batch if key == "a"]
    assert order_of_a == [1, 2, 4]


async def test_a_split_batch_is_run_item_by_item() -> None:
    seen: list[list[int]] = []

    async def run(items: Sequence[int]) -> list[int]:
        seen.append(list(items))
        if len(items) > 1 and 13 in items:
            raise Split  # one item spoils the batch
        if items == [13]:
            raise ValueError("thirteen")
        return [i * 2 for i in items]

    batcher: Batcher[int, int] = Batcher(run)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in (1, 13, 2)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == 2 and results[2] == 4
    assert isinstance(results[1], ValueError)
    assert seen == [[1, 13, 2], [1], [13], [2]]
