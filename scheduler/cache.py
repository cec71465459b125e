"""The scheduler's node-info cache: each node with the pods bound (or assumed) to it and their totals.

`assume()` counts a pod on a node as soon as the scheduler decides, before the bind's watch event
arrives, so the next decision already sees it; `forget()` undoes that when the bind fails; the
informer's event for the bound pod confirms it (upstream internal/cache).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scheduler.podinfo import PodInfo, Resources

__all__ = ["TAINT_NOT_READY", "TAINT_UNREACHABLE", "Cache", "NodeInfo", "NodeList", "node_taints"]

Obj = dict[str, Any]
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"


def node_taints(node: Obj) -> list[Obj]:
    """spec.taints, plus the NoSchedule taint the node lifecycle controller puts on a node not Ready.

    Upstream the scheduler only sees taints; adding the not-ready/unreachable taint here gives the same
    visible result even before (or without) the controller tainting the node.
    """
    taints = list((node.get("spec") or {}).get("taints") or [])
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") != "Ready":
            continue
        status = cond.get("status")
        key = TAINT_NOT_READY if status == "False" else TAINT_UNREACHABLE if status != "True" else ""
        if key and not any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in taints):
            taints.append({"key": key, "effect": "NoSchedule"})
    return taints


@dataclass(eq=False)
class NodeInfo:
    """One node and the aggregate of the pods on it (upstream framework.NodeInfo)."""

    name: str
    node: Obj | None = None
    labels: dict[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    taints: list[Obj] = field(default_factory=list)
    allocatable: Resources = field(default_factory=Resources)
    allowed_pods: int = 0
    requested: Resources = field(default_factory=Resources)
    non_zero_requested: Resources = field(default_factory=Resources)
    pods: dict[str, PodInfo] = field(default_factory=dict)
    used_ports: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    pods_with_affinity: dict[str, PodInfo] = field(default_factory=dict)
    pods_with_required_anti_affinity: dict[str, PodInfo] = field(default_factory=dict)

    def set_node(self, node: Obj) -> None:
        """Take the node object's labels, taints and allocatable."""
        self.node = node
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.labels = dict((node.get("metadata") or {}).get("labels") or {})
        self.unschedulable = bool(spec.get("unschedulable"))
        self.taints = node_taints(node)
        alloc = status.get("allocatable")
        if alloc is None:
            alloc = status.get("capacity") or {}
        self.allocatable = Resources.from_list(alloc)
        try:
            self.allowed_pods = int(alloc.get("pods", 0))
        except (TypeError, ValueError):
            self.allowed_pods = 0

    def add_pod(self, p: PodInfo) -> None:
        """Count a pod on this node."""
        self.pods[p.key] = p
        self.requested.add(p.requests)
        self.non_zero_requested.add(p.non_zero)
        for port in p.host_ports:
            self.used_ports[port] += 1
        if p.has_pod_affinity:
            self.pods_with_affinity[p.key] = p
        if p.anti_affinity_terms:
            self.pods_with_required_anti_affinity[p.key] = p

    def remove_pod(self, key: str) -> PodInfo | None:
        """Stop counting a pod; the PodInfo that was counted."""
        p = self.pods.pop(key, None)
        if p is None:
            return None
        self.requested.sub(p.requests)
        self.non_zero_requested.sub(p.non_zero)
        for port in p.host_ports:
            self.used_ports[port] -= 1
            if self.used_ports[port] <= 0:
                del self.used_ports[port]
        self.pods_with_affinity.pop(key, None)
        self.pods_with_required_anti_affinity.pop(key, None)
        return p


class NodeList(list["NodeInfo"]):
    """Every node that exists, plus what the cache can answer without a pass over all of them
    (upstream Snapshot's HavePodsWithAffinityNodeInfoList and friends); plugins fall back to a scan
    when they get a plain list."""

    def __init__(self, nodes: list[NodeInfo], cache: Cache) -> None:
        super().__init__(nodes)
        self._cache = cache

    @property
    def with_pods_with_affinity(self) -> list[NodeInfo]:
        """The nodes with at least one pod that has (anti-)affinity terms."""
        return [ni for ni in self._cache._with_affinity.values() if ni.node is not None]

    @property
    def with_pods_with_required_anti_affinity(self) -> list[NodeInfo]:
        """The nodes with at least one pod that has required anti-affinity terms."""
        return [ni for ni in self._cache._with_anti_affinity.values() if ni.node is not None]

    @property
    def any_prefer_no_schedule_taint(self) -> bool:
        """Whether some node has a PreferNoSchedule taint."""
        return any(self._cache.nodes[n].node is not None for n in self._cache._prefer_no_schedule)

    @property
    def any_no_schedule_taint(self) -> bool:
        """Whether some node has a NoSchedule or NoExecute taint (a node not Ready has one)."""
        return any(self._cache.nodes[n].node is not None for n in self._cache._no_schedule)

    @property
    def any_unschedulable(self) -> bool:
        """Whether some node is cordoned (spec.unschedulable)."""
        return any(self._cache.nodes[n].node is not None for n in self._cache._unschedulable)


@dataclass
class _PodState:
    node: str
    assumed: bool


class Cache:
    """Nodes and bound/assumed pods, kept current by informer events and the scheduler's assumptions."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, _PodState] = {}
        self._node_list: NodeList | None = None
        # Indexes kept as pods and nodes change, so a scheduling cycle need not scan every node.
        self._with_affinity: dict[str, NodeInfo] = {}
        self._with_anti_affinity: dict[str, NodeInfo] = {}
        self._prefer_no_schedule: set[str] = set()
        self._no_schedule: set[str] = set()
        self._unschedulable: set[str] = set()

    # --- nodes -------------------------------------------------------------------------

    def set_node(self, node: Obj) -> None:
        """Add or update a node."""
        name = (node.get("metadata") or {}).get("name", "")
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name)
        if ni.node is None:
            self._node_list = None
        ni.set_node(node)
        for index, present in (
            (self._prefer_no_schedule, any(t.get("effect") == "PreferNoSchedule" for t in ni.taints)),
            (self._no_schedule, any(t.get("effect") in ("NoSchedule", "NoExecute") for t in ni.taints)),
            (self._unschedulable, ni.unschedulable),
        ):
            if present:
                index.add(name)
            else:
                index.discard(name)

    def remove_node(self, name: str) -> None:
        """Forget a node (its pods stay counted until they are deleted, as upstream)."""
        ni = self.nodes.get(name)
        if ni is None:
            return
        ni.node = None
        self._node_list = None
        self._prefer_no_schedule.discard(name)
        self._no_schedule.discard(name)
        self._unschedulable.discard(name)
        if not ni.pods:
            del self.nodes[name]

    def node_list(self) -> NodeList:
        """Every node that exists (has a Node object), in a stable order."""
        if self._node_list is None:
            self._node_list = NodeList([ni for ni in self.nodes.values() if ni.node is not None], self)
        return self._node_list

    # --- pods --------------------------------------------------------------------------

    def _add(self, p: PodInfo, node: str, assumed: bool) -> None:
        ni = self.nodes.get(node)
        if ni is None:
            ni = self.nodes[node] = NodeInfo(node)
        ni.add_pod(p)
        self._pods[p.key] = _PodState(node, assumed)
        if ni.pods_with_affinity:
            self._with_affinity[node] = ni
        if ni.pods_with_required_anti_affinity:
            self._with_anti_affinity[node] = ni

    def _remove(self, key: str) -> None:
        st = self._pods.pop(key, None)
        if st is None:
            return
        ni = self.nodes.get(st.node)
        if ni is not None:
            ni.remove_pod(key)
            if not ni.pods_with_affinity:
                self._with_affinity.pop(st.node, None)
            if not ni.pods_with_required_anti_affinity:
                self._with_anti_affinity.pop(st.node, None)
            if ni.node is None and not ni.pods:
                del self.nodes[st.node]

    def assume(self, p: PodInfo, node: str) -> None:
        """Count `p` on `node` now, before the apiserver confirms the binding."""
        self._remove(p.key)
        self._add(p, node, assumed=True)

    def forget(self, key: str) -> None:
        """Undo `assume()` (the bind failed)."""
        st = self._pods.get(key)
        if st is not None and st.assumed:
            self._remove(key)

    def is_assumed(self, key: str) -> bool:
        """Whether the pod is counted only by assumption so far."""
        st = self._pods.get(key)
        return st is not None and st.assumed

    def set_pod(self, p: PodInfo) -> None:
        """Add or update a bound pod from the informer (confirms an assumed pod)."""
        self._remove(p.key)
        self._add(p, p.node_name, assumed=False)

    def remove_pod(self, key: str) -> bool:
        """Stop counting a pod (deleted or terminated); whether it was counted."""
        if key not in self._pods:
            return False
        self._remove(key)
        return True

    def pod_info(self, key: str) -> PodInfo | None:
        """The PodInfo counted for the pod (assumed or bound), if any."""
        st = self._pods.get(key)
        ni = self.nodes.get(st.node) if st is not None else None
        return ni.pods.get(key) if ni is not None else None

    def has_pod(self, key: str) -> bool:
        """Whether the pod is counted on some node."""
        return key in self._pods
