"""`Urgency`: counts urgent work in flight so that best-effort background work can step aside.

A component marks the work a user waits on (a kubelet starting containers and writing their status)
with `with urgency:`; a background writer (the event recorder) calls `await urgency.settled(max_wait)`
before each write and so goes after that work on a busy machine instead of between it. The wait is
bounded: background work is delayed, never starved.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["Deferral", "Urgency"]


class Urgency:
    """A count of urgent operations in flight, and an event set while there are none."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def busy(self) -> bool:
        """Whether urgent work is in flight."""
        return self._count > 0

    def __enter__(self) -> Urgency:
        self._count += 1
        self._idle.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    async def settled(self, max_wait: float) -> bool:
        """Wait until no urgent work is in flight, at most `max_wait` seconds; whether it settled."""
        if self._count == 0:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_wait):
                await self._idle.wait()
                return True
        return False


class Deferral:
    """A background writer's bounded step-aside: at most `max_defer` seconds of waiting per busy spell."""

    def __init__(self, urgency: Urgency, max_defer: float, poll: float | None = None) -> None:
        self.urgency = urgency
        self.max_defer = max_defer
        self.poll = poll  # how often `give_up` is asked while waiting (None: it is asked only between waits)
        self._until: float | None = None

    async def wait(self, give_up: Callable[[], bool] = lambda: False) -> None:
        """Wait while urgent work is in flight, until this spell's allowance runs out or `give_up()` says so."""
        # once a spell's allowance has run out, writes go out until the work settles
        loop = asyncio.get_running_loop()
        while self.urgency.busy:
            if give_up():
                return
            if self._until is None:
                self._until = loop.time() + self.max_defer
            remaining = self._until - loop.time()
            if remaining <= 0:
                return
            await self.urgency.settled(remaining if self.poll is None else min(remaining, self.poll))
        self._until = None
