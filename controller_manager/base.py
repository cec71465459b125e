"""The shape every controller shares: informers feed keys into a rate-limited work queue; workers
pop a key and call `sync(key)`, which reconciles that one object against the world.

A controller subclass declares its informers in `setup()` (through the shared factory, so every
controller in the process reads one cache per collection), enqueues keys from their handlers, and
implements `sync(key)`. A `sync` that raises puts the key back with per-key exponential backoff;
one that returns normally forgets the key's failures. `requeue_after(key, seconds)` schedules a
later look (deadlines, minReadySeconds, TTLs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable, Mapping

from client.events import EventRecorder
from client.informer import InformerFactory
from client.request import Obj
from client.rest import ApiClient
from client.store import meta_key
from client.workqueue import WorkQueue, default_controller_rate_limiter, process_items

__all__ = ["Context", "Controller", "owner_key", "split_key"]


def split_key(key: str) -> tuple[str | None, str]:
    """`namespace/name` → (namespace, name); `name` → (None, name)."""
    ns, _, name = key.rpartition("/")
    return (ns or None), name


def owner_key(obj: Obj, kind: str) -> str | None:
    """`namespace/name` of the controlling owner of `obj` if it is of `kind`, else None."""
    meta = obj.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            ns = meta.get("namespace")
            return f"{ns}/{ref['name']}" if ns else ref["name"]
    return None


class Context:
    """What controllers in one process share: the API client, informers, events, tunables."""

    def __init__(
        self, api: ApiClient, factory: InformerFactory, options: Mapping[str, float | str] | None = None
    ) -> None:
        self.api = api
        self.factory = factory
        self.events = EventRecorder(api, "controller-manager")
        self.options = options or {}
        self._recorders: dict[str, EventRecorder] = {}

    def recorder(self, component: str) -> EventRecorder:
        """The event recorder for one event source (e.g. deployment-controller), shared per name."""
        rec = self._recorders.get(component)
        if rec is None:
            rec = self._recorders[component] = EventRecorder(self.api, component)
        return rec

    async def stop_events(self) -> None:
        """Flush and stop every recorder."""
        for rec in [self.events, *self._recorders.values()]:
            await rec.stop()

    def option(self, name: str, default: float) -> float:
        """A tunable (e.g. pod-eviction-timeout), as given on the command line or its default."""
        return float(self.options.get(name, default))

    def text_option(self, name: str, default: str) -> str:
        """A textual setting (e.g. load-balancer-ip-range), as given on the command line or its default."""
        return str(self.options.get(name, default))


class Controller:
    """Base class: a named reconcile loop over keys."""

    name = "controller"
    workers = 2
    # `source.component` of this controller's Events, as upstream names it (default: <name>-controller)
    event_source = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.api = ctx.api
        self.events = ctx.recorder(self.event_source or f"{self.name}-controller")
        self.queue: WorkQueue[Hashable] = WorkQueue(default_controller_rate_limiter())
        self.log = logging.getLogger(f"controller.{self.name}")
        self.setup()

    def setup(self) -> None:
        """Declare informers and their handlers (override)."""

    async def sync(self, key: str) -> None:
        """Reconcile one object (override)."""
        raise NotImplementedError

    # -- helpers for handlers -----------------------------------------------------------

    def enqueue(self, obj: Obj) -> None:
        """Queue the object's key."""
        self.queue.add(meta_key(obj))

    def enqueue_key(self, key: str) -> None:
        """Queue a key."""
        self.queue.add(key)

    def requeue_after(self, key: str, seconds: float) -> None:
        """Look at `key` again after `seconds`."""
        self.queue.add_after(key, max(0.0, seconds))

    def handlers(self, fn: Callable[[Obj], None] | None = None) -> dict[str, Callable[..., None]]:
        """on_add/on_update/on_delete that all call `fn` (default: enqueue) with the newest object."""
        f = fn or self.enqueue
        return {"on_add": f, "on_update": lambda _old, new: f(new), "on_delete": f}

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the informers, then run the workers until cancelled."""
        await self.ctx.factory.wait_for_sync()
        self.log.info("started with %d workers", self.workers)
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-{i}") for i in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shut_down()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def _worker(self) -> None:
        await process_items(self.queue, lambda key: self.sync(str(key)), self.log)
