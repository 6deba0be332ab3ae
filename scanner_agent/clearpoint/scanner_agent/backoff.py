"""Reconnect delays: exponential growth with jitter, so a store estate coming back after a
platform outage does not reconnect in lockstep."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        """The next wait: uniformly between half and all of the capped exponential step."""
        step = min(self.max_s, self.initial_s * self.factor**self.attempt)
        self.attempt += 1
        return self.rng.uniform(step / 2, step)

    def reset(self) -> None:
        self.attempt = 0
