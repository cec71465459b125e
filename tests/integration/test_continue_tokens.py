"""Continue tokens are bound to the list they were issued for: forged or foreign tokens are 400, old ones 410."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.helpers import etcd_calls
from tinykube.procs import start_apiserver


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


async def _create(api: httpx.AsyncClient, ns: str, plural: str, body: dict) -> None:
    r = await api.post(f"/api/v1/namespaces/{ns}/{plural}", json=body)
    assert r.status_code == 201, r.text


@pytest.fixture
async def other_ns(api: httpx.AsyncClient) -> AsyncIterator[str]:
    """A second namespace with a secret of its own."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    r = await api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201
    await _create(api, name, "secrets", _secret("other", "b3RoZXI="))
    yield name


def _secret(name: str, value: str, labels: dict[str, str] | None = None) -> dict:
    meta: dict = {"name": name, "labels": labels or {}}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": {"password": value}}


@pytest.fixture
async def mixed(api: httpx.AsyncClient, ns: str) -> str:
    """Three secrets, three services and a configmap in one namespace."""
    for i in range(3):
        await _create(api, ns, "secrets", _secret(f"s{i}", "aHVudGVyMg==", {"app": "a" if i < 2 else "b"}))
        spec = {"ports": [{"port": 80}]}
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc{i}"}, "spec": spec}
        await _create(api, ns, "services", svc)
    await _create(api, ns, "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}})
    return ns


async def _token(api: httpx.AsyncClient, path: str, **params: str) -> str:
    r = await api.get(path, params={"limit": "1", **params})
    assert r.status_code == 200, r.text
    return r.json()["metadata"]["continue"]


def _assert_invalid(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["reason"] == "BadRequest"
    assert body["message"].startswith("invalid continue token: continue key is not valid"), body["message"]
    assert "items" not in body


async def test_a_token_continues_only_its_own_list(api: httpx.AsyncClient, mixed: str, other_ns: str) -> None:
    secrets = f"/api/v1/namespaces/{mixed}/secrets"
    token = await _token(api, secrets)
    # the token walks the rest of its own list
    r = await api.get(secrets, params={"limit": "5", "continue": token})
    assert r.status_code == 200 and [s["metadata"]["name"] for s in r.json()["items"]] == ["s1", "s2"]
    # another resource in the same namespace: no secret comes back
    for plural in ("services", "configmaps", "pods"):
        _assert_invalid(await api.get(f"/api/v1/namespaces/{mixed}/{plural}", params={"continue": token}))
    # the same resource in another namespace, or in all namespaces
    _assert_invalid(await api.get(f"/api/v1/namespaces/{other_ns}/secrets", params={"continue": token}))
    _assert_invalid(await api.get("/api/v1/secrets", params={"continue": token}))
    # a cluster-scoped resource
    _assert_invalid(await api.get("/api/v1/namespaces", params={"continue": token}))


async def test_a_token_is_bound_to_its_selectors(api: httpx.AsyncClient, mixed: str) -> None:
    secrets = f"/api/v1/namespaces/{mixed}/secrets"
    token = await _token(api, secrets, labelSelector="app=a")
    r = await api.get(secrets, params={"labelSelector": "app=a", "continue": token})
    assert r.status_code == 200 and [s["metadata"]["name"] for s in r.json()["items"]] == ["s1"]
    for params in (
        {},
        {"labelSelector": "app=b"},
        {"labelSelector": "app=a", "fieldSelector": "type=Opaque"},
    ):
        _assert_invalid(await api.get(secrets, params={**params, "continue": token}))
    token = await _token(api, secrets, fieldSelector="type=Opaque")
    _assert_invalid(await api.get(secrets, params={"fieldSelector": "type=kubernetes.io/tls", "continue": token}))
    r = await api.get(secrets, params={"fieldSelector": "type=Opaque", "continue": token})
    assert r.status_code == 200 and len(r.json()["items"]) == 2


async def test_forged_tokens_are_refused(api: httpx.AsyncClient, mixed: str) -> None:
    services = f"/api/v1/namespaces/{mixed}/services"
    real = _unb64(await _token(api, services))
    forged = [
        # the attack: an unsigned token whose start key is outside the services prefix
        {"v": "meta.k8s.io/v1", "rv": real["rv"], "start": f"/registry/secrets/{mixed}/"},
        # path traversal below the prefix (upstream's check), with the real signature
        {**real, "start": f"../secrets/{mixed}/s0"},
        # a signed token with its start key or revision changed
        {**real, "start": "svc0"},
        {**real, "rv": real["rv"] - 1},
        {**real, "sig": real["sig"][:-2] + ("AA" if real["sig"][-2:] != "AA" else "BB")},
        # malformed shapes
        {**real, "v": "meta.k8s.io/v2"},
        {**real, "rv": 0},
        {**real, "start": ""},
        [real],
    ]
    for token in forged:
        _assert_invalid(await api.get(services, params={"continue": _b64(json.dumps(token).encode())}))
    _assert_invalid(await api.get(services, params={"continue": "!!not base64"}))
    _assert_invalid(await api.get(services, params={"continue": _b64(b"{not json")}))


async def test_a_compacted_token_is_410(api: httpx.AsyncClient, etcd: str, ns: str) -> None:
    for i in range(2):
        await _create(api, ns, "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
    path = f"/api/v1/namespaces/{ns}/configmaps"
    token = await _token(api, path)
    await _create(api, ns, "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}})
    rev = int((await api.get(path)).json()["metadata"]["resourceVersion"])
    argv = ["etcdctl", "--endpoints", etcd, "compact", str(rev)]
    await asyncio.to_thread(subprocess.run, argv, check=True, capture_output=True, timeout=10)
    r = await api.get(path, params={"continue": token})
    assert r.status_code == 410 and r.json()["reason"] == "Expired", r.text


async def test_a_token_outlives_its_apiserver(api: httpx.AsyncClient, etcd: str, mixed: str, tmp_path) -> None:
    """The signing key lives in etcd: a second apiserver (or a restarted one) honours the first one's tokens."""
    secrets = f"/api/v1/namespaces/{mixed}/secrets"
    token = await _token(api, secrets)
    proc, url = await asyncio.to_thread(start_apiserver, tmp_path, etcd)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as other:
            r = await other.get(secrets, params={"continue": token})
            assert r.status_code == 200 and [s["metadata"]["name"] for s in r.json()["items"]] == ["s1", "s2"]
            _assert_invalid(await other.get(f"/api/v1/namespaces/{mixed}/services", params={"continue": token}))
    finally:
        proc.stop()


async def test_bad_resource_versions_are_400(api: httpx.AsyncClient, mixed: str) -> None:
    path = f"/api/v1/namespaces/{mixed}/configmaps"
    for params in ({"resourceVersion": "abc"}, {"resourceVersion": "-1"}, {"watch": "1", "resourceVersion": "abc"}):
        r = await api.get(path, params=params)
        assert r.status_code == 400, r.text
        assert r.json()["message"] == (
            f'invalid resource version: resourceVersion: Invalid value: "{params["resourceVersion"]}": '
            f'strconv.ParseUint: parsing "{params["resourceVersion"]}": invalid syntax'
        )
    r = await api.get(path + "/cm", params={"resourceVersion": "1x"})
    assert r.status_code == 400 and "invalid resource version" in r.json()["message"]
    r = await api.get(path, params={"resourceVersion": "99999999999999999999999"})
    assert r.status_code == 400 and "value out of range" in r.json()["message"]


def _named(listing: dict) -> list[tuple[str, str]]:
    """(name, data) of each item of a list."""
    return [(c["metadata"]["name"], json.dumps(c.get("data"))) for c in listing["items"]]


async def _configmaps(api: httpx.AsyncClient, ns: str, names: list[str]) -> str:
    """ConfigMaps of these names (data `v`: their index) in `ns`; the list's path."""
    for i, name in enumerate(names):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": str(i)}}
        await _create(api, ns, "configmaps", body)
    return f"/api/v1/namespaces/{ns}/configmaps"


async def _walk(api: httpx.AsyncClient, path: str, between=None) -> tuple[list[tuple[str, str]], set[str]]:
    """Every page of `path` one item at a time: (name, data) of each item, and the lists' resourceVersions;
    `between` runs after the first page."""
    page = (await api.get(path, params={"limit": "1"})).json()
    seen = _named(page)
    rvs = {page["metadata"]["resourceVersion"]}
    if between is not None:
        await between()
    while token := page["metadata"].get("continue"):
        r = await api.get(path, params={"limit": "1", "continue": token})
        assert r.status_code == 200, r.text
        page = r.json()
        seen += _named(page)
        rvs.add(page["metadata"]["resourceVersion"])
    return seen, rvs


async def test_pages_of_a_list_that_did_not_change_are_served_without_etcd(api: httpx.AsyncClient, ns: str) -> None:
    """As upstream's cache serves continuations from its snapshots: when no object of the list's kind changed
    since the first page, the next pages come from the watch cache, even while other kinds are written."""
    path = await _configmaps(api, ns, [f"c{i:02d}" for i in range(20)])
    full = _named((await api.get(path)).json())

    async def other_kinds() -> None:
        await _create(api, ns, "secrets", _secret("moved", "YQ=="))

    before = etcd_calls((await api.get("/metrics")).text, "list")
    seen, rvs = await _walk(api, path, other_kinds)
    after = etcd_calls((await api.get("/metrics")).text, "list")
    assert seen == full and len(rvs) == 1
    assert after - before < 5, f"{after - before} etcd list reads for 19 continuation pages"


async def test_pages_after_a_change_show_the_list_as_of_the_first_page(api: httpx.AsyncClient, ns: str) -> None:
    """An object deleted or changed after the first page still shows as it was; one created after does not."""
    path = await _configmaps(api, ns, ["c0", "c1", "c2", "c3"])
    full = _named((await api.get(path)).json())

    async def change() -> None:
        assert (await api.delete(f"{path}/c3")).status_code == 200
        r = await api.patch(
            f"{path}/c2", json={"data": {"v": "new"}}, headers={"content-type": "application/merge-patch+json"}
        )
        assert r.status_code == 200, r.text
        await _create(api, ns, "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1a"}})

    seen, rvs = await _walk(api, path, change)
    assert seen == full and len(rvs) == 1
