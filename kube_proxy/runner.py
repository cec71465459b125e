"""Upstream's BoundedFrequencyRunner (pkg/proxy/runner) on asyncio.

`run()` asks for a run of `fn` as soon as allowed; requests made while a run is pending, running, or
inside the minimum interval fold into one run. The runner guarantees:
1. at least `min_interval` between the end of one run and the start of the next;
2. a run at least every `max_interval` even when nobody asks (a periodic full sync);
3. after a failed run (`fn` returns False or raises), another run no later than `retry_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable

__all__ = ["BoundedFrequencyRunner"]

log = logging.getLogger("kube_proxy.runner")


class BoundedFrequencyRunner:
    """Runs `fn` when asked, at most once per `min_interval`, at least once per `max_interval`."""

    def __init__(
        self,
        name: str,
        fn: Callable[[], Awaitable[bool] | bool],
        min_interval: float,
        max_interval: float,
        retry_interval: float,
    ) -> None:
        if max_interval < min_interval:
            raise ValueError(f"{name}: max_interval ({max_interval}) must be >= min_interval ({min_interval})")
        self.name = name
        self.fn = fn
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.retry_interval = retry_interval
        self.runs = 0
        self._wanted = asyncio.Event()

    def run(self) -> None:
        """Ask for a run as soon as the minimum interval allows (folded with other pending requests)."""
        self._wanted.set()

    async def _call(self) -> bool:
        try:
            result = self.fn()
            if inspect.isawaitable(result):
                result = await result
            return result is not False
        except Exception:
            log.exception("%s: run failed", self.name)
            return False

    async def loop(self) -> None:
        """Run until cancelled (a task of its own)."""
        loop = asyncio.get_running_loop()
        retry_at: float | None = None
        next_max = loop.time() + self.max_interval
        while True:
            deadline = next_max if retry_at is None else min(next_max, retry_at)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._wanted.wait()
            self._wanted.clear()
            ok = await self._call()
            self.runs += 1
            now = loop.time()
            retry_at = None if ok else now + self.retry_interval
            next_max = now + self.max_interval
            if self.min_interval > 0:
                await asyncio.sleep(self.min_interval)
