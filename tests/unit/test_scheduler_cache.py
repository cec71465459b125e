"""The node-info cache: assumed pods count at once, are confirmed by the informer, forgotten on bind failure."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_scheduler_builders import cache, node, pod

from scheduler.cache import node_taints
from scheduler.framework import FitError
from scheduler.plugins import default_framework
from scheduler.podinfo import PodInfo


def test_assume_confirm_forget() -> None:
    c = cache(node("a"), node("b"))
    p = PodInfo.of(pod("p", cpu="1", memory="1Gi"))
    c.assume(p, "a")
    a = c.nodes["a"]
    assert (a.requested.cpu, a.requested.memory, len(a.pods)) == (1000, 2**30, 1)
    assert c.is_assumed("default/p")
    c.set_pod(PodInfo.of(pod("p", cpu="1", memory="1Gi", node_name="a")))  # the watch event arrives
    assert not c.is_assumed("default/p")
    assert a.requested.cpu == 1000
    c.forget("default/p")  # confirmed pods are not forgotten
    assert a.requested.cpu == 1000
    c.assume(PodInfo.of(pod("q", cpu="500m")), "b")
    c.forget("default/q")
    assert (c.nodes["b"].requested.cpu, len(c.nodes["b"].pods)) == (0, 0)


def test_pod_on_unknown_node_and_node_removal() -> None:
    c = cache(node("a"))
    c.set_pod(PodInfo.of(pod("p", cpu="1", node_name="ghost")))
    assert [n.name for n in c.node_list()] == ["a"]
    c.set_node(node("ghost"))
    ghost = next(n for n in c.node_list() if n.name == "ghost")
    assert ghost.requested.cpu == 1000
    c.remove_node("ghost")
    assert [n.name for n in c.node_list()] == ["a"]
    assert c.remove_pod("default/p")
    assert "ghost" not in c.nodes


def test_host_ports_counted_and_released() -> None:
    c = cache(node("a"))
    p = pod("p", node_name="a")
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 80}]
    c.set_pod(PodInfo.of(p))
    assert ("0.0.0.0", "TCP", 80) in c.nodes["a"].used_ports
    c.remove_pod("default/p")
    assert not c.nodes["a"].used_ports


def test_node_taints_adds_not_ready_once() -> None:
    n = node("a", ready="False", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    assert node_taints(n) == [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    assert node_taints(node("b")) == []


def test_node_list_indexes_follow_pods_and_nodes() -> None:
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    prefer = [{"key": "k", "effect": "PreferNoSchedule"}]
    c = cache(node("a"), node("b", taints=prefer))
    nodes = c.node_list()
    assert nodes.with_pods_with_affinity == [] and nodes.with_pods_with_required_anti_affinity == []
    assert nodes.any_prefer_no_schedule_taint
    c.assume(PodInfo.of(pod("p", labels={"app": "x"}, affinity=anti)), "a")
    assert [n.name for n in c.node_list().with_pods_with_required_anti_affinity] == ["a"]
    assert [n.name for n in c.node_list().with_pods_with_affinity] == ["a"]
    c.forget("default/p")
    assert c.node_list().with_pods_with_required_anti_affinity == []
    c.set_node(node("b"))
    assert not c.node_list().any_prefer_no_schedule_taint
    c.set_node(node("b", taints=prefer))
    c.remove_node("b")
    assert not c.node_list().any_prefer_no_schedule_taint


def test_filters_skipped_while_no_node_can_fail_them_still_apply_once_one_can() -> None:
    """NodeUnschedulable and TaintToleration skip their per-node filter while the cache knows no node is
    cordoned or tainted NoSchedule/NoExecute; a node that becomes so is filtered out with upstream's reason."""
    fw = default_framework()
    c = cache(node("a"), node("b"))
    nodes = c.node_list()
    assert not nodes.any_unschedulable and not nodes.any_no_schedule_taint
    p = PodInfo.of(pod("p", cpu="100m"))
    assert fw.schedule(p, c.node_list()) in ("a", "b")
    for changed, reason in (
        (node("b", unschedulable=True), "1 node(s) were unschedulable"),
        (
            node("b", taints=[{"key": "k", "value": "v", "effect": "NoExecute"}]),
            "1 node(s) had untolerated taint {k: v}",
        ),
        (node("b", ready="False"), "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }"),
    ):
        c.set_node(changed)
        assert [fw.schedule(p, c.node_list()) for _ in range(4)] == ["a"] * 4
        c.set_node(node("a", pods="0"))
        with pytest.raises(FitError) as e:
            fw.schedule(p, c.node_list())
        assert str(e.value) == f"0/2 nodes are available: 1 Too many pods, {reason}."
        c.set_node(node("a"))
        c.set_node(node("b"))
        assert not c.node_list().any_unschedulable and not c.node_list().any_no_schedule_taint
    c.set_node(node("b", unschedulable=True))
    c.remove_node("b")
    assert not c.node_list().any_unschedulable


def test_podinfo_of_a_new_version_reads_what_changed() -> None:
    """A PodInfo made from a pod's new version with the old one's PodInfo at hand equals one parsed afresh."""
    old = pod("p", cpu="100m", memory="1Gi", labels={"app": "a"}, tolerations=[{"key": "k", "operator": "Exists"}])

    def changed(edit: Any) -> dict[str, Any]:
        new = copy.deepcopy(old)
        edit(new)
        return new

    versions = [
        changed(lambda p: p.update(status={"phase": "Running"})),
        changed(lambda p: p["spec"].update(nodeName="n1")),
        changed(lambda p: p["metadata"]["labels"].update(app="b")),
        changed(lambda p: p["spec"]["containers"][0]["resources"]["requests"].update(cpu="2")),
        changed(lambda p: p["spec"]["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 8080}])),
        changed(lambda p: p["spec"].update(tolerations=[])),
        changed(lambda p: p["spec"].update(priority=7, nodeSelector={"zone": "z"})),
        changed(lambda p: p["spec"].update(initContainers=[{"name": "i", "resources": {"requests": {"cpu": "3"}}}])),
        changed(
            lambda p: p["spec"].update(
                affinity={
                    "podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "h", "labelSelector": {}}]
                    }
                }
            )
        ),
        changed(lambda p: p["metadata"].update(uid="other")),
    ]
    prev = PodInfo.of(old)
    for new in versions:
        assert PodInfo.of(new, prev) == PodInfo.of(new)
    reused = PodInfo.of(versions[1], prev)  # only nodeName changed: nothing parsed again
    assert reused.requests is prev.requests and reused.node_name == "n1" and reused.obj is versions[1]
