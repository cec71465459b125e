"""One pod's worker: serializes the work on a pod and tracks where it is in its life (upstream's
pod_workers.go): SyncPod while it should run, TerminatingPod while its containers are stopped,
TerminatedPod once nothing runs; the work itself is done by a `pod_sync.PodSync`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from enum import StrEnum

from client.request import Obj
from kubelet.pod_sync import PodSync, SyncDeps

__all__ = ["PodLifecycle", "PodWorker", "pods_differ_semantically"]

log = logging.getLogger("kubelet.worker")

RESYNC = 10.0  # seconds between syncs of a pod nothing happens to
RETRY = 2.0  # seconds before a sync that raised is tried again


def pods_differ_semantically(old: Obj, new: Obj) -> bool:
    """Whether `new` changes what the kubelet acts on (upstream's podsDifferSemantically): the spec, labels,
    annotations or the deletion; a change of status, resourceVersion or managedFields alone does not."""
    a, b = old.get("metadata") or {}, new.get("metadata") or {}
    return (
        old.get("spec") != new.get("spec")
        or (a.get("labels") or {}) != (b.get("labels") or {})
        or (a.get("annotations") or {}) != (b.get("annotations") or {})
        or a.get("deletionTimestamp") != b.get("deletionTimestamp")
        or a.get("deletionGracePeriodSeconds") != b.get("deletionGracePeriodSeconds")
    )


class PodLifecycle(StrEnum):
    """Where a pod is in its life on this node (upstream's SyncPod / TerminatingPod / TerminatedPod)."""

    SYNC = "SyncPod"
    TERMINATING = "TerminatingPod"
    TERMINATED = "TerminatedPod"


class PodWorker:
    """Runs one pod's syncs one at a time, whenever kicked or every RESYNC seconds; ends once terminated."""

    def __init__(self, deps: SyncDeps, pod: Obj, on_done: Callable[[PodWorker], None]) -> None:
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.state = PodLifecycle.SYNC
        self.removed = False
        self._on_done = on_done
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self.sync = PodSync(deps, pod, self._requeue)

    @property
    def key(self) -> str:
        """`namespace/name` of the pod."""
        m = self.pod["metadata"]
        return f"{m.get('namespace')}/{m.get('name')}"

    @property
    def done(self) -> bool:
        """The pod is terminated and cleaned up."""
        return self.state is PodLifecycle.TERMINATED

    def start(self) -> None:
        """Start the worker loop."""
        self._task = asyncio.create_task(self._loop(), name=f"pod {self.key}")
        self.kick()

    def kick(self) -> None:
        """Ask for a sync."""
        self._kick.set()

    def _requeue(self, delay: float) -> None:
        if delay <= 0:
            self.kick()
        else:
            self._timers.append(asyncio.get_running_loop().call_later(delay, self.kick))

    def update(self, pod: Obj) -> None:
        """A newer copy of the pod arrived."""
        self.pod = pod
        self.kick()

    def reconcile(self, pod: Obj) -> None:
        """A newer copy of the pod whose status alone changed: kept for the next sync, which it does not ask for."""
        self.pod = pod

    def remove(self) -> None:
        """The pod object is gone from the API."""
        self.removed = True
        self.kick()

    async def stop(self) -> None:
        """Cancel the loop and the probes (the kubelet is exiting)."""
        self.sync.stop()
        for t in self._timers:
            t.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _lifecycle(self) -> PodLifecycle:
        deleting = self.removed or (self.pod.get("metadata") or {}).get("deletionTimestamp")
        if self.state is PodLifecycle.SYNC and deleting:
            return PodLifecycle.TERMINATING
        return self.state

    async def _step(self) -> None:
        self.state = self._lifecycle()
        if self.state is PodLifecycle.SYNC:
            await self.sync.sync_pod(self.pod)
        elif self.state is PodLifecycle.TERMINATING:
            await self.sync.sync_terminating_pod(self.pod, self.removed)
            self.state = PodLifecycle.TERMINATED
            await self.sync.sync_terminated_pod(self.pod, self.removed)

    async def _loop(self) -> None:
        while not self.done:
            if not self._kick.is_set():  # kicked already (a new pod, an update): no timer to arm
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps the wait in a task of its own
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RESYNC):
                        await self._kick.wait()
            self._kick.clear()
            now = asyncio.get_running_loop().time()
            self._timers = [t for t in self._timers if not t.cancelled() and t.when() > now]
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sync of pod %s failed", self.key)
                if self.state is PodLifecycle.TERMINATED:  # its clean-up failed: terminate it again
                    self.state = PodLifecycle.TERMINATING
                self._requeue(RETRY)
        self.sync.stop()
        self._on_done(self)
