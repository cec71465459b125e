"""The scheduling framework: Filter and Score plugins behind one small interface, and one scheduling
cycle over them (upstream pkg/scheduler/framework + schedule_one.go).

A plugin's `pre_filter(pod, nodes)` / `pre_score(pod, nodes)` computes per-pod state once (or returns
`SKIP` when the plugin has nothing to say about this pod), so per-node work stays cheap:
`filter(pod, state, node)` returns None when the node passes, or the failure reasons;
`score(pod, state, node)` returns an integer that `normalize()` may rescale to 0..100.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from scheduler.cache import NodeInfo
from scheduler.podinfo import PodInfo

__all__ = [
    "MAX_NODE_SCORE",
    "NO_NODES_AVAILABLE",
    "SKIP",
    "FilterPlugin",
    "FitError",
    "Framework",
    "PreFilterResult",
    "ScorePlugin",
    "default_normalize",
    "num_feasible_nodes_to_find",
]

MAX_NODE_SCORE = 100
NO_NODES_AVAILABLE = "no nodes available to schedule pods"
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


class _Skip:
    def __repr__(self) -> str:
        return "SKIP"


SKIP: Any = _Skip()
"""Returned by pre_filter/pre_score when the plugin does not apply to this pod."""


@dataclass
class PreFilterResult:
    """A pre_filter answer that also restricts the candidate nodes to `node_names` (upstream PreFilterResult)."""

    node_names: frozenset[str]
    state: Any = None


class FilterPlugin:
    """A Filter plugin: decides whether a pod can run on a node."""

    name: ClassVar[str] = ""

    def pre_filter(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Per-pod state for `filter`, `SKIP`, a PreFilterResult, or raise `Unschedulable`."""
        return None

    def filter(self, pod: PodInfo, state: Any, node: NodeInfo) -> Sequence[str] | None:
        """None if the node fits; otherwise the reasons it does not."""
        raise NotImplementedError

    def filter_nodes(
        self, pod: PodInfo, state: Any, nodes: Sequence[NodeInfo], reasons: dict[str, Sequence[str]]
    ) -> list[NodeInfo]:
        """The nodes that fit, in order; why each other one does not goes into `reasons` (default: `filter`
        per node; a plugin may do them in one pass)."""
        fit = []
        for node in nodes:
            r = self.filter(pod, state, node)
            if r:
                reasons[node.name] = r
            else:
                fit.append(node)
        return fit


class ScorePlugin:
    """A Score plugin: ranks feasible nodes; the framework multiplies its normalised score by `weight`."""

    name: ClassVar[str] = ""
    weight: int = 1

    def pre_score(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Any:
        """Per-pod state for `score` (`nodes` is every node, not only the feasible ones), or `SKIP`."""
        return None

    def score(self, pod: PodInfo, state: Any, node: NodeInfo) -> int:
        """The node's raw score."""
        raise NotImplementedError

    def score_nodes(self, pod: PodInfo, state: Any, nodes: Sequence[NodeInfo]) -> list[int]:
        """The raw score of each node (default: `score` per node; a plugin may do them in one pass)."""
        return [self.score(pod, state, n) for n in nodes]

    def normalize(self, scores: list[int]) -> None:
        """Rescale raw scores in place to 0..MAX_NODE_SCORE (default: already in range)."""
        return


class Unschedulable(Exception):
    """A pre_filter rejecting the pod for every node; its message goes into the FitError."""


def default_normalize(scores: list[int], reverse: bool = False) -> None:
    """Scale to 0..100 by the highest score, optionally reversed (upstream helper.DefaultNormalizeScore)."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // top
        scores[i] = MAX_NODE_SCORE - s if reverse else s


@dataclass(eq=False)
class FitError(Exception):
    """No node fits: why, per node (upstream framework.FitError)."""

    num_all_nodes: int
    node_reasons: Mapping[str, Sequence[str]] = field(default_factory=dict)
    pre_filter_msg: str = ""
    absent_reason: str = ""

    def __str__(self) -> str:
        """`0/3 nodes are available: 1 node(s) ..., 2 Insufficient memory.` exactly as upstream."""
        msg = f"0/{self.num_all_nodes} nodes are available:"
        if self.pre_filter_msg:
            return msg + f" {self.pre_filter_msg}."
        reasons: Counter[str] = Counter()
        for rs in self.node_reasons.values():
            for r in rs:
                reasons[r] += 1
        absent = self.num_all_nodes - len(self.node_reasons)
        if absent > 0 and self.absent_reason:
            reasons[self.absent_reason] += absent
        parts = sorted(f"{n} {r}" for r, n in reasons.items())
        if parts:
            msg += f" {', '.join(parts)}."
        return msg


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes to look for before scoring (upstream numFeasibleNodesToFind)."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    if percentage <= 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    if percentage >= 100:
        return num_all_nodes
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


class Framework:
    """Runs the filter and score plugins for one pod and picks a node."""

    def __init__(
        self,
        filters: Sequence[FilterPlugin],
        scorers: Sequence[ScorePlugin],
        *,
        percentage_of_nodes_to_score: int = 0,
        rng: random.Random | None = None,
    ) -> None:
        self.filters = list(filters)
        self.scorers = list(scorers)
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self._next_start = 0

    def find_feasible(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[NodeInfo]:
        """The nodes that pass every filter; raises FitError when none does."""
        active: list[tuple[FilterPlugin, Any]] = []
        restrict: frozenset[str] | None = None
        restricted_by: list[str] = []
        for p in self.filters:
            try:
                st = p.pre_filter(pod, nodes)
            except Unschedulable as e:
                raise FitError(len(nodes), pre_filter_msg=str(e)) from None
            if st is SKIP:
                continue
            if isinstance(st, PreFilterResult):
                restrict = st.node_names if restrict is None else restrict & st.node_names
                restricted_by.append(p.name)
                st = st.state
            active.append((p, st))
        candidates: Sequence[NodeInfo] = nodes
        absent_reason = ""
        if restrict is not None:
            candidates = [n for n in nodes if n.name in restrict]
            absent_reason = f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(restricted_by))}]"
        want = num_feasible_nodes_to_find(len(candidates), self.percentage)
        feasible: list[NodeInfo] = []
        reasons: dict[str, Sequence[str]] = {}
        n = len(candidates)
        start = self._next_start % n if n else 0
        checked = 0
        if want >= n:
            # Every candidate gets checked: plugin by plugin over the nodes still fitting, in the same
            # (rotated) order, gives each node the verdict of its first failing plugin as below.
            feasible = [*candidates[start:], *candidates[:start]]
            for p, st in active:
                feasible = p.filter_nodes(pod, st, feasible, reasons)
                if not feasible:
                    break
            checked = n
        for i in range(n - checked):
            node = candidates[(start + i) % n]
            checked += 1
            for p, st in active:
                r = p.filter(pod, st, node)
                if r:
                    reasons[node.name] = r
                    break
            else:
                feasible.append(node)
                if len(feasible) >= want:
                    break
        if n:
            self._next_start = (start + checked) % n
        if not feasible:
            raise FitError(len(nodes), reasons, absent_reason=absent_reason)
        return feasible

    def filter_node(self, pod: PodInfo, node: NodeInfo, nodes: Sequence[NodeInfo]) -> Sequence[str] | None:
        """Why `node` does not fit the pod (None when it fits), with the pre-filters run over `nodes`
        (preemption asks this of a copy of a node with some pods taken off)."""
        for p in self.filters:
            try:
                st = p.pre_filter(pod, nodes)
            except Unschedulable as e:
                return [str(e)]
            if st is SKIP:
                continue
            if isinstance(st, PreFilterResult):
                if node.name not in st.node_names:
                    return [f"node(s) didn't satisfy plugin(s) [{p.name}]"]
                st = st.state
            reasons = p.filter(pod, st, node)
            if reasons:
                return reasons
        return None

    def score(self, pod: PodInfo, feasible: Sequence[NodeInfo], nodes: Sequence[NodeInfo] = ()) -> list[int]:
        """Weighted total score of each feasible node (`nodes`: all of them, for topology-wide state)."""
        totals: list[int] | None = None
        for p in self.scorers:
            st = p.pre_score(pod, nodes or feasible)
            if st is SKIP:
                continue
            scores = p.score_nodes(pod, st, feasible)
            p.normalize(scores)
            w = p.weight
            if totals is None:
                totals = [s * w for s in scores] if w != 1 else scores
            else:
                totals = [t + s * w for t, s in zip(totals, scores, strict=True)]
        return totals if totals is not None else [0] * len(feasible)

    def select_host(self, feasible: Sequence[NodeInfo], totals: Sequence[int]) -> NodeInfo:
        """The highest total; ties broken uniformly at random (as upstream's reservoir sampling)."""
        top = max(totals)
        ties = [i for i, t in enumerate(totals) if t == top]
        # One draw among the ties: the same uniform choice as a draw per tie, at a fraction of the cost.
        return feasible[ties[self.rng.randrange(len(ties))] if len(ties) > 1 else ties[0]]

    def schedule(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> str:
        """The name of the node for `pod`; raises FitError (or Unschedulable with no nodes)."""
        if not nodes:
            raise Unschedulable(NO_NODES_AVAILABLE)
        feasible = self.find_feasible(pod, nodes)
        if len(feasible) == 1:
            return feasible[0].name
        return self.select_host(feasible, self.score(pod, feasible, nodes)).name
