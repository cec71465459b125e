"""NodeAffinity: spec.nodeSelector and nodeAffinity (required as a filter, preferred as a score)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scheduler.cache import NodeInfo
from scheduler.framework import SKIP, FilterPlugin, PreFilterResult, ScorePlugin, Unschedulable, default_normalize
from scheduler.podinfo import PodInfo

__all__ = [
    "ERR_CONFLICT",
    "ERR_NODE_AFFINITY",
    "NodeAffinity",
    "match_requirement",
    "match_term",
    "required_node_names",
]

ERR_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_CONFLICT = "pod affinity terms conflict"
_NAME_FIELD = "metadata.name"


def _int(s: Any) -> int | None:
    try:
        return int(str(s))
    except ValueError:
        return None


def match_requirement(req: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """One NodeSelectorRequirement against a node's labels (In, NotIn, Exists, DoesNotExist, Gt, Lt)."""
    key = req.get("key") or ""
    op = req.get("operator")
    values = req.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt"):
        if key not in labels or len(values) != 1:
            return False
        have, want = _int(labels[key]), _int(values[0])
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _match_field(req: Mapping[str, Any], node_name: str) -> bool:
    values = req.get("values") or []
    if req.get("key") != _NAME_FIELD or len(values) != 1:
        return False
    if req.get("operator") == "In":
        return node_name == values[0]
    if req.get("operator") == "NotIn":
        return node_name != values[0]
    return False


def match_term(term: Mapping[str, Any], node: NodeInfo) -> bool:
    """A NodeSelectorTerm: all its expressions and fields hold; an empty term matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    return all(match_requirement(r, node.labels) for r in exprs) and all(_match_field(r, node.name) for r in fields)


def required_node_names(terms: Sequence[Mapping[str, Any]]) -> frozenset[str] | None:
    """Node names the required terms limit the pod to through `metadata.name In`, or None (upstream PreFilter)."""
    names: set[str] = set()
    for t in terms:
        term_names: set[str] | None = None
        for r in t.get("matchFields") or []:
            if r.get("key") == _NAME_FIELD and r.get("operator") == "In":
                s = set(r.get("values") or [])
                term_names = s if term_names is None else term_names & s
        if term_names is None:
            return None
        names |= term_names
    return frozenset(names)


class NodeAffinity(FilterPlugin, ScorePlugin):
    """nodeSelector and required node affinity filter; preferred node affinity scores (weight 2)."""

    name = "NodeAffinity"
    weight = 2

    def pre_filter(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Skip pods without a selector or required affinity; `metadata.name In` restricts the nodes."""
        if not pod.node_selector and pod.required_node_terms is None:
            return SKIP
        if pod.required_node_terms:
            names = required_node_names(pod.required_node_terms)
            if names is not None:
                if not names:
                    raise Unschedulable(ERR_CONFLICT)
                return PreFilterResult(names)
        return None

    def filter(self, pod: PodInfo, state: Any, node: NodeInfo) -> Sequence[str] | None:
        """Reject nodes whose labels miss the nodeSelector or match no required term."""
        labels = node.labels
        for k, v in pod.node_selector.items():
            if labels.get(k) != v:
                return (ERR_NODE_AFFINITY,)
        terms = pod.required_node_terms
        if terms is not None and not any(match_term(t, node) for t in terms):
            return (ERR_NODE_AFFINITY,)
        return None

    def pre_score(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Skip pods without preferred terms."""
        return None if pod.preferred_node_terms else SKIP

    def score(self, pod: PodInfo, state: Any, node: NodeInfo) -> int:
        """Sum of the weights of the preferred terms the node matches."""
        return sum(w for w, term in pod.preferred_node_terms if w and match_term(term, node))

    def normalize(self, scores: list[int]) -> None:
        """Scale by the best node."""
        default_normalize(scores)
