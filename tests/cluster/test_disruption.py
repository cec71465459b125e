"""Voluntary disruptions on a real cluster: PodDisruptionBudgets guard evictions (`kubectl drain`
waits for them), and a higher-priority pod preempts lower-priority ones when nothing fits.

Its own two-node cluster (nodes of 1 CPU each, so room is easy to fill), because draining a node of
the session's shared cluster would move the other tests' pods.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import kubectl_on, wait_for
from tests.e2e.conftest import Kubectl
from tinykube.cluster import Cluster, ClusterSpec


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    spec = ClusterSpec(
        data_dir=tmp_path_factory.mktemp("disruption"),
        nodes=2,
        kubelet_args=("--cpu", "1", "--node-status-update-frequency", "2"),
    )
    with Cluster(spec) as c:
        yield c


@pytest.fixture(scope="module")
def kube(kubectl_binary: Path, small: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return kubectl_on(kubectl_binary, small, tmp_path_factory.mktemp("kubectl-disruption"))


@pytest.fixture(scope="module")
def http(small: Cluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small.server, timeout=10) as client:
        yield client


@pytest.fixture
def ns(http: httpx.Client) -> Iterator[str]:
    name = f"d-{uuid.uuid4().hex[:8]}"
    r = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    yield name
    http.delete(f"/api/v1/namespaces/{name}")


def _pods(kube: Kubectl, ns: str, selector: str) -> list[dict]:
    return json.loads(kube.ok("get", "pods", "-n", ns, "-l", selector, "-o", "json"))["items"]


def _ready(pod: dict) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds) and not pod["metadata"].get(
        "deletionTimestamp"
    )


def _pdb(kube: Kubectl, ns: str, name: str) -> dict:
    return json.loads(kube.ok("get", "pdb", "-n", ns, name, "-o", "json"))


def test_eviction_honours_the_budget_and_drain_waits_for_it(kube: Kubectl, http: httpx.Client, ns: str) -> None:
    kube.ok("create", "deployment", "-n", ns, "web", "--image=busybox", "--replicas=2", "--", "sleep", "3600")
    kube.ok("rollout", "status", "-n", ns, "deploy/web", "--timeout=60s", timeout=70)
    kube.ok("create", "poddisruptionbudget", "-n", ns, "web", "--selector=app=web", "--min-available=2")
    budget = wait_for(
        lambda: (b := _pdb(kube, ns, "web"))["status"].get("currentHealthy") == 2 and b, 30, "the budget's status"
    )
    assert budget["status"]["disruptionsAllowed"] == 0 and budget["status"]["expectedPods"] == 2
    assert budget["status"]["conditions"][0]["reason"] == "InsufficientPods"
    printed = kube.ok("get", "pdb", "-n", ns)
    assert printed.split("\n")[0].split() == [
        "NAME",
        "MIN",
        "AVAILABLE",
        "MAX",
        "UNAVAILABLE",
        "ALLOWED",
        "DISRUPTIONS",
        "AGE",
    ]

    victim = _pods(kube, ns, "app=web")[0]["metadata"]["name"]
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": victim, "namespace": ns}}
    r = http.post(f"/api/v1/namespaces/{ns}/pods/{victim}/eviction", json=body)
    assert r.status_code == 429, r.text
    status = r.json()
    assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert status["details"]["causes"] == [
        {"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}
    ]

    # drain the victim's node: refused while the budget holds, done once it allows one disruption
    node = _pods(kube, ns, "app=web")[0]["spec"]["nodeName"]
    out = kube.fails("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=6s", timeout=30)
    assert "Cannot evict pod as it would violate the pod's disruption budget." in out
    kube.ok("patch", "pdb", "-n", ns, "web", "--type=merge", "-p", '{"spec":{"minAvailable":1}}')
    try:
        kube.ok("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=90s", timeout=120)

        def moved() -> bool:
            pods = [p for p in _pods(kube, ns, "app=web") if _ready(p)]
            return len(pods) == 2 and all(p["spec"]["nodeName"] != node for p in pods)

        wait_for(moved, 60, "both web pods Ready on the other node")
    finally:
        kube.ok("uncordon", node)


def test_a_higher_priority_pod_preempts_a_lower_one(kube: Kubectl, http: httpx.Client, ns: str) -> None:
    for name, value in (("low", 10), ("high", 1000)):
        pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": f"{ns}-{name}"}}
        r = http.post("/apis/scheduling.k8s.io/v1/priorityclasses", json={**pc, "value": value})
        assert r.status_code == 201, r.text
    filler = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "filler"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "filler"}},
            "template": {
                "metadata": {"labels": {"app": "filler"}},
                "spec": {
                    "priorityClassName": f"{ns}-low",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "c",
                            "image": "busybox",
                            "command": ["sleep", "3600"],
                            "resources": {"requests": {"cpu": "600m"}},
                        }
                    ],
                },
            },
        },
    }
    kube.ok("apply", "-n", ns, "-f", "-", input=json.dumps(filler))
    kube.ok("rollout", "status", "-n", ns, "deploy/filler", "--timeout=60s", timeout=70)
    assert {p["spec"]["priority"] for p in _pods(kube, ns, "app=filler")} == {10}

    important = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "important", "labels": {"app": "important"}},
        "spec": {
            "priorityClassName": f"{ns}-high",
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": ["sleep", "3600"],
                    "resources": {"requests": {"cpu": "600m"}},
                }
            ],
        },
    }
    kube.ok("apply", "-n", ns, "-f", "-", input=json.dumps(important))

    def running() -> dict | None:
        pods = _pods(kube, ns, "app=important")
        return pods[0] if pods and pods[0]["status"].get("phase") == "Running" else None

    pod = wait_for(running, 60, "the high-priority pod Running")
    assert pod["spec"]["priority"] == 1000

    def preempted() -> dict | None:
        events = json.loads(kube.ok("get", "events", "-n", ns, "--field-selector", "reason=Preempted", "-o", "json"))
        return events if events["items"] else None

    # the scheduler writes its events from a queue of its own, which it may hold while it is busy
    events = wait_for(preempted, 15, "the Preempted event")
    assert any(f"Preempted by pod {pod['metadata']['uid']} on node" in e["message"] for e in events["items"])

    # the filler Deployment replaces its victim, which now fits nowhere: Pending, Unschedulable
    def one_pending() -> bool:
        phases = sorted(
            p["status"].get("phase", "")
            for p in _pods(kube, ns, "app=filler")
            if not p["metadata"].get("deletionTimestamp")
        )
        return phases == ["Pending", "Running"]

    wait_for(one_pending, 30, "one filler pod Running and its replacement Pending")
    unknown = {**important, "metadata": {"name": "nope"}, "spec": {**important["spec"], "priorityClassName": "nope"}}
    out = kube.fails("apply", "-n", ns, "-f", "-", input=json.dumps(unknown))
    assert 'pods "nope" is forbidden: no PriorityClass with name nope was found' in out
