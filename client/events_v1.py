"""`EventsV1Recorder`: events.k8s.io/v1 Events with upstream's series, as client-go tools/events writes them.

An Event isomorphic to one recorded before (same regarding, related, reason, action, reportingController
and note: upstream's `getKey`) is not written again. The first repeat turns the cached Event into a series
(count 2, lastObservedTime) and PATCHes it; later repeats only count in memory. The series is written
again on a heartbeat (`refresh_every`, upstream 30 minutes) and once more when it ends: a sweep every
`finish_after` (upstream 6 minutes) writes the final count of a series not observed for that long and
forgets it, and forgets single Events that old. So a burst of repeats costs two writes, not one each.

As the core/v1 `EventRecorder`: `record()` never blocks and never raises; events go into a bounded queue
that one background task writes; when the queue is full the event is dropped with a log line. The cache
is an LRU of `cache_size` entries (upstream's map is bounded only by the sweep); a series pushed out of
it has its count written first.

Given an `Urgency` (the scheduler marks its scheduling cycles and bindings with it), the writer waits for
that work to settle before each Event, for at most `max_defer` seconds per busy spell and only while the
queue is less than half full: in a burst the Events trail the bindings instead of competing with them at
the apiserver, and all are still written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from apimachinery.errors import StatusError
from apimachinery.resources import EVENTS_V1
from client.events import object_reference
from client.request import Obj, PatchType
from client.rest import ApiClient
from client.urgency import Deferral, Urgency

__all__ = ["EventsV1Recorder", "now_micro"]

log = logging.getLogger("client.events_v1")

_NOTE_MAX = 1024  # upstream's NoteLengthLimit: a longer note is truncated, not rejected
_MAX_DEFER = 10.0  # seconds Events wait at most, per busy spell, for urgent work to settle
_POLL = 0.1  # how often a deferred writer looks at its queue's length


def now_micro(now: float | None = None) -> str:
    """A time as Kubernetes writes metav1.MicroTime."""
    moment = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _frozen(ref: Obj | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((ref or {}).items()))


def _key(event: Obj) -> tuple[Any, ...]:
    """upstream's eventKey: what makes two Events isomorphic."""
    return (
        event.get("action", ""),
        event.get("reason", ""),
        event.get("reportingController", ""),
        _frozen(event.get("regarding")),
        _frozen(event.get("related")),
        event.get("note", ""),
    )


class _Cached:
    """An Event as last recorded, and when it was observed (for the sweep)."""

    __slots__ = ("event", "observed")

    def __init__(self, event: Obj, observed: float) -> None:
        self.event = event
        self.observed = observed


class EventsV1Recorder:
    """Writes events.k8s.io/v1 Events from one controller (`reportingController`, e.g. default-scheduler)."""

    def __init__(
        self,
        api: ApiClient,
        reporting_controller: str,
        reporting_instance: str = "",
        *,
        queue_size: int = 1000,
        cache_size: int = 4096,
        finish_after: float = 360.0,
        refresh_every: float = 1800.0,
        urgency: Urgency | None = None,
        max_defer: float = _MAX_DEFER,
    ) -> None:
        self.api = api
        self.urgency = urgency
        self._deferral = Deferral(urgency, max_defer, poll=_POLL) if urgency is not None else None
        self.reporting_controller = reporting_controller
        # upstream's NewRecorder: "<controller>-<hostname>"
        self.reporting_instance = reporting_instance or f"{reporting_controller}-{socket.gethostname()}"
        self.finish_after = finish_after
        self.refresh_every = refresh_every
        self._cache_size = cache_size
        self._queue: asyncio.Queue[Obj | str] = asyncio.Queue(maxsize=queue_size)
        self._cache: OrderedDict[tuple[Any, ...], _Cached] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background writer and the series sweeps (idempotent)."""
        if self._tasks and not any(t.done() for t in self._tasks):
            return
        for t in self._tasks:
            t.cancel()
        name = self.reporting_controller
        self._tasks = [
            asyncio.create_task(self._drain(), name=f"events-v1-{name}"),
            asyncio.create_task(self._every(self.finish_after, "finish"), name=f"events-v1-finish-{name}"),
            asyncio.create_task(self._every(self.refresh_every, "refresh"), name=f"events-v1-refresh-{name}"),
        ]

    async def stop(self) -> None:
        """Write what is queued (bounded by a short timeout), then stop."""
        if not self._tasks:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 2.0)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []

    async def __aenter__(self) -> EventsV1Recorder:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- recording ----------------------------------------------------------------------------
    def record(self, regarding: Obj, related: Obj | None, type_: str, reason: str, action: str, note: str) -> None:
        """Queue an Event (type Normal or Warning) about `regarding` (upstream's Eventf)."""
        self.start()
        ref = object_reference(regarding)
        now = time.time()
        event: Obj = {
            "apiVersion": EVENTS_V1.api_version,
            "kind": "Event",
            "metadata": {
                "name": f"{ref.get('name') or 'unknown'}.{time.time_ns():x}",
                "namespace": ref.get("namespace") or "default",
            },
            "eventTime": now_micro(now),
            "regarding": ref,
            "reason": reason,
            "action": action,
            "note": note[:_NOTE_MAX],
            "type": type_,
            "reportingController": self.reporting_controller,
            "reportingInstance": self.reporting_instance,
        }
        if related is not None:
            event["related"] = object_reference(related)
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("event queue full; dropped %s %s", reason, note)

    async def _every(self, period: float, what: str) -> None:
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(asyncio.QueueFull):  # a full queue: the next sweep does it
                self._queue.put_nowait(what)

    async def _drain(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if item == "finish":
                    await self._finish_series()
                elif item == "refresh":
                    await self._refresh_series()
                elif isinstance(item, dict):
                    await self._defer()
                    await self._observe(item)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # best effort: a failed event is logged, never fatal
                log.warning("could not write event: %s", e)
            finally:
                self._queue.task_done()

    async def _defer(self) -> None:
        # none while the queue is half full: deferring must never make the queue drop Events
        if self._deferral is not None:
            await self._deferral.wait(lambda: self._queue.qsize() * 2 >= self._queue.maxsize)

    async def _observe(self, event: Obj) -> None:
        """upstream's recordToSink: a new Event is created, its first repeat starts a series, later ones count."""
        key = _key(event)
        now = time.time()
        cached = self._cache.get(key)
        if cached is None:
            self._cache[key] = _Cached(event, now)
            await self._evict()
            await self._write(event)
            return
        self._cache.move_to_end(key)
        cached.observed = now
        series = cached.event.get("series")
        if series is not None:
            series["count"] += 1
            series["lastObservedTime"] = now_micro(now)
            return
        cached.event["series"] = {"count": 2, "lastObservedTime": now_micro(now)}
        await self._write(cached.event)

    async def _evict(self) -> None:
        while len(self._cache) > self._cache_size:
            _, oldest = self._cache.popitem(last=False)
            if oldest.event.get("series") is not None:
                await self._write(oldest.event)

    async def _finish_series(self) -> None:
        """upstream's finishSeries: write the final count of series not observed lately, forget old Events."""
        cutoff = time.time() - self.finish_after
        for key, cached in list(self._cache.items()):
            if cached.observed >= cutoff:
                continue
            if cached.event.get("series") is not None:
                await self._write(cached.event)
            self._cache.pop(key, None)

    async def _refresh_series(self) -> None:
        """upstream's refreshExistingEventSeries: the heartbeat of every live series."""
        for cached in list(self._cache.values()):
            if cached.event.get("series") is not None:
                await self._write(cached.event)

    async def _write(self, event: Obj) -> None:
        """PATCH a series onto its Event (created again when it is gone), or create a single Event."""
        meta = event["metadata"]
        series = event.get("series")
        if series is not None:
            try:
                await self.api.patch(
                    EVENTS_V1,
                    meta["name"],
                    {"series": dict(series)},
                    namespace=meta["namespace"],
                    patch_type=PatchType.STRATEGIC,
                )
                return
            except StatusError as e:
                if e.code != 404:
                    raise
        # no copy: the request is serialised before it is sent (again for a retry), and nothing but this
        # drain loop, which waits here, changes a cached Event
        await self.api.create(EVENTS_V1, event, namespace=meta["namespace"])
