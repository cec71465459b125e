"""Pure helpers of the housekeeping controllers: ports, subsets, slices, taints, tolerations, conditions, pod GC."""

from __future__ import annotations

from apimachinery.resources import by_plural
from controller_manager.controllers.endpoints import (
    TriggerTimeTracker,
    build_subsets,
    find_port,
    should_pod_be_in_endpoints,
)
from controller_manager.controllers.endpointslice import desired_groups, pod_to_endpoint
from controller_manager.controllers.garbagecollector import DANGLING, SOLID, WAITING, classify_owner
from controller_manager.controllers.namespace import content_conditions, merge_conditions
from controller_manager.controllers.nodelifecycle import eviction_delay, taints_for, tolerates
from controller_manager.controllers.podgc import terminated_to_delete


def _pod(name: str, ip: str = "10.0.0.1", ready: bool = True, **extra: object) -> dict:
    pod = {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "ports": [{"name": "web", "containerPort": 8080}]}], "nodeName": "n1"},
        "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": str(ready)}]},
    }
    pod["metadata"].update(extra.pop("metadata", {}))  # type: ignore[arg-type]
    pod["spec"].update(extra)
    return pod


SVC = {
    "metadata": {"name": "svc", "namespace": "ns", "uid": "svc-uid"},
    "spec": {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}]},
}


def test_find_port_by_number_and_name() -> None:
    pod = _pod("a")
    assert find_port(pod, {"port": 80, "targetPort": 9000}) == 9000
    assert find_port(pod, {"port": 80, "targetPort": "web", "protocol": "TCP"}) == 8080
    assert find_port(pod, {"port": 80, "targetPort": "web", "protocol": "UDP"}) is None
    assert find_port(pod, {"port": 80, "targetPort": "nope"}) is None


def test_should_pod_be_in_endpoints() -> None:
    assert should_pod_be_in_endpoints(_pod("a"), False)
    assert not should_pod_be_in_endpoints(_pod("a", ip=""), True)
    terminating = _pod("a", metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"})
    assert not should_pod_be_in_endpoints(terminating, False)
    assert should_pod_be_in_endpoints(terminating, True)
    done = _pod("a", restartPolicy="Never")
    done["status"]["phase"] = "Succeeded"
    assert not should_pod_be_in_endpoints(done, True)


def test_build_subsets_packs_ready_and_not_ready() -> None:
    pods = [_pod("b", "10.0.0.2", ready=False), _pod("a", "10.0.0.10"), _pod("c", "10.0.0.3")]
    (subset,) = build_subsets(SVC, pods)
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.3", "10.0.0.10"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.0.0.2"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert subset["addresses"][0]["targetRef"] == {"kind": "Pod", "namespace": "ns", "name": "c", "uid": "uid-c"}


def test_build_subsets_skips_pods_without_the_named_port() -> None:
    pod = _pod("a")
    pod["spec"]["containers"][0]["ports"] = []
    assert build_subsets(SVC, [pod]) == []


def test_slice_endpoint_conditions() -> None:
    ep = pod_to_endpoint(_pod("a"), SVC)
    assert ep["conditions"] == {"ready": True, "serving": True, "terminating": False}
    terminating = pod_to_endpoint(_pod("a", metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"}), SVC)
    assert terminating["conditions"] == {"ready": False, "serving": True, "terminating": True}
    groups, skipped = desired_groups(SVC, [_pod("a"), _pod("b", ip="")])
    assert skipped == []
    ((ports, eps),) = groups.values()
    assert ports == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [e["targetRef"]["name"] for e in eps] == ["a"]


def test_classify_owner() -> None:
    owner = {"metadata": {"uid": "u1"}}
    assert classify_owner(None, "u1") == DANGLING
    assert classify_owner(owner, "u2") == DANGLING
    assert classify_owner(owner, "u1") == SOLID
    deleting = {"metadata": {"uid": "u1", "deletionTimestamp": "x", "finalizers": ["foregroundDeletion"]}}
    assert classify_owner(deleting, "u1") == WAITING
    orphaning = {"metadata": {"uid": "u1", "deletionTimestamp": "x", "finalizers": ["orphan"]}}
    assert classify_owner(orphaning, "u1") == SOLID


def test_namespace_conditions_messages() -> None:
    pods, deploys = by_plural("", "pods"), by_plural("apps", "deployments")
    assert pods and deploys
    wanted = content_conditions({pods: 2, deploys: 1}, {"example.com/x": 3}, [])
    assert wanted["NamespaceContentRemaining"] == (
        "True",
        "SomeResourcesRemain",
        "Some resources are remaining: deployments.apps has 1 resource instances, pods. has 2 resource instances",
    )
    assert (
        wanted["NamespaceFinalizersRemaining"][2]
        == "Some finalizers are remaining: example.com/x in 3 resource instances"
    )
    conds = {c["type"]: c for c in merge_conditions([], wanted)}
    assert conds["NamespaceDeletionDiscoveryFailure"]["status"] == "False"
    assert conds["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"
    assert (
        conds["NamespaceDeletionGroupVersionParsingFailure"]["message"] == "All legacy kube types successfully parsed"
    )
    later = {c["type"]: c for c in merge_conditions(list(conds.values()), {})}
    assert later["NamespaceContentRemaining"]["status"] == "False"
    assert later["NamespaceContentRemaining"]["message"] == "All content successfully removed"


def _node(ready: str | None, taints: list | None = None) -> dict:
    conds = [{"type": "Ready", "status": ready}] if ready else []
    return {"metadata": {"name": "n"}, "spec": {"taints": taints or []}, "status": {"conditions": conds}}


def test_taints_follow_ready_condition() -> None:
    unknown = taints_for(_node("Unknown"), [])
    assert {(t["key"], t["effect"]) for t in unknown} == {
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoSchedule"),
    }
    assert all(t.get("timeAdded") for t in unknown if t["effect"] == "NoExecute")
    not_ready = taints_for(_node("False"), [*unknown, {"key": "custom", "effect": "NoSchedule"}])
    assert {t["key"] for t in not_ready} == {"node.kubernetes.io/not-ready", "custom"}
    assert taints_for(_node("True"), not_ready) == [{"key": "custom", "effect": "NoSchedule"}]
    assert taints_for(_node(None), []) == []
    same = taints_for(_node("Unknown"), unknown)
    assert same == unknown  # unchanged taints keep their timeAdded


def test_tolerations_and_eviction_delay() -> None:
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    assert tolerates({"key": taint["key"], "operator": "Exists"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": taint["key"], "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert not tolerates({"key": "other", "operator": "Exists"}, taint)

    def pod(*tols: dict) -> dict:
        return {"spec": {"tolerations": list(tols)}}

    assert eviction_delay(pod(), [taint], 300) == 300
    assert eviction_delay(pod({"key": taint["key"], "operator": "Exists", "tolerationSeconds": 5}), [taint], 300) == 5
    assert eviction_delay(pod({"key": taint["key"], "operator": "Exists"}), [taint], 300) is None
    assert eviction_delay(pod(), [{"key": "x", "effect": "NoSchedule"}], 300) is None


def test_terminated_to_delete_oldest_first() -> None:
    def p(name: str, phase: str, ts: str) -> dict:
        return {"metadata": {"name": name, "creationTimestamp": ts}, "status": {"phase": phase}}

    pods = [
        p("new", "Succeeded", "2026-01-03T00:00:00Z"),
        p("old", "Failed", "2026-01-01T00:00:00Z"),
        p("mid", "Succeeded", "2026-01-02T00:00:00Z"),
        p("run", "Running", "2025-01-01T00:00:00Z"),
    ]
    assert [x["metadata"]["name"] for x in terminated_to_delete(pods, 1)] == ["old", "mid"]
    assert terminated_to_delete(pods, 3) == []
    assert terminated_to_delete(pods, 0) == []


def test_slices_skip_pods_whose_node_is_unknown_and_carry_zone() -> None:
    nodes = {"n1": {"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z9"}}}}
    groups, skipped = desired_groups(SVC, [_pod("a"), _pod("b", nodeName="gone")], nodes.get)
    ((_, eps),) = groups.values()
    assert [e["targetRef"]["name"] for e in eps] == ["a"]
    assert eps[0]["zone"] == "z9"
    assert skipped == ["b"]


def test_trigger_time_is_earliest_unseen_change() -> None:
    tracker = TriggerTimeTracker()
    svc = {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}}

    def pod(uid: str, when: str) -> dict:
        return {"metadata": {"uid": uid}, "status": {"conditions": [{"type": "Ready", "lastTransitionTime": when}]}}

    assert tracker.compute("k", svc, [pod("a", "2026-01-02T00:00:00Z")]) == "2026-01-01T00:00:00Z"
    tracker.written("k")
    assert tracker.compute("k", svc, [pod("a", "2026-01-02T00:00:00Z")]) == ""
    pods = [pod("a", "2026-01-04T00:00:00Z"), pod("b", "2026-01-03T00:00:00Z")]
    assert tracker.compute("k", svc, pods) == "2026-01-03T00:00:00Z"


def test_trigger_time_survives_a_write_that_failed() -> None:
    # a sync whose update met a conflict is retried: its changes are not reflected yet, so the retry carries
    # the same trigger time (the CI failure: the Endpoints ended with both pods and no annotation)
    tracker = TriggerTimeTracker()
    svc = {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}}
    ready = {
        "metadata": {"uid": "a"},
        "status": {"conditions": [{"type": "Ready", "lastTransitionTime": "2026-01-02T00:00:00Z"}]},
    }
    assert tracker.compute("k", svc, []) == "2026-01-01T00:00:00Z"
    tracker.written("k")
    assert tracker.compute("k", svc, [ready]) == "2026-01-02T00:00:00Z"  # this write fails
    assert tracker.compute("k", svc, [ready]) == "2026-01-02T00:00:00Z"
    tracker.written("k")
    assert tracker.compute("k", svc, [ready]) == ""
