"""Exponential backoff with jitter, shared by request retries, watch reconnects and leader election.

`Backoff.delay(n)` is `initial * factor**n`, capped at `cap`, then reduced by up to `jitter`
(a fraction) so that many clients retrying together spread out. It is a pure function of
the attempt number and the random source, so callers own the attempt counter and the sleeping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff settings: `initial` seconds, times `factor` per attempt, at most `cap`."""

    initial: float = 0.1
    factor: float = 2.0
    cap: float = 10.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        base = min(self.cap, self.initial * self.factor ** min(attempt, 64))
        if self.jitter <= 0:
            return base
        return base * (1 - self.jitter * self.rng.random())
