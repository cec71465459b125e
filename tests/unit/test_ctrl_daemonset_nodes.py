"""DaemonSet node eligibility: nodeSelector, node affinity, taints vs tolerations, pinning."""

from __future__ import annotations

from typing import Any

from controller_manager.controllers.daemonset import max_unavailable
from controller_manager.controllers.daemonset_nodes import (
    add_daemon_tolerations,
    node_should_run,
    pin_to_node,
    target_node,
    tolerates,
)


def node(name: str, labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def test_node_selector() -> None:
    spec = {"nodeSelector": {"disk": "ssd"}}
    assert node_should_run(node("a", {"disk": "ssd"}), spec) == (True, True)
    assert node_should_run(node("b", {"disk": "hdd"}), spec) == (False, False)


def test_required_affinity() -> None:
    spec = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]},
                    ]
                }
            }
        }
    }
    assert node_should_run(node("x", {"zone": "a"}), spec)[0]
    assert node_should_run(node("special"), spec)[0]
    assert not node_should_run(node("y", {"zone": "c"}), spec)[0]


def test_taints() -> None:
    spec: dict[str, Any] = {}
    add_daemon_tolerations(spec)
    no_sched = node("a", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    no_exec = node("b", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}])
    prefer = node("c", taints=[{"key": "x", "effect": "PreferNoSchedule"}])
    assert node_should_run(no_sched, spec) == (False, True)
    assert node_should_run(no_exec, spec) == (False, False)
    assert node_should_run(prefer, spec) == (True, True)
    # the standard daemon tolerations cover the node-condition taints
    unsched = node("d", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
    notready = node("e", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}])
    assert node_should_run(unsched, spec) == (True, True)
    assert node_should_run(notready, spec) == (True, True)
    spec["tolerations"].append({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"})
    assert node_should_run(no_sched, spec) == (True, True)


def test_tolerates() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert tolerates({"operator": "Exists"}, taint)
    assert tolerates({"key": "k", "operator": "Exists"}, taint)
    assert tolerates({"key": "k", "value": "v"}, taint)
    assert not tolerates({"key": "k", "value": "w"}, taint)
    assert not tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, taint)


def test_daemon_tolerations_and_pinning() -> None:
    spec: dict[str, Any] = {
        "hostNetwork": True,
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}],
    }
    add_daemon_tolerations(spec)
    keys = [t["key"] for t in spec["tolerations"]]
    assert keys.count("node.kubernetes.io/not-ready") == 1
    assert "node.kubernetes.io/network-unavailable" in keys and len(keys) == 7
    spec["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]
            }
        }
    }
    pin_to_node(spec, "n1")
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]
    assert target_node({"spec": spec}) == "n1"
    assert target_node({"spec": {**spec, "nodeName": "n2"}}) == "n2"


def test_max_unavailable() -> None:
    assert max_unavailable({"spec": {}}, 10) == 1
    ds = {"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": "25%"}}}}
    assert max_unavailable(ds, 10) == 3
    assert max_unavailable({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}}, 10) == 2


def _pod(name: str, h: str, ready: bool, created: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"controller-revision-hash": h}, "creationTimestamp": created},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_surplus_pods() -> None:
    from controller_manager.controllers.daemonset import max_surge, surplus_pods

    old = _pod("old", "a", True, "2026-01-01T00:00:00Z")
    new_unready = _pod("new", "b", False, "2026-01-01T00:01:00Z")
    new_ready = _pod("new", "b", True, "2026-01-01T00:01:00Z")
    assert [p["metadata"]["name"] for p in surplus_pods([old, new_unready], "b", surge=False)] == ["new"]
    assert surplus_pods([old, new_unready], "b", surge=True) == []
    assert [p["metadata"]["name"] for p in surplus_pods([old, new_ready], "b", surge=True)] == ["old"]
    dup = _pod("dup", "b", True, "2026-01-01T00:02:00Z")
    assert [p["metadata"]["name"] for p in surplus_pods([old, new_ready, dup], "b", surge=True)] == ["dup", "old"]
    assert max_surge({"spec": {"updateStrategy": {"rollingUpdate": {"maxSurge": "50%"}}}}, 3) == 2
