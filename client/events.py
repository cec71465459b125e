"""`EventRecorder`: core/v1 Events about objects, as client-go's record.EventRecorder writes them.

`record()` never blocks and never raises: events go into a bounded queue that a background task
drains; when the queue is full the event is dropped with a log line (events are best effort, as in
Kubernetes). A repeat of the same (object, type, reason, message) within the cache's memory
bumps `count` and `lastTimestamp` on the existing Event instead of creating a new one, which is
what `kubectl describe` shows as `x3 over 2m`.

Given an `Urgency`, the writer waits (a bounded time) for the component's urgent work to settle
before each write, so that on a busy machine events trail a burst instead of slowing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime

from apimachinery.errors import StatusError
from client.request import Obj, PatchType
from client.rest import ApiClient
from client.urgency import Deferral, Urgency

__all__ = ["EventRecorder", "now_rfc3339", "object_reference"]

log = logging.getLogger("client.events")

_EVENTS = "events"
_SEEN_MAX = 4096
_MAX_DEFER = 2.0  # seconds an event waits at most for urgent work to settle


def now_rfc3339() -> str:
    """The current time as Kubernetes writes metav1.Time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: Obj, field_path: str = "") -> Obj:
    """An ObjectReference to `obj` (for involvedObject and ownerless references)."""
    meta = obj.get("metadata") or {}
    ref: Obj = {
        "kind": obj.get("kind", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    if field_path:
        ref["fieldPath"] = field_path
    return ref


class EventRecorder:
    """Writes Events from one component (`source.component`, e.g. default-scheduler, kubelet)."""

    def __init__(
        self,
        api: ApiClient,
        component: str,
        host: str = "",
        queue_size: int = 1000,
        urgency: Urgency | None = None,
        max_defer: float = _MAX_DEFER,
    ) -> None:
        self.api = api
        self.component = component
        self.host = host
        self.urgency = urgency
        self._deferral = Deferral(urgency, max_defer) if urgency is not None else None
        self._queue: asyncio.Queue[Obj] = asyncio.Queue(maxsize=queue_size)
        self._seen: OrderedDict[tuple[str, ...], tuple[str, str, int]] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background writer (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=f"events-{self.component}")

    async def stop(self) -> None:
        """Write what is queued (bounded by a short timeout), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 2.0)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def __aenter__(self) -> EventRecorder:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def record(self, obj: Obj, type_: str, reason: str, message: str, field_path: str = "") -> None:
        """Queue an Event (type Normal or Warning) about `obj`."""
        self.start()
        event = {"ref": object_reference(obj, field_path), "type": type_, "reason": reason, "message": message}
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("event queue full; dropped %s %s", reason, message)

    async def _drain(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._defer()
                await self._write(item["ref"], item["type"], item["reason"], item["message"])
            except asyncio.CancelledError:
                raise
            except Exception as e:  # best effort: a failed event is logged, never fatal
                log.warning("could not write event %s: %s", item["reason"], e)
            finally:
                self._queue.task_done()

    async def _defer(self) -> None:
        if self._deferral is not None:
            await self._deferral.wait()

    async def _write(self, ref: Obj, type_: str, reason: str, message: str) -> None:
        namespace = ref.get("namespace") or "default"
        key = (ref.get("uid", ""), ref.get("fieldPath", ""), type_, reason, message)
        now = now_rfc3339()
        seen = self._seen.get(key)
        if seen is not None:
            name, ns, count = seen
            try:
                await self.api.patch(
                    _EVENTS,
                    name,
                    {"count": count + 1, "lastTimestamp": now},
                    namespace=ns,
                    patch_type=PatchType.MERGE,
                )
                self._seen[key] = (name, ns, count + 1)
                self._seen.move_to_end(key)
                return
            except StatusError as e:
                if e.code != 404:
                    raise
        name = f"{ref.get('name', 'unknown')}.{time.time_ns():x}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
        }
        await self.api.create(_EVENTS, body, namespace=namespace)
        self._seen[key] = (name, namespace, 1)
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
