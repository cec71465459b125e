"""InterPodAffinity: required pod (anti-)affinity as a filter, preferred terms as a score; both ways
(the incoming pod's terms over existing pods, and existing pods' terms over the incoming pod)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scheduler.cache import NodeInfo
from scheduler.framework import MAX_NODE_SCORE, SKIP, FilterPlugin, ScorePlugin
from scheduler.podinfo import AffinityTerm, PodInfo

__all__ = ["ERR_AFFINITY", "ERR_ANTI_AFFINITY", "ERR_EXISTING_ANTI_AFFINITY", "InterPodAffinity"]

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"

Pair = tuple[str, str]
HARD_POD_AFFINITY_WEIGHT = 1  # upstream InterPodAffinityArgs default


@dataclass
class _State:
    existing_anti: Counter[Pair] = field(default_factory=Counter)
    affinity: Counter[Pair] = field(default_factory=Counter)
    anti: Counter[Pair] = field(default_factory=Counter)
    self_match: bool = False


def _matches_all(terms: Sequence[AffinityTerm], pod: PodInfo) -> bool:
    return bool(terms) and all(t.matches(pod) for t in terms)


class InterPodAffinity(FilterPlugin, ScorePlugin):
    """Pods' required (anti-)affinity over topology keys; preferred terms score (weight 2)."""

    name = "InterPodAffinity"
    weight = 2

    def pre_filter(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Count, per topology pair, the pods that attract or repel this pod; skip when nothing applies."""
        st = _State()
        for node in getattr(nodes, "with_pods_with_required_anti_affinity", nodes):
            for other in node.pods_with_required_anti_affinity.values():
                for t in other.anti_affinity_terms:
                    tv = node.labels.get(t.topology_key)
                    if tv is not None and t.matches(pod):
                        st.existing_anti[(t.topology_key, tv)] += 1
        if pod.affinity_terms or pod.anti_affinity_terms:
            for node in nodes:
                for other in node.pods.values():
                    if _matches_all(pod.affinity_terms, other):
                        for t in pod.affinity_terms:
                            tv = node.labels.get(t.topology_key)
                            if tv is not None:
                                st.affinity[(t.topology_key, tv)] += 1
                    for t in pod.anti_affinity_terms:
                        tv = node.labels.get(t.topology_key)
                        if tv is not None and t.matches(other):
                            st.anti[(t.topology_key, tv)] += 1
            st.self_match = _matches_all(pod.affinity_terms, pod)
        elif not st.existing_anti:
            return SKIP
        return st

    def filter(self, pod: PodInfo, state: Any, node: NodeInfo) -> Sequence[str] | None:
        """Affinity first, then the pod's anti-affinity, then the existing pods' anti-affinity."""
        st: _State = state
        labels = node.labels
        if pod.affinity_terms:
            pods_exist = True
            for t in pod.affinity_terms:
                tv = labels.get(t.topology_key)
                if tv is None:
                    return (ERR_AFFINITY,)
                if st.affinity[(t.topology_key, tv)] <= 0:
                    pods_exist = False
            # The first pod of a group with affinity to itself may go anywhere the topology exists.
            if not pods_exist and not (not st.affinity and st.self_match):
                return (ERR_AFFINITY,)
        if st.anti:
            for t in pod.anti_affinity_terms:
                tv = labels.get(t.topology_key)
                if tv is not None and st.anti[(t.topology_key, tv)] > 0:
                    return (ERR_ANTI_AFFINITY,)
        if st.existing_anti:
            for pair in labels.items():
                if st.existing_anti[pair] > 0:
                    return (ERR_EXISTING_ANTI_AFFINITY,)
        return None

    def pre_score(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Score per topology pair from preferred terms both ways and existing pods' required affinity."""
        own = bool(pod.preferred_affinity_terms or pod.preferred_anti_affinity_terms)
        scores: Counter[Pair] = Counter()
        # Without preferred terms of its own, only nodes with pods that have affinity terms contribute.
        for node in nodes if own else getattr(nodes, "with_pods_with_affinity", nodes):
            if not node.labels:
                continue
            others = node.pods.values() if own else node.pods_with_affinity.values()
            for other in others:
                _process(scores, pod, other, node.labels)
        return scores or SKIP

    def score(self, pod: PodInfo, state: Any, node: NodeInfo) -> int:
        """Sum of the scores of the node's topology pairs."""
        scores: Counter[Pair] = state
        return sum(scores.get(pair, 0) for pair in node.labels.items())

    def normalize(self, scores: list[int]) -> None:
        """Min-max scale to 0..100 (all equal → 0)."""
        lo, hi = min(scores, default=0), max(scores, default=0)
        diff = hi - lo
        for i, s in enumerate(scores):
            scores[i] = MAX_NODE_SCORE * (s - lo) // diff if diff > 0 else 0


def _add(scores: Counter[Pair], term: AffinityTerm, target: PodInfo, labels: dict[str, str], weight: int) -> None:
    tv = labels.get(term.topology_key)
    if tv is not None and term.matches(target):
        scores[(term.topology_key, tv)] += weight


def _process(scores: Counter[Pair], pod: PodInfo, other: PodInfo, labels: dict[str, str]) -> None:
    """One existing pod's contribution (upstream processExistingPod)."""
    for w, t in pod.preferred_affinity_terms:
        _add(scores, t, other, labels, w)
    for w, t in pod.preferred_anti_affinity_terms:
        _add(scores, t, other, labels, -w)
    for t in other.affinity_terms:
        _add(scores, t, pod, labels, HARD_POD_AFFINITY_WEIGHT)
    for w, t in other.preferred_affinity_terms:
        _add(scores, t, pod, labels, w)
    for w, t in other.preferred_anti_affinity_terms:
        _add(scores, t, pod, labels, -w)
