"""Informers: a local, indexed, always-current copy of a collection, with change handlers.

An `Informer` runs `client.reflector.reflect` (list, watch from the list's resourceVersion,
resume after a dropped stream, relist on 410) and folds what it yields into a `Store`:
- after each list (`LISTED`) the store becomes exactly the listed objects; handlers see
  on_add for new keys, on_update for changed resourceVersions and on_delete for keys gone;
- watch events are applied one at a time: on_add / on_update(old, new) / on_delete(last state);
  a DELETED for a key the store does not hold is dropped (it was never reported as added);
- every `resync_period` each handler gets on_update(obj, obj) for every object (client-go resync).
`has_synced` turns true after the first list; `wait_for_sync()` waits for it. Handlers run one at a
time in event order (sync or async callables); they should only enqueue work, since a slow handler
delays the others. A handler's exception is logged and does not stop the informer. A handler added
to a running informer first gets on_add for every object held, then live events.

`InformerFactory` hands every component the same informer for one (resource, namespace, selectors),
so a collection is listed and watched once per process (client-go SharedInformerFactory).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from apimachinery.resources import ResourceInfo
from client.backoff import Backoff
from client.reflector import DEFAULT_BACKOFF, LISTED, reflect
from client.request import Obj, Selectors
from client.rest import ApiClient
from client.store import NAMESPACE_INDEX, Indexer, Store, namespace_indexer
from client.watch import EventType, WatchEvent

__all__ = ["Handlers", "Informer", "InformerFactory", "Store"]

log = logging.getLogger("client.informer")

OnAdd = Callable[[Obj], Awaitable[None] | None]
OnUpdate = Callable[[Obj, Obj], Awaitable[None] | None]
OnDelete = Callable[[Obj], Awaitable[None] | None]


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


@dataclass(eq=False)
class Handlers:
    """One registration of change handlers; `synced` is set once it has seen every object held."""

    on_add: OnAdd | None = None
    on_update: OnUpdate | None = None
    on_delete: OnDelete | None = None
    synced: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def _call(self, fn: Callable[..., Awaitable[None] | None] | None, *args: Obj) -> None:
        if fn is None:
            return
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("informer handler %s failed", getattr(fn, "__qualname__", fn))


class Informer:
    """A shared, indexed cache of one collection kept current by list+watch, with handlers."""

    def __init__(
        self,
        api: ApiClient,
        res: ResourceInfo | str,
        namespace: str | None = None,
        selectors: Selectors | None = None,
        *,
        indexers: Mapping[str, Indexer] | None = None,
        resync_period: float | None = None,
        page_size: int = 500,
        watch_timeout: int = 300,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self.api = api
        self.resource = api.resource(res)
        self.namespace = namespace or None
        self.selectors = selectors or Selectors()
        self.store = Store({NAMESPACE_INDEX: namespace_indexer, **(indexers or {})})
        self.resync_period = resync_period
        self.last_resource_version = ""
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.backoff = backoff
        self._handlers: list[Handlers] = []
        self._synced = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """Whether the first list has been stored (and handed to the handlers)."""
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Wait until synced; False if `timeout` seconds pass first."""
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            return False
        return True

    @property
    def running(self) -> bool:
        """Whether the informer's task is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start listing and watching in a background task (no-op if running)."""
        if not self.running:
            self._task = asyncio.create_task(self.run(), name=f"informer {self.resource.group_resource}")

    async def stop(self) -> None:
        """Stop the background task and any handler replays."""
        tasks = [t for t in (self._task, *self._side_tasks) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._task = None

    async def __aenter__(self) -> Informer:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self) -> None:
        """List and watch until cancelled, keeping the store and handlers current."""
        async with asyncio.TaskGroup() as tg:
            if self.resync_period:
                tg.create_task(self._resync_loop(self.resync_period))
            failures = 0
            while True:
                try:
                    await self._consume()
                except Exception:  # a bug must not leave the cache stale forever: start over with a list
                    delay = self.backoff.delay(failures)
                    failures += 1
                    log.exception("informer %s failed; restarting in %.1fs", self.resource.group_resource, delay)
                    await asyncio.sleep(delay)

    # --- handlers ----------------------------------------------------------------------

    def add_handler(
        self,
        on_add: OnAdd | None = None,
        on_update: OnUpdate | None = None,
        on_delete: OnDelete | None = None,
    ) -> Handlers:
        """Register handlers; on a running informer they first get on_add for every object held."""
        reg = Handlers(on_add, on_update, on_delete)
        if not self.has_synced and not len(self.store):
            self._handlers.append(reg)
            return reg
        task = asyncio.get_running_loop().create_task(self._replay(reg))
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
        return reg

    def remove_handler(self, reg: Handlers) -> None:
        """Unregister handlers."""
        with contextlib.suppress(ValueError):
            self._handlers.remove(reg)

    def add_indexers(self, indexers: Mapping[str, Indexer]) -> None:
        """Add indexers to the store (objects already held are indexed at once)."""
        self.store.add_indexers(indexers)

    async def _replay(self, reg: Handlers) -> None:
        async with self._lock:
            for obj in self.store.list():
                await reg._call(reg.on_add, obj)
            self._handlers.append(reg)
            if self.has_synced:
                reg.synced.set()

    # --- folding the stream into the store ----------------------------------------------

    async def _consume(self) -> None:
        batch: list[Obj] = []
        stream = reflect(
            self.api,
            self.resource,
            self.namespace,
            self.selectors,
            page_size=self.page_size,
            watch_timeout=self.watch_timeout,
            backoff=self.backoff,
        )
        async with contextlib.aclosing(stream) as items:
            async for item in items:
                if isinstance(item, dict):
                    batch.append(item)
                elif item is LISTED:
                    await self._on_listed(batch)
                    batch = []
                elif isinstance(item, WatchEvent):
                    await self._on_event(item)

    async def _on_listed(self, batch: list[Obj]) -> None:
        async with self._lock:
            added, updated, deleted = self.store.replace(batch)
            for reg in list(self._handlers):
                for obj in deleted:
                    await reg._call(reg.on_delete, obj)
                for obj in added:
                    await reg._call(reg.on_add, obj)
                for old, new in updated:
                    if _rv(old) != _rv(new):
                        await reg._call(reg.on_update, old, new)
            self._synced.set()
            for reg in self._handlers:
                reg.synced.set()

    async def _on_event(self, ev: WatchEvent) -> None:
        self.last_resource_version = ev.resource_version or self.last_resource_version
        if ev.type is EventType.BOOKMARK:
            return
        async with self._lock:
            if ev.type is EventType.DELETED:
                old = self.store.delete(ev.object)
                if old is None:
                    return
                for reg in list(self._handlers):
                    await reg._call(reg.on_delete, ev.object)
                return
            old = self.store.add(ev.object)
            for reg in list(self._handlers):
                if old is None:
                    await reg._call(reg.on_add, ev.object)
                else:
                    await reg._call(reg.on_update, old, ev.object)

    async def _resync_loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            async with self._lock:
                for reg in list(self._handlers):
                    for obj in self.store.list():
                        await reg._call(reg.on_update, obj, obj)


class InformerFactory:
    """One shared informer per (resource, namespace, selectors), started and stopped together."""

    def __init__(
        self,
        api: ApiClient,
        *,
        resync_period: float | None = None,
        watch_timeout: int = 300,
        page_size: int = 500,
    ) -> None:
        self.api = api
        self.resync_period = resync_period
        self.watch_timeout = watch_timeout
        self.page_size = page_size
        self._informers: dict[tuple[ResourceInfo, str | None, Selectors], Informer] = {}
        self._started = False

    def informer(
        self,
        res: ResourceInfo | str,
        namespace: str | None = None,
        selectors: Selectors | None = None,
        *,
        indexers: Mapping[str, Indexer] | None = None,
    ) -> Informer:
        """The shared informer for this collection, created on first use; `indexers` are added to it."""
        key = (self.api.resource(res), namespace or None, selectors or Selectors())
        inf = self._informers.get(key)
        if inf is None:
            inf = self._informers[key] = Informer(
                self.api,
                key[0],
                key[1],
                key[2],
                resync_period=self.resync_period,
                watch_timeout=self.watch_timeout,
                page_size=self.page_size,
            )
            if self._started:
                inf.start()
        if indexers:
            inf.add_indexers(indexers)
        return inf

    async def discard(self, res: ResourceInfo) -> None:
        """Stop and forget every informer of `res` (a resource the server no longer serves)."""
        gone = [k for k in self._informers if k[0] == res]
        for key in gone:
            await self._informers.pop(key).stop()

    def informers(self) -> list[Informer]:
        """Every informer handed out so far."""
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer not yet running; informers requested later start at once."""
        self._started = True
        for inf in self._informers.values():
            inf.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Wait until every informer has synced; False if `timeout` seconds pass first."""
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(inf.wait_for_sync() for inf in self._informers.values()))
        except TimeoutError:
            return False
        return True

    async def shutdown(self) -> None:
        """Stop every informer."""
        self._started = False
        await asyncio.gather(*(inf.stop() for inf in self._informers.values()))

    async def __aenter__(self) -> InformerFactory:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
