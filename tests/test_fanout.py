"""core.fanout: one reader for every watcher, the newest value for a slow one, and a reader that
survives its failures."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import pytest
from clearpoint.platform.core.fanout import Fanout


class Source:
    """Values by key, with a count of reads and the keys each read asked for."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.asked: list[set[str]] = []
        self.failing = False

    async def read(self, keys: Collection[str]) -> dict[str, int]:
        self.asked.append(set(keys))
        if self.failing:
            raise ConnectionError("database away")
        return {k: self.values[k] for k in keys if k in self.values}


async def test_many_watchers_of_many_keys_cost_one_read_per_change() -> None:
    source = Source()
    source.values = {f"k{i}": 0 for i in range(10)}
    feed = Fanout(source.read, poll_seconds=60, min_gap_seconds=0.01)
    async with _watching(feed, [f"k{i % 10}" for i in range(200)]) as watches:
        firsts = await asyncio.wait_for(asyncio.gather(*(anext(w) for w in watches)), 2)
        assert firsts == [0] * 200
        before = len(source.asked)
        source.values["k3"] = 1
        feed.changed("k3")
        feed.changed("k3")
        got = await asyncio.wait_for(asyncio.gather(*(anext(w) for w in watches[3::10])), 2)
        assert got == [1] * 20
        assert len(source.asked) - before == 1  # one read for 20 watchers and two changes
        assert source.asked[-1] == {"k3"}  # of the key that changed only
    await feed.close()


async def test_a_watcher_that_does_not_read_gets_the_newest_value_not_a_backlog() -> None:
    source = Source()
    source.values = {"k": 0}
    feed = Fanout(source.read, poll_seconds=60, min_gap_seconds=0.0)
    async with feed.watch("k") as slow, feed.watch("k") as fast:
        assert (await anext(slow), await anext(fast)) == (0, 0)
        for value in range(1, 51):
            source.values["k"] = value
            feed.changed("k")
            assert await asyncio.wait_for(anext(fast), 1) == value
        assert await asyncio.wait_for(anext(slow), 1) == 50  # one value for fifty missed
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(slow), 0.1)  # and nothing queued behind it
    await feed.close()


async def test_an_unchanged_value_is_not_sent_again_and_other_processes_changes_are_polled() -> None:
    source = Source()
    source.values = {"k": 7}
    feed = Fanout(source.read, poll_seconds=0.05, min_gap_seconds=0.0)
    async with feed.watch("k") as watch:
        assert await anext(watch) == 7
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(watch), 0.3)  # polled several times, nothing new
        assert len(source.asked) >= 3
        source.values["k"] = 8  # changed elsewhere: no `changed` call here
        assert await asyncio.wait_for(anext(watch), 1) == 8
    await feed.close()


async def test_the_reader_outlives_a_failing_source(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clearpoint.platform.core import fanout

    monkeypatch.setattr(fanout, "RETRY_SECONDS", 0.05)
    source = Source()
    source.values = {"k": 1}
    source.failing = True
    feed = Fanout(source.read, poll_seconds=60, min_gap_seconds=0.0)
    async with feed.watch("k") as watch:
        await asyncio.sleep(0.3)  # several failed reads
        assert len(source.asked) >= 3
        source.failing = False
        assert await asyncio.wait_for(anext(watch), 1) == 1
    assert caplog.text.count("cannot be read") == 1  # one line for the outage, not one per retry
    assert "read again" in caplog.text
    await feed.close()


async def test_reads_are_paced_by_the_number_of_watchers() -> None:
    """With sends_per_second 1000 and 500 watchers, the reader reads at most about twice a second
    however often values change."""
    source = Source()
    source.values = {"k": 0}
    feed = Fanout(source.read, poll_seconds=60, min_gap_seconds=0.0, sends_per_second=1000)
    async with _watching(feed, ["k"] * 500):
        await asyncio.sleep(0.05)
        before = len(source.asked)
        for value in range(1, 200):
            source.values["k"] = value
            feed.changed("k")
            await asyncio.sleep(0.005)  # a change every 5 ms for about a second
        assert len(source.asked) - before <= 4
    await feed.close()


async def test_a_key_nobody_watches_is_forgotten_and_not_read() -> None:
    source = Source()
    source.values = {"a": 1, "b": 2}
    feed = Fanout(source.read, poll_seconds=0.05, min_gap_seconds=0.0)
    async with feed.watch("a") as a:
        async with feed.watch("b") as b:
            assert (await anext(a), await anext(b)) == (1, 2)
        assert not feed.watching("b")
        feed.changed("b")  # nobody watches it: no read of it
        await asyncio.sleep(0.2)
        assert all(asked == {"a"} for asked in source.asked[-3:])
    assert feed.watchers == 0
    await feed.close()


class _watching:
    """Open watches of `keys` (one per entry) for the life of the block."""

    def __init__(self, feed: Fanout[int], keys: list[str]) -> None:
        self.feed, self.keys = feed, keys
        self.stack = __import__("contextlib").AsyncExitStack()

    async def __aenter__(self) -> list[object]:
        return [await self.stack.enter_async_context(self.feed.watch(k)) for k in self.keys]

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()
