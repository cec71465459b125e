"""The scheduling queue (upstream internal/queue.PriorityQueue): activeQ, backoffQ and unschedulable pods.

- activeQ: pods ready to be tried, highest spec.priority first, then oldest first (PrioritySort).
- backoffQ: pods that failed, waiting out a per-pod backoff (1 s doubling per attempt, at most 10 s).
- unschedulable: pods no node fitted; they stay there until a cluster event that may help
  (`move_all_to_active_or_backoff`: node added or changed, pod deleted) or until they have waited
  `max_unschedulable` seconds, then go to backoffQ (if their backoff is still running) or activeQ.
A move request that arrives while a pod is being tried sends that pod to backoffQ rather than to
unschedulable when it fails, so the event is not lost (upstream moveRequestCycle).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

from scheduler.podinfo import PodInfo

__all__ = ["QueuedPod", "SchedulingQueue"]


@dataclass(eq=False)
class QueuedPod:
    """A pod in the queue with its scheduling history."""

    pod: PodInfo
    timestamp: float
    attempts: int = 0
    last_failure: float = 0.0
    cycle: int = 0
    unschedulable_since: float = 0.0


class SchedulingQueue:
    """Pending pods keyed by `namespace/name`; `pop()` waits for the next one to try."""

    def __init__(
        self,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        max_unschedulable: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self.clock = clock
        self._pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, float, int, str]] = []
        self._in_active: set[str] = set()
        self._backoff: list[tuple[float, int, str]] = []
        self._in_backoff: dict[str, float] = {}
        self._unschedulable: set[str] = set()
        self._with_affinity: set[str] = set()  # the unschedulable pods that have required pod affinity
        self._in_flight: dict[str, QueuedPod] = {}
        self._seq = itertools.count()
        self._cycle = 0
        self._move_cycle = -1
        self._wakeup = asyncio.Event()

    # --- inspection --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pods)

    def __contains__(self, key: object) -> bool:
        return key in self._pods or key in self._in_flight

    def where(self, key: str) -> str:
        """Which sub-queue holds the pod: active, backoff, unschedulable, in-flight or ''."""
        if key in self._in_active:
            return "active"
        if key in self._in_backoff:
            return "backoff"
        if key in self._unschedulable:
            return "unschedulable"
        if key in self._in_flight:
            return "in-flight"
        return ""

    def backoff_duration(self, attempts: int) -> float:
        """Backoff after `attempts` tries: initial doubled per extra attempt, capped."""
        d = self.initial_backoff
        for _ in range(1, attempts):
            d *= 2
            if d >= self.max_backoff:
                return self.max_backoff
        return min(d, self.max_backoff)

    def _backoff_expiry(self, qp: QueuedPod) -> float:
        return qp.last_failure + self.backoff_duration(qp.attempts)

    # --- moving between sub-queues -------------------------------------------------------

    def _to_active(self, qp: QueuedPod) -> None:
        key = qp.pod.key
        self._unschedulable.discard(key)
        self._with_affinity.discard(key)
        self._in_backoff.pop(key, None)
        if key not in self._in_active:
            self._in_active.add(key)
            heapq.heappush(self._active, (-qp.pod.priority, qp.timestamp, next(self._seq), key))
            self._wakeup.set()

    def _to_backoff(self, qp: QueuedPod) -> None:
        key = qp.pod.key
        self._unschedulable.discard(key)
        self._with_affinity.discard(key)
        expiry = self._backoff_expiry(qp)
        self._in_backoff[key] = expiry
        heapq.heappush(self._backoff, (expiry, next(self._seq), key))
        self._wakeup.set()

    def _move(self, qp: QueuedPod) -> None:
        if self._backoff_expiry(qp) > self.clock():
            self._to_backoff(qp)
        else:
            self._to_active(qp)

    # --- informer-driven -----------------------------------------------------------------

    def add(self, pod: PodInfo) -> None:
        """A new pending pod (or an update of one already queued)."""
        if pod.key in self._pods or pod.key in self._in_flight:
            self.update(pod)
            return
        qp = QueuedPod(pod, self.clock())
        self._pods[pod.key] = qp
        self._to_active(qp)

    def pod_info(self, key: str) -> PodInfo | None:
        """The queued (or in-flight) version of the pod, if any."""
        qp = self._pods.get(key) or self._in_flight.get(key)
        return qp.pod if qp is not None else None

    def update(self, pod: PodInfo) -> None:
        """A queued pod changed; an unschedulable one is retried if its spec or labels changed."""
        qp = self._pods.get(pod.key) or self._in_flight.get(pod.key)
        if qp is None:
            self.add(pod)
            return
        old = qp.pod
        qp.pod = pod
        changed = old.obj.get("spec") != pod.obj.get("spec") or old.labels != pod.labels
        if not changed:
            return
        if pod.key in self._in_flight:
            self._move_cycle = self._cycle
        elif pod.key in self._unschedulable:
            self._move(qp)

    def delete(self, key: str) -> None:
        """The pod is gone (deleted, or bound by someone): forget it."""
        self._pods.pop(key, None)
        self._in_active.discard(key)
        self._in_backoff.pop(key, None)
        self._unschedulable.discard(key)
        self._with_affinity.discard(key)
        self._in_flight.pop(key, None)

    def move_pods_with_affinity(self) -> None:
        """A pod was bound: retry unschedulable pods with required pod affinity (upstream AssignedPodAdd)."""
        if not self._with_affinity:
            return
        for key in list(self._with_affinity):
            self._move(self._pods[key])

    def move_all_to_active_or_backoff(self) -> None:
        """A cluster event that may make unschedulable pods fit (upstream MoveAllToActiveOrBackoffQueue)."""
        for key in list(self._unschedulable):
            self._move(self._pods[key])
        self._move_cycle = self._cycle

    # --- scheduler-driven ----------------------------------------------------------------

    def _flush(self) -> float:
        """Move due backoff pods to active and long-waiting unschedulable pods on; seconds until the next due."""
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            expiry, _, key = heapq.heappop(self._backoff)
            if self._in_backoff.get(key) == expiry:
                self._to_active(self._pods[key])
        limit = now - self.max_unschedulable
        for key in [k for k in self._unschedulable if self._pods[k].unschedulable_since <= limit]:
            self._move(self._pods[key])
        nxt = 1.0
        if self._backoff:
            nxt = min(nxt, max(self._backoff[0][0] - now, 0.001))
        return nxt

    async def pop(self) -> QueuedPod:
        """The next pod to try (waits for one); it is in flight until `done`, `requeue_*` or `delete`."""
        while True:
            wait = self._flush()
            while self._active:
                _, _, _, key = heapq.heappop(self._active)
                if key not in self._in_active:
                    continue
                self._in_active.discard(key)
                qp = self._pods.pop(key)
                self._cycle += 1
                qp.cycle = self._cycle
                qp.attempts += 1
                self._in_flight[key] = qp
                return qp
            self._wakeup.clear()
            try:
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def done(self, key: str) -> None:
        """The pod was assumed on a node: it leaves the queue."""
        self._in_flight.pop(key, None)

    def requeue_unschedulable(self, qp: QueuedPod) -> None:
        """No node fitted: park the pod until a cluster event (or backoff, if one arrived meanwhile)."""
        key = qp.pod.key
        if self._in_flight.pop(key, None) is None:
            return  # deleted meanwhile
        now = self.clock()
        qp.last_failure = now
        self._pods[key] = qp
        if self._move_cycle >= qp.cycle:
            self._to_backoff(qp)
        else:
            qp.unschedulable_since = now
            self._unschedulable.add(key)
            if qp.pod.affinity_terms:
                self._with_affinity.add(key)

    def requeue_backoff(self, qp: QueuedPod) -> None:
        """An error (e.g. a failed bind): retry after the pod's backoff."""
        key = qp.pod.key
        self._in_flight.pop(key, None)
        if key in self._pods:
            return
        qp.last_failure = self.clock()
        self._pods[key] = qp
        self._to_backoff(qp)
