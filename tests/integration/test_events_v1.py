"""events.k8s.io/v1 Events: the same stored objects as core/v1 Events, converted, validated, selected, watched."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.integration.rsdeploy_kit import kubectl

NOW = "2026-01-01T00:00:00.000000Z"


def v1_event(ns: str, name: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "eventTime": NOW,
        "regarding": {"kind": "Pod", "apiVersion": "v1", "namespace": ns, "name": "web-1", "uid": "u-1"},
        "reason": "FailedScheduling",
        "action": "Scheduling",
        "note": "0/3 nodes are available",
        "type": "Warning",
        "reportingController": "default-scheduler",
        "reportingInstance": "default-scheduler-host",
    }
    body.update(over)
    return body


async def test_written_through_either_api_read_through_the_other(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.post(f"/apis/events.k8s.io/v1/namespaces/{ns}/events", json=v1_event(ns, "a"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["apiVersion"] == "events.k8s.io/v1" and created["note"] == "0/3 nodes are available"
    core = (await api.get(f"/api/v1/namespaces/{ns}/events/a")).json()
    assert core["apiVersion"] == "v1"
    assert core["message"] == "0/3 nodes are available"
    assert core["involvedObject"]["name"] == "web-1"
    assert core["reportingComponent"] == "default-scheduler"
    assert core["reportingInstance"] == "default-scheduler-host"
    assert core["action"] == "Scheduling"
    assert "note" not in core and "regarding" not in core

    legacy = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "b", "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": "web-2"},
        "reason": "Pulled",
        "message": "image pulled",
        "type": "Normal",
        "count": 3,
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:01:00Z",
        "source": {"component": "kubelet", "host": "node-1"},
    }
    assert (await api.post(f"/api/v1/namespaces/{ns}/events", json=legacy)).status_code == 201
    got = (await api.get(f"/apis/events.k8s.io/v1/namespaces/{ns}/events/b")).json()
    assert got["apiVersion"] == "events.k8s.io/v1"
    assert got["note"] == "image pulled"
    assert got["regarding"]["name"] == "web-2"
    assert got["deprecatedCount"] == 3
    assert got["deprecatedSource"] == {"component": "kubelet", "host": "node-1"}
    assert got["deprecatedLastTimestamp"] == "2026-01-01T00:01:00Z"
    listed = (await api.get(f"/apis/events.k8s.io/v1/namespaces/{ns}/events")).json()
    assert listed["kind"] == "EventList" and listed["apiVersion"] == "events.k8s.io/v1"
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["a", "b"]
    assert all(i["apiVersion"] == "events.k8s.io/v1" for i in listed["items"])

    # a series update through a merge patch of the v1 shape
    patch = {"series": {"count": 2, "lastObservedTime": NOW}}
    r = await api.patch(
        f"/apis/events.k8s.io/v1/namespaces/{ns}/events/a",
        content=json.dumps(patch),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["series"]["count"] == 2
    assert (await api.get(f"/api/v1/namespaces/{ns}/events/a")).json()["series"]["count"] == 2
    r = await api.patch(
        f"/apis/events.k8s.io/v1/namespaces/{ns}/events/a",
        content=json.dumps({"note": "changed"}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "message", r.text
    assert "field is immutable" in r.json()["message"]
    # an Event of the old API (no eventTime) takes a series through events.k8s.io/v1
    patch = {"series": {"count": 4, "lastObservedTime": NOW}}
    r = await api.patch(
        f"/apis/events.k8s.io/v1/namespaces/{ns}/events/b",
        content=json.dumps(patch),
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert r.status_code == 200 and r.json()["series"]["count"] == 4, r.text


async def test_v1_validation(api: httpx.AsyncClient, ns: str) -> None:
    no_time = v1_event(ns, "bad")
    del no_time["eventTime"]
    r = await api.post(f"/apis/events.k8s.io/v1/namespaces/{ns}/events", json=no_time)
    assert r.status_code == 422 and [c["field"] for c in r.json()["details"]["causes"]] == ["eventTime"], r.text
    bad = v1_event(ns, "bad", note="x" * 1025, reportingController="", action="")
    r = await api.post(f"/apis/events.k8s.io/v1/namespaces/{ns}/events", json=bad)
    assert r.status_code == 422, r.text
    status = r.json()
    assert status["kind"] == "Status" and status["reason"] == "Invalid"
    assert status["message"].startswith('Event.events.k8s.io "bad" is invalid')
    assert status["details"]["group"] == "events.k8s.io"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert {"reportingController", "action", "message"} <= fields
    r = await api.post(f"/apis/events.k8s.io/v1/namespaces/{ns}/events", json=v1_event(ns, "dep", deprecatedCount=4))
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "count", r.text
    r = await api.post(
        f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
        json=v1_event(ns, "ser", series={"count": 1, "lastObservedTime": NOW}),
    )
    assert r.status_code == 422 and "series.count" in r.text
    assert (await api.get(f"/api/v1/namespaces/{ns}/events/bad")).status_code == 404  # nothing half-written
    r = await api.post(
        f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
        params={"fieldValidation": "Strict"},
        json=v1_event(ns, "unknown", colour="blue"),
    )
    assert r.status_code == 400 and 'unknown field "colour"' in r.json()["message"], r.text
    # every Event passes upstream's legacy checks, whichever API writes it
    legacy = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "elsewhere", "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": "other", "name": "p"},
        "reason": "Started",
    }
    r = await api.post(f"/api/v1/namespaces/{ns}/events", json=legacy)
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "other": does not match event.namespace',
            "field": "involvedObject.namespace",
        }
    ]
    r = await api.get(f"/apis/events.k8s.io/v1/namespaces/{ns}/events/bad")
    assert r.status_code == 404 and r.json()["message"] == 'events.events.k8s.io "bad" not found'


async def test_field_selectors_use_v1_labels(api: httpx.AsyncClient, ns: str) -> None:
    for name, pod in (("s1", "web-1"), ("s2", "web-2")):
        regarding = {"kind": "Pod", "namespace": ns, "name": pod}
        r = await api.post(
            f"/apis/events.k8s.io/v1/namespaces/{ns}/events", json=v1_event(ns, name, regarding=regarding)
        )
        assert r.status_code == 201, r.text
    url = f"/apis/events.k8s.io/v1/namespaces/{ns}/events"
    r = await api.get(url, params={"fieldSelector": "regarding.name=web-2,reportingController=default-scheduler"})
    assert r.status_code == 200, r.text
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["s2"]
    r = await api.get(url, params={"fieldSelector": "note=x"})
    assert r.status_code == 400 and r.json()["message"] == "field label not supported: note"


async def test_watch_through_v1_sees_core_writes(api: httpx.AsyncClient, ns: str) -> None:
    url = f"/apis/events.k8s.io/v1/namespaces/{ns}/events"
    listed = (await api.get(url)).json()
    assert listed["items"] == []
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "w", "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": "p"},
        "reason": "Started",
        "message": "started",
        "type": "Normal",
    }
    assert (await api.post(f"/api/v1/namespaces/{ns}/events", json=body)).status_code == 201
    params = {"watch": "1", "resourceVersion": listed["metadata"]["resourceVersion"], "timeoutSeconds": "20"}
    async with asyncio.timeout(20), api.stream("GET", url, params=params) as resp:
        first = json.loads(await anext(line async for line in resp.aiter_lines() if line.strip()))
    assert first["type"] == "ADDED"
    assert first["object"]["apiVersion"] == "events.k8s.io/v1" and first["object"]["note"] == "started"
    assert first["object"]["regarding"]["name"] == "p"


async def test_discovery_and_kubectl(api: httpx.AsyncClient, ns: str, apiserver: str) -> None:
    groups = (await api.get("/apis")).json()["groups"]
    assert any(g["name"] == "events.k8s.io" and g["preferredVersion"]["version"] == "v1" for g in groups)
    resources = (await api.get("/apis/events.k8s.io/v1")).json()["resources"]
    assert [r["name"] for r in resources] == ["events"]
    aggregated = await api.get(
        "/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}
    )
    assert "events.k8s.io" in aggregated.text
    r = await api.post(f"/apis/events.k8s.io/v1/namespaces/{ns}/events", json=v1_event(ns, "k"))
    assert r.status_code == 201, r.text
    r = await api.get(
        f"/apis/events.k8s.io/v1/namespaces/{ns}/events/k", headers={"Accept": "application/vnd.kubernetes.protobuf"}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.kubernetes.protobuf"
    assert b"events.k8s.io/v1" in r.content and b"0/3 nodes are available" in r.content
    code, out, err = await kubectl(apiserver, "get", "events.events.k8s.io", "-n", ns)
    assert code == 0, err
    assert "FailedScheduling" in out and "pod/web-1" in out and "0/3 nodes are available" in out
    code, out, err = await kubectl(apiserver, "get", "events", "-n", ns)
    assert code == 0 and "0/3 nodes are available" in out, err
    code, out, err = await kubectl(apiserver, "events", "-n", ns)
    assert code == 0 and "0/3 nodes are available" in out, err

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "described", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    r = await api.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
    assert r.status_code == 201, r.text
    regarding = {
        "kind": "Pod",
        "apiVersion": "v1",
        "namespace": ns,
        "name": "described",
        "uid": r.json()["metadata"]["uid"],
    }
    event = v1_event(ns, "d", regarding=regarding, note="no nodes for described")
    assert (await api.post(f"/apis/events.k8s.io/v1/namespaces/{ns}/events", json=event)).status_code == 201
    code, out, err = await kubectl(apiserver, "describe", "pod", "described", "-n", ns)
    assert code == 0, err
    assert "FailedScheduling" in out and "default-scheduler" in out and "no nodes for described" in out
