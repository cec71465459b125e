"""A CRD's versions each with their own schema and columns, and versions that are not served."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from typing import Any

import httpx

from tests.integration.controller_kit import eventually
from tests.integration.test_crd import CRDS, TABLE, established

_SIZE_COLUMN = {"name": "Size", "type": "string", "jsonPath": ".spec.size"}
_MODE_COLUMN = {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"}


def _version(name: str, storage: bool, spec: dict[str, Any], column: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": spec}}}
    return {
        "name": name,
        "served": True,
        "storage": storage,
        "schema": {"openAPIV3Schema": schema},
        "additionalPrinterColumns": [column],
        "selectableFields": [{"jsonPath": column["jsonPath"]}],
    }


def widget_crd(group: str) -> dict[str, Any]:
    """Widgets: v1beta1 has a string `size` and a defaulted `legacy`; v1 (storage) an integer `size`, a
    defaulted `mode` and the status subresource."""
    beta = _version(
        "v1beta1", False, {"size": {"type": "string"}, "legacy": {"type": "string", "default": "old"}}, _SIZE_COLUMN
    )
    v1 = _version(
        "v1", True, {"size": {"type": "integer"}, "mode": {"type": "string", "default": "auto"}}, _MODE_COLUMN
    )
    v1["subresources"] = {"status": {}}  # v1beta1 has none
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [beta, v1],
        },
    }


def widget(group: str, version: str, name: str, **spec: Any) -> dict[str, Any]:
    """One Widget in `version`."""
    return {"apiVersion": f"{group}/{version}", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


async def test_each_version_validates_prunes_defaults_and_prints_by_its_own_schema(
    api: httpx.AsyncClient, ns: str
) -> None:
    group = f"pv{uuid.uuid4().hex[:8]}.example.com"
    assert (await api.post(CRDS, json=widget_crd(group))).status_code == 201
    await established(api, f"widgets.{group}")
    beta, v1 = (f"/apis/{group}/{v}/namespaces/{ns}/widgets" for v in ("v1beta1", "v1"))

    r = await api.post(beta, json=widget(group, "v1beta1", "a", size="big", unknown=1))
    assert r.status_code == 201, r.text
    # read back through v1beta1: its own fields and defaults only
    assert r.json()["spec"] == {"size": "big", "legacy": "old"}
    # the storage version prunes what it does not know (upstream's None conversion) and defaults its own fields
    assert (await api.get(f"{v1}/a")).json()["spec"] == {"size": "big", "mode": "auto"}

    r = await api.post(v1, json=widget(group, "v1", "b", size="big"))
    assert r.status_code == 422
    assert r.json()["message"] == (
        f'Widget.{group} "b" is invalid: spec.size: Invalid value: "string": '
        'spec.size in body must be of type integer: "string"'
    )
    r = await api.post(beta, json=widget(group, "v1beta1", "c", size=3))
    assert r.status_code == 422
    assert 'spec.size in body must be of type string: "integer"' in r.json()["message"]
    r = await api.put(f"{beta}/a", json={**widget(group, "v1beta1", "a", size=4), "metadata": {"name": "a"}})
    assert r.status_code == 422, r.text

    columns = {}
    for path in (beta, v1):
        table = (await api.get(path, headers={"Accept": TABLE})).json()
        columns[path] = [c["name"] for c in table["columnDefinitions"]]
        assert [row["cells"][0] for row in table["rows"]] == ["a"]
    assert columns == {beta: ["Name", "Size"], v1: ["Name", "Mode"]}

    assert (await api.get(f"{v1}/a/status")).status_code == 200
    assert (await api.get(f"{beta}/a/status")).status_code == 404
    discovered = {}
    for version in ("v1beta1", "v1"):
        listed = (await api.get(f"/apis/{group}/{version}")).json()["resources"]
        discovered[version] = sorted(r["name"] for r in listed)
    assert discovered == {"v1beta1": ["widgets"], "v1": ["widgets", "widgets/status"]}

    async def first_watched_table(path: str) -> dict[str, Any]:
        params = {"watch": "1", "resourceVersion": "0"}
        async with api.stream("GET", path, params=params, headers={"Accept": TABLE}) as r:
            async for line in r.aiter_lines():
                if line.strip():
                    return json.loads(line)["object"]
        raise AssertionError("the watch ended without an event")

    for path, name in ((beta, "Size"), (v1, "Mode")):  # a watch's events are printed as the version it named
        table = await asyncio.wait_for(first_watched_table(path), 10)
        assert [c["name"] for c in table["columnDefinitions"]] == ["Name", name]
        assert table["rows"][0]["cells"] == ["a", "big" if name == "Size" else "auto"]

    async def selected(path: str, selector: str) -> list[str] | int:
        r = await api.get(path, params={"fieldSelector": selector})
        return [i["metadata"]["name"] for i in r.json()["items"]] if r.status_code == 200 else r.status_code

    assert await selected(beta, "spec.size=big") == ["a"]
    assert await selected(v1, "spec.mode=auto") == ["a"]
    assert await selected(v1, "spec.size=big") == 400
    assert await selected(beta, "spec.mode=auto") == 400
    await api.delete(f"{CRDS}/widgets.{group}")


async def test_unserved_versions_are_not_found_and_not_discovered(api: httpx.AsyncClient, ns: str) -> None:
    group = f"us{uuid.uuid4().hex[:8]}.example.com"
    crd = widget_crd(group)
    crd["spec"]["versions"][0]["served"] = False
    assert (await api.post(CRDS, json=crd)).status_code == 201
    await established(api, f"widgets.{group}")
    beta, v1 = (f"/apis/{group}/{v}/namespaces/{ns}/widgets" for v in ("v1beta1", "v1"))
    assert (await api.post(v1, json=widget(group, "v1", "a", size=1))).status_code == 201
    for method, path in (("GET", beta), ("GET", f"{beta}/a"), ("POST", beta), ("DELETE", f"{beta}/a")):
        body = widget(group, "v1beta1", "x") if method == "POST" else None
        r = await api.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)
    assert (await api.get(f"/apis/{group}/v1beta1")).status_code == 404
    groups = {g["name"]: g for g in (await api.get("/apis")).json()["groups"]}
    assert [v["version"] for v in groups[group]["versions"]] == ["v1"]

    # the storage version stops being served: its objects are still stored in it, and read through v1beta1
    current = (await api.get(f"{CRDS}/widgets.{group}")).json()
    changed = copy.deepcopy(current)
    changed["spec"]["versions"][0]["served"] = True
    changed["spec"]["versions"][1]["served"] = False
    assert (await api.put(f"{CRDS}/widgets.{group}", json=changed)).status_code == 200
    start = time.monotonic()

    async def v1_gone() -> bool:
        return (await api.get(v1)).status_code == 404

    await eventually(v1_gone, 5, "v1 no longer served")
    assert time.monotonic() - start < 1.0
    groups = {g["name"]: g for g in (await api.get("/apis")).json()["groups"]}
    assert [v["version"] for v in groups[group]["versions"]] == ["v1beta1"]
    assert (await api.get(f"/apis/{group}/v1")).status_code == 404
    got = await api.get(f"{beta}/a")
    assert got.status_code == 200 and got.json()["apiVersion"] == f"{group}/v1beta1", got.text
    r = await api.post(beta, json=widget(group, "v1beta1", "b", size="small"))
    assert r.status_code == 201, r.text
    listed = (await api.get(beta)).json()
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["a", "b"]
    await api.delete(f"{CRDS}/widgets.{group}")


async def test_field_validation_follows_the_addressed_versions_schema(api: httpx.AsyncClient, ns: str) -> None:
    group = f"fv{uuid.uuid4().hex[:8]}.example.com"
    assert (await api.post(CRDS, json=widget_crd(group))).status_code == 201
    await established(api, f"widgets.{group}")
    beta, v1 = (f"/apis/{group}/{v}/namespaces/{ns}/widgets" for v in ("v1beta1", "v1"))
    r = await api.post(beta, json=widget(group, "v1beta1", "a", size="big", legacy="x"))
    assert r.status_code == 201 and "warning" not in r.headers, r.headers
    r = await api.post(v1, json=widget(group, "v1", "b", size=1, legacy="x"))
    assert r.status_code == 201 and r.headers["warning"] == '299 - "unknown field \\"spec.legacy\\""', r.headers
    r = await api.post(v1, params={"fieldValidation": "Strict"}, json=widget(group, "v1", "c", legacy="x"))
    assert r.status_code == 400
    assert r.json()["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.legacy"'
    )
    patch = {"spec": {"bogus": 1}}
    headers = {"Content-Type": "application/merge-patch+json"}
    r = await api.patch(f"{v1}/b", params={"fieldValidation": "Strict"}, json=patch, headers=headers)
    assert r.status_code == 400 and r.json()["message"] == 'strict decoding error: unknown field "spec.bogus"', r.text
    r = await api.post(v1, params={"fieldValidation": "Ignore"}, json=widget(group, "v1", "d", legacy="x"))
    assert r.status_code == 201 and "warning" not in r.headers and "legacy" not in r.json()["spec"]
    await api.delete(f"{CRDS}/widgets.{group}")
