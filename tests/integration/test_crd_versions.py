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
from tests.integration.helpers import MERGE
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


async def test_a_write_is_validated_in_its_own_version_before_the_storage_schema_prunes_it(
    api: httpx.AsyncClient, ns: str
) -> None:
    group = f"vo{uuid.uuid4().hex[:8]}.example.com"
    crd = widget_crd(group)
    beta = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    beta["properties"]["note"] = {"type": "string"}  # v1 does not know it: stored objects lose it
    beta["required"] = ["note"]
    beta["x-kubernetes-validations"] = [{"rule": "self.note != 'no'", "message": "note may not be no"}]
    assert (await api.post(CRDS, json=crd)).status_code == 201
    await established(api, f"widgets.{group}")
    beta_path, v1 = (f"/apis/{group}/{v}/namespaces/{ns}/widgets" for v in ("v1beta1", "v1"))

    r = await api.post(beta_path, json=widget(group, "v1beta1", "a", size="big", note="kept until stored"))
    assert r.status_code == 201, r.text
    assert (await api.get(f"{v1}/a")).json()["spec"] == {"size": "big", "mode": "auto"}
    r = await api.post(beta_path, json=widget(group, "v1beta1", "b", size="big"))
    assert r.status_code == 422
    assert r.json()["message"].startswith(f'Widget.{group} "b" is invalid: [spec.note: Required value, ')
    r = await api.post(beta_path, json=widget(group, "v1beta1", "c", note="no"))
    assert r.status_code == 422 and r.json()["message"].endswith('spec: Invalid value: "object": note may not be no')

    # an update through v1beta1 is judged by v1beta1's schema too, against the stored object as v1beta1 reads
    # it (it has no note any more: left as it is, spec ratchets; changed, it needs one)
    current = (await api.get(f"{beta_path}/a")).json()
    assert "note" not in current["spec"]
    r = await api.put(f"{beta_path}/a", json=current)
    assert r.status_code == 200, r.text
    current = r.json()
    current["spec"]["size"] = "huge"
    r = await api.put(f"{beta_path}/a", json=current)
    assert r.status_code == 422 and "spec.note: Required value" in r.json()["message"], r.text
    current["spec"]["note"] = "again"
    assert (await api.put(f"{beta_path}/a", json=current)).status_code == 200
    r = await api.patch(f"{beta_path}/a", json={"spec": {"note": "no"}}, headers=MERGE)
    assert r.status_code == 422 and "note may not be no" in r.json()["message"], r.text

    apply = {"Content-Type": "application/apply-patch+yaml"}
    r = await api.patch(
        f"{beta_path}/f", params={"fieldManager": "t"}, content=json.dumps(widget(group, "v1beta1", "f")), headers=apply
    )
    assert r.status_code == 422 and "spec.note: Required value" in r.json()["message"], r.text
    body = json.dumps(widget(group, "v1beta1", "f", note="applied"))
    r = await api.patch(f"{beta_path}/f", params={"fieldManager": "t"}, content=body, headers=apply)
    assert r.status_code == 201 and r.json()["spec"] == {"legacy": "old"}, r.text  # as stored, read back

    # the decoding errors name the version written to
    r = await api.post(
        beta_path, params={"fieldValidation": "Strict"}, json=widget(group, "v1beta1", "d", note="x", mode="m")
    )
    assert r.status_code == 400
    assert r.json()["message"] == (
        'Widget in version "v1beta1" cannot be handled as a Widget: strict decoding error: unknown field "spec.mode"'
    )
    applied = widget(group, "v1beta1", "d", note="x", mode="m")
    r = await api.patch(
        f"{beta_path}/d",
        params={"fieldValidation": "Strict", "fieldManager": "t"},
        content=json.dumps(applied),
        headers=apply,
    )
    assert r.status_code == 400
    assert r.json()["message"] == (
        f"failed to create typed patch object ({ns}/d; {group}/v1beta1, Kind=Widget): "
        ".spec.mode: field not declared in schema"
    )
    r = await api.post(beta_path, json={**widget(group, "v1beta1", "e", note="x"), "kind": "Gadget"})
    assert r.status_code == 400
    assert r.json()["message"] == (
        f'Gadget in version "{group}/v1beta1" cannot be handled as a Widget: '
        "the object provided is unrecognized (must be of type Widget)"
    )
    await api.delete(f"{CRDS}/widgets.{group}")


async def test_a_webhook_converted_write_is_validated_by_the_version_written_not_the_storage_one(
    api: httpx.AsyncClient, ns: str
) -> None:
    from tests.integration.webhook_kit import webhook_server

    def handler(path: str, review: dict[str, Any]) -> dict[str, Any]:
        request = review["request"]
        converted = []
        for obj in request["objects"]:  # v1beta1 `size` (a word) ↔ v1 `label`, in spec and status
            out = {**obj, "apiVersion": request["desiredAPIVersion"]}
            for part in ("spec", "status"):
                if part not in obj:
                    continue
                out[part] = fields = dict(obj[part])
                for beta_name, v1_name in (("size", "label"), ("count", "replicas")):
                    if request["desiredAPIVersion"].endswith("/v1beta1"):
                        if v1_name in fields:
                            fields[beta_name] = fields.pop(v1_name)
                    elif beta_name in fields:
                        fields[v1_name] = fields.pop(beta_name)
            converted.append(out)
        response = {"uid": request["uid"], "convertedObjects": converted, "result": {"status": "Success"}}
        return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "response": response}

    async with webhook_server(handler) as server:
        group = f"vw{uuid.uuid4().hex[:8]}.example.com"
        crd = widget_crd(group)
        beta, v1 = crd["spec"]["versions"]
        beta["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"]["maxLength"] = 5
        v1_spec = v1["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        v1_spec["label"] = {"type": "string", "minLength": 3}
        rule = "!has(oldSelf.size) || oldSelf.size != 'fixed' || self.size == 'fixed'"
        beta_spec = beta["schema"]["openAPIV3Schema"]["properties"]["spec"]
        beta_spec["x-kubernetes-validations"] = [{"rule": rule, "message": "a fixed size stays"}]
        beta["subresources"] = {"status": {}}
        for version, field, count, rule in ((beta, "size", "count", {"maxLength": 5}), (v1, "label", "replicas", {})):
            properties = version["schema"]["openAPIV3Schema"]["properties"]
            properties["spec"]["properties"][count] = {"type": "integer"}
            status = {field: {"type": "string", **rule}, count: {"type": "integer"}}
            properties["status"] = {"type": "object", "properties": status}
            paths = {"specReplicasPath": f".spec.{count}", "statusReplicasPath": f".status.{count}"}
            version["subresources"]["scale"] = paths
        webhook = {"url": server.url("/convert"), "caBundle": server.pki.ca_bundle}
        crd["spec"]["conversion"] = {
            "strategy": "Webhook",
            "webhook": {"clientConfig": webhook, "conversionReviewVersions": ["v1"]},
        }
        assert (await api.post(CRDS, json=crd)).status_code == 201
        await established(api, f"widgets.{group}")
        beta_path, v1_path = (f"/apis/{group}/{v}/namespaces/{ns}/widgets" for v in ("v1beta1", "v1"))

        r = await api.post(beta_path, json=widget(group, "v1beta1", "long", size="enormous"))
        assert r.status_code == 422, r.text
        assert r.json()["message"].startswith(
            f'Widget.{group} "long" is invalid: [spec.size: Too long: may not be longer than 5, '
        )
        # only v1beta1's schema judges a v1beta1 write: v1's minLength does not apply to it
        r = await api.post(beta_path, json=widget(group, "v1beta1", "a", size="xs"))
        assert r.status_code == 201, r.text
        assert r.json()["spec"] == {"size": "xs", "legacy": "old"}
        assert (await api.get(f"{v1_path}/a")).json()["spec"] == {"label": "xs", "mode": "auto"}
        r = await api.post(v1_path, json=widget(group, "v1", "b", label="xs"))
        assert r.status_code == 422 and "spec.label: Invalid value" in r.json()["message"], r.text
        current = (await api.get(f"{beta_path}/a")).json()
        current["spec"]["size"] = "enormous"
        r = await api.put(f"{beta_path}/a", json=current)
        assert r.status_code == 422 and "spec.size: Too long" in r.json()["message"], r.text
        current["spec"]["size"] = "small"
        assert (await api.put(f"{beta_path}/a", json=current)).status_code == 200
        assert (await api.get(f"{v1_path}/a")).json()["spec"]["label"] == "small"

        # its status is written in v1beta1 too: judged there, the rest kept from the stored object
        current = (await api.get(f"{beta_path}/a/status")).json()
        current["status"] = {"size": "enormous"}
        r = await api.put(f"{beta_path}/a/status", json=current)
        assert r.status_code == 422 and "status.size: Too long" in r.json()["message"], r.text
        current["status"] = {"size": "done"}
        current["spec"]["size"] = "ignored"
        r = await api.put(f"{beta_path}/a/status", json=current)
        assert r.status_code == 200 and r.json()["status"] == {"size": "done"}, r.text
        stored = (await api.get(f"{v1_path}/a")).json()
        assert (stored["spec"]["label"], stored["status"]) == ("small", {"label": "done"})
        r = await api.patch(f"{beta_path}/a/status", json={"status": {"size": "later"}}, headers=MERGE)
        assert r.status_code == 200 and r.json()["status"] == {"size": "later"}, r.text
        current = r.json()
        current["status"] = {"size": "x"}
        current["spec"]["size"] = "tiny"
        r = await api.put(f"{beta_path}/a", json=current)  # the object's own write keeps the stored status
        assert r.status_code == 200 and r.json()["status"] == {"size": "later"}, r.text
        current_managed = r.json()["metadata"]["managedFields"]
        assert (await api.get(f"{v1_path}/a")).json()["spec"]["label"] == "tiny"
        # transition rules see the stored object as v1beta1 has it
        r = await api.post(beta_path, json=widget(group, "v1beta1", "t", size="fixed"))
        assert r.status_code == 201, r.text
        r = await api.patch(f"{beta_path}/t", json={"spec": {"size": "other"}}, headers=MERGE)
        assert r.status_code == 422 and r.json()["message"].endswith("a fixed size stays"), r.text

        # each version scales the object as it has it (v1beta1 `count`, v1 `replicas`)
        r = await api.post(beta_path, json=widget(group, "v1beta1", "s", size="ok", count=2))
        assert r.status_code == 201, r.text
        assert (await api.get(f"{v1_path}/s")).json()["spec"] == {"label": "ok", "replicas": 2, "mode": "auto"}
        scale = (await api.get(f"{beta_path}/s/scale")).json()
        assert scale["spec"]["replicas"] == 2, scale
        r = await api.put(f"{beta_path}/s/scale", json={**scale, "spec": {"replicas": 4}})
        assert r.status_code == 200 and r.json()["spec"]["replicas"] == 4, r.text
        assert (await api.get(f"{v1_path}/s/scale")).json()["spec"]["replicas"] == 4
        r = await api.patch(f"{beta_path}/s/scale", json={"spec": {"replicas": -1}}, headers=MERGE)
        assert r.status_code == 422 and "must be greater than or equal to 0" in r.json()["message"], r.text
        r = await api.patch(f"{beta_path}/s/scale", json={"spec": {"replicas": 5}}, headers=MERGE)
        assert r.status_code == 200 and (await api.get(f"{beta_path}/s")).json()["spec"]["count"] == 5, r.text

        entries = {(e["manager"], e.get("subresource", "")): e for e in current_managed}
        assert entries["python-httpx", ""]["apiVersion"] == f"{group}/v1beta1"  # the fields are v1beta1's
        assert "f:size" in entries["python-httpx", ""]["fieldsV1"]["f:spec"]
        await api.delete(f"{CRDS}/widgets.{group}")


def _counted_crd(group: str) -> dict[str, Any]:
    """Widgets whose v1beta1 has status and scales `.spec.count`; v1 (storage) has no status and scales
    `.spec.replicas`."""
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"count": {"type": "integer"}, "replicas": {"type": "integer"}}},
            "status": {"type": "object", "properties": {"count": {"type": "integer"}, "replicas": {"type": "integer"}}},
        },
    }
    beta = {
        "name": "v1beta1",
        "served": True,
        "storage": False,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {
            "status": {},
            "scale": {"specReplicasPath": ".spec.count", "statusReplicasPath": ".status.count"},
        },
    }
    v1 = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": copy.deepcopy(schema)},
        "subresources": {"scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
    }
    crd = widget_crd(group)
    crd["spec"]["versions"] = [beta, v1]
    return crd


async def test_each_version_serves_the_subresources_it_declares(api: httpx.AsyncClient, ns: str) -> None:
    group = f"vs{uuid.uuid4().hex[:8]}.example.com"
    assert (await api.post(CRDS, json=_counted_crd(group))).status_code == 201
    await established(api, f"widgets.{group}")
    beta, v1 = (f"/apis/{group}/{v}/namespaces/{ns}/widgets" for v in ("v1beta1", "v1"))
    discovered = {}
    for version in ("v1beta1", "v1"):
        listed = (await api.get(f"/apis/{group}/{version}")).json()["resources"]
        discovered[version] = sorted(r["name"] for r in listed)
    assert discovered == {
        "v1beta1": ["widgets", "widgets/scale", "widgets/status"],
        "v1": ["widgets", "widgets/scale"],
    }

    for version, subs in (("v1beta1", ["scale", "status"]), ("v1", ["scale"])):  # and so does OpenAPI
        paths = (await api.get(f"/openapi/v3/apis/{group}/{version}")).json()["paths"]
        item = f"/apis/{group}/{version}/namespaces/{{namespace}}/widgets/{{name}}/"
        assert sorted(p.removeprefix(item) for p in paths if p.startswith(item)) == subs

    # v1 has no status subresource: status is written with the object there, and kept from it through v1beta1
    both = {"count": 2, "replicas": 5}
    r = await api.post(v1, json={**widget(group, "v1", "a", **both), "status": {"count": 1, "replicas": 4}})
    assert r.status_code == 201 and r.json()["status"] == {"count": 1, "replicas": 4}, r.text
    r = await api.post(beta, json={**widget(group, "v1beta1", "b", **both), "status": {"count": 1}})
    assert r.status_code == 201 and "status" not in r.json(), r.text
    current = (await api.get(f"{v1}/a")).json()
    current["status"] = {"count": 9, "replicas": 9}
    assert (await api.put(f"{v1}/a", json=current)).json()["status"] == {"count": 9, "replicas": 9}
    current = (await api.get(f"{beta}/a")).json()
    current["status"] = {"count": 0}
    current["spec"]["count"] = 3
    r = await api.put(f"{beta}/a", json=current)
    assert r.status_code == 200 and r.json()["status"] == {"count": 9, "replicas": 9}, r.text
    assert (await api.get(f"{v1}/a/status")).status_code == 404
    current = (await api.get(f"{beta}/a/status")).json()
    current["status"] = {"count": 3, "replicas": 9}
    r = await api.put(f"{beta}/a/status", json=current)
    assert r.status_code == 200 and r.json()["status"] == {"count": 3, "replicas": 9}, r.text

    # each version scales by its own paths
    scales = {path: (await api.get(f"{path}/a/scale")).json() for path in (beta, v1)}
    assert {p: (s["spec"]["replicas"], s["status"]["replicas"]) for p, s in scales.items()} == {
        beta: (3, 3),
        v1: (5, 9),
    }
    scale = {**scales[beta], "spec": {"replicas": 7}}
    assert (await api.put(f"{beta}/a/scale", json=scale)).status_code == 200
    assert (await api.get(f"{v1}/a")).json()["spec"] == {"count": 7, "replicas": 5}
    r = await api.patch(f"{v1}/a/scale", json={"spec": {"replicas": 6}}, headers=MERGE)
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 6, r.text
    assert (await api.get(f"{v1}/a")).json()["spec"] == {"count": 7, "replicas": 6}
    await api.delete(f"{CRDS}/widgets.{group}")
