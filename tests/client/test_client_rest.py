"""Integration tests for client.rest against the real apiserver: CRUD, patches, errors, paging."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from apimachinery.errors import StatusError
from client.request import DeleteOptions, PatchType, Preconditions, Selectors
from client.rest import ApiClient


def cm(name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


def pod(name: str, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_create_get_update_delete(kube: ApiClient, ns: str) -> None:
    created = await kube.create("configmaps", cm("a", {"k": "v1"}), ns)
    assert created["metadata"]["namespace"] == ns and created["metadata"]["uid"]
    got = await kube.get("configmaps", "a", ns)
    assert got["data"] == {"k": "v1"} and got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    got["data"]["k"] = "v2"
    updated = await kube.update("cm", got)
    assert updated["data"] == {"k": "v2"}
    assert int(updated["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])
    await kube.delete("configmaps", "a", ns)
    with pytest.raises(StatusError) as e:
        await kube.get("configmaps", "a", ns)
    assert e.value.code == 404


async def test_cluster_scoped_and_namespace_from_object(kube: ApiClient, ns: str) -> None:
    namespace = await kube.get("namespaces", ns)
    assert namespace["metadata"]["name"] == ns
    body = cm("from-body")
    body["metadata"]["namespace"] = ns
    assert (await kube.create("configmaps", body))["metadata"]["namespace"] == ns


async def test_patch_flavours(kube: ApiClient, ns: str) -> None:
    await kube.create("configmaps", cm("p", {"a": "1", "b": "2"}), ns)
    merged = await kube.patch("configmaps", "p", {"data": {"a": None, "c": "3"}}, ns)
    assert merged["data"] == {"b": "2", "c": "3"}
    strategic = await kube.patch(
        "configmaps", "p", {"metadata": {"labels": {"x": "y"}}}, ns, patch_type=PatchType.STRATEGIC
    )
    assert strategic["metadata"]["labels"] == {"x": "y"}
    jsonpatch = [{"op": "replace", "path": "/data/b", "value": "two"}]
    assert (await kube.patch("configmaps", "p", jsonpatch, ns, patch_type=PatchType.JSON))["data"]["b"] == "two"
    applied = await kube.patch(
        "configmaps",
        "p",
        cm("p", {"applied": "yes"}),
        ns,
        patch_type=PatchType.APPLY,
        field_manager="client-test",
        force=True,
    )
    assert applied["data"]["applied"] == "yes"


async def test_apply_requires_a_field_manager(kube: ApiClient, ns: str) -> None:
    with pytest.raises(ValueError, match="field_manager"):
        await kube.patch("configmaps", "x", {}, ns, patch_type=PatchType.APPLY)


async def test_update_status_keeps_spec(kube: ApiClient, ns: str) -> None:
    created = await kube.create("pods", pod("s"), ns)
    created["status"] = {"phase": "Running"}
    created["spec"]["activeDeadlineSeconds"] = 30  # ignored by /status
    after = await kube.update_status("pods", created)
    assert after["status"]["phase"] == "Running"
    assert "activeDeadlineSeconds" not in after["spec"]


async def test_not_found_is_a_404_status_error(kube: ApiClient, ns: str) -> None:
    with pytest.raises(StatusError) as e:
        await kube.get("configmaps", "missing", ns)
    assert (e.value.code, e.value.reason) == (404, "NotFound")
    assert e.value.details == {"name": "missing", "kind": "configmaps"}
    assert e.value.message == 'configmaps "missing" not found'


async def test_already_exists_is_409(kube: ApiClient, ns: str) -> None:
    await kube.create("configmaps", cm("dup"), ns)
    with pytest.raises(StatusError) as e:
        await kube.create("configmaps", cm("dup"), ns)
    assert (e.value.code, e.value.reason) == (409, "AlreadyExists")


async def test_stale_update_is_409_conflict(kube: ApiClient, ns: str) -> None:
    first = await kube.create("configmaps", cm("c", {"n": "0"}), ns)
    await kube.update("configmaps", {**first, "data": {"n": "1"}})
    with pytest.raises(StatusError) as e:
        await kube.update("configmaps", {**first, "data": {"n": "2"}})
    assert (e.value.code, e.value.reason) == (409, "Conflict")


async def test_invalid_object_is_422_with_causes(kube: ApiClient, ns: str) -> None:
    with pytest.raises(StatusError) as e:
        await kube.create("configmaps", cm("Not_Valid"), ns)
    assert (e.value.code, e.value.reason) == (422, "Invalid")
    assert e.value.details["causes"][0]["field"] == "metadata.name"


async def test_delete_preconditions(kube: ApiClient, ns: str) -> None:
    created = await kube.create("configmaps", cm("pre"), ns)
    wrong = DeleteOptions(preconditions=Preconditions(uid=str(uuid.uuid4())))
    with pytest.raises(StatusError) as e:
        await kube.delete("configmaps", "pre", ns, options=wrong)
    assert e.value.code == 409 and "Precondition failed: UID" in e.value.message
    stale = DeleteOptions(preconditions=Preconditions(resource_version="1"))
    with pytest.raises(StatusError):
        await kube.delete("configmaps", "pre", ns, options=stale)
    m = created["metadata"]
    right = DeleteOptions(preconditions=Preconditions(uid=m["uid"], resource_version=m["resourceVersion"]))
    await kube.delete("configmaps", "pre", ns, options=right)
    with pytest.raises(StatusError, match="not found"):
        await kube.get("configmaps", "pre", ns)


async def test_delete_orphan_policy_and_dry_run(kube: ApiClient, ns: str) -> None:
    await kube.create("configmaps", cm("orphan"), ns)
    dry = await kube.delete("configmaps", "orphan", ns, options=DeleteOptions(dry_run=True))
    assert dry["metadata"]["name"] == "orphan"
    await kube.get("configmaps", "orphan", ns)  # still there
    marked = await kube.delete("configmaps", "orphan", ns, options=DeleteOptions(propagation_policy="Orphan"))
    assert marked["metadata"]["finalizers"] == ["orphan"] and marked["metadata"]["deletionTimestamp"]
    await kube.patch("configmaps", "orphan", {"metadata": {"finalizers": None}}, ns)
    with pytest.raises(StatusError, match="not found"):
        await kube.get("configmaps", "orphan", ns)


async def test_delete_bad_propagation_policy_is_422(kube: ApiClient, ns: str) -> None:
    await kube.create("configmaps", cm("pp"), ns)
    with pytest.raises(StatusError) as e:
        await kube.delete("configmaps", "pp", ns, options=DeleteOptions(propagation_policy="Sideways"))
    assert e.value.code == 422


async def test_pod_grace_period(kube: ApiClient, ns: str) -> None:
    node = f"node-{ns}"
    await kube.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
    try:
        await kube.create("pods", pod("g", node=node), ns)
        marked = await kube.delete("pods", "g", ns, options=DeleteOptions(grace_period_seconds=30))
        assert marked["metadata"]["deletionGracePeriodSeconds"] == 30 and marked["metadata"]["deletionTimestamp"]
        await kube.delete("pods", "g", ns, options=DeleteOptions(grace_period_seconds=0))
        with pytest.raises(StatusError, match="not found"):
            await kube.get("pods", "g", ns)
    finally:
        await kube.delete("nodes", node)


async def test_paging_and_selectors(kube: ApiClient, ns: str) -> None:
    for i in range(7):
        await kube.create("configmaps", cm(f"page-{i}", labels={"set": "paged"}), ns)
    await kube.create("configmaps", cm("other", labels={"set": "other"}), ns)
    paged = Selectors.of(labels={"set": "paged"})
    first = await kube.list("configmaps", ns, selectors=paged, limit=3)
    assert len(first["items"]) == 3 and first["metadata"]["continue"]
    assert first["metadata"]["remainingItemCount"] == 4
    pages = [p async for p in kube.pages("configmaps", ns, selectors=paged, page_size=3)]
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert {p["metadata"]["resourceVersion"] for p in pages} == {first["metadata"]["resourceVersion"]}
    everything = await kube.list_all("configmaps", ns, selectors=paged, page_size=3)
    assert sorted(i["metadata"]["name"] for i in everything["items"]) == [f"page-{i}" for i in range(7)]
    assert "continue" not in everything["metadata"] and everything["kind"] == "ConfigMapList"
    by_name = await kube.list("configmaps", ns, selectors=Selectors.of(fields={"metadata.name": "other"}))
    assert [i["metadata"]["name"] for i in by_name["items"]] == ["other"]
    not_in = await kube.list("configmaps", ns, selectors=Selectors.of(labels="set notin (paged)"))
    assert [i["metadata"]["name"] for i in not_in["items"]] == ["other"]


async def test_bad_selector_is_400(kube: ApiClient, ns: str) -> None:
    with pytest.raises(StatusError) as e:
        await kube.list("pods", ns, selectors=Selectors.of(fields="spec.bogus=1"))
    assert (e.value.code, e.value.reason) == (400, "BadRequest")


async def test_delete_collection(kube: ApiClient, ns: str) -> None:
    for i in range(3):
        await kube.create("configmaps", cm(f"dc-{i}", labels={"batch": "x"}), ns)
    await kube.create("configmaps", cm("keep"), ns)
    await kube.delete_collection("configmaps", ns, selectors=Selectors.of(labels={"batch": "x"}))
    left = await kube.list("configmaps", ns)
    assert [i["metadata"]["name"] for i in left["items"]] == ["keep"]


async def test_raw_request(kube: ApiClient) -> None:
    resp = await kube.request("GET", "/version")
    assert resp.status_code == 200 and "gitVersion" in resp.json()
    with pytest.raises(StatusError) as e:
        await kube.request("GET", "/apis/nope.example.com/v1/things")
    assert e.value.code == 404
