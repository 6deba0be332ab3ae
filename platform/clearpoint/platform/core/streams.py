"""How many streams one caller may hold open at once.

A stream costs the server for as long as it is open, however little it is read; without a bound,
one partner's key could open enough of them to slow every other caller. Each caller (a principal:
an API key's holder, or a store agent) holds at most `per_caller` at a time in one process; the
next is refused at once with TOO_MANY_STREAMS, and a stream's place is free again when it ends.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Hashable, Iterator

from clearpoint.platform.core.errors import Reason, Refusal

# Enough for a dashboard per campaign and then some; a caller needing more runs more processes.
DEFAULT_PER_CALLER = 200


class StreamLimit:
    def __init__(self, per_caller: int = DEFAULT_PER_CALLER) -> None:
        if per_caller < 1:
            raise ValueError("a caller must be allowed at least one stream")
        self.per_caller = per_caller
        self._open: Counter[Hashable] = Counter()

    @property
    def total(self) -> int:
        """Streams open now, of all callers."""
        return sum(self._open.values())

    @contextlib.contextmanager
    def hold(self, caller: Hashable, who: str) -> Iterator[None]:
        """Count a stream of `caller` (named `who` in the refusal) for the life of the block."""
        if self._open[caller] >= self.per_caller:
            raise Refusal(
                Reason.TOO_MANY_STREAMS,
                f"{who} already has {self.per_caller} streams open, the most one caller may hold at once:"
                " close (or cancel) streams no longer read before opening more",
                limit=str(self.per_caller),
            )
        self._open[caller] += 1
        try:
            yield
        finally:
            self._open[caller] -= 1
            if self._open[caller] <= 0:
                del self._open[caller]
