"""Preemption: which node and which lower-priority pods, as upstream's DefaultPreemption picks them."""

from __future__ import annotations

from typing import Any

import pytest
from test_scheduler_builders import node, node_info, pod

from scheduler.framework import FitError
from scheduler.plugins import default_framework
from scheduler.podinfo import PodInfo
from scheduler.preemption import Budget, Preemptor


def prio(name: str, priority: int, cpu: str, node_name: str = "", **kw: Any) -> dict[str, Any]:
    p = pod(name, cpu=cpu, node_name=node_name, priority=priority, **kw)
    return p


def fit_error(nodes: list[Any], p: PodInfo) -> FitError:
    with pytest.raises(FitError) as e:
        default_framework().schedule(p, nodes)
    return e.value


def candidate(nodes: list[Any], p: dict[str, Any], budgets: list[Budget] | None = None):
    pi = PodInfo.of(p)
    return Preemptor(default_framework()).find(pi, nodes, fit_error(nodes, pi), budgets or [])


def test_evicts_only_as_many_lower_priority_pods_as_needed() -> None:
    a = node_info(node("a", cpu="4"), prio("low1", 0, "1", "a"), prio("low2", 0, "1", "a"), prio("mid", 5, "2", "a"))
    cand = candidate([a], prio("high", 10, "2"))
    assert cand is not None and cand.node == "a"
    # removing everything lower makes it fit; putting back the most important first keeps `mid`
    assert sorted(v.name for v in cand.victims) == ["low1", "low2"]


def test_no_candidate_when_only_equal_or_higher_priority_pods_hold_the_room() -> None:
    a = node_info(node("a", cpu="2"), prio("same", 10, "2", "a"))
    assert candidate([a], prio("p", 10, "1")) is None


def test_unresolvable_nodes_are_not_candidates() -> None:
    tainted = node("a", cpu="2", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])
    a = node_info(tainted, prio("low", 0, "2", "a"))
    b = node_info(node("b", cpu="2", unschedulable=True), prio("low2", 0, "2", "b"))
    assert candidate([a, b], prio("high", 10, "1")) is None


def test_prefers_the_node_whose_victims_matter_least() -> None:
    a = node_info(node("a", cpu="2"), prio("mid", 5, "2", "a"))
    b = node_info(node("b", cpu="2"), prio("low", 1, "2", "b"))
    cand = candidate([a, b], prio("high", 10, "2"))
    assert cand is not None and cand.node == "b" and [v.name for v in cand.victims] == ["low"]


def test_prefers_fewer_victims_at_equal_priority() -> None:
    a = node_info(node("a", cpu="2"), prio("x1", 1, "1", "a"), prio("x2", 1, "1", "a"))
    b = node_info(node("b", cpu="2"), prio("y1", 1, "2", "b"))
    cand = candidate([a, b], prio("high", 10, "2"))
    assert cand is not None and cand.node == "b"


def test_avoids_breaking_a_disruption_budget() -> None:
    guarded = {"app": "db"}
    a = node_info(node("a", cpu="2"), prio("db", 1, "2", "a", labels=guarded))
    b = node_info(node("b", cpu="2"), prio("web", 1, "2", "b"))
    budget = Budget.of(
        {
            "metadata": {"namespace": "default", "name": "db"},
            "spec": {"selector": {"matchLabels": guarded}},
            "status": {"disruptionsAllowed": 0},
        }
    )
    assert budget is not None
    cand = candidate([a, b], prio("high", 10, "2"), [budget])
    assert cand is not None and cand.node == "b" and cand.pdb_violations == 0
    # with no other choice the budget is broken, and counted
    only = candidate([a], prio("high", 10, "2"), [budget])
    assert only is not None and only.node == "a" and only.pdb_violations == 1


def test_preemption_policy_never_is_not_eligible() -> None:
    p = PodInfo.of(prio("high", 10, "2", preemptionPolicy="Never"))
    assert not Preemptor(default_framework()).eligible(p, [])


def test_waits_while_its_victims_terminate() -> None:
    victim = prio("low", 0, "2", "a")
    victim["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    a = node_info(node("a", cpu="2"), victim)
    p = prio("high", 10, "2")
    p["status"] = {"nominatedNodeName": "a"}
    assert not Preemptor(default_framework()).eligible(PodInfo.of(p), [a])
