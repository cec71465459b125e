"""The node lifecycle controller (upstream pkg/controller/nodelifecycle) with taint-based eviction
(upstream's NoExecute taint manager).

A node is healthy while its kubelet heartbeats: the Lease in kube-node-lease is renewed or the
Ready condition's lastHeartbeatTime moves. As upstream, the controller notes *when it observed*
a heartbeat (its own clock, so clock skew does not matter); after `node-monitor-grace-period`
seconds without one it sets Ready, MemoryPressure, DiskPressure and PIDPressure to Unknown
("NodeStatusUnknown", "Kubelet stopped posting node status."), records NodeNotReady and marks the
node's pods not Ready. Taints follow the Ready condition: Unknown → node.kubernetes.io/unreachable,
False → node.kubernetes.io/not-ready (NoExecute with timeAdded, plus NoSchedule), True → neither.
Pods on a node with NoExecute taints are deleted once their toleration runs out (the pod's
tolerationSeconds; `pod-eviction-timeout` when it has no toleration for the taint; never when it
tolerates it without a limit).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from apimachinery.errors import StatusError
from apimachinery.meta import parse_time
from apimachinery.taints import tolerates
from client.events import now_rfc3339
from client.request import Obj
from client.store import field_indexer
from controller_manager.base import Controller
from controller_manager.controllers import register

__all__ = [
    "NOT_READY_TAINT",
    "UNREACHABLE_TAINT",
    "NodeLifecycleController",
    "eviction_delay",
    "taints_for",
    "tolerates",
]

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
LEASE_NAMESPACE = "kube-node-lease"
_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
_CONDITION_TAINTS = {  # upstream's TaintNodesByCondition (NoSchedule)
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
    "NetworkUnavailable": "node.kubernetes.io/network-unavailable",
}
_MANAGED = {NOT_READY_TAINT, UNREACHABLE_TAINT, "node.kubernetes.io/unschedulable", *_CONDITION_TAINTS.values()}
_NODE_INDEX = "nodeName"


def _condition(node: Obj, ctype: str) -> dict[str, Any] | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def taints_for(node: Obj, existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The node's taints with the controller-managed ones recomputed from its conditions (others kept)."""
    ready = _condition(node, "Ready")
    status = ready.get("status") if ready else None  # no Ready yet: the startup grace runs first
    wanted: list[tuple[str, str]] = []
    if status == "False":
        wanted += [(NOT_READY_TAINT, "NoExecute"), (NOT_READY_TAINT, "NoSchedule")]
    elif status == "Unknown":
        wanted += [(UNREACHABLE_TAINT, "NoExecute"), (UNREACHABLE_TAINT, "NoSchedule")]
    for ctype, key in _CONDITION_TAINTS.items():
        c = _condition(node, ctype)
        if c and c.get("status") == "True":
            wanted.append((key, "NoSchedule"))
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.append(("node.kubernetes.io/unschedulable", "NoSchedule"))
    out = [t for t in existing if t.get("key") not in _MANAGED or (t.get("key"), t.get("effect")) in wanted]
    have = {(t.get("key"), t.get("effect")) for t in out}
    for key, effect in wanted:
        if (key, effect) not in have:
            taint: dict[str, Any] = {"key": key, "effect": effect}
            if effect == "NoExecute":
                taint["timeAdded"] = now_rfc3339()
            out.append(taint)
    return out


def eviction_delay(pod: Obj, taints: list[dict[str, Any]], default: float) -> float | None:
    """Seconds after a NoExecute taint's timeAdded that the pod goes; None when it tolerates them for ever."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    delay: float | None = None
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            this = default
        else:
            limits = [float(t["tolerationSeconds"]) for t in matching if t.get("tolerationSeconds") is not None]
            if not limits:
                continue  # tolerated without limit
            this = max(0.0, min(limits))
        delay = this if delay is None else min(delay, this)
    return delay


def _wall(ts: str | None) -> float:
    if not ts:
        return time.time()
    try:
        return parse_time(ts).timestamp()
    except ValueError:
        return time.time()


@dataclass
class _Health:
    heartbeat: tuple[Any, ...]
    observed: float  # monotonic time we saw this heartbeat change


@register
class NodeLifecycleController(Controller):
    """Marks silent nodes Unknown, taints unhealthy nodes and evicts pods from NoExecute-tainted ones."""

    name = "nodelifecycle"
    event_source = "node-controller"
    workers = 2

    def setup(self) -> None:
        self.nodes = self.ctx.factory.informer("nodes")
        self.nodes.add_handler(on_add=self._added, on_update=lambda _o, n: self.enqueue(n), on_delete=self._gone)
        self.leases = self.ctx.factory.informer("leases", LEASE_NAMESPACE)
        self.leases.add_handler(**self.handlers(lambda lease: self.enqueue_key(lease["metadata"]["name"])))
        self.pods = self.ctx.factory.informer("pods", indexers={_NODE_INDEX: field_indexer("spec.nodeName")})
        self.pods.add_handler(on_add=self._pod_changed, on_update=lambda _o, n: self._pod_changed(n))
        self.health: dict[str, _Health] = {}
        self.known: set[str] = set()

    @property
    def grace(self) -> float:
        """Seconds without a heartbeat before a node is Unknown."""
        return self.ctx.option("node-monitor-grace-period", 40.0)

    def _added(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        if name not in self.known:
            self.known.add(name)
            self.events.record(
                node, "Normal", "RegisteredNode", f"Node {name} event: Registered Node {name} in Controller"
            )
        self.enqueue(node)

    def _gone(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        self.health.pop(name, None)
        if name in self.known:
            self.known.discard(name)
            self.events.record(
                node, "Normal", "RemovingNode", f"Node {name} event: Removing Node {name} from Controller"
            )

    def _pod_changed(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            cur = self.nodes.store.get(node)
            if cur and any(t.get("effect") == "NoExecute" for t in (cur.get("spec") or {}).get("taints") or []):
                self.enqueue_key(node)

    async def sync(self, key: str) -> None:
        """Check one node's health, taints and pods."""
        node = self.nodes.store.get(key)
        if node is None:
            self.health.pop(key, None)
            return
        node = await self._monitor_health(key, node)
        node = await self._update_taints(node)
        await self._evict(node)

    # --- health -------------------------------------------------------------------------

    def _heartbeat(self, name: str, node: Obj) -> tuple[Any, ...]:
        ready = _condition(node, "Ready") or {}
        lease = self.leases.store.get_by_name(name, LEASE_NAMESPACE)
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
        return (ready.get("lastHeartbeatTime"), renew)

    async def _monitor_health(self, name: str, node: Obj) -> Obj:
        now = time.monotonic()
        beat = self._heartbeat(name, node)
        h = self.health.get(name)
        if h is None or h.heartbeat != beat:
            h = self.health[name] = _Health(beat, now)
        silent = now - h.observed
        if silent <= self.grace:
            self.requeue_after(name, self.grace - silent + 0.05)
            return node
        was_ready = (_condition(node, "Ready") or {}).get("status") == "True"
        new = self._mark_unknown(node)
        if new is None:
            return node
        self.log.info("node %s: no heartbeat for %.0fs, marking Unknown", name, silent)
        node = await self.api.update_status("nodes", new)
        if was_ready:
            self.events.record(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
            await self._mark_pods_not_ready(name)
        return node

    @staticmethod
    def _mark_unknown(node: Obj) -> Obj | None:
        """The node with its conditions Unknown, or None if they already are."""
        new = copy.deepcopy(node)
        status = new.setdefault("status", {})
        conditions = status.setdefault("conditions", [])
        now = now_rfc3339()
        changed = False
        for ctype in _CONDITIONS:
            c = next((c for c in conditions if c.get("type") == ctype), None)
            if c is None:
                conditions.append(
                    {
                        "type": ctype,
                        "status": "Unknown",
                        "lastHeartbeatTime": new["metadata"].get("creationTimestamp"),
                        "lastTransitionTime": now,
                        "reason": "NodeStatusNeverUpdated",
                        "message": "Kubelet never posted node status.",
                    }
                )
                changed = True
            elif c.get("status") != "Unknown":
                c.update(
                    status="Unknown",
                    reason="NodeStatusUnknown",
                    message="Kubelet stopped posting node status.",
                    lastTransitionTime=now,
                )
                changed = True
        return new if changed else None

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """Upstream MarkPodsNotReady: every pod on the node gets Ready=False."""
        for pod in self.pods.store.by_index(_NODE_INDEX, node_name):
            conditions = copy.deepcopy((pod.get("status") or {}).get("conditions") or [])
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") == "False":
                continue
            ready.update(status="False", lastTransitionTime=now_rfc3339())
            new = copy.deepcopy(pod)
            new["status"]["conditions"] = conditions
            try:
                await self.api.update_status("pods", new, pod["metadata"]["namespace"])
            except StatusError as e:
                if e.code not in (404, 409):
                    raise

    # --- taints and eviction --------------------------------------------------------------

    async def _update_taints(self, node: Obj) -> Obj:
        existing = list((node.get("spec") or {}).get("taints") or [])
        taints = taints_for(node, existing)
        if taints == existing:
            return node
        new = copy.deepcopy(node)
        if taints:
            new.setdefault("spec", {})["taints"] = taints
        else:
            new.get("spec", {}).pop("taints", None)
        self.log.info("node %s: taints now %s", node["metadata"]["name"], [(t["key"], t["effect"]) for t in taints])
        return await self.api.update("nodes", new)

    async def _evict(self, node: Obj) -> None:
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
        if not taints:
            return
        name = node["metadata"]["name"]
        since = max(_wall(t.get("timeAdded")) for t in taints)
        default = self.ctx.option("pod-eviction-timeout", 300.0)
        next_check: float | None = None
        for pod in self.pods.store.by_index(_NODE_INDEX, name):
            if (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            delay = eviction_delay(pod, taints, default)
            if delay is None:
                continue
            due = since + delay - time.time()
            if due > 0:
                next_check = due if next_check is None else min(next_check, due)
                continue
            await self._evict_pod(pod)
        if next_check is not None:
            self.requeue_after(name, next_check + 0.05)

    async def _evict_pod(self, pod: Obj) -> None:
        m = pod["metadata"]
        ns, pname = m["namespace"], m["name"]
        self.events.record(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {ns}/{pname}")
        status = copy.deepcopy(pod.get("status") or {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
        conditions.append(
            {
                "type": "DisruptionTarget",
                "status": "True",
                "lastTransitionTime": now_rfc3339(),
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
            }
        )
        try:
            await self.api.patch("pods", pname, {"status": {"conditions": conditions}}, ns, subresource="status")
            await self.api.delete("pods", pname, ns)
        except StatusError as e:
            if e.code != 404:
                raise
        self.log.info("evicted pod %s/%s from tainted node %s", ns, pname, pod["spec"].get("nodeName"))
