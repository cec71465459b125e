"""The watch cache: one etcd watch per resource type, fanned out to every client watch.

Each `WatchCache` lists its prefix once, then follows one etcd watch. It keeps the
current objects and a bounded window of recent events; a client watch starting at
resourceVersion N replays the window's events after N and then follows live events.
N older than the window gives `TooOld` (the API answers 410 Expired). A slow client
whose bounded queue fills is disconnected rather than allowed to hold memory.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import Gauge

from apiserver.storage import (
    Compacted,
    EtcdStorage,
    KeyNotFound,
    StorageError,
    StoredObject,
    WatchEvent,
)

__all__ = ["CacheEvent", "CacheWatcher", "TooOld", "WatchCache"]

log = logging.getLogger("apiserver.watchcache")

T = TypeVar("T")

OPEN_WATCHES = Gauge("apiserver_registered_watchers", "open client watches", ["resource"])

Predicate = Callable[[dict[str, Any]], bool]
# A client watch's queue item: the event type it sees, the object as stored (its JSON kept: a watch in JSON never
# decodes it), and the cache event's encodings to share (None for an initial ADDED from the snapshot); in-process
# watchers get (type, object).
Item = tuple[str, dict[str, Any]] | tuple[str, StoredObject, dict[Any, bytes] | None]


PROGRESS_KEY = "-watch-cache-progress"
_MARK_AFTER = 0.05


class TooOld(Exception):
    """The requested resourceVersion is older than the history kept."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True)
class CacheEvent:
    """A change as the cache saw it: ADDED, MODIFIED or DELETED at a revision."""

    type: str
    key: str
    stored: StoredObject  # the object as of this event (a DELETED one's last state, at the deletion's revision)
    prev: StoredObject | None  # the object before it, if the cache held it
    revision: int
    # Each encoding of this event's watch frame, made once and sent to every watcher that asks for it.
    encoded: dict[Any, bytes] = field(default_factory=dict, compare=False, repr=False)


@dataclass(eq=False)
class CacheWatcher:
    """One client watch: a bounded queue of (type, object) fed by the cache (with `shared`, of
    (type, stored object, the cache event's shared encodings)); no predicate matches everything."""

    predicate: Predicate | None
    queue: asyncio.Queue[Item | None] = field(default_factory=lambda: asyncio.Queue(maxsize=10_000))
    closed: bool = False
    overflowed: bool = False
    shared: bool = False
    # Set by the consumer while it waits on an empty queue: takes an item straight to the client (False:
    # it cannot now, the item is queued). Items go to it only while the queue is empty, so order holds.
    sink: Callable[[Item], bool] | None = None

    def offer(self, ev: CacheEvent) -> None:
        """Filter one event for this watcher and enqueue it without blocking."""
        if self.closed:
            return
        predicate, stored = self.predicate, ev.stored
        if predicate is None:  # everything: an event is seen as it happened
            out: str | None = ev.type
        elif ev.type == "DELETED":
            out = "DELETED" if predicate(stored.obj) else None
        else:
            now, prev = predicate(stored.obj), ev.prev
            before = prev is not None and predicate(prev.obj)
            out = ("MODIFIED" if before else "ADDED") if now else ("DELETED" if before else None)
        if out is not None:
            self._put((out, stored, ev.encoded) if self.shared else (out, stored.obj))

    def _put(self, item: Item | None) -> None:
        sink = self.sink
        if sink is not None and item is not None and self.queue.empty() and sink(item):
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        """End the stream: the consumer sees None next."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        if self.queue.full():  # make room for the end marker
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class ResourceCache:
    """Current objects and recent events of one resource type."""

    def __init__(self, resource: str, window: int) -> None:
        self.resource = resource
        self._window: deque[CacheEvent] = deque(maxlen=window)
        self._objects: dict[str, StoredObject] = {}
        self._watchers: set[CacheWatcher] = set()
        self._oldest = 0  # every event after this revision is in the window
        self._sorted: list[str] | None = None  # the keys in order, until one is added or removed
        self._derived: dict[Callable[[list[StoredObject]], Any], tuple[int, Any]] = {}  # build → (changed, value)
        self.changed = 0
        """The revision of the last change to these objects (or of the list they were loaded from): at any
        revision from it to the cache's own, the objects here are exactly what etcd held."""

    def reset(self, items: list[StoredObject], revision: int) -> None:
        """Replace the contents after a (re)list; open watches must re-watch."""
        self._objects = {s.key: s for s in items}
        self._sorted = None
        self._derived.clear()
        self._window.clear()
        self._oldest = self.changed = revision
        for w in list(self._watchers):
            w.close()
        self._watchers.clear()

    def apply(self, ev: WatchEvent) -> None:
        """Fold one etcd event in and fan it out."""
        # the cache's own copy is the previous object: every key etcd held at the cache's list, and every change
        # since, is here (a value no decoder could read is in neither the cache nor any client's view)
        prev = self._objects.get(ev.key)
        self.changed = ev.revision
        if prev is None or ev.type != "PUT":  # a key added or removed
            self._sorted = None
        if ev.type == "PUT":
            stored = ev.stored
            assert stored is not None
            self._objects[ev.key] = stored
            if prev is not None and not ev.created:
                cev = CacheEvent("MODIFIED", ev.key, stored, prev, ev.revision)
            else:
                cev = CacheEvent("ADDED", ev.key, stored, None, ev.revision)
        else:
            self._objects.pop(ev.key, None)
            if prev is None:
                return
            cev = CacheEvent("DELETED", ev.key, prev.at_revision(ev.revision), prev, ev.revision)
        if len(self._window) == self._window.maxlen:
            self._oldest = self._window[0].revision
        self._window.append(cev)
        for w in list(self._watchers):
            w.offer(cev)
            if w.closed:
                self._watchers.discard(w)

    def snapshot(self) -> list[StoredObject]:
        """Every cached object, sorted by key."""
        return [self._objects[k] for k in self._keys()]

    def under(self, prefix: str) -> list[StoredObject]:
        """The cached objects whose keys start with `prefix` (a namespace's), in key order."""
        keys = self._keys()
        out = []
        for i in range(bisect.bisect_left(keys, prefix), len(keys)):
            if not keys[i].startswith(prefix):
                break
            out.append(self._objects[keys[i]])
        return out

    def derived(self, build: Callable[[list[StoredObject]], T]) -> T:
        """`build(self.snapshot())`, worked out again only once these objects have changed (for admission's
        reads of small, rarely written collections: webhook configurations, PriorityClasses). What it
        returns is shared by every caller until then, so no caller may change it."""
        known = self._derived.get(build)
        if known is not None and known[0] == self.changed:
            return known[1]  # type: ignore[no-any-return]
        value = build(self.snapshot())
        self._derived[build] = (self.changed, value)
        return value

    def ordered_from(self, start: str) -> list[StoredObject]:
        """The cached objects whose keys sort at or after `start`, in key order."""
        keys = self._keys()
        return [self._objects[k] for k in keys[bisect.bisect_left(keys, start) :]]

    def _keys(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self._objects)
        return self._sorted

    def get(self, key: str) -> StoredObject | None:
        """The cached object at key, if any."""
        return self._objects.get(key)

    def watch(
        self, from_revision: int, predicate: Predicate | None, initial: bool, *, shared: bool = False
    ) -> CacheWatcher:
        """Register a client watch: initial ADDED events (if asked) or the window's events
        after from_revision, then live events. A None predicate matches everything; `shared` queues
        each event's shared encodings too (see `Item`)."""
        if not initial and from_revision < self._oldest:
            raise TooOld(from_revision, self._oldest)
        w = CacheWatcher(predicate, asyncio.Queue(maxsize=len(self._objects) + 10_000), shared=shared)
        if initial:
            for stored in self.snapshot():
                if predicate is None or predicate(stored.obj):
                    w._put(("ADDED", stored, None) if shared else ("ADDED", stored.obj))
        else:
            for ev in self._window:
                if ev.revision > from_revision:
                    w.offer(ev)
        self._watchers.add(w)
        OPEN_WATCHES.labels(self.resource).inc()
        return w

    def unwatch(self, w: CacheWatcher) -> None:
        """Forget a client watch."""
        w.close()
        self._watchers.discard(w)
        OPEN_WATCHES.labels(self.resource).dec()


class WatchCache:
    """All resource caches, kept from a single etcd watch on the registry prefix.

    One ordered etcd stream means that when an event at revision R arrives, every
    cache has seen everything up to R: `revision` is exact for all types at once,
    which lets a consistent read wait for the cache instead of going to etcd.
    """

    def __init__(self, storage: EtcdStorage, prefix: str = "/registry/", window: int = 1000):
        self._storage = storage
        self.prefix = prefix
        self._window = window
        self._caches: dict[str, ResourceCache] = {}
        self.revision = 0
        self.closing = False
        self.ready = asyncio.Event()
        self._progress = asyncio.Condition()
        self._waiting = 0  # callers in `_wait`: events notify only while there are some
        self._task: asyncio.Task[None] | None = None
        self._next_fetch: asyncio.Future[int] | None = None  # the revision fetch the next callers share
        self._fetcher: asyncio.Task[None] | None = None

    def cache(self, resource: str) -> ResourceCache:
        """The cache of one resource (its `ResourceInfo.storage_name`: the plural, or `<group>/<plural>`)."""
        c = self._caches.get(resource)
        if c is None:
            c = self._caches[resource] = ResourceCache(resource, self._window)
        return c

    def start(self) -> None:
        """Start following etcd in the background."""
        self._task = asyncio.create_task(self._run(), name="watchcache")

    def close_watches(self) -> None:
        """End every client watch stream cleanly, and refuse new ones (at shutdown)."""
        self.closing = True
        for c in self._caches.values():
            c.reset(c.snapshot(), self.revision)

    async def stop(self) -> None:
        """Stop following etcd and close every client watch."""
        if self._fetcher is not None:
            self._fetcher.cancel()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for c in self._caches.values():
            c.reset([], self.revision)

    async def _run(self) -> None:
        delay = 0.1
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                self.ready.set()
                delay = 0.1
                async for ev in self._storage.watch(self.prefix, self.revision + 1):
                    self._apply(ev)
                    await self._notify()
            except Compacted:
                log.warning("watch cache: history compacted, relisting")
                need_list = True
            except StorageError as e:
                log.warning("watch cache: %s; retrying in %.1fs", e, delay)
                self.ready.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:  # a bug must not leave the cache stale forever: start over
                log.exception("watch cache failed; relisting in %.1fs", delay)
                self.ready.clear()
                need_list = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _relist(self) -> None:
        items, rev, _ = await self._storage.list(self.prefix)
        by_resource: dict[str, list[StoredObject]] = {}
        for s in items:
            by_resource.setdefault(self._resource_of(s.key), []).append(s)
        self.revision = rev
        for name in set(by_resource) | set(self._caches):
            self.cache(name).reset(by_resource.get(name, []), rev)
        await self._notify()

    def _resource_of(self, key: str) -> str:
        """The cache a key belongs to: its first segment (a built-in's plural), or, when that is a group
        (custom resources are stored under `<group>/<plural>/`; groups have a dot, plurals none), two."""
        parts = key[len(self.prefix) :].split("/", 2)
        return f"{parts[0]}/{parts[1]}" if "." in parts[0] and len(parts) > 1 else parts[0]

    def _apply(self, ev: WatchEvent) -> None:
        self.cache(self._resource_of(ev.key)).apply(ev)
        self.revision = ev.revision

    async def _notify(self) -> None:
        if not self._waiting:  # nobody waits for a revision: most events, under a burst of writes
            return
        async with self._progress:
            self._progress.notify_all()

    async def current_revision(self) -> int:
        """etcd's current revision, read by a request that started after this call (StorageError when
        etcd cannot answer).

        Callers share fetches: the ones arriving while a fetch is in flight wait for the next one, which
        starts when that fetch ends, so every caller gets a revision at least as new as any write that
        finished before it called (what makes a read served from the cache at that revision linearizable,
        as upstream's consistent reads from cache).
        """
        fut = self._next_fetch
        if fut is None:
            fut = self._next_fetch = asyncio.get_running_loop().create_future()
            fut.add_done_callback(_retrieve)
            if self._fetcher is None:
                self._fetcher = asyncio.create_task(self._fetch_revisions(), name="watchcache-revision")
        return await asyncio.shield(fut)

    async def _fetch_revisions(self) -> None:
        """Answer the shared revision fetches one after another while callers wait for one."""
        try:
            while (fut := self._next_fetch) is not None:
                self._next_fetch = None  # later callers wait for the next fetch: this one may predate them
                try:
                    fut.set_result(await self._storage.ping())
                except asyncio.CancelledError:
                    fut.cancel()
                    raise
                except Exception as e:
                    fut.set_exception(e)
        finally:
            self._fetcher = None

    async def wait_for_revision(self, revision: int, timeout: float = 3.0) -> bool:
        """Wait until the cache has seen `revision`; False on timeout.

        etcd revisions also count writes outside our prefix, which the watch never delivers. When
        the cache is not there after a short wait, a marker write inside the prefix (like etcd's
        progress notification, but at once) moves the watch past every earlier revision.
        """
        if self.revision >= revision and self.ready.is_set():
            return True
        if await self._wait(revision, min(_MARK_AFTER, timeout)):
            return True
        try:
            marker = await self._storage.put(self.prefix + PROGRESS_KEY, {"kind": "WatchCacheProgress"})
        except StorageError:
            marker = 0
        return await self._wait(max(revision, marker), timeout)

    async def consistent_get(self, resource: str, key: str) -> StoredObject | None:
        """The object at key as of etcd's current revision (KeyNotFound: etcd had no such key then), or None:
        read etcd, because the cache cannot catch up in time or etcd holds a value it could not decode there.

        Once the cache has reached that revision it holds every key etcd held, but for the undecodable ones
        (`EtcdStorage.unreadable`), so a key missing from it is missing from etcd: a 404 costs no etcd read.
        """
        if not self.ready.is_set():
            return None
        revision = await self.current_revision()
        if self.revision < revision and not await self.wait_for_revision(revision):
            return None
        if key in self._storage.unreadable:
            return None
        stored = self.cache(resource).get(key)
        if stored is None:
            raise KeyNotFound(key)
        return stored

    async def _wait(self, revision: int, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self.ready.wait()
                self._waiting += 1
                try:
                    async with self._progress:
                        await self._progress.wait_for(lambda: self.revision >= revision)
                finally:
                    self._waiting -= 1
            return True
        except TimeoutError:
            return False


def _retrieve(fut: asyncio.Future[int]) -> None:
    """Mark a shared fetch's error as seen: its callers may all have gone (cancelled) before it ended."""
    if not fut.cancelled():
        fut.exception()
