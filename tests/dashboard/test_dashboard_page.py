"""The dashboard page in a real headless Chromium, on a real apiserver through the real dashboard
process: what a user sees and does."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.dashboard.conftest import Dashboard
from tests.dashboard.kit import (
    MERGE,
    create_node,
    deployment,
    eventually,
    make_running,
    pod,
    pods_of,
    set_pod_status,
    unique,
)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


async def open_overview(page: Any, dashboard: Dashboard, ns: str = "") -> None:
    """Load the page (for one namespace) and wait until every list has come back; if they do not, fail naming
    the page's requests still open (CI once saw the lists not come back in 15 s, and nothing else)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    open_requests: dict[Any, str] = {}

    def started(request: Any) -> None:
        open_requests[request] = request.url

    def ended(request: Any) -> None:
        open_requests.pop(request, None)

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    try:
        await page.goto(f"{dashboard.url}/" + (f"?namespace={ns}" if ns else ""))
        await page.wait_for_selector("body[data-synced=true]")
    except PlaywrightTimeout as e:
        still = sorted(open_requests.values())
        raise AssertionError(f"not every list came back; requests still open: {still}") from e
    finally:
        for event, handler in (("request", started), ("requestfinished", ended), ("requestfailed", ended)):
            page.remove_listener(event, handler)
    await page.wait_for_selector("#connection.ok")


def pod_row(page: Any, ns: str, name: str) -> Any:
    return page.locator(f'#pods tbody tr[data-key="{ns}/{name}"]')


@pytest.fixture
async def nodes(api: httpx.AsyncClient) -> list[str]:
    """Two Ready nodes and one NotReady, registered through the API."""
    names = [unique("node"), unique("node"), unique("node")]
    await create_node(api, names[0], "127.234.0.1")
    await create_node(api, names[1], "127.234.0.2")
    await create_node(api, names[2], "127.234.0.3", ready=False)
    return names


async def test_overview_lists_nodes_and_a_deployments_pods(
    page: Any,
    dashboard: Dashboard,
    api: httpx.AsyncClient,
    ns: str,
    nodes: list[str],
    controller_manager: object,
    tmp_path: Path,
) -> None:
    r = await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment("web", 3))
    assert r.status_code == 201, r.text
    pods = await eventually(lambda: _n_pods(api, ns, "app=web", 3), what="the Deployment's 3 pods")
    for i, p in enumerate(pods):
        await make_running(api, ns, p["metadata"]["name"], nodes[i % 2], f"127.1.0.{10 + i}")
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    assert (await api.post(f"/api/v1/namespaces/{ns}/services", json=svc)).status_code == 201
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.1.0.10"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
    r = await api.post(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", json=endpoints)
    assert r.status_code == 201, r.text

    await open_overview(page, dashboard, ns)

    for name, status in ((nodes[0], "Ready"), (nodes[1], "Ready"), (nodes[2], "NotReady")):
        row = page.locator(f'#nodes tbody tr[data-key="{name}"]')
        await row.wait_for()
        assert await row.locator("td.status").inner_text() == status
    not_ready = page.locator(f'#nodes tbody tr[data-key="{nodes[2]}"] .chip.bad')
    assert await not_ready.inner_text() == "Ready=False"
    assert await not_ready.get_attribute("title") == "container runtime is down"

    for i, p in enumerate(pods):
        row = pod_row(page, ns, p["metadata"]["name"])
        await row.locator("td.status", has_text="Running").wait_for()
        assert await row.locator("td.ready").inner_text() == "1/1"
        assert await row.locator("td.node").inner_text() == nodes[i % 2]
        assert await row.locator("td.ip").inner_text() == f"127.1.0.{10 + i}"

    deploy = page.locator(f'#workloads tbody tr[data-key="deployments/{ns}/web"]')
    await deploy.locator("td.ready", has_text="3/3").wait_for()
    rs = page.locator('#workloads tbody tr[data-kind="ReplicaSet"]')
    # the ReplicaSet's status comes on its own watch, which may trail the Deployment's
    await rs.locator("td.ready", has_text="3/3").wait_for()
    assert await rs.locator("td.ready").inner_text() == "3/3"
    assert await rs.locator("button.scale").count() == 0  # scaled through its Deployment
    assert await deploy.locator("button.scale").count() == 1

    svc_row = page.locator(f'#services tbody tr[data-key="{ns}/web"]')
    # EndpointSlices are their own list and watch: the row may be drawn before they arrive
    await svc_row.locator("td.endpoints", has_text="127.1.0.10:8080").wait_for()
    assert await svc_row.locator("td.endpoints").inner_text() == "127.1.0.10:8080"

    # metrics.k8s.io is not served here: no usage columns
    assert "CPU" not in await page.locator("#nodes thead").inner_text()

    shot = tmp_path / "overview.png"
    await page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "overview.png")


async def _n_pods(api: httpx.AsyncClient, ns: str, selector: str, n: int) -> list[dict[str, Any]] | None:
    pods = await pods_of(api, ns, selector)
    return pods if len(pods) == n else None


async def test_a_pod_created_with_kubectl_appears_and_changes_without_a_reload(
    page: Any, dashboard: Dashboard, api: httpx.AsyncClient, apiserver: str, ns: str, kubectl_binary: Path
) -> None:
    await open_overview(page, dashboard, ns)
    await page.evaluate("window.loadedOnce = true")
    kubectl = await asyncio.create_subprocess_exec(
        *[str(kubectl_binary), "--server", apiserver, "-n", ns, "run", "late", "--image=busybox:1.36"],
        *["--", "sleep", "60"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(kubectl.communicate(), 30)
    assert kubectl.returncode == 0, err.decode()
    row = pod_row(page, ns, "late")
    await row.wait_for()
    assert await row.locator("td.status").inner_text() == "Pending"

    node = unique("node")
    await create_node(api, node, "127.234.1.1")
    await make_running(api, ns, "late", node, "127.1.1.5")
    await row.locator("td.status", has_text="Running").wait_for()
    assert await row.locator("td.node").inner_text() == node

    r = await api.delete(f"/api/v1/namespaces/{ns}/pods/late", params={"gracePeriodSeconds": "0"})
    assert r.status_code == 200, r.text
    await row.wait_for(state="detached")
    assert await page.evaluate("window.loadedOnce") is True


CASES: dict[str, dict[str, Any]] = {
    "creating": {
        "phase": "Pending",
        "containerStatuses": [
            {"name": "app", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
        ],
    },
    "crashing": {
        "phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {
                "name": "app",
                "ready": False,
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2020-01-01T00:00:00Z"}},
            }
        ],
    },
    "done": {
        "phase": "Succeeded",
        "containerStatuses": [
            {
                "name": "app",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
            }
        ],
    },
    "killed": {
        "phase": "Failed",
        "containerStatuses": [
            {"name": "app", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}
        ],
    },
    "initing": {
        "phase": "Pending",
        "conditions": [{"type": "Initialized", "status": "False"}],
        "initContainerStatuses": [
            {
                "name": "init",
                "ready": False,
                "restartCount": 0,
                "state": {"running": {"startedAt": "2020-01-01T00:00:00Z"}},
            }
        ],
        "containerStatuses": [
            {"name": "app", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
        ],
    },
}


async def test_pod_columns_match_kubectl(page: Any, dashboard: Dashboard, api: httpx.AsyncClient, ns: str) -> None:
    """READY, STATUS and RESTARTS as the apiserver's Table (what `kubectl get pods` prints) has them."""
    for name, status in CASES.items():
        spec: dict[str, Any] = {}
        if name == "initing":
            spec["initContainers"] = [{"name": "init", "image": "busybox:1.36", "command": ["true"]}]
        r = await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod(name, **spec))
        assert r.status_code == 201, r.text
        await set_pod_status(api, ns, name, status)
    # Terminating: a pod whose deletion waits on a finalizer
    body = pod("leaving")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    assert (await api.post(f"/api/v1/namespaces/{ns}/pods", json=body)).status_code == 201
    assert (await api.delete(f"/api/v1/namespaces/{ns}/pods/leaving")).status_code == 200

    table = await api.get(
        f"/api/v1/namespaces/{ns}/pods", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    )
    assert table.status_code == 200, table.text
    names = [c["name"] for c in table.json()["columnDefinitions"]]
    expected = {
        row["cells"][0]: (
            row["cells"][names.index("Ready")],
            row["cells"][names.index("Status")],
            row["cells"][names.index("Restarts")],
        )
        for row in table.json()["rows"]
    }
    assert {s for _, s, _ in expected.values()} == {
        "ContainerCreating",
        "CrashLoopBackOff",
        "Completed",
        "Signal:9",
        "Init:0/1",
        "Terminating",
    }

    await open_overview(page, dashboard, ns)
    shown = {}
    for name in expected:
        row = pod_row(page, ns, name)
        await row.wait_for()
        cells = [await row.locator(f"td.{c}").inner_text() for c in ("ready", "status", "restarts")]
        shown[name] = tuple(cells)
    assert shown == expected

    r = await api.patch(f"/api/v1/namespaces/{ns}/pods/leaving", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert r.status_code == 200, r.text


async def test_yaml_view_reads_back_as_the_object(
    page: Any, dashboard: Dashboard, api: httpx.AsyncClient, ns: str
) -> None:
    tricky = {
        "yes": "yes",
        "num": "0755",
        "float": "1.5",
        "colon": "a: b",
        "hash": "x #y",
        "empty": "",
        "dash": "- item",
        "multi": "line one\nline two\n",
        "multi-no-newline": "first\n  indented second",
        "lead": "  spaced",
        "date": "2024-01-02",
        "quote": 'it\'s "quoted"',
        "unicode": "héllo ✓",
        "tab": "a\tb",
        "null-word": "null",
        "star": "*ref",
    }
    body = pod("yamly")
    body["metadata"]["annotations"] = tricky
    body["spec"]["containers"][0]["env"] = [{"name": "EMPTY", "value": ""}, {"name": "N", "value": "1"}]
    assert (await api.post(f"/api/v1/namespaces/{ns}/pods", json=body)).status_code == 201

    await open_overview(page, dashboard, ns)
    await pod_row(page, ns, "yamly").locator("a.yaml").click()
    await page.wait_for_selector("#panel-body.yaml:not(:empty)")
    text = await page.locator("#panel-body").inner_text()
    stored = (await api.get(f"/api/v1/namespaces/{ns}/pods/yamly")).json()
    stored["metadata"].pop("managedFields", None)
    assert yaml.safe_load(text) == stored
    assert "kind: Pod\n" in text and "  name: yamly\n" in text

    # the view follows the object: a label added through the API shows up
    r = await api.patch(
        f"/api/v1/namespaces/{ns}/pods/yamly",
        json={"metadata": {"labels": {"tier": "frontend"}}},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 200
    await page.locator("#panel-body", has_text="tier: frontend").wait_for()


async def test_scale_action_changes_replicas_and_reports_the_apis_refusal(
    page: Any, dashboard: Dashboard, api: httpx.AsyncClient, ns: str
) -> None:
    r = await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment("api", 1))
    assert r.status_code == 201, r.text
    await open_overview(page, dashboard, ns)
    button = page.locator(f'#workloads tbody tr[data-key="deployments/{ns}/api"] button.scale')

    await button.click()
    await page.locator("#ask-input").fill("4")
    await page.locator("#ask-ok").click()
    await page.locator(".toast.ok", has_text="deployment.apps/api scaled").wait_for()
    got = await api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/api")
    assert got.json()["spec"]["replicas"] == 4

    # a refused change shows the API's own Status message
    refused = await api.patch(
        f"/apis/apps/v1/namespaces/{ns}/deployments/api/scale",
        json={"spec": {"replicas": -1}},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert refused.status_code == 422
    await page.locator(f'#workloads tbody tr[data-key="deployments/{ns}/api"] button.scale').click()
    await page.locator("#ask-input").fill("-1")
    await page.locator("#ask-ok").click()
    toast = page.locator(".toast.bad")
    await toast.wait_for()
    assert refused.json()["message"] in await toast.inner_text()
    assert (await api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/api")).json()["spec"]["replicas"] == 4


async def test_restart_action_stamps_the_template_like_kubectl(
    page: Any, dashboard: Dashboard, api: httpx.AsyncClient, ns: str
) -> None:
    r = await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment("cache", 1))
    assert r.status_code == 201, r.text
    await open_overview(page, dashboard, ns)
    await page.locator(f'#workloads tbody tr[data-key="deployments/{ns}/cache"] button.restart').click()
    await page.locator("#ask-ok").click()
    await page.locator(".toast.ok", has_text="deployment.apps/cache restarted").wait_for()
    got = (await api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/cache")).json()
    stamp = got["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert stamp.endswith("Z") and len(stamp) == len("2024-01-01T00:00:00Z")
    assert got["metadata"]["generation"] == 2


async def test_delete_action_deletes_the_pod(page: Any, dashboard: Dashboard, api: httpx.AsyncClient, ns: str) -> None:
    assert (await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod("doomed"))).status_code == 201
    assert (await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod("kept"))).status_code == 201
    await open_overview(page, dashboard, ns)

    # cancelling deletes nothing
    await pod_row(page, ns, "doomed").locator("button.delete").click()
    await page.locator("#ask-cancel").click()
    await page.locator("#ask").wait_for(state="hidden")
    assert (await api.get(f"/api/v1/namespaces/{ns}/pods/doomed")).status_code == 200

    await pod_row(page, ns, "doomed").locator("button.delete").click()
    await page.locator("#ask-ok").click()
    await page.locator(".toast.ok", has_text='pod "doomed" deleted').wait_for()
    assert (await api.get(f"/api/v1/namespaces/{ns}/pods/doomed")).status_code == 404
    await pod_row(page, ns, "doomed").wait_for(state="detached")
    assert await pod_row(page, ns, "kept").count() == 1
