"""The scheduling cycle: failure messages exactly as kube-scheduler words them, scoring and host selection."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from test_scheduler_builders import cache, node, pod

from scheduler.framework import FitError, Unschedulable, default_normalize, num_feasible_nodes_to_find
from scheduler.plugins import default_framework
from scheduler.podinfo import PodInfo


def message(nodes, p) -> str:
    fw = default_framework()
    with pytest.raises((FitError, Unschedulable)) as e:
        fw.schedule(PodInfo.of(p), cache(*nodes).node_list())
    return str(e.value)


def test_fit_error_formatting_sorted_histogram() -> None:
    e = FitError(3, {"a": ["Insufficient memory"], "b": ["Insufficient memory"], "c": ["node(s) x"]})
    assert str(e) == "0/3 nodes are available: 1 node(s) x, 2 Insufficient memory."
    # Sorted as strings, like Go's sort.Strings: "10 ..." sorts before "2 ...".
    many = {f"n{i}": ["b"] for i in range(10)} | {"m1": ["a"], "m2": ["a"]}
    assert str(FitError(12, many)) == "0/12 nodes are available: 10 b, 2 a."
    assert str(FitError(2, pre_filter_msg="pod affinity terms conflict")) == (
        "0/2 nodes are available: pod affinity terms conflict."
    )


def test_message_insufficient_cpu_on_every_node() -> None:
    nodes = [node("a", cpu="1"), node("b", cpu="1")]
    assert message(nodes, pod("p", cpu="2")) == "0/2 nodes are available: 2 Insufficient cpu."


def test_message_mixed_reasons() -> None:
    nodes = [node("a", memory="1Gi", labels={"disk": "ssd"}), node("b", memory="1Gi", labels={"disk": "ssd"})]
    nodes.append(node("c", labels={"disk": "hdd"}))
    p = pod("p", memory="2Gi", nodeSelector={"disk": "ssd"})
    assert message(nodes, p) == (
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient memory."
    )


def test_message_first_failing_filter_wins_per_node() -> None:
    nodes = [
        node("a", cpu="1", unschedulable=True),
        node("b", cpu="1", taints=[{"key": "k", "value": "v", "effect": "NoExecute"}]),
        node("c", cpu="1"),
    ]
    assert message(nodes, pod("p", cpu="2")) == (
        "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: v}, "
        "1 node(s) were unschedulable."
    )


def test_message_no_nodes() -> None:
    assert message([], pod("p")) == "no nodes available to schedule pods"


def test_message_nodes_outside_prefilter_result() -> None:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    nodes = [node("a", cpu="1"), node("b"), node("c")]
    assert message(nodes, pod("p", cpu="2", affinity=aff)) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]."
    )


def test_schedules_on_only_fitting_node() -> None:
    fw = default_framework()
    c = cache(
        node("small", cpu="1"),
        node("big", cpu="8"),
        node("tainted", cpu="8", taints=[{"key": "x", "effect": "NoSchedule"}]),
    )
    assert fw.schedule(PodInfo.of(pod("p", cpu="4")), c.node_list()) == "big"


def test_prefers_least_allocated_node() -> None:
    fw = default_framework()
    c = cache(node("a"), node("b"))
    c.set_pod(PodInfo.of(pod("x", cpu="3", memory="6Gi", node_name="a")))
    assert all(
        fw.schedule(PodInfo.of(pod(f"p{i}", cpu="100m", memory="100Mi")), c.node_list()) == "b" for i in range(5)
    )


def test_preferred_affinity_outweighs_spread() -> None:
    fw = default_framework()
    c = cache(node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}))
    c.set_pod(PodInfo.of(pod("x", cpu="1", memory="2Gi", node_name="a")))
    pref = [{"weight": 100, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}}]
    p = pod("p", cpu="100m", affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": pref}})
    assert fw.schedule(PodInfo.of(p), c.node_list()) == "a"


def test_ties_broken_randomly() -> None:
    fw = default_framework()
    fw.rng = random.Random(7)
    c = cache(node("a"), node("b"), node("c"))
    picks = Counter(fw.schedule(PodInfo.of(pod(f"p{i}")), c.node_list()) for i in range(300))
    assert set(picks) == {"a", "b", "c"}
    assert min(picks.values()) > 50


def test_assumed_pod_is_seen_by_next_decision() -> None:
    fw = default_framework()
    c = cache(node("a", cpu="1"), node("b", cpu="1"))
    first = PodInfo.of(pod("p1", cpu="600m"))
    chosen = fw.schedule(first, c.node_list())
    c.assume(first, chosen)
    second = fw.schedule(PodInfo.of(pod("p2", cpu="600m")), c.node_list())
    assert second != chosen
    c.assume(PodInfo.of(pod("p2", cpu="600m")), second)
    with pytest.raises(FitError) as e:
        fw.schedule(PodInfo.of(pod("p3", cpu="600m")), c.node_list())
    assert str(e.value) == "0/2 nodes are available: 2 Insufficient cpu."
    c.forget("default/p1")
    assert fw.schedule(PodInfo.of(pod("p3", cpu="600m")), c.node_list()) == chosen


def test_default_normalize() -> None:
    s = [0, 5, 10]
    default_normalize(s)
    assert s == [0, 50, 100]
    r = [0, 0]
    default_normalize(r, reverse=True)
    assert r == [100, 100]


def test_num_feasible_nodes_to_find() -> None:
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(100) == 100
    assert num_feasible_nodes_to_find(1000) == 420
    assert num_feasible_nodes_to_find(5000) == 500
