"""CustomResourceDefinitions over HTTP: a CRD's kind is served, discovered, printed, selected, watched,
scaled and cleaned up, by the same generic registry as the built-in kinds."""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.integration.controller_kit import eventually
from tests.integration.helpers import MERGE, collect
from tinykube.procs import start_apiserver

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def crontab_crd(
    group: str, scope: str = "Namespaced", plural: str = "crontabs", kind: str = "CronTab"
) -> dict[str, Any]:
    """A CronTab CRD as the Kubernetes docs write it, with status, scale, columns and a selectable field."""
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "cronSpec": {"type": "string"},
                    "image": {"type": "string"},
                    "replicas": {"type": "integer"},
                    "color": {"type": "string"},
                },
            },
            "status": {
                "type": "object",
                "properties": {"replicas": {"type": "integer"}, "labelSelector": {"type": "string"}},
            },
        },
    }
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.labelSelector",
            },
        },
        "additionalPrinterColumns": [
            {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        "selectableFields": [{"jsonPath": ".spec.color"}],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "shortNames": ["ct"],
                "categories": ["all"],
            },
            "versions": [version],
        },
    }


def crontab(group: str, name: str, **spec: Any) -> dict[str, Any]:
    """One CronTab object."""
    body = {"cronSpec": "* * * * */5", "image": "my-cron-image", "replicas": 1, **spec}
    return {"apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": name}, "spec": body}


async def established(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    """Wait for the CRD's Established condition; the CRD."""

    async def check() -> dict[str, Any] | None:
        crd = (await api.get(f"{CRDS}/{name}")).json()
        conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
        return crd if conditions.get("Established") == "True" else None

    return await eventually(check)


@pytest.fixture
async def group(api: httpx.AsyncClient) -> AsyncIterator[str]:
    """A fresh group with the CronTab CRD established in it; the CRD is deleted afterwards."""
    name = f"g{uuid.uuid4().hex[:8]}.example.com"
    r = await api.post(CRDS, json=crontab_crd(name))
    assert r.status_code == 201, r.text
    await established(api, f"crontabs.{name}")
    yield name
    await api.delete(f"{CRDS}/crontabs.{name}")


async def test_crd_status_names_and_conditions(api: httpx.AsyncClient, group: str) -> None:
    crd = (await api.get(f"{CRDS}/crontabs.{group}")).json()
    status = crd["status"]
    assert status["acceptedNames"]["kind"] == "CronTab"
    assert status["acceptedNames"]["listKind"] == "CronTabList"
    assert status["storedVersions"] == ["v1"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["NamesAccepted"]["reason"] == "NoConflicts"
    assert conditions["Established"]["reason"] == "InitialNamesAccepted"
    assert crd["spec"]["conversion"] == {"strategy": "None"}


async def test_crud_and_keys_group_qualified(api: httpx.AsyncClient, group: str, ns: str) -> None:
    base = f"/apis/{group}/v1/namespaces/{ns}/crontabs"
    r = await api.post(base, json=crontab(group, "a"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["metadata"]["generation"] == 1 and "status" not in created
    got = (await api.get(f"{base}/a")).json()
    assert got["spec"]["cronSpec"] == "* * * * */5"
    r = await api.patch(f"{base}/a", json={"spec": {"image": "other"}}, headers=MERGE)
    assert r.status_code == 200 and r.json()["metadata"]["generation"] == 2
    listed = (await api.get(f"/apis/{group}/v1/crontabs")).json()
    assert listed["kind"] == "CronTabList" and [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    r = await api.post(base, json=crontab(group, "a"))
    assert r.status_code == 409 and r.json()["details"] == {"name": "a", "group": group, "kind": "crontabs"}
    r = await api.delete(f"{base}/a")
    assert r.status_code == 200
    assert (await api.get(f"{base}/a")).status_code == 404


async def test_discovery_legacy_and_aggregated(api: httpx.AsyncClient, group: str) -> None:
    groups = {g["name"]: g for g in (await api.get("/apis")).json()["groups"]}
    assert groups[group]["preferredVersion"]["groupVersion"] == f"{group}/v1"
    assert (await api.get(f"/apis/{group}")).json()["versions"] == [{"groupVersion": f"{group}/v1", "version": "v1"}]
    resources = {r["name"]: r for r in (await api.get(f"/apis/{group}/v1")).json()["resources"]}
    assert resources["crontabs"]["kind"] == "CronTab"
    assert resources["crontabs"]["singularName"] == "crontab"
    assert resources["crontabs"]["shortNames"] == ["ct"] and resources["crontabs"]["categories"] == ["all"]
    assert resources["crontabs/scale"]["kind"] == "Scale" and resources["crontabs/scale"]["group"] == "autoscaling"
    assert sorted(resources) == ["crontabs", "crontabs/scale", "crontabs/status"]
    doc = (await api.get("/apis", headers={"accept": AGGREGATED})).json()
    item = next(i for i in doc["items"] if i["metadata"]["name"] == group)
    res = item["versions"][0]["resources"][0]
    assert (res["resource"], res["scope"], res["singularResource"]) == ("crontabs", "Namespaced", "crontab")
    assert {s["subresource"] for s in res["subresources"]} == {"status", "scale"}


async def test_status_subresource_and_scale(api: httpx.AsyncClient, group: str, ns: str) -> None:
    base = f"/apis/{group}/v1/namespaces/{ns}/crontabs"
    assert (await api.post(base, json=crontab(group, "s"))).status_code == 201
    # status on the main resource is ignored; through /status only status changes
    r = await api.patch(f"{base}/s", json={"status": {"replicas": 9}}, headers=MERGE)
    assert "status" not in r.json()
    r = await api.patch(
        f"{base}/s/status",
        json={"status": {"replicas": 1, "labelSelector": "app=x"}, "spec": {"image": "no"}},
        headers=MERGE,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"]["replicas"] == 1 and r.json()["spec"]["image"] == "my-cron-image"
    scale = (await api.get(f"{base}/s/scale")).json()
    assert scale["spec"]["replicas"] == 1 and scale["status"] == {"replicas": 1, "selector": "app=x"}
    scale["spec"]["replicas"] = 4
    r = await api.put(f"{base}/s/scale", json=scale)
    assert r.status_code == 200, r.text
    assert (await api.get(f"{base}/s")).json()["spec"]["replicas"] == 4


async def test_table_columns_and_field_selectors(api: httpx.AsyncClient, group: str, ns: str) -> None:
    base = f"/apis/{group}/v1/namespaces/{ns}/crontabs"
    for name, color in (("red1", "red"), ("blue1", "blue")):
        assert (await api.post(base, json=crontab(group, name, color=color, replicas=3))).status_code == 201
    table = (await api.get(base, headers={"accept": TABLE})).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Spec", "Replicas", "Age"]
    assert table["rows"][0]["cells"][:3] == ["blue1", "* * * * */5", 3]
    picked = (await api.get(base, params={"fieldSelector": "spec.color=red"})).json()["items"]
    assert [i["metadata"]["name"] for i in picked] == ["red1"]
    picked = (await api.get(base, params={"fieldSelector": "metadata.name=blue1"})).json()["items"]
    assert [i["metadata"]["name"] for i in picked] == ["blue1"]
    r = await api.get(base, params={"fieldSelector": "spec.image=x"})
    assert r.status_code == 400 and r.json()["message"] == "field label not supported: spec.image"


async def test_watch(api: httpx.AsyncClient, group: str, ns: str) -> None:
    base = f"/apis/{group}/v1/namespaces/{ns}/crontabs"
    rv = (await api.get(base)).json()["metadata"]["resourceVersion"]

    async def write() -> None:
        await api.post(base, json=crontab(group, "w"))
        await api.delete(f"{base}/w")

    task = asyncio.create_task(write())
    events = await collect(api, base, lambda evs: len(evs) >= 2, resourceVersion=rv)
    await task
    assert [(e["type"], e["object"]["kind"]) for e in events] == [("ADDED", "CronTab"), ("DELETED", "CronTab")]


async def test_cluster_scope_and_name_conflict(api: httpx.AsyncClient) -> None:
    group = f"c{uuid.uuid4().hex[:8]}.example.com"
    r = await api.post(CRDS, json=crontab_crd(group, scope="Cluster"))
    assert r.status_code == 201, r.text
    await established(api, f"crontabs.{group}")
    r = await api.post(f"/apis/{group}/v1/crontabs", json=crontab(group, "top"))
    assert r.status_code == 201 and "namespace" not in r.json()["metadata"]
    # another CRD in the group asking for the same kind: not accepted, not established, not served
    clash = crontab_crd(group, scope="Cluster", plural="crontabz", kind="CronTab")
    clash["spec"]["names"].update(shortNames=[], singular="crontabz")
    assert (await api.post(CRDS, json=clash)).status_code == 201

    async def rejected() -> dict[str, Any] | None:
        crd = (await api.get(f"{CRDS}/crontabz.{group}")).json()
        conditions = {c["type"]: c for c in (crd.get("status") or {}).get("conditions") or []}
        return conditions if conditions.get("NamesAccepted", {}).get("status") == "False" else None

    conditions = await eventually(rejected)
    assert conditions["NamesAccepted"]["reason"] == "KindConflict"
    assert conditions["NamesAccepted"]["message"] == '"CronTab" is already in use'
    assert conditions["Established"]["status"] == "False"
    assert (await api.get(f"/apis/{group}/v1/crontabz")).status_code == 404
    for name in (f"crontabz.{group}", f"crontabs.{group}"):
        await api.delete(f"{CRDS}/{name}")


async def test_invalid_crds_are_422(api: httpx.AsyncClient) -> None:
    good = crontab_crd("bad.example.com")
    cases = [
        ({"metadata": {"name": "wrong.bad.example.com"}}, "metadata.name", 'must be spec.names.plural+"."+spec.group'),
        ({"spec": {**good["spec"], "scope": "Galaxy"}}, "spec.scope", 'Unsupported value: "Galaxy"'),
    ]
    for change, field, text in cases:
        body = {**copy.deepcopy(good), **change}
        r = await api.post(CRDS, json=body)
        assert r.status_code == 422, r.text
        causes = r.json()["details"]["causes"]
        assert any(c["field"] == field and text in c["message"] for c in causes), causes
    two = copy.deepcopy(good)
    two["spec"]["versions"].append({**copy.deepcopy(good["spec"]["versions"][0]), "name": "v2"})
    r = await api.post(CRDS, json=two)
    assert r.status_code == 422
    assert "must have exactly one version marked as storage version" in r.json()["message"]


async def test_cel_rules_are_checked_against_the_schema_when_the_crd_is_written(api: httpx.AsyncClient) -> None:
    crd = crontab_crd("celcheck.example.com")
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["x-kubernetes-validations"] = [{"rule": "self.replicas > 0"}, {"rule": "self.nope > 0"}]
    r = await api.post(CRDS, json=crd)
    assert r.status_code == 422, r.text
    field = "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[1].rule"
    detail = "compilation failed: ERROR: <input>:1:5: undefined field 'nope'\n | self.nope > 0\n | ....^"
    assert r.json()["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": f'Invalid value: "self.nope > 0": {detail}', "field": field}
    ]
    spec["x-kubernetes-validations"] = [{"rule": "self.replicas >"}]
    r = await api.post(CRDS, json=crd)
    assert r.status_code == 422, r.text
    message = r.json()["details"]["causes"][0]["message"]
    assert message.startswith(
        'Invalid value: "self.replicas >": compilation failed: ERROR: <input>:1:16: Syntax error: '
        "mismatched input '<EOF>' expecting "
    ), message
    assert (await api.get(f"{CRDS}/crontabs.celcheck.example.com")).status_code == 404


async def test_several_versions_convert_by_apiversion(api: httpx.AsyncClient, ns: str) -> None:
    group = f"m{uuid.uuid4().hex[:8]}.example.com"
    crd = crontab_crd(group)
    v1 = crd["spec"]["versions"][0]
    crd["spec"]["versions"] = [{**copy.deepcopy(v1), "name": "v1beta1", "storage": False, "deprecated": True}, v1]
    assert (await api.post(CRDS, json=crd)).status_code == 201
    await established(api, f"crontabs.{group}")
    groups = {g["name"]: g for g in (await api.get("/apis")).json()["groups"]}
    assert [v["version"] for v in groups[group]["versions"]] == ["v1", "v1beta1"]
    old = crontab(group, "old")
    old["apiVersion"] = f"{group}/v1beta1"
    r = await api.post(f"/apis/{group}/v1beta1/namespaces/{ns}/crontabs", json=old)
    assert r.status_code == 201, r.text
    assert r.json()["apiVersion"] == f"{group}/v1beta1"
    assert r.headers["warning"] == f'299 - "{group}/v1beta1 CronTab is deprecated; use {group}/v1 CronTab"'
    assert "warning" not in (await api.get(f"/apis/{group}/v1/namespaces/{ns}/crontabs")).headers
    got = (await api.get(f"/apis/{group}/v1/namespaces/{ns}/crontabs/old")).json()
    assert got["apiVersion"] == f"{group}/v1"
    await api.delete(f"{CRDS}/crontabs.{group}")


async def test_deleting_the_crd_deletes_its_objects_first(api: httpx.AsyncClient, ns: str) -> None:
    group = f"d{uuid.uuid4().hex[:8]}.example.com"
    assert (await api.post(CRDS, json=crontab_crd(group))).status_code == 201
    await established(api, f"crontabs.{group}")
    base = f"/apis/{group}/v1/namespaces/{ns}/crontabs"
    held = crontab(group, "held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    for body in (crontab(group, "plain"), held):
        assert (await api.post(base, json=body)).status_code == 201
    r = await api.delete(f"{CRDS}/crontabs.{group}")
    assert r.status_code == 200
    assert "customresourcecleanup.apiextensions.k8s.io" in r.json()["metadata"]["finalizers"]

    async def only_held_left() -> bool:
        items = (await api.get(base)).json().get("items", [])
        return [i["metadata"]["name"] for i in items] == ["held"] and bool(
            items[0]["metadata"].get("deletionTimestamp")
        )

    await eventually(only_held_left)
    r = await api.post(base, json=crontab(group, "late"))
    assert r.status_code == 405 and "terminating" in r.json()["message"]
    assert (await api.get(f"{CRDS}/crontabs.{group}")).status_code == 200  # kept while objects remain
    assert (await api.patch(f"{base}/held", json={"metadata": {"finalizers": None}}, headers=MERGE)).status_code == 200

    async def crd_gone() -> bool:
        return (await api.get(f"{CRDS}/crontabs.{group}")).status_code == 404

    await eventually(crd_gone)

    async def unserved() -> bool:
        return (await api.get(base)).status_code == 404

    await eventually(unserved)


async def test_every_apiserver_serves_crds_at_start_and_within_a_second_of_a_change(
    api: httpx.AsyncClient, etcd: str, tmp_path: Any, group: str, ns: str
) -> None:
    proc, url = await asyncio.to_thread(start_apiserver, tmp_path, etcd)  # started after the CRD exists
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as other:
            r = await other.post(f"/apis/{group}/v1/namespaces/{ns}/crontabs", json=crontab(group, "via-other"))
            assert r.status_code == 201, r.text  # served as soon as it is ready
            assert (await api.get(f"/apis/{group}/v1/namespaces/{ns}/crontabs/via-other")).status_code == 200
            # a second CRD created on the first server is served by the other within a second
            fresh = f"f{uuid.uuid4().hex[:8]}.example.com"
            assert (await api.post(CRDS, json=crontab_crd(fresh, scope="Cluster"))).status_code == 201
            start = time.monotonic()

            async def served() -> bool:
                return (await other.get(f"/apis/{fresh}/v1/crontabs")).status_code == 200

            await eventually(served, 5, "the other apiserver to serve the new CRD")
            assert time.monotonic() - start < 1.0
            await api.delete(f"{CRDS}/crontabs.{fresh}")
            start = time.monotonic()

            async def unserved() -> bool:
                return (await other.get(f"/apis/{fresh}/v1/crontabs")).status_code == 404

            await eventually(unserved, 5, "the other apiserver to stop serving the deleted CRD")
            assert time.monotonic() - start < 1.0
    finally:
        await asyncio.to_thread(proc.stop)


async def test_server_side_apply_merges_list_maps_and_keeps_other_lists_atomic(api: httpx.AsyncClient, ns: str) -> None:
    group = f"a{uuid.uuid4().hex[:8]}.example.com"
    crd = crontab_crd(group)
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["ports"] = {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}},
    }
    props["tags"] = {"type": "array", "items": {"type": "string"}}
    assert (await api.post(CRDS, json=crd)).status_code == 201
    await established(api, f"crontabs.{group}")
    path = f"/apis/{group}/v1/namespaces/{ns}/crontabs/applied"
    apply = {"content-type": "application/apply-patch+yaml"}

    def body(**spec: Any) -> dict[str, Any]:
        return {"apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": "applied"}, "spec": spec}

    r = await api.patch(
        path, json=body(ports=[{"name": "a", "port": 1}], tags=["x"]), params={"fieldManager": "one"}, headers=apply
    )
    assert r.status_code == 201, r.text
    r = await api.patch(
        path, json=body(ports=[{"name": "b", "port": 2}]), params={"fieldManager": "two"}, headers=apply
    )
    assert r.status_code == 200, r.text
    assert [p["name"] for p in r.json()["spec"]["ports"]] == ["a", "b"]
    r = await api.patch(path, json=body(tags=["y"]), params={"fieldManager": "two"}, headers=apply)
    assert r.status_code == 409 and ".spec.tags" in r.json()["message"]
    r = await api.patch(path, json=body(tags=["y"]), params={"fieldManager": "two", "force": "true"}, headers=apply)
    assert r.status_code == 200 and r.json()["spec"]["tags"] == ["y"]
    r = await api.patch(
        path, json={"spec": {"tags": []}}, headers={"content-type": "application/strategic-merge-patch+json"}
    )
    assert r.status_code == 415 and "application/merge-patch+json" in r.json()["message"]
    await api.delete(f"{CRDS}/crontabs.{group}")


async def test_conversion_webhook_converts_between_versions(api: httpx.AsyncClient, ns: str) -> None:
    from tests.integration.webhook_kit import webhook_server

    def convert(obj: dict[str, Any], desired: str) -> dict[str, Any]:
        spec = dict(obj.get("spec") or {})
        if desired.endswith("/v1beta1"):
            spec["cron"] = spec.pop("cronSpec", None)
        else:
            spec["cronSpec"] = spec.pop("cron", None)
        return {**obj, "apiVersion": desired, "spec": spec}

    def handler(path: str, review: dict[str, Any]) -> dict[str, Any]:
        request = review["request"]
        if path == "/broken":
            return {**review, "response": {"uid": request["uid"], "result": {"status": "Failure", "message": "nope"}}}
        converted = [convert(o, request["desiredAPIVersion"]) for o in request["objects"]]
        response = {"uid": request["uid"], "convertedObjects": converted, "result": {"status": "Success"}}
        return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "response": response}

    async with webhook_server(handler) as server:
        group = f"w{uuid.uuid4().hex[:8]}.example.com"
        crd = crontab_crd(group)
        v1 = crd["spec"]["versions"][0]
        beta = {**copy.deepcopy(v1), "name": "v1beta1", "storage": False}
        beta_spec = beta["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        beta_spec["cron"] = beta_spec.pop("cronSpec")  # each version's objects are read by its own schema
        crd["spec"]["versions"] = [beta, v1]
        webhook = {"clientConfig": {"url": server.url("/convert"), "caBundle": server.pki.ca_bundle}}
        crd["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {**webhook, "conversionReviewVersions": ["v1"]}}
        assert (await api.post(CRDS, json=crd)).status_code == 201, crd
        await established(api, f"crontabs.{group}")
        old = {"apiVersion": f"{group}/v1beta1", "kind": "CronTab", "metadata": {"name": "c", "labels": {"a": "b"}}}
        old["spec"] = {"cron": "*/5 * * * *"}
        r = await api.post(f"/apis/{group}/v1beta1/namespaces/{ns}/crontabs", json=old)
        assert r.status_code == 201, r.text
        assert r.json()["spec"] == {"cron": "*/5 * * * *"} and r.json()["metadata"]["labels"] == {"a": "b"}
        stored = (await api.get(f"/apis/{group}/v1/namespaces/{ns}/crontabs/c")).json()
        assert stored["spec"] == {"cronSpec": "*/5 * * * *"}
        listed = (await api.get(f"/apis/{group}/v1beta1/namespaces/{ns}/crontabs")).json()
        assert [i["spec"] for i in listed["items"]] == [{"cron": "*/5 * * * *"}]
        reviews = [review for path, review in server.reviews if path == "/convert"]
        assert reviews[0]["kind"] == "ConversionReview" and reviews[0]["request"]["desiredAPIVersion"] == f"{group}/v1"
        # a webhook that fails: the request is a 500 naming it, nothing converted by half
        broken = copy.deepcopy(crd)
        broken["spec"]["conversion"]["webhook"]["clientConfig"]["url"] = server.url("/broken")
        broken["metadata"]["resourceVersion"] = (await api.get(f"{CRDS}/crontabs.{group}")).json()["metadata"][
            "resourceVersion"
        ]
        assert (await api.put(f"{CRDS}/crontabs.{group}", json=broken)).status_code == 200

        async def failing() -> dict[str, Any] | None:
            r = await api.get(f"/apis/{group}/v1beta1/namespaces/{ns}/crontabs/c")
            return r.json() if r.status_code == 500 else None

        status = await eventually(failing, 5, "the broken webhook in use")
        assert (
            status["message"]
            == f"Internal error occurred: conversion webhook for {group}/v1beta1, Kind=CronTab failed: nope"
        )
        await api.delete(f"{CRDS}/crontabs.{group}")


async def test_openapi_v3_publishes_every_crd_of_a_group_version(api: httpx.AsyncClient, group: str) -> None:
    other = crontab_crd(group, plural="crondels", kind="CronDel")
    other["spec"]["names"].update(shortNames=[], singular="crondel")
    assert (await api.post(CRDS, json=other)).status_code == 201
    await established(api, f"crondels.{group}")
    key = f"apis/{group}/v1"
    reversed_group = ".".join(reversed(group.split(".")))

    async def schemas() -> set[str]:
        index = (await api.get("/openapi/v3")).json()["paths"]
        if key not in index:
            return set()
        # a document that changed since the index was read redirects to its new hash, as upstream's does
        doc = (await api.get(index[key]["serverRelativeURL"], follow_redirects=True)).json()
        return {n for n in doc["components"]["schemas"] if n.startswith(reversed_group)}

    both = {f"{reversed_group}.v1.{k}" for k in ("CronTab", "CronTabList", "CronDel", "CronDelList")}
    assert await schemas() == both
    await api.delete(f"{CRDS}/crondels.{group}")

    async def only_crontabs() -> bool:
        return await schemas() == {f"{reversed_group}.v1.CronTab", f"{reversed_group}.v1.CronTabList"}

    await eventually(only_crontabs, 5, "the deleted CRD's schemas gone, the other's kept")


async def test_a_new_storage_version_migrates_stored_objects(api: httpx.AsyncClient, group: str, ns: str) -> None:
    base = f"/apis/{group}/v1/namespaces/{ns}/crontabs"
    assert (await api.post(base, json=crontab(group, "kept"))).status_code == 201
    crd = (await api.get(f"{CRDS}/crontabs.{group}")).json()
    v1 = crd["spec"]["versions"][0]
    crd["spec"]["versions"] = [{**v1, "storage": False}, {**copy.deepcopy(v1), "name": "v2", "storage": True}]
    r = await api.put(f"{CRDS}/crontabs.{group}", json=crd)
    assert r.status_code == 200, r.text
    assert r.json()["status"]["storedVersions"] == ["v1", "v2"]
    v2 = f"/apis/{group}/v2/namespaces/{ns}/crontabs/kept"

    async def migrated() -> dict[str, Any] | None:
        got = await api.get(v2)
        return got.json() if got.status_code == 200 and got.json()["apiVersion"] == f"{group}/v2" else None

    obj = await eventually(migrated, 5, "the object rewritten in the new storage version")
    assert obj["metadata"]["generation"] == 1  # a migration is no spec change
    r = await api.patch(v2, json={"spec": {"image": "new"}}, headers=MERGE)
    assert r.status_code == 200 and r.json()["apiVersion"] == f"{group}/v2", r.text
    old = (await api.get(f"{base}/kept")).json()
    assert old["apiVersion"] == f"{group}/v1" and old["spec"]["image"] == "new"
