"""Run chosen controllers in-process against the test apiserver, and wait on conditions."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from client.informer import InformerFactory
from client.rest import ApiClient
from controller_manager.base import Context
from controller_manager.controllers import select

T = TypeVar("T")


@contextlib.asynccontextmanager
async def controllers(apiserver: str, names: str, **options: float | str) -> AsyncIterator[Context]:
    """Run the controllers named like `--controllers` (e.g. "replicaset,deployment") until the block ends."""
    chosen = select(names)
    async with ApiClient(apiserver) as api:
        factory = InformerFactory(api)
        ctx = Context(api, factory, {k.replace("_", "-"): v for k, v in options.items()})
        running = [cls(ctx) for cls in chosen]
        factory.start()
        tasks = [asyncio.create_task(c.run()) for c in running]
        try:
            assert await factory.wait_for_sync(10), "informers did not sync"
            yield ctx
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await ctx.stop_events()
            await factory.shutdown()


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 15.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last={last!r}")
