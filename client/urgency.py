"""`Urgency`: counts urgent work in flight so that best-effort background work can step aside.

A component marks the work a user waits on (a kubelet starting containers and writing their status)
with `with urgency:`; a background writer (the event recorder) calls `await urgency.settled(max_wait)`
before each write and so goes after that work on a busy machine instead of between it. The wait is
bounded: background work is delayed, never starved.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Urgency"]


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
