"""DELETE's propagationPolicy as the garbage collector needs it: finalizers added, swapped, removed."""

from __future__ import annotations

import httpx


def _cm(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}}


async def _delete(api: httpx.AsyncClient, path: str, **options: object) -> httpx.Response:
    return await api.request("DELETE", path, json={"kind": "DeleteOptions", "apiVersion": "v1", **options})


async def test_policy_finalizers_are_swapped_and_removed(api: httpx.AsyncClient, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps/p1"
    assert (await api.post(f"/api/v1/namespaces/{ns}/configmaps", json=_cm("p1"))).status_code == 201
    r = await _delete(api, path, propagationPolicy="Orphan")
    assert r.status_code == 200 and r.json()["metadata"]["finalizers"] == ["orphan"]
    r = await _delete(api, path, propagationPolicy="Foreground")
    assert r.json()["metadata"]["finalizers"] == ["foregroundDeletion"]
    r = await _delete(api, path)  # no policy: keeps what the earlier delete chose
    assert r.json()["metadata"]["finalizers"] == ["foregroundDeletion"]
    r = await _delete(api, path, propagationPolicy="Background")
    assert r.status_code == 200
    assert (await api.get(path)).status_code == 404


async def test_jobs_orphan_their_pods_by_default(api: httpx.AsyncClient, ns: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
            }
        },
    }
    path = f"/apis/batch/v1/namespaces/{ns}/jobs"
    assert (await api.post(path, json=job)).status_code == 201
    r = await api.delete(f"{path}/j")
    assert r.status_code == 200
    assert r.json()["metadata"]["finalizers"] == ["orphan"]
    assert r.json()["metadata"]["deletionTimestamp"]
