"""PodTopologySpread (filter): topologySpreadConstraints with whenUnsatisfiable DoNotSchedule.

A node passes when, for every constraint, (pods matching the selector in the node's domain, plus one
if the pod matches itself) minus (the fewest in any eligible domain, or 0 with fewer domains than
minDomains) is at most maxSkew. Domains are counted over nodes that carry every constraint's
topology key and, by default (nodeAffinityPolicy Honor), match the pod's node selector and required
node affinity; taints count only with nodeTaintsPolicy Honor. Scoring (ScheduleAnyway and the
system default constraints) is not implemented.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from apimachinery.selectors import EQUALS, LabelSelector, Requirement, SelectorError, selector_from_label_selector
from scheduler.cache import NodeInfo
from scheduler.framework import SKIP, FilterPlugin
from scheduler.plugins.affinity import NodeAffinity
from scheduler.plugins.node import find_untolerated_taint
from scheduler.podinfo import PodInfo

__all__ = ["ERR_CONSTRAINTS", "ERR_MISSING_LABEL", "PodTopologySpread"]

ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = ERR_CONSTRAINTS + " (missing required label)"
_NODE_AFFINITY = NodeAffinity()


@dataclass(frozen=True)
class _Constraint:
    max_skew: int
    topology_key: str
    selector: LabelSelector
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


@dataclass
class _State:
    constraints: list[_Constraint]
    counts: Counter[tuple[str, str]]
    domains: dict[str, set[str]]

    def min_match(self, c: _Constraint) -> int:
        values = self.domains.get(c.topology_key) or set()
        if len(values) < c.min_domains:
            return 0
        return min((self.counts[(c.topology_key, v)] for v in values), default=0)


def _constraints(pod: PodInfo) -> list[_Constraint]:
    out = []
    for raw in (pod.obj.get("spec") or {}).get("topologySpreadConstraints") or []:
        if raw.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
            continue
        try:
            sel = selector_from_label_selector(raw.get("labelSelector"))
        except SelectorError:
            continue
        extra = [Requirement(k, EQUALS, (pod.labels[k],)) for k in raw.get("matchLabelKeys") or [] if k in pod.labels]
        if extra:
            sel = sel.add(*extra)
        out.append(
            _Constraint(
                max_skew=int(raw.get("maxSkew") or 1),
                topology_key=raw.get("topologyKey") or "",
                selector=sel,
                min_domains=int(raw.get("minDomains") or 1),
                honor_affinity=raw.get("nodeAffinityPolicy", "Honor") == "Honor",
                honor_taints=raw.get("nodeTaintsPolicy", "Ignore") == "Honor",
            )
        )
    return out


def _count(node: NodeInfo, c: _Constraint, namespace: str) -> int:
    return sum(
        1
        for p in node.pods.values()
        if p.namespace == namespace
        and not (p.obj.get("metadata") or {}).get("deletionTimestamp")
        and c.selector.matches(p.labels)
    )


class PodTopologySpread(FilterPlugin):
    """Hard topology spread constraints (upstream PodTopologySpread Filter)."""

    name = "PodTopologySpread"

    def pre_filter(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Matching pods per topology domain over the eligible nodes; skip pods without hard constraints."""
        constraints = _constraints(pod)
        if not constraints:
            return SKIP
        st = _State(constraints, Counter(), {})
        for node in nodes:
            if any(c.topology_key not in node.labels for c in constraints):
                continue
            affinity_ok: bool | None = None
            for c in constraints:
                if c.honor_affinity:
                    if affinity_ok is None:
                        affinity_ok = _NODE_AFFINITY.filter(pod, None, node) is None
                    if not affinity_ok:
                        continue
                if c.honor_taints and find_untolerated_taint(node.taints, pod.tolerations) is not None:
                    continue
                value = node.labels[c.topology_key]
                st.domains.setdefault(c.topology_key, set()).add(value)
                st.counts[(c.topology_key, value)] += _count(node, c, pod.namespace)
        return st

    def filter(self, pod: PodInfo, state: Any, node: NodeInfo) -> Sequence[str] | None:
        """Reject a node missing a topology key, or where placing the pod would exceed a maxSkew."""
        st: _State = state
        for c in st.constraints:
            value = node.labels.get(c.topology_key)
            if value is None:
                return (ERR_MISSING_LABEL,)
            self_match = 1 if c.selector.matches(pod.labels) else 0
            if st.counts[(c.topology_key, value)] + self_match - st.min_match(c) > c.max_skew:
                return (ERR_CONSTRAINTS,)
        return None
