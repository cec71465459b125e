"""NodeName, NodeUnschedulable and TaintToleration: filters on the node object alone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from apimachinery.taints import tolerated, tolerates
from scheduler.cache import NodeInfo
from scheduler.framework import SKIP, FilterPlugin, ScorePlugin, default_normalize
from scheduler.podinfo import PodInfo

__all__ = [
    "ERR_NODE_NAME",
    "ERR_UNSCHEDULABLE",
    "NodeName",
    "NodeUnschedulable",
    "TaintToleration",
    "find_untolerated_taint",
    "tolerates",
    "untolerated_taint_reason",
]

ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_UNSCHEDULABLE = "node(s) were unschedulable"
TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
_FILTER_EFFECTS = ("NoSchedule", "NoExecute")


def find_untolerated_taint(taints: Iterable[dict[str, Any]], tolerations: Sequence[dict[str, Any]]) -> dict | None:
    """The first NoSchedule/NoExecute taint no toleration tolerates, or None."""
    for taint in taints:
        if taint.get("effect") in _FILTER_EFFECTS and not tolerated(tolerations, taint):
            return taint
    return None


def untolerated_taint_reason(taint: dict[str, Any]) -> str:
    """The TaintToleration failure reason, as upstream formats it."""
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"


class NodeName(FilterPlugin):
    """The pod's spec.nodeName, if set, must be this node."""

    name = "NodeName"

    def pre_filter(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Skip pods that do not name a node."""
        return None if pod.node_name else SKIP

    def filter(self, pod: PodInfo, state: Any, node: NodeInfo) -> Sequence[str] | None:
        """Reject every other node."""
        return None if node.name == pod.node_name else (ERR_NODE_NAME,)


class NodeUnschedulable(FilterPlugin):
    """A cordoned node (spec.unschedulable) takes only pods tolerating node.kubernetes.io/unschedulable."""

    name = "NodeUnschedulable"

    def pre_filter(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Skip pods that tolerate the unschedulable taint, and every pod while no node is cordoned."""
        if getattr(nodes, "any_unschedulable", None) is False:
            return SKIP
        taint = {"key": TAINT_NODE_UNSCHEDULABLE, "effect": "NoSchedule"}
        return SKIP if tolerated(pod.tolerations, taint) else None

    def filter(self, pod: PodInfo, state: Any, node: NodeInfo) -> Sequence[str] | None:
        """Reject cordoned nodes."""
        return (ERR_UNSCHEDULABLE,) if node.unschedulable else None


class TaintToleration(FilterPlugin, ScorePlugin):
    """NoSchedule/NoExecute taints must be tolerated; untolerated PreferNoSchedule taints lower the score."""

    name = "TaintToleration"
    weight = 3

    def pre_filter(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Skip the filter while no node has a NoSchedule or NoExecute taint (none can fail it)."""
        return SKIP if getattr(nodes, "any_no_schedule_taint", None) is False else None

    def filter(self, pod: PodInfo, state: Any, node: NodeInfo) -> Sequence[str] | None:
        """Reject a node with an untolerated NoSchedule/NoExecute taint."""
        if not node.taints:
            return None
        taint = find_untolerated_taint(node.taints, pod.tolerations)
        return None if taint is None else (untolerated_taint_reason(taint),)

    def pre_score(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Tolerations that count for PreferNoSchedule; skip when no node has such a taint."""
        known = getattr(nodes, "any_prefer_no_schedule_taint", None)
        if known is False or (
            known is None and not any(t.get("effect") == "PreferNoSchedule" for n in nodes for t in n.taints)
        ):
            return SKIP
        return [t for t in pod.tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]

    def score(self, pod: PodInfo, state: Any, node: NodeInfo) -> int:
        """How many PreferNoSchedule taints the pod does not tolerate."""
        return sum(1 for t in node.taints if t.get("effect") == "PreferNoSchedule" and not tolerated(state, t))

    def normalize(self, scores: list[int]) -> None:
        """Fewer untolerated taints score higher."""
        default_normalize(scores, reverse=True)
