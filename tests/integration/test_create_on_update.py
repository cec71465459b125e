"""PUT of a missing object: creates it for Leases, Endpoints and Events (AllowCreateOnUpdate), 404 otherwise."""

from __future__ import annotations

import httpx


async def test_put_creates_missing_lease(api: httpx.AsyncClient, ns: str) -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l1"},
        "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15},
    }
    r = await api.put(f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/l1", json=lease)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["holderIdentity"] == "me"
    r = await api.put(f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/l1", json=r.json())
    assert r.status_code == 200


async def test_put_creates_missing_endpoints_but_not_configmap(api: httpx.AsyncClient, ns: str) -> None:
    ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "svc"}, "subsets": []}
    r = await api.put(f"/api/v1/namespaces/{ns}/endpoints/svc", json=ep)
    assert r.status_code == 201, r.text
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    r = await api.put(f"/api/v1/namespaces/{ns}/configmaps/c", json=cm)
    assert r.status_code == 404
    assert r.json()["reason"] == "NotFound"


async def test_put_create_name_mismatch_is_bad_request(api: httpx.AsyncClient, ns: str) -> None:
    ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "other"}}
    r = await api.put(f"/api/v1/namespaces/{ns}/endpoints/svc2", json=ep)
    assert r.status_code == 400
    assert "does not match the name on the URL" in r.json()["message"]
    assert (await api.get(f"/api/v1/namespaces/{ns}/endpoints/svc2")).status_code == 404
