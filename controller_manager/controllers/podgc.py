"""The pod garbage collector (upstream pkg/controller/podgc), run every `pod-gc-period` seconds:
- terminated pods (phase Succeeded/Failed) beyond `terminated-pod-gc-threshold`, oldest first;
- pods bound to nodes that no longer exist, once the node has been missing for a quarantine
  (`pod-gc-quarantine`, upstream's 40 s) and a live GET confirms it — marked Failed with a
  DisruptionTarget condition (DeletionByPodGC), then force deleted;
- terminating pods never scheduled to a node, force deleted;
- terminating pods on a not-Ready node tainted node.kubernetes.io/out-of-service, force deleted.
Force deletion is gracePeriodSeconds=0.
"""

from __future__ import annotations

import time
from typing import Any

from apimachinery.errors import StatusError
from client.events import now_rfc3339
from client.request import DeleteOptions, Obj
from controller_manager.base import Controller
from controller_manager.controllers import register

__all__ = ["PodGCController", "terminated_to_delete"]

GC_KEY = "podgc"
OUT_OF_SERVICE_TAINT = "node.kubernetes.io/out-of-service"
_FORCE = DeleteOptions(grace_period_seconds=0)


def _terminated(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Pending", "Running", "Unknown", None)


def terminated_to_delete(pods: list[Obj], threshold: int) -> list[Obj]:
    """The terminated pods over `threshold`, oldest (creationTimestamp, then name) first."""
    if threshold <= 0:
        return []
    done = [p for p in pods if _terminated(p)]
    excess = len(done) - threshold
    if excess <= 0:
        return []
    done.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"].get("name", "")))
    return done[:excess]


@register
class PodGCController(Controller):
    """Deletes terminated, orphaned and unscheduled-terminating pods."""

    name = "podgc"
    event_source = "pod-garbage-collector"
    workers = 1

    def setup(self) -> None:
        self.pods = self.ctx.factory.informer("pods")
        self.nodes = self.ctx.factory.informer("nodes")
        self.nodes.add_handler(on_delete=lambda _n: self.enqueue_key(GC_KEY))
        self.missing_since: dict[str, float] = {}
        self.enqueue_key(GC_KEY)

    async def sync(self, key: str) -> None:
        """One garbage-collection pass."""
        try:
            await self._gc_terminated()
            await self._gc_orphaned()
            await self._gc_unscheduled_terminating()
            await self._gc_terminating_out_of_service()
        finally:
            self.requeue_after(GC_KEY, self.ctx.option("pod-gc-period", 20.0))

    async def _force_delete(self, pod: Obj) -> None:
        m = pod["metadata"]
        try:
            await self.api.delete("pods", m["name"], m["namespace"], options=_FORCE)
        except StatusError as e:
            if e.code != 404:
                raise

    async def _gc_terminated(self) -> None:
        threshold = int(self.ctx.option("terminated-pod-gc-threshold", 12500))
        for pod in terminated_to_delete(self.pods.store.list(), threshold):
            self.log.info("deleting terminated pod %s/%s", pod["metadata"]["namespace"], pod["metadata"]["name"])
            await self._force_delete(pod)

    async def _gc_orphaned(self) -> None:
        quarantine = self.ctx.option("pod-gc-quarantine", 40.0)
        now = time.monotonic()
        by_node: dict[str, list[Obj]] = {}
        for pod in self.pods.store.list():
            node = (pod.get("spec") or {}).get("nodeName")
            if node and self.nodes.store.get(node) is None:
                by_node.setdefault(node, []).append(pod)
        self.missing_since = {n: self.missing_since.get(n, now) for n in by_node}
        soonest: float | None = None
        for node, pods in by_node.items():
            left = self.missing_since[node] + quarantine - now
            if left > 0:
                soonest = left if soonest is None else min(soonest, left)
                continue
            if await self._node_exists(node):
                continue
            for pod in pods:
                await self._fail_and_delete(pod, node)
        if soonest is not None:
            self.requeue_after(GC_KEY, soonest + 0.05)

    async def _node_exists(self, name: str) -> bool:
        try:
            await self.api.get("nodes", name)
        except StatusError as e:
            if e.code == 404:
                return False
            raise
        return True

    async def _fail_and_delete(self, pod: Obj, node: str, node_gone: bool = True) -> None:
        """Upstream markFailedAndDeletePod: phase Failed (with DisruptionTarget when the node is gone), force delete."""
        m = pod["metadata"]
        why = "missing" if node_gone else "out-of-service"
        self.log.info("deleting pod %s/%s of %s node %s", m["namespace"], m["name"], why, node)
        status: dict[str, Any] = pod.get("status") or {}
        if not _terminated(pod):
            patch: dict[str, Any] = {"phase": "Failed"}
            if node_gone:
                conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
                conditions.append(
                    {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "lastTransitionTime": now_rfc3339(),
                        "reason": "DeletionByPodGC",
                        "message": "PodGC: node no longer exists",
                    }
                )
                patch["conditions"] = conditions
            try:
                await self.api.patch("pods", m["name"], {"status": patch}, m["namespace"], subresource="status")
            except StatusError as e:
                if e.code == 404:
                    return
                raise
        await self._force_delete(pod)

    async def _gc_unscheduled_terminating(self) -> None:
        for pod in self.pods.store.list():
            if (pod.get("metadata") or {}).get("deletionTimestamp") and not (pod.get("spec") or {}).get("nodeName"):
                await self._force_delete(pod)

    async def _gc_terminating_out_of_service(self) -> None:
        """Terminating pods on a not-Ready node tainted node.kubernetes.io/out-of-service (upstream gcTerminating)."""
        for pod in self.pods.store.list():
            node_name = (pod.get("spec") or {}).get("nodeName")
            if not node_name or not (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            node = self.nodes.store.get(node_name)
            if node is None or _node_ready(node):
                continue
            if any(t.get("key") == OUT_OF_SERVICE_TAINT for t in (node.get("spec") or {}).get("taints") or []):
                await self._fail_and_delete(pod, node_name, node_gone=False)


def _node_ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False
