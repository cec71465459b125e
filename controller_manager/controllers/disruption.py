"""The disruption controller (upstream pkg/controller/disruption): keeps each PodDisruptionBudget's
status — how many of its pods are expected, healthy, and may be disrupted now — which the eviction
subresource reads before it lets a pod go.

Expected pods: with an integer minAvailable, the pods the selector matches; with a percentage or
maxUnavailable, the replicas their controllers ask for (ReplicaSet, Deployment through its
ReplicaSets, StatefulSet, ReplicationController). Healthy: Ready and not being deleted, minus the pods
an eviction has just let go (status.disruptedPods, forgotten after two minutes or once the pod is
gone). disruptionsAllowed = healthy - desired healthy, never below 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from apimachinery.selectors import SelectorError, selector_from_label_selector
from client.events import now_rfc3339
from client.request import Obj
from client.store import NAMESPACE_INDEX
from controller_manager.base import Controller, split_key
from controller_manager.controllers import register
from controller_manager.controllers.deployment_util import scaled_value
from controller_manager.podtemplate import is_pod_ready

__all__ = ["Budget", "DisruptionController", "budget_for"]

# How long an eviction's entry in status.disruptedPods keeps its pod out of the healthy count when
# the pod's deletion has not shown up (upstream DeletionTimeout).
DELETION_TIMEOUT = 120.0


@dataclass(frozen=True)
class Budget:
    """What a budget's status says, before it is written."""

    expected: int
    desired_healthy: int
    current_healthy: int
    disrupted: dict[str, str]

    @property
    def allowed(self) -> int:
        """Disruptions allowed now (0 when nothing is expected)."""
        if self.expected <= 0:
            return 0
        return max(self.current_healthy - self.desired_healthy, 0)


def _parse_time(text: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (TypeError, ValueError):
        return None


def budget_for(pdb: Obj, pods: list[Obj], expected_scale: int | None, now: float) -> Budget:
    """The budget's figures for the pods its selector matches; `expected_scale` is the sum of their
    controllers' replicas (None when a pod has no controller that scales)."""
    spec = pdb.get("spec") or {}
    max_unavailable = spec.get("maxUnavailable")
    min_available = spec.get("minAvailable")
    if max_unavailable is not None:
        expected = expected_scale if expected_scale is not None else len(pods)
        desired = max(expected - scaled_value(max_unavailable, expected, True), 0)
    elif isinstance(min_available, int):
        expected, desired = len(pods), min_available
    elif min_available is not None:
        expected = expected_scale if expected_scale is not None else len(pods)
        desired = scaled_value(min_available, expected, True)
    else:
        expected, desired = len(pods), 0
    # Keep the disruptedPods entries whose pod still exists, is not yet being deleted and is recent.
    old = (pdb.get("status") or {}).get("disruptedPods") or {}
    live = {(p.get("metadata") or {}).get("name"): p for p in pods}
    disrupted: dict[str, str] = {}
    for name, when in old.items():
        pod = live.get(name)
        at = _parse_time(when)
        if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp") or at is None:
            continue
        if at + DELETION_TIMEOUT > now:
            disrupted[name] = when
    healthy = sum(
        1
        for p in pods
        if is_pod_ready(p)
        and not (p.get("metadata") or {}).get("deletionTimestamp")
        and (p.get("metadata") or {}).get("name") not in disrupted
    )
    return Budget(expected, desired, healthy, disrupted)


def _condition(allowed: int, old: list[dict[str, Any]]) -> dict[str, Any]:
    status, reason = ("True", "SufficientPods") if allowed > 0 else ("False", "InsufficientPods")
    prev = next((c for c in old if c.get("type") == "DisruptionAllowed"), None)
    since = prev.get("lastTransitionTime") if prev and prev.get("status") == status else None
    return {
        "type": "DisruptionAllowed",
        "status": status,
        "reason": reason,
        "message": "",
        "observedGeneration": 0,
        "lastTransitionTime": since or now_rfc3339(),
    }


@register
class DisruptionController(Controller):
    """Writes PodDisruptionBudget status from the pods each budget selects."""

    name = "disruption"
    event_source = "controllermanager"
    workers = 2

    def setup(self) -> None:
        f = self.ctx.factory
        self.pdbs = f.informer("poddisruptionbudgets")
        self.pods = f.informer("pods")
        self.owners = {
            "ReplicaSet": f.informer("replicasets"),
            "Deployment": f.informer("deployments"),
            "StatefulSet": f.informer("statefulsets"),
            "ReplicationController": f.informer("replicationcontrollers"),
        }
        self.pdbs.add_handler(**self.handlers())
        self.pods.add_handler(**self.handlers(self._pod_changed))

    def _pod_changed(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        for pdb in self.pdbs.store.by_index(NAMESPACE_INDEX, meta.get("namespace", "")):
            selector = (pdb.get("spec") or {}).get("selector")
            try:
                if selector is not None and selector_from_label_selector(selector).matches(labels):
                    self.enqueue(pdb)
            except SelectorError:
                continue

    def _replicas(self, kind: str, namespace: str, name: str) -> tuple[str, int] | None:
        """(uid, replicas) of the controller that scales pods owned by kind/name."""
        informer = self.owners.get(kind)
        obj = informer.store.get(f"{namespace}/{name}") if informer else None
        if obj is None:
            return None
        if kind == "ReplicaSet":  # a Deployment's ReplicaSet counts as its Deployment
            for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
                if ref.get("controller") and ref.get("kind") == "Deployment":
                    return self._replicas("Deployment", namespace, ref.get("name", ""))
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        replicas = spec.get("replicas")
        return meta.get("uid", ""), int(1 if replicas is None else replicas)

    def _expected_scale(self, namespace: str, pods: list[Obj]) -> int | None:
        """Sum of the distinct controllers' replicas; None when some pod has no scaling controller."""
        seen: dict[str, int] = {}
        for pod in pods:
            ref = next(
                (r for r in (pod.get("metadata") or {}).get("ownerReferences") or [] if r.get("controller")), None
            )
            found = self._replicas(ref.get("kind", ""), namespace, ref.get("name", "")) if ref else None
            if found is None:
                return None
            seen[found[0]] = found[1]
        return sum(seen.values())

    async def sync(self, key: str) -> None:
        """Recompute one budget's status and write it when it changed."""
        pdb = self.pdbs.store.get(key)
        if pdb is None:
            return
        namespace, _ = split_key(key)
        selector = (pdb.get("spec") or {}).get("selector")
        pods: list[Obj] = []
        if selector is not None:
            try:
                match = selector_from_label_selector(selector)
            except SelectorError as e:
                self.log.warning("poddisruptionbudget %s: bad selector: %s", key, e)
                return
            pods = [
                p
                for p in self.pods.store.by_index(NAMESPACE_INDEX, namespace or "")
                if match.matches((p.get("metadata") or {}).get("labels") or {})
            ]
        spec = pdb.get("spec") or {}
        needs_scale = spec.get("maxUnavailable") is not None or isinstance(spec.get("minAvailable"), str)
        scale = self._expected_scale(namespace or "", pods) if needs_scale else None
        now = dt.datetime.now(dt.UTC).timestamp()
        b = budget_for(pdb, pods, scale, now)
        old = pdb.get("status") or {}
        meta = pdb.get("metadata") or {}
        cond = _condition(b.allowed, old.get("conditions") or [])
        cond["observedGeneration"] = meta.get("generation", 0)
        status = {
            "observedGeneration": meta.get("generation", 0),
            "disruptionsAllowed": b.allowed,
            "currentHealthy": b.current_healthy,
            "desiredHealthy": b.desired_healthy,
            "expectedPods": b.expected,
            "conditions": [cond],
        }
        if b.disrupted:
            status["disruptedPods"] = b.disrupted
        if all(old.get(k) == v for k, v in status.items()) and bool(old.get("disruptedPods")) == bool(b.disrupted):
            if b.disrupted:
                self.requeue_after(key, DELETION_TIMEOUT)
            return
        await self.api.update_status("poddisruptionbudgets", {**pdb, "status": status}, namespace=namespace)
        if b.disrupted:  # look again when the oldest entry times out
            self.requeue_after(key, DELETION_TIMEOUT)
