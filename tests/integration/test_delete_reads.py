"""A delete starts from the watch cache's copy of the object instead of reading etcd, and still acts on what
etcd holds: the write's compare on the copy's revision fails when the copy is stale, and the delete is worked
out again on the object read from etcd."""

from __future__ import annotations

import aetcd
import httpx
import orjson

from tests.integration.helpers import etcd_calls, pod, pods_path


async def _created(api: httpx.AsyncClient, ns: str, name: str) -> dict:
    r = await api.post(pods_path(ns), json=pod(name))
    assert r.status_code == 201, r.text
    assert (await api.get(pods_path(ns, name))).status_code == 200  # the watch cache has caught up
    return r.json()


async def test_a_delete_reads_no_object_from_etcd(api: httpx.AsyncClient, ns: str) -> None:
    await _created(api, ns, "cached")
    before = (await api.get("/metrics")).text
    r = await api.delete(pods_path(ns, "cached"))
    after = (await api.get("/metrics")).text
    assert r.status_code == 200, r.text
    assert etcd_calls(after, "get") == etcd_calls(before, "get")  # the object came from the watch cache
    assert etcd_calls(after, "delete") == etcd_calls(before, "delete") + 1
    assert (await api.get(pods_path(ns, "cached"))).status_code == 404


async def test_a_delete_acts_on_what_etcd_holds(api: httpx.AsyncClient, ns: str, raw_etcd: aetcd.Client) -> None:
    stored = await _created(api, ns, "moved")
    key = f"/registry/pods/{ns}/moved".encode()
    # changed straight in etcd: the cache's copy may be stale when the deletes below arrive
    changed = {**stored, "metadata": {**stored["metadata"], "uid": "other-uid", "labels": {"v": "2"}}}
    await raw_etcd.put(key, orjson.dumps(changed))
    stale = {"preconditions": {"uid": stored["metadata"]["uid"]}}
    r = await api.request("DELETE", pods_path(ns, "moved"), json=stale)
    assert r.status_code == 409, r.text
    assert "Precondition failed: UID in precondition" in r.json()["message"]
    r = await api.delete(pods_path(ns, "moved"))
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["uid"] == "other-uid" and r.json()["metadata"]["labels"] == {"v": "2"}
    assert (await raw_etcd.get(key)) is None


async def test_a_delete_of_an_object_gone_from_etcd_is_404(
    api: httpx.AsyncClient, ns: str, raw_etcd: aetcd.Client
) -> None:
    await _created(api, ns, "gone")
    await raw_etcd.delete(f"/registry/pods/{ns}/gone".encode())
    r = await api.delete(pods_path(ns, "gone"))
    assert r.status_code == 404 and r.json()["reason"] == "NotFound", r.text
