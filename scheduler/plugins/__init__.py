"""The default plugin set, in upstream's order (filters stop at a node's first failing plugin)."""

from __future__ import annotations

from scheduler.framework import FilterPlugin, Framework, ScorePlugin
from scheduler.plugins.affinity import NodeAffinity
from scheduler.plugins.interpod import InterPodAffinity
from scheduler.plugins.node import NodeName, NodeUnschedulable, TaintToleration
from scheduler.plugins.resources import BalancedAllocation, NodePorts, NodeResourcesFit
from scheduler.plugins.spread import PodTopologySpread

__all__ = [
    "BalancedAllocation",
    "InterPodAffinity",
    "NodeAffinity",
    "NodeName",
    "NodePorts",
    "NodeResourcesFit",
    "NodeUnschedulable",
    "PodTopologySpread",
    "TaintToleration",
    "default_framework",
]


def default_framework(percentage_of_nodes_to_score: int = 0) -> Framework:
    """A Framework with the default filters and scores (weights as upstream's default profile)."""
    taints, affinity, fit, interpod = TaintToleration(), NodeAffinity(), NodeResourcesFit(), InterPodAffinity()
    filters: list[FilterPlugin] = [
        NodeUnschedulable(),
        NodeName(),
        taints,
        affinity,
        NodePorts(),
        fit,
        PodTopologySpread(),
        interpod,
    ]
    scorers: list[ScorePlugin] = [taints, affinity, fit, BalancedAllocation(), interpod]
    return Framework(filters, scorers, percentage_of_nodes_to_score=percentage_of_nodes_to_score)
