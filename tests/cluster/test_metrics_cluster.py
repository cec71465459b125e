"""Resource metrics end to end, on a one-node cluster of real processes started by the launcher:
the kubelet measures, the metrics-server scrapes and registers metrics.k8s.io with the apiserver's
aggregation layer, the real `kubectl top` reads it, and the HPA controller scales a Deployment.

The dashboard add-on runs too: its node and pod tables grow CPU and memory charts from the same API.

Timings are shortened by flags: stats every second, a scrape every 2 s, HPAs reconciled every
second with a 5 s downscale stabilization window.

The test machine is shared and the kernel schedules by session (autogroup); the pod that must show
500m gets a higher autogroup priority (as root may) so that it is measured busy, not starved.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubelet.journal import read_journal
from kubelet.process_runtime import PIDS_JOURNAL
from tests.cluster.conftest import kubectl_on
from tests.e2e.conftest import Kubectl
from tinykube.cluster import Cluster, ClusterSpec

T = TypeVar("T")


@pytest.fixture(scope="module")
def metrics_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A one-node cluster with the metrics-server, fast stats and a fast HPA controller."""
    spec = ClusterSpec(
        data_dir=tmp_path_factory.mktemp("metrics-cluster"),
        nodes=1,
        dns=False,
        kube_proxy=False,
        dashboard=True,
        kubelet_args=("--housekeeping-interval", "1"),
        metrics_server_args=("--metric-resolution", "2"),
        controller_manager_args=(
            "--horizontal-pod-autoscaler-sync-period",
            "1s",
            "--horizontal-pod-autoscaler-downscale-stabilization",
            "5s",
        ),
    )
    with Cluster(spec) as c:
        yield c


@pytest.fixture(scope="module")
def kube(kubectl_binary: Path, metrics_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """The real kubectl on the cluster (its own discovery cache, made after the cluster was up)."""
    return kubectl_on(kubectl_binary, metrics_cluster, tmp_path_factory.mktemp("kubectl-metrics"))


@pytest.fixture
def namespace(kube: Kubectl) -> Iterator[str]:
    name = f"m-{uuid.uuid4().hex[:8]}"
    kube.ok("create", "namespace", name)
    yield name
    kube("delete", "namespace", name, "--wait=false")


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


def table(out: str) -> list[list[str]]:
    """kubectl's column output as rows of cells (header first)."""
    return [line.split() for line in out.strip().splitlines()]


def millicores(cell: str) -> int:
    return int(cell[:-1]) if cell.endswith("m") else int(float(cell) * 1000)


def boost(cluster: Cluster, namespace: str, pod: str) -> None:
    """Raise the autogroup priority of the pod's container sessions (the kubelet records their pids)."""
    for journal in (cluster.spec.data_dir / "kubelet").glob(f"*/pids/{PIDS_JOURNAL}"):
        for record in read_journal(journal)[0].values():
            pid = json.loads(record)["pid"]
            with contextlib.suppress(OSError):
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                if f"HOSTNAME={pod}".encode() in environ.split(b"\0"):
                    Path(f"/proc/{pid}/autogroup").write_text("-10")


def apply(kube: Kubectl, namespace: str, obj: dict[str, Any]) -> None:
    kube.ok("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def burner_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "burn", "image": "python:3", "command": [sys.executable, "-c", "while True: pass"]},
                {
                    "name": "idle",
                    "image": "python:3",
                    "command": [sys.executable, "-c", "import time; time.sleep(1e9)"],
                },
            ],
        },
    }


def test_kubectl_top_nodes_and_pods(kube: Kubectl, metrics_cluster: Cluster, namespace: str) -> None:
    node = metrics_cluster.node_names[0]

    def top_nodes() -> list[list[str]] | None:
        r = kube("top", "nodes")
        return table(r.stdout) if r.returncode == 0 else None

    rows = wait_for(top_nodes, 60, "kubectl top nodes")
    assert rows[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    (row,) = [r for r in rows[1:] if r[0] == node]
    assert row[1].endswith("m") and row[2].endswith("%") and row[3].endswith("Mi")

    apply(kube, namespace, burner_pod("burn"))
    apply(kube, namespace, {**burner_pod("calm"), "spec": {"containers": [burner_pod("x")["spec"]["containers"][1]]}})
    kube.ok("wait", "-n", namespace, "--for=condition=Ready", "pod/burn", "pod/calm", "--timeout=60s")
    boost(metrics_cluster, namespace, "burn")

    def burning() -> list[list[str]] | None:
        r = kube("top", "pods", "-A", "--containers")
        if r.returncode != 0:
            return None
        rows = table(r.stdout)
        cells = [c for c in rows[1:] if c[:3] == [namespace, "burn", "burn"]]
        # a pod shows once the metrics-server has a rate for it (two of the kubelet's samples): calm too
        calm = [c for c in rows[1:] if c[:2] == [namespace, "calm"]]
        return rows if cells and calm and millicores(cells[0][3]) >= 500 else None

    rows = wait_for(burning, 60, "burn at 500m or more and calm listed in kubectl top pods -A --containers")
    assert rows[0] == ["NAMESPACE", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    mine = {(r[1], r[2]) for r in rows[1:] if r[0] == namespace}
    assert mine == {("burn", "burn"), ("burn", "idle"), ("calm", "idle")}
    out = kube.ok("top", "pods", "-n", namespace, "--sort-by=cpu")
    assert [r[0] for r in table(out)[1:]] == ["burn", "calm"], out

    # the node's usage counts its pods (its window may still hold the moments before the burn began)
    def node_busy() -> list[list[str]] | None:
        rows = top_nodes()
        return rows if rows and millicores(rows[1][1]) >= 500 else None

    wait_for(node_busy, 30, "the node at 500m or more in kubectl top nodes")
    assert kube.ok("get", "apiservices", "v1beta1.metrics.k8s.io").split("\n")[1].split()[1:3] == [
        "kube-system/metrics-server",
        "True",
    ]


def deployment(name: str, command: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "app",
                            "image": "python:3",
                            "command": command,
                            "resources": {"requests": {"cpu": "100m"}},
                        }
                    ],
                },
            },
        },
    }


def test_hpa_scales_a_busy_deployment_up_and_back_down(kube: Kubectl, namespace: str) -> None:
    apply(kube, namespace, deployment("busy", [sys.executable, "-c", "while True: pass"]))
    kube.ok("rollout", "status", "-n", namespace, "deployment/busy", "--timeout=60s")
    kube.ok("autoscale", "-n", namespace, "deployment", "busy", "--min=1", "--max=3", "--cpu=50%")

    def hpa() -> dict[str, Any]:
        return json.loads(kube.ok("get", "hpa", "-n", namespace, "busy", "-o", "json"))

    def replicas() -> int:
        return int(json.loads(kube.ok("get", "deployment", "-n", namespace, "busy", "-o", "json"))["spec"]["replicas"])

    def rescale_events() -> str:
        return kube.ok("get", "events", "-n", namespace, "--field-selector", "reason=SuccessfulRescale")

    wait_for(lambda: replicas() >= 2, 60, "the HPA to scale busy up to 2 or more")

    def rescaled_status() -> dict[str, Any] | None:
        status = hpa().get("status") or {}
        return status if (status.get("desiredReplicas") or 0) >= 2 else None

    # the controller scales the target first, then writes the HPA's status and records its event
    status = wait_for(rescaled_status, 30, "the HPA's status after it scaled")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["ScalingActive"]["reason"] == "ValidMetricFound"
    assert conditions["AbleToScale"]["status"] == "True"
    assert status["currentMetrics"][0]["resource"]["current"]["averageUtilization"] > 55
    events = wait_for(lambda: rescale_events() or None, 30, "a SuccessfulRescale event")
    assert "New size: " in events and "cpu resource utilization (percentage of request) above target" in events
    line = kube.ok("get", "hpa", "-n", namespace).splitlines()[1]
    assert re.match(r"busy +Deployment/busy +cpu: \d+%/50% +1 +3 +[123] ", line), line
    # the load stops: new pods sleep; utilization falls to 0 and, after the 5 s window, back to 1
    patch = [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/command",
            "value": [sys.executable, "-c", "import time; time.sleep(1e9)"],
        }
    ]
    kube.ok("patch", "-n", namespace, "deployment", "busy", "--type=json", "-p", json.dumps(patch))
    wait_for(lambda: replicas() == 1, 75, "the HPA to scale busy back to 1")
    events = wait_for(lambda: "below target" in (out := rescale_events()) and out, 30, "the downscale's event")
    assert "All metrics below target" in events
    with contextlib.suppress(subprocess.TimeoutExpired):
        kube("delete", "hpa", "-n", namespace, "busy", timeout=10)


async def test_dashboard_charts_usage_from_the_metrics_api(
    kube: Kubectl, metrics_cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    from tests.dashboard.kit import CHROMIUM, CHROMIUM_ARGS

    apply(kube, namespace, burner_pod("spin"))
    kube.ok("wait", "-n", namespace, "--for=condition=Ready", "pod/spin", "--timeout=60s")
    wait_for(lambda: kube("top", "pod", "-n", namespace, "spin").returncode == 0, 30, "metrics for pod spin")
    node = metrics_cluster.node_names[0]
    # RBAC is on: the page signs in with a token, as upstream's dashboard docs do (an admin ServiceAccount)
    kube.ok("create", "serviceaccount", "dashboard-admin", "-n", namespace)
    kube.ok(
        "create",
        "clusterrolebinding",
        f"dashboard-admin-{namespace}",
        "--clusterrole=cluster-admin",
        f"--serviceaccount={namespace}:dashboard-admin",
    )
    token = kube.ok("create", "token", "dashboard-admin", "-n", namespace).strip()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.set_default_timeout(30000)
            # signed in before the page's scripts run (the sign-in form itself: tests/dashboard), so no
            # click can race the module that wires the form up
            await page.add_init_script(f"sessionStorage.setItem('tinykube-dashboard.token', {json.dumps(token)})")
            await page.goto(f"{metrics_cluster.dashboard_url}?namespace={namespace}")
            await page.wait_for_selector("#signout:not([hidden])")
            await page.wait_for_selector("body[data-synced=true]")
            await page.locator("#nodes thead", has_text="CPU").wait_for()  # the metrics API answers the token
            node_row = page.locator(f'#nodes tbody tr[data-key="{node}"]')
            await node_row.locator("td.cpu svg.spark").wait_for()
            assert re.fullmatch(r"\d+m", (await node_row.locator("td.cpu").inner_text()).strip())
            assert re.fullmatch(r"\d+Mi", (await node_row.locator("td.memory").inner_text()).strip())
            pod_cpu = page.locator(f'#pods tbody tr[data-key="{namespace}/spin"] td.cpu')
            await pod_cpu.locator("svg.spark").wait_for()
            assert re.fullmatch(r"\d+m", (await pod_cpu.inner_text()).strip())
            await page.screenshot(path=str(tmp_path / "dashboard-usage.png"), full_page=True)
        finally:
            await browser.close()
