"""DefaultPreemption (upstream pkg/scheduler/framework/plugins/defaultpreemption and
framework/preemption): when no node fits a pod, find the node where evicting the fewest, least
important lower-priority pods makes it fit.

Per node whose filter failures removing pods could fix (not taints, node affinity, a cordon): take
every lower-priority pod off a copy of the node; if the pod still does not fit, the node is no
candidate. Otherwise put the removed pods back one at a time, most important first (those whose
eviction would break a PodDisruptionBudget before the others), keeping each one that leaves the pod
fitting; the rest are the victims. The best candidate has the fewest budget violations, then the
lowest most-important victim, the lowest sum of victim priorities, the fewest victims, and the most
recently started victims (upstream pickOneNodeForPreemption).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from apimachinery.selectors import SelectorError, selector_from_label_selector
from scheduler.cache import NodeInfo
from scheduler.framework import FitError, Framework
from scheduler.plugins.interpod import ERR_ANTI_AFFINITY, ERR_EXISTING_ANTI_AFFINITY
from scheduler.plugins.resources import ERR_PORTS, ERR_TOO_MANY_PODS
from scheduler.plugins.spread import ERR_CONSTRAINTS
from scheduler.podinfo import PodInfo

__all__ = ["Budget", "Candidate", "Preemptor", "resolvable"]

_RESOLVABLE = frozenset({ERR_TOO_MANY_PODS, ERR_PORTS, ERR_ANTI_AFFINITY, ERR_EXISTING_ANTI_AFFINITY, ERR_CONSTRAINTS})


def resolvable(reasons: Sequence[str]) -> bool:
    """Whether removing pods from the node could fix every reason it failed for."""
    return all(r.startswith("Insufficient ") or r in _RESOLVABLE for r in reasons)


@dataclass
class Budget:
    """A PodDisruptionBudget as preemption sees it: whom it selects and how many may go."""

    namespace: str
    matches: Callable[[dict[str, str]], bool]
    allowed: int

    @classmethod
    def of(cls, pdb: dict[str, Any]) -> Budget | None:
        """From a PodDisruptionBudget object (None when its selector selects nothing or is bad)."""
        meta, spec = pdb.get("metadata") or {}, pdb.get("spec") or {}
        if spec.get("selector") is None:
            return None
        try:
            sel = selector_from_label_selector(spec["selector"])
        except SelectorError:
            return None
        allowed = int((pdb.get("status") or {}).get("disruptionsAllowed") or 0)
        return cls(meta.get("namespace", ""), sel.matches, allowed)


@dataclass
class Candidate:
    """A node and the pods to evict there so the preemptor fits."""

    node: str
    victims: list[PodInfo] = field(default_factory=list)
    pdb_violations: int = 0

    def rank(self) -> tuple[int, int, int, int, float]:
        """Smaller is better (upstream pickOneNodeForPreemption's criteria, in order)."""
        prios = [v.priority for v in self.victims]
        latest_start = max((_start_time(v) for v in self.victims), default=0.0)
        return (self.pdb_violations, max(prios, default=-(2**31)), sum(prios), len(prios), -latest_start)


def _start_time(p: PodInfo) -> float:
    text = ((p.obj.get("status") or {}).get("startTime")) or (p.obj.get("metadata") or {}).get("creationTimestamp")
    if not text:
        return 0.0
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def node_without(ni: NodeInfo, removed: set[str], added: Sequence[PodInfo] = ()) -> NodeInfo:
    """A copy of the node's info without the pods in `removed` (keys), plus `added`."""
    copy = NodeInfo(ni.name)
    if ni.node is not None:
        copy.set_node(ni.node)
    for p in ni.pods.values():
        if p.key not in removed:
            copy.add_pod(p)
    for p in added:
        copy.add_pod(p)
    return copy


class Preemptor:
    """Finds the candidate node and victims for a pod that fits nowhere."""

    def __init__(self, framework: Framework) -> None:
        self.framework = framework

    def eligible(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        """Whether the pod may preempt now: its policy allows it, and victims it already chose on its
        nominated node are not still terminating (upstream PodEligibleToPreemptOthers)."""
        spec, status = pod.obj.get("spec") or {}, pod.obj.get("status") or {}
        if spec.get("preemptionPolicy") == "Never":
            return False
        nominated = status.get("nominatedNodeName")
        if nominated:
            ni = next((n for n in nodes if n.name == nominated), None)
            if ni is not None:
                for p in ni.pods.values():
                    if p.priority < pod.priority and (p.obj.get("metadata") or {}).get("deletionTimestamp"):
                        return False
        return True

    def find(
        self, pod: PodInfo, nodes: Sequence[NodeInfo], fit: FitError, budgets: Sequence[Budget] = ()
    ) -> Candidate | None:
        """The best candidate, or None when evicting lower-priority pods helps nowhere."""
        best: Candidate | None = None
        for i, ni in enumerate(nodes):
            reasons = fit.node_reasons.get(ni.name)
            if reasons is None or not resolvable(reasons):
                continue
            cand = self._victims_on(pod, nodes, i, budgets)
            if cand is not None and (best is None or cand.rank() < best.rank()):
                best = cand
        return best

    def _fits(self, pod: PodInfo, nodes: Sequence[NodeInfo], i: int, trial: NodeInfo) -> bool:
        view = [*nodes[:i], trial, *nodes[i + 1 :]]
        return self.framework.filter_node(pod, trial, view) is None

    def _victims_on(
        self, pod: PodInfo, nodes: Sequence[NodeInfo], i: int, budgets: Sequence[Budget]
    ) -> Candidate | None:
        ni = nodes[i]
        lower = [p for p in ni.pods.values() if p.priority < pod.priority]
        if not lower:
            return None
        removed = {p.key for p in lower}
        if not self._fits(pod, nodes, i, node_without(ni, removed)):
            return None
        # Most important first: they get the first chance to stay.
        lower.sort(key=lambda p: (-p.priority, _start_time(p)))
        violating, fine = _split_by_budgets(lower, budgets)
        victims: list[PodInfo] = []
        violations = 0
        for group, breaks in ((violating, True), (fine, False)):
            for p in group:
                removed.discard(p.key)
                if self._fits(pod, nodes, i, node_without(ni, removed)):
                    continue  # reprieved
                removed.add(p.key)
                victims.append(p)
                violations += int(breaks)
        return Candidate(ni.name, victims, violations)


def _split_by_budgets(pods: list[PodInfo], budgets: Sequence[Budget]) -> tuple[list[PodInfo], list[PodInfo]]:
    """(pods whose eviction would break a budget, the others), as upstream filterPodsWithPDBViolation."""
    left = [b.allowed for b in budgets]
    violating, fine = [], []
    for p in pods:
        breaks = False
        for j, b in enumerate(budgets):
            if b.namespace == p.namespace and b.matches(p.labels):
                left[j] -= 1
                if left[j] < 0:
                    breaks = True
        (violating if breaks else fine).append(p)
    return violating, fine
