"""An in-process view of one watch-cache collection for authorizers that index it.

The RBAC and Node authorizers keep their own indexes (bindings by subject, pods by node), built
from the apiserver's watch cache, never from etcd. A `CacheFeed` registers a watcher on one
resource cache and, whenever asked (`catch_up()`, called at the start of every authorization),
drains what arrived since the last time and hands each change to the owner's callbacks. Nothing
runs in the background and nothing blocks: draining a bounded queue is synchronous, so an index is
exactly as fresh as the watch cache when the request is decided. When the cache relists (or the
queue overflowed), the watcher is closed; the next catch-up starts over from the cache's snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from apiserver.watch_cache import CacheWatcher, WatchCache

__all__ = ["CacheFeed"]

Obj = dict[str, Any]


def _everything(obj: Obj) -> bool:
    return True


class CacheFeed:
    """Follow one resource of the watch cache: `on_reset()` then `on_change(type, obj)` per event."""

    def __init__(
        self,
        cache: WatchCache,
        resource: str,
        on_change: Callable[[str, Obj], None],
        on_reset: Callable[[], None],
    ) -> None:
        self._cache = cache
        self._resource = resource
        self._on_change = on_change
        self._on_reset = on_reset
        self._watcher: CacheWatcher | None = None
        self._arrived = False  # an item was queued since the last catch-up

    def catch_up(self) -> bool:
        """Apply every change the cache has seen since the last call; True when anything changed."""
        watcher = self._watcher
        if watcher is not None and not self._arrived and not watcher.closed:
            return False  # (every request asks: this is the common answer)
        if not self._cache.ready.is_set() and watcher is None:
            return False
        self._arrived = False
        changed = False
        if self._watcher is None:
            self._start()
            changed = True
        queue = self._watcher.queue if self._watcher else None
        while queue is not None and not queue.empty():
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:  # pragma: no cover - empty() said otherwise; nothing else drains it
                break
            if item is None:  # relisted or overflowed: start over from the snapshot
                self._start()
                queue = self._watcher.queue if self._watcher else None
                changed = True
                continue
            self._on_change(*item)
            changed = True
        return changed

    def _start(self) -> None:
        if self._watcher is not None:
            self._cache.cache(self._resource).unwatch(self._watcher)
        self._on_reset()
        # initial=True queues every current object as ADDED, then follows live events
        self._watcher = self._cache.cache(self._resource).watch(0, _everything, initial=True)
        # the cache offers an item to the sink when the queue is empty: noted here, and queued as usual
        self._watcher.sink = self._note_arrival

    def _note_arrival(self, item: object) -> bool:
        self._arrived = True
        return False

    def close(self) -> None:
        """Stop following."""
        if self._watcher is not None:
            self._cache.cache(self._resource).unwatch(self._watcher)
            self._watcher = None
