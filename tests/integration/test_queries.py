"""Label and field selectors, limit/continue, resourceVersion rules for list and get."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.helpers import pod, pods_path


@pytest.fixture
async def labelled(api: httpx.AsyncClient, ns: str) -> str:
    """Five pods with varied labels."""
    for name, labels in [
        ("a", {"env": "prod", "tier": "web"}),
        ("b", {"env": "dev", "tier": "web"}),
        ("c", {"env": "prod"}),
        ("d", {"tier": "db"}),
        ("e", {}),
    ]:
        assert (await api.post(pods_path(ns), json=pod(name, labels))).status_code == 201
    return ns


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("env=prod", ["a", "c"]),
        ("env==prod", ["a", "c"]),
        ("env!=prod", ["b", "d", "e"]),
        ("env in (prod,dev)", ["a", "b", "c"]),
        ("env notin (prod)", ["b", "d", "e"]),
        ("tier", ["a", "b", "d"]),
        ("!tier", ["c", "e"]),
        ("env=prod,tier=web", ["a"]),
    ],
    ids=["eq", "eqeq", "neq", "in", "notin", "exists", "not-exists", "and"],
)
async def test_label_selectors(api: httpx.AsyncClient, labelled: str, selector: str, names: list[str]) -> None:
    r = await api.get(pods_path(labelled), params={"labelSelector": selector})
    assert [p["metadata"]["name"] for p in r.json()["items"]] == names


async def test_bad_label_selector_is_400(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.get(pods_path(ns), params={"labelSelector": "env in (a"})
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"


async def test_field_selectors(api: httpx.AsyncClient, labelled: str) -> None:
    await api.post(
        pods_path(labelled, "a") + "/binding",
        json={
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": "a"},
            "target": {"kind": "Node", "name": "n1"},
        },
    )
    r = await api.get(pods_path(labelled), params={"fieldSelector": "spec.nodeName=n1"})
    assert [p["metadata"]["name"] for p in r.json()["items"]] == ["a"]
    r = await api.get(pods_path(labelled), params={"fieldSelector": "metadata.name!=a,status.phase=Pending"})
    assert [p["metadata"]["name"] for p in r.json()["items"]] == ["b", "c", "d", "e"]
    r = await api.get("/api/v1/pods", params={"fieldSelector": f"metadata.namespace={labelled},metadata.name=c"})
    assert [p["metadata"]["name"] for p in r.json()["items"]] == ["c"]


async def test_unsupported_field_selector_is_400(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.get(pods_path(ns), params={"fieldSelector": "spec.bogus=x"})
    assert r.status_code == 400 and "spec.bogus" in r.json()["message"]


async def test_secret_type_field_selector(api: httpx.AsyncClient, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/secrets"
    await api.post(
        base, json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "o"}, "stringData": {"k": "v"}}
    )
    await api.post(
        base,
        json={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "t"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "", "tls.key": ""},
        },
    )
    r = await api.get(base, params={"fieldSelector": "type=Opaque"})
    items = r.json()["items"]
    assert [s["metadata"]["name"] for s in items] == ["o"] and items[0]["data"] == {"k": "dg=="}


async def test_limit_and_continue_walk_one_snapshot(api: httpx.AsyncClient, labelled: str) -> None:
    r = await api.get(pods_path(labelled), params={"limit": "2"})
    page = r.json()
    assert [p["metadata"]["name"] for p in page["items"]] == ["a", "b"]
    assert page["metadata"]["remainingItemCount"] == 3
    rv = page["metadata"]["resourceVersion"]
    await api.post(pods_path(labelled), json=pod("bb"))  # after the snapshot: must not appear
    names = [p["metadata"]["name"] for p in page["items"]]
    token = page["metadata"]["continue"]
    while token:
        page = (await api.get(pods_path(labelled), params={"limit": "2", "continue": token})).json()
        assert page["metadata"]["resourceVersion"] == rv
        names += [p["metadata"]["name"] for p in page["items"]]
        token = page["metadata"].get("continue")
    assert names == ["a", "b", "c", "d", "e"]


async def test_bad_continue_token_is_400(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.get(pods_path(ns), params={"limit": "1", "continue": "!!notbase64"})
    assert r.status_code == 400


async def test_list_reports_a_revision_and_exact_reads_history(api: httpx.AsyncClient, ns: str) -> None:
    await api.post(pods_path(ns), json=pod("h1"))
    rv = (await api.get(pods_path(ns))).json()["metadata"]["resourceVersion"]
    await api.post(pods_path(ns), json=pod("h2"))
    old = (await api.get(pods_path(ns), params={"resourceVersion": rv, "resourceVersionMatch": "Exact"})).json()
    assert [p["metadata"]["name"] for p in old["items"]] == ["h1"] and old["metadata"]["resourceVersion"] == rv
    now = (await api.get(pods_path(ns), params={"resourceVersion": rv, "resourceVersionMatch": "NotOlderThan"})).json()
    assert [p["metadata"]["name"] for p in now["items"]] == ["h1", "h2"]
    zero = (await api.get(pods_path(ns), params={"resourceVersion": "0"})).json()
    assert int(zero["metadata"]["resourceVersion"]) >= int(rv)


async def test_resource_version_match_without_rv_is_422(api: httpx.AsyncClient, ns: str) -> None:
    r = await api.get(pods_path(ns), params={"resourceVersionMatch": "Exact"})
    assert r.status_code == 422 and r.json()["reason"] == "Invalid"


async def test_list_across_namespaces(api: httpx.AsyncClient, labelled: str) -> None:
    items = (await api.get("/api/v1/pods", params={"labelSelector": "env=prod"})).json()["items"]
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in items} >= {(labelled, "a"), (labelled, "c")}
    assert (await api.get("/api/v1/pods")).json()["kind"] == "PodList"
