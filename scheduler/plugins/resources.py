"""NodeResourcesFit (filter + LeastAllocated score), NodeResourcesBalancedAllocation and NodePorts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scheduler.cache import NodeInfo
from scheduler.framework import MAX_NODE_SCORE, SKIP, FilterPlugin, ScorePlugin
from scheduler.podinfo import PodInfo

__all__ = ["ERR_PORTS", "ERR_TOO_MANY_PODS", "BalancedAllocation", "NodePorts", "NodeResourcesFit", "ports_conflict"]

ERR_TOO_MANY_PODS = "Too many pods"
ERR_PORTS = "node(s) didn't have free ports for the requested pod ports"
_ALL_IPS = "0.0.0.0"


class NodeResourcesFit(FilterPlugin, ScorePlugin):
    """Requests must fit in allocatable minus what bound pods request; scored LeastAllocated (cpu, memory)."""

    name = "NodeResourcesFit"
    weight = 1

    def filter(self, pod: PodInfo, state: Any, node: NodeInfo) -> Sequence[str] | None:
        """Every resource the pod is short of on this node ("Too many pods", "Insufficient cpu", ...)."""
        req = pod.requests
        alloc = node.allocatable
        used = node.requested
        reasons: list[str] | None = None
        if len(node.pods) + 1 > node.allowed_pods:
            reasons = [ERR_TOO_MANY_PODS]
        if req.cpu > 0 and req.cpu > alloc.cpu - used.cpu:
            reasons = [*(reasons or ()), "Insufficient cpu"]
        if req.memory > 0 and req.memory > alloc.memory - used.memory:
            reasons = [*(reasons or ()), "Insufficient memory"]
        if req.ephemeral_storage > 0 and req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage:
            reasons = [*(reasons or ()), "Insufficient ephemeral-storage"]
        for name, q in req.scalar.items():
            if q > 0 and q > alloc.scalar.get(name, 0) - used.scalar.get(name, 0):
                reasons = [*(reasons or ()), f"Insufficient {name}"]
        return reasons

    def filter_nodes(
        self, pod: PodInfo, state: Any, nodes: Sequence[NodeInfo], reasons: dict[str, Sequence[str]]
    ) -> list[NodeInfo]:
        """`filter` of every node in one pass: a node with room for everything passes at once."""
        req = pod.requests
        cpu, mem, storage = req.cpu, req.memory, req.ephemeral_storage
        fit = []
        for node in nodes:
            alloc, used = node.allocatable, node.requested
            if (
                len(node.pods) < node.allowed_pods
                and (cpu <= 0 or cpu <= alloc.cpu - used.cpu)
                and (mem <= 0 or mem <= alloc.memory - used.memory)
                and (storage <= 0 or storage <= alloc.ephemeral_storage - used.ephemeral_storage)
                and not req.scalar
            ):
                fit.append(node)
            elif r := self.filter(pod, state, node):
                reasons[node.name] = r
            else:
                fit.append(node)
        return fit

    def score(self, pod: PodInfo, state: Any, node: NodeInfo) -> int:
        """LeastAllocated: mean over cpu and memory of free share after placing the pod, 0..100."""
        alloc = node.allocatable
        nz = node.non_zero_requested
        cpu = _least(nz.cpu + pod.non_zero.cpu, alloc.cpu)
        mem = _least(nz.memory + pod.non_zero.memory, alloc.memory)
        return (cpu + mem) // 2

    def score_nodes(self, pod: PodInfo, state: Any, nodes: Sequence[NodeInfo]) -> list[int]:
        """`score` of every node in one pass (it runs for each feasible node of each pod)."""
        pod_cpu, pod_mem = pod.non_zero.cpu, pod.non_zero.memory
        out = []
        for node in nodes:
            alloc, nz = node.allocatable, node.non_zero_requested
            cpu_cap, mem_cap = alloc.cpu, alloc.memory
            cpu, mem = nz.cpu + pod_cpu, nz.memory + pod_mem
            cpu = 0 if cpu_cap == 0 or cpu > cpu_cap else (cpu_cap - cpu) * MAX_NODE_SCORE // cpu_cap
            mem = 0 if mem_cap == 0 or mem > mem_cap else (mem_cap - mem) * MAX_NODE_SCORE // mem_cap
            out.append((cpu + mem) // 2)
        return out


def _least(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


class BalancedAllocation(ScorePlugin):
    """Favours nodes whose cpu and memory would be used in similar shares (NodeResourcesBalancedAllocation)."""

    name = "NodeResourcesBalancedAllocation"
    weight = 1

    def pre_score(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Skip pods that request neither cpu nor memory (upstream)."""
        return SKIP if pod.requests.cpu == 0 and pod.requests.memory == 0 else None

    def score(self, pod: PodInfo, state: Any, node: NodeInfo) -> int:
        """(1 - std of the cpu and memory fractions) * 100."""
        # Runs once per feasible node per pod: plain arithmetic, no per-call lists.
        alloc = node.allocatable
        cpu_cap, mem_cap = alloc.cpu, alloc.memory
        std = 0.0
        if cpu_cap and mem_cap:  # with one capacity unknown there is one fraction: std 0
            used, req = node.requested, pod.requests
            cpu = min((used.cpu + req.cpu) / cpu_cap, 1.0)
            mem = min((used.memory + req.memory) / mem_cap, 1.0)
            std = abs(cpu - mem) / 2
        return int((1 - std) * MAX_NODE_SCORE)

    def score_nodes(self, pod: PodInfo, state: Any, nodes: Sequence[NodeInfo]) -> list[int]:
        """`score` of every node in one pass."""
        req_cpu, req_mem = pod.requests.cpu, pod.requests.memory
        out = []
        for node in nodes:
            alloc = node.allocatable
            cpu_cap, mem_cap = alloc.cpu, alloc.memory
            if cpu_cap and mem_cap:
                used = node.requested
                # min(x, 1.0) and abs() spelled out: the same floats without two calls per node
                cpu = (used.cpu + req_cpu) / cpu_cap
                mem = (used.memory + req_mem) / mem_cap
                if cpu > 1.0:
                    cpu = 1.0
                if mem > 1.0:
                    mem = 1.0
                out.append(int((1 - (cpu - mem if cpu > mem else mem - cpu) / 2) * MAX_NODE_SCORE))
            else:
                out.append(MAX_NODE_SCORE)
        return out


def ports_conflict(used: Any, ip: str, protocol: str, port: int) -> bool:
    """Whether (ip, protocol, port) clashes with the node's used host ports (0.0.0.0 clashes with any IP)."""
    if port <= 0:
        return False
    if ip == _ALL_IPS:
        return any(p == port and proto == protocol for _, proto, p in used)
    return (_ALL_IPS, protocol, port) in used or (ip, protocol, port) in used


class NodePorts(FilterPlugin):
    """A pod's hostPorts must be free on the node."""

    name = "NodePorts"

    def pre_filter(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Skip pods without host ports."""
        return None if pod.host_ports else SKIP

    def filter(self, pod: PodInfo, state: Any, node: NodeInfo) -> Sequence[str] | None:
        """Reject a node where one of the pod's host ports is taken."""
        if node.used_ports and any(ports_conflict(node.used_ports, *hp) for hp in pod.host_ports):
            return (ERR_PORTS,)
        return None
