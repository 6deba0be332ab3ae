"""Wake-ups for campaign watchers.

A watcher is woken at once by changes this process commits, and re-reads the database at a short
interval to see changes committed by other platform processes; the database stays the one truth.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


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
