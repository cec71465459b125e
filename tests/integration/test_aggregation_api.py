"""Against a real apiserver: HorizontalPodAutoscalers in autoscaling/v2 and v1 (one object, two
versions), and the aggregation layer — an APIService whose Service points at a real HTTP server
the test runs becomes Available, its group shows in discovery and its requests are proxied."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from client.component import _QuietServer
from tests.integration.helpers import MERGE, STRATEGIC, watch_lines
from tests.integration.test_kubelet_kit import eventually
from tinykube.procs import free_port

HPA_V2 = "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers"
HPA_V1 = "/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers"
TABLE = {"accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
AGGREGATED = {"accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}


def hpa_v2(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                },
                {
                    "type": "Resource",
                    "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "200Mi"}},
                },
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
        },
    }


async def test_hpa_is_served_in_v2_and_v1(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(HPA_V2.format(ns=ns), json=hpa_v2("web"))
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["spec"]["minReplicas"] == 1
    assert stored["spec"]["behavior"]["scaleUp"]["selectPolicy"] == "Max"
    assert stored["status"] == {"desiredReplicas": 0}
    # the same object in v1: one CPU target, the rest in annotations
    v1 = (await api.get(f"{HPA_V1.format(ns=ns)}/web")).json()
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 50
    assert "metrics" not in v1["spec"]
    assert v1["status"] == {"currentReplicas": 0, "desiredReplicas": 0}
    assert json.loads(v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]) == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "200Mi"}}
    ]
    # a v1 merge patch changes the CPU target; the memory metric and behavior survive in v2
    r = await api.patch(
        f"{HPA_V1.format(ns=ns)}/web", json={"spec": {"targetCPUUtilizationPercentage": 70}}, headers=MERGE
    )
    assert r.status_code == 200, r.text
    assert r.json()["apiVersion"] == "autoscaling/v1"
    v2 = (await api.get(f"{HPA_V2.format(ns=ns)}/web")).json()
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in v2["spec"]["metrics"]}
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "AverageValue", "averageValue": "200Mi"},
    }
    assert v2["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60
    assert "annotations" not in v2["metadata"]
    assert v2["metadata"]["generation"] == 2
    # a v1 read-modify-write (PUT) keeps them too
    v1 = (await api.get(f"{HPA_V1.format(ns=ns)}/web")).json()
    v1["spec"]["maxReplicas"] = 9
    r = await api.put(f"{HPA_V1.format(ns=ns)}/web", json=v1)
    assert r.status_code == 200, r.text
    v2 = (await api.get(f"{HPA_V2.format(ns=ns)}/web")).json()
    assert v2["spec"]["maxReplicas"] == 9 and len(v2["spec"]["metrics"]) == 2
    # a strategic merge patch in v1, and lists in both versions
    r = await api.patch(f"{HPA_V1.format(ns=ns)}/web", json={"spec": {"minReplicas": 2}}, headers=STRATEGIC)
    assert r.status_code == 200 and r.json()["spec"]["minReplicas"] == 2
    listing = (await api.get(HPA_V1.format(ns=ns))).json()
    assert (listing["kind"], listing["apiVersion"]) == ("HorizontalPodAutoscalerList", "autoscaling/v1")
    assert [i["apiVersion"] for i in listing["items"]] == ["autoscaling/v1"]
    table = (await api.get(HPA_V2.format(ns=ns), headers=TABLE)).json()
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Reference",
        "Targets",
        "MinPods",
        "MaxPods",
        "Replicas",
        "Age",
    ]
    assert table["rows"][0]["cells"][:6] == [
        "web",
        "Deployment/web",
        "memory: <unknown>/200Mi, cpu: <unknown>/70%",  # written through v1: its CPU target comes last
        "2",
        9,
        0,
    ]


async def test_hpa_v1_create_watch_and_delete(api: httpx.AsyncClient, ns: str) -> None:
    body = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "old"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3},
    }
    events: list[dict[str, Any]] = []

    async def watch() -> None:
        async for ev in watch_lines(api, HPA_V1.format(ns=ns)):
            events.append(ev)
            if ev["type"] == "DELETED":
                return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.3)  # let the watch open before the writes it must see
    r = await api.post(HPA_V1.format(ns=ns), json=body)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["targetCPUUtilizationPercentage"] == 80  # v1's implicit default, made explicit
    v2 = (await api.get(f"{HPA_V2.format(ns=ns)}/old")).json()
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    r = await api.delete(f"{HPA_V1.format(ns=ns)}/old")
    assert r.status_code == 200
    await asyncio.wait_for(watcher, 10)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]
    assert {e["object"]["apiVersion"] for e in events} == {"autoscaling/v1"}
    wrong = {**body, "apiVersion": "autoscaling/v2"}
    r = await api.post(HPA_V1.format(ns=ns), json=wrong)
    assert r.status_code == 400


async def test_hpa_validation(api: httpx.AsyncClient, ns: str) -> None:
    bad = hpa_v2("bad")
    bad["spec"].update(minReplicas=4, maxReplicas=2)
    bad["spec"]["scaleTargetRef"]["kind"] = ""
    r = await api.post(HPA_V2.format(ns=ns), json=bad)
    assert r.status_code == 422
    assert r.json()["message"] == (
        'HorizontalPodAutoscaler.autoscaling "bad" is invalid: [spec.maxReplicas: Invalid value: 2: must be greater '
        "than or equal to `minReplicas`, spec.scaleTargetRef.kind: Required value]"
    )


async def test_autoscaling_discovery(api: httpx.AsyncClient) -> None:
    groups = {g["name"]: g for g in (await api.get("/apis")).json()["groups"]}
    assert [v["version"] for v in groups["autoscaling"]["versions"]] == ["v2", "v1"]
    assert groups["autoscaling"]["preferredVersion"]["version"] == "v2"
    v1 = (await api.get("/apis/autoscaling/v1")).json()
    assert [r["name"] for r in v1["resources"]] == ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]
    aggregated = (await api.get("/apis", headers=AGGREGATED)).json()
    auto = next(i for i in aggregated["items"] if i["metadata"]["name"] == "autoscaling")
    assert [v["version"] for v in auto["versions"]] == ["v2", "v1"]
    assert auto["versions"][1]["resources"][0]["responseKind"] == {
        "group": "autoscaling",
        "version": "v1",
        "kind": "HorizontalPodAutoscaler",
    }


# --- the aggregation layer ---------------------------------------------------------------------


def backend_app(group: str) -> Starlette:
    """A small aggregated API server: discovery and a `widgets` list that echoes the request."""
    root = f"/apis/{group}/v1"

    async def resources(_: Request) -> Response:
        entries = [
            {
                "name": "widgets",
                "singularName": "widget",
                "namespaced": True,
                "kind": "Widget",
                "verbs": ["get", "list"],
            }
        ]
        return JSONResponse(
            {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/v1", "resources": entries}
        )

    async def widgets(request: Request) -> Response:
        if request.query_params.get("watch"):

            async def stream() -> AsyncIterator[bytes]:
                for i in range(2):
                    yield json.dumps({"type": "ADDED", "object": {"kind": "Widget", "n": i}}).encode() + b"\n"
                    await asyncio.sleep(0.05)

            return StreamingResponse(stream(), media_type="application/json")
        return JSONResponse(
            {
                "kind": "WidgetList",
                "path": request.url.path,
                "query": request.url.query,
                "authorization": request.headers.get("authorization"),
                "impersonate": request.headers.get("impersonate-user"),
                "remote_user": request.headers.get("x-remote-user"),
            }
        )

    return Starlette(routes=[Route(root, resources), Route(f"{root}/namespaces/{{ns}}/widgets", widgets)])


@contextlib.asynccontextmanager
async def serve(app: Starlette, port: int) -> AsyncIterator[None]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = _QuietServer(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def available(api: httpx.AsyncClient, name: str, status: str) -> dict[str, Any] | None:
    obj = (await api.get(f"/apis/apiregistration.k8s.io/v1/apiservices/{name}")).json()
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == "Available" and c["status"] == status:
            return c
    return None


@pytest.fixture
async def group(api: httpx.AsyncClient) -> AsyncIterator[str]:
    """A fresh API group name; its APIService is deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:8]}.tinykube.io"
    yield name
    await api.delete(f"/apis/apiregistration.k8s.io/v1/apiservices/v1.{name}")


async def test_api_service_proxies_to_its_service(api: httpx.AsyncClient, ns: str, group: str) -> None:
    port = free_port()
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "widgets"},
        "spec": {"ports": [{"name": "api", "port": 443, "targetPort": port, "appProtocol": "http"}]},
    }
    assert (await api.post(f"/api/v1/namespaces/{ns}/services", json=service)).status_code == 201
    aps = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": f"v1.{group}"},
        "spec": {
            "group": group,
            "version": "v1",
            "groupPriorityMinimum": 1000,
            "versionPriority": 15,
            "insecureSkipTLSVerify": True,
            "service": {"namespace": ns, "name": "widgets"},
        },
    }
    r = await api.post("/apis/apiregistration.k8s.io/v1/apiservices", json=aps)
    assert r.status_code == 201, r.text
    cond = await eventually(lambda: available(api, f"v1.{group}", "False"), 20, "Available=False")
    assert (cond["reason"], cond["message"]) == (
        "EndpointsNotFound",
        f'cannot find endpoints for service/widgets in "{ns}"',
    )
    r = await api.get(f"/apis/{group}/v1/namespaces/{ns}/widgets")
    assert r.status_code == 503 and r.json()["reason"] == "ServiceUnavailable"
    # the legacy group list names every APIService's group, available or not
    assert group in [g["name"] for g in (await api.get("/apis")).json()["groups"]]
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "widgets-1", "labels": {"kubernetes.io/service-name": "widgets"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"name": "api", "port": port, "protocol": "TCP"}],
    }
    assert (
        await api.post(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", json=endpoint_slice)
    ).status_code == 201
    async with serve(backend_app(group), port):
        cond = await eventually(lambda: available(api, f"v1.{group}", "True"), 20, "Available=True")
        assert (cond["reason"], cond["message"]) == ("Passed", "all checks passed")
        r = await api.get(
            f"/apis/{group}/v1/namespaces/{ns}/widgets",
            params={"limit": "5"},
            headers={"authorization": "Bearer secret", "impersonate-user": "admin", "x-remote-user": "admin"},
        )
        assert r.status_code == 200
        assert r.json() == {
            "kind": "WidgetList",
            "path": f"/apis/{group}/v1/namespaces/{ns}/widgets",
            "query": "limit=5",
            "authorization": None,  # the client's credentials stay with the apiserver
            "impersonate": None,
            "remote_user": None,  # and so does any identity it claims
        }
        async with api.stream("GET", f"/apis/{group}/v1/namespaces/{ns}/widgets", params={"watch": "1"}) as w:
            lines = [json.loads(line) async for line in w.aiter_lines() if line.strip()]
        assert [e["object"]["n"] for e in lines] == [0, 1]
        doc = (await api.get(f"/apis/{group}")).json()
        assert doc["kind"] == "APIGroup" and doc["preferredVersion"]["groupVersion"] == f"{group}/v1"
        aggregated = (await api.get("/apis", headers=AGGREGATED)).json()
        mine = next(i for i in aggregated["items"] if i["metadata"]["name"] == group)
        (version,) = mine["versions"]
        assert version["freshness"] == "Current"
        assert version["resources"][0]["resource"] == "widgets"
        assert version["resources"][0]["responseKind"] == {"group": group, "version": "v1", "kind": "Widget"}
        table = (await api.get("/apis/apiregistration.k8s.io/v1/apiservices", headers=TABLE)).json()
        row = next(r for r in table["rows"] if r["cells"][0] == f"v1.{group}")
        assert row["cells"][1:3] == [f"{ns}/widgets", "True"]
    # the server is gone: the next check (now, on a change) says so
    r = await api.patch(
        f"/apis/apiregistration.k8s.io/v1/apiservices/v1.{group}",
        json={"metadata": {"labels": {"x": "y"}}},
        headers=MERGE,
    )
    assert r.status_code == 200
    cond = await eventually(lambda: available(api, f"v1.{group}", "False"), 20, "Available=False again")
    assert cond["reason"] == "FailedDiscoveryCheck"
    assert cond["message"].startswith(f"failing or missing response from http://127.0.0.1:{port}/apis/{group}/v1: ")
    assert (await api.delete(f"/apis/apiregistration.k8s.io/v1/apiservices/v1.{group}")).status_code == 200

    async def gone() -> bool:
        return group not in [g["name"] for g in (await api.get("/apis")).json()["groups"]]

    await eventually(gone, 10, "the group gone from /apis")
    assert (await api.get(f"/apis/{group}/v1/namespaces/{ns}/widgets")).status_code == 404


async def test_api_service_without_its_service(api: httpx.AsyncClient, group: str) -> None:
    aps = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": f"v1.{group}"},
        "spec": {
            "group": group,
            "version": "v1",
            "groupPriorityMinimum": 1000,
            "versionPriority": 15,
            "insecureSkipTLSVerify": True,
            "service": {"namespace": "default", "name": "nowhere", "port": 8443},
        },
    }
    assert (await api.post("/apis/apiregistration.k8s.io/v1/apiservices", json=aps)).status_code == 201
    cond = await eventually(lambda: available(api, f"v1.{group}", "False"), 20, "Available=False")
    assert (cond["reason"], cond["message"]) == ("ServiceNotFound", 'service/nowhere in "default" is not present')
    bad = {**aps, "metadata": {"name": f"v2.{group}"}}
    r = await api.post("/apis/apiregistration.k8s.io/v1/apiservices", json=bad)
    assert r.status_code == 422
    assert f'must be `spec.version+\\".\\"+spec.group`: \\"v1.{group}\\"' in r.text
