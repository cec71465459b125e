"""Validation errors, metadata rules, health, metrics, etcd outages and clean shutdown."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import pod, pods_path
from tinykube.procs import free_port, start_apiserver, start_etcd


async def test_default_namespaces_exist(api: httpx.AsyncClient) -> None:
    names = {n["metadata"]["name"] for n in (await api.get("/api/v1/namespaces")).json()["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"containers": []}, "spec.containers", "Required value"),
        ({"containers": [{"name": "a"}]}, "spec.containers[0].image", "Required value"),
        (
            {"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]},
            "spec.containers[1].name",
            'Duplicate value: "a"',
        ),
        (
            {"containers": [{"name": "a", "image": "x"}], "restartPolicy": "Sometimes"},
            "spec.restartPolicy",
            'Unsupported value: "Sometimes"',
        ),
        (
            {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}]},
            "spec.containers[0].ports[0].containerPort",
            "must be less than or equal to 65535",
        ),
        (
            {"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": "lots"}}}]},
            "spec.containers[0].resources.limits[cpu]",
            "quantities must match",
        ),
    ],
    ids=["no-containers", "no-image", "duplicate-name", "bad-restart-policy", "port-range", "bad-quantity"],
)
async def test_invalid_pods_are_422_with_causes(
    api: httpx.AsyncClient, ns: str, body: dict, field: str, fragment: str
) -> None:
    r = await api.post(
        pods_path(ns), json={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"}, "spec": body}
    )
    assert r.status_code == 422, r.text
    status = r.json()
    assert status["reason"] == "Invalid" and status["details"]["kind"] == "Pod"
    causes = status["details"]["causes"]
    assert any(c["field"] == field and fragment in c["message"] for c in causes), causes
    assert (await api.get(pods_path(ns, "bad"))).status_code == 404  # nothing half-written


@pytest.mark.parametrize("name", ["Bad_Name", "-x", "a" * 254])
async def test_invalid_names_are_422(api: httpx.AsyncClient, ns: str, name: str) -> None:
    r = await api.post(
        f"/api/v1/namespaces/{ns}/configmaps",
        json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}},
    )
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "metadata.name"


async def test_invalid_label_is_422(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(pods_path(ns), json=pod("l", {"bad key!": "v"}))
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "metadata.labels"


async def test_deployment_selector_must_match_template(api: httpx.AsyncClient, ns: str) -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "b"}}, "spec": pod("x")["spec"]},
        },
    }
    r = await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=dep)
    assert r.status_code == 422
    cause = r.json()["details"]["causes"][0]
    assert cause["field"] == "spec.template.metadata.labels" and "`selector` does not match" in cause["message"]


async def test_deployment_defaults(api: httpx.AsyncClient, ns: str) -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": pod("x")["spec"]},
        },
    }
    spec = (await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=dep)).json()["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}


async def test_service_gets_cluster_ip_and_node_port(api: httpx.AsyncClient, ns: str) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80}]},
    }
    spec = (await api.post(f"/api/v1/namespaces/{ns}/services", json=svc)).json()["spec"]
    assert spec["clusterIP"].startswith("127.96.") and spec["clusterIPs"] == [spec["clusterIP"]]
    port = spec["ports"][0]
    assert port["targetPort"] == 80 and port["protocol"] == "TCP" and 30000 <= port["nodePort"] <= 32767


@pytest.mark.parametrize(
    ("method", "path", "content", "code", "reason"),
    [
        ("POST", "/api/v1/namespaces/default/pods", b"{not json", 400, "BadRequest"),
        ("POST", "/api/v1/namespaces/default/pods", b"a: [b", 400, "BadRequest"),
        ("GET", "/api/v1/namespaces/default/widgets", b"", 404, "NotFound"),
        ("GET", "/apis/nope.io/v1/things", b"", 404, "NotFound"),
        ("POST", "/api/v1/namespaces/default/pods/x", b"{}", 405, "MethodNotAllowed"),
    ],
    ids=["bad-json", "bad-yaml", "unknown-resource", "unknown-group", "post-to-name"],
)
async def test_bad_requests_get_status_objects(
    api: httpx.AsyncClient, method: str, path: str, content: bytes, code: int, reason: str
) -> None:
    ctype = "application/yaml" if content.startswith(b"a:") else "application/json"
    r = await api.request(method, path, content=content, headers={"content-type": ctype})
    assert r.status_code == code and r.json()["kind"] == "Status" and r.json()["reason"] == reason


async def test_terminating_namespace_refuses_creates(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}})
    r = await api.delete("/api/v1/namespaces/gone")
    assert r.json()["status"]["phase"] == "Terminating"
    r = await api.post(pods_path("gone"), json=pod("late"))
    assert r.status_code == 403 and "being terminated" in r.json()["message"]
    r = await api.put(
        "/api/v1/namespaces/gone/finalize",
        json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}, "spec": {"finalizers": []}},
    )
    assert r.status_code == 200
    assert (await api.get("/api/v1/namespaces/gone")).status_code == 404


async def test_metrics_and_health(api: httpx.AsyncClient, ns: str) -> None:
    await api.post(pods_path(ns), json=pod("m"))
    text = (await api.get("/metrics")).text
    assert 'apiserver_request_total{code="201",resource="pods",verb="create"}' in text
    assert "apiserver_request_duration_seconds_bucket" in text and "etcd_request_duration_seconds_bucket" in text
    for path in ("/healthz", "/livez", "/readyz"):
        assert (await api.get(path)).text == "ok"


async def test_discovery_documents(api: httpx.AsyncClient) -> None:
    assert (await api.get("/version")).json()["minor"] == "35"
    core = {r["name"]: r for r in (await api.get("/api/v1")).json()["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["namespaced"] is True
    assert core["nodes"]["namespaced"] is False and "pods/status" in core
    apps = {r["name"]: r for r in (await api.get("/apis/apps/v1")).json()["resources"]}
    assert apps["deployments/scale"]["group"] == "autoscaling" and apps["deployments"]["shortNames"] == ["deploy"]
    groups = {g["name"] for g in (await api.get("/apis")).json()["groups"]}
    assert {"apps", "batch", "coordination.k8s.io", "discovery.k8s.io"} <= groups
    group = (await api.get("/apis/apps")).json()  # one group's document, as `kubectl get --raw /apis/apps`
    assert group["kind"] == "APIGroup" and group["preferredVersion"]["groupVersion"] == "apps/v1"
    assert (await api.get("/apis/no.such.group")).status_code == 404


async def _wait_status(client: httpx.AsyncClient, path: str, code: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = (await client.get(path)).status_code
            if last == code:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never answered {code} (last {last})")


async def test_etcd_outage_is_503_and_server_recovers(tmp_path: Path) -> None:
    client_port, peer_port = free_port(), free_port()
    etcd, etcd_url = start_etcd(tmp_path, client_port, peer_port)
    apiserver, url = start_apiserver(tmp_path, etcd_url)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=15) as api:
            assert (await api.post(pods_path("default"), json=pod("before"))).status_code == 201
            etcd.kill()
            r = await api.get(pods_path("default", "before"))
            assert r.status_code == 503 and r.json()["reason"] == "ServiceUnavailable"
            assert (await api.get("/readyz")).status_code == 500
            etcd, _ = start_etcd(tmp_path, client_port, peer_port)
            await _wait_status(api, "/readyz", 200)
            assert (await api.get(pods_path("default", "before"))).status_code == 200
            rv = (await api.get(pods_path("default"))).json()["metadata"]["resourceVersion"]
            await api.post(pods_path("default"), json=pod("after"))
            async with api.stream("GET", pods_path("default"), params={"watch": "1", "resourceVersion": rv}) as s:
                async for line in s.aiter_lines():
                    assert '"after"' in line
                    break
    finally:
        apiserver.stop()
        etcd.stop()


async def test_sigterm_exits_cleanly(etcd: str, tmp_path: Path) -> None:
    proc, url = start_apiserver(tmp_path, etcd)
    async with httpx.AsyncClient(base_url=url, timeout=10) as api:
        async with api.stream("GET", "/api/v1/namespaces/default/pods", params={"watch": "1"}) as s:
            proc.proc.send_signal(signal.SIGTERM)
            async for _ in s.aiter_lines():
                pass
    assert proc.proc.wait(10) == 0
    proc.stop()


async def test_duplicate_json_fields_follow_field_validation(api: httpx.AsyncClient, ns: str) -> None:
    url = f"/api/v1/namespaces/{ns}/configmaps"
    raw = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup"},"data":{"a":"1","a":"2"}}'
    headers = {"content-type": "application/json"}
    r = await api.post(url, params={"fieldValidation": "Strict"}, headers=headers, content=raw)
    assert r.status_code == 400
    assert r.json()["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'duplicate field "metadata.name", duplicate field "data.a"'
    )
    assert (await api.get(f"{url}/dup")).status_code == 404
    r = await api.post(url, headers=headers, content=raw)  # default Warn: created, last value wins
    assert r.status_code == 201
    assert r.headers.get_list("warning") == [
        '299 - "duplicate field \\"metadata.name\\""',
        '299 - "duplicate field \\"data.a\\""',
    ]
    assert r.json()["data"] == {"a": "2"}
