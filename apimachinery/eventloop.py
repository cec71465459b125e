"""The event loop every server process runs on: uvloop when it is installed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["uvloop_factory"]


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop factory for `asyncio.Runner(loop_factory=…)`, None without uvloop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
