"""pods/<name>/binding: the Binding's uid and resourceVersion are preconditions on the pod (upstream's assignPod)."""

from __future__ import annotations

import httpx

from tests.integration.helpers import pod, pods_path


def binding(name: str, node: str, **meta: str) -> dict[str, object]:
    """A Binding of pod `name` to `node` with extra metadata (uid, resourceVersion)."""
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, **meta},
        "target": {"kind": "Node", "name": node},
    }


async def test_binding_for_a_recreated_pod_is_refused(api: httpx.AsyncClient, ns: str) -> None:
    old = (await api.post(pods_path(ns), json=pod("p"))).json()
    assert (await api.delete(pods_path(ns, "p"), params={"gracePeriodSeconds": "0"})).status_code == 200
    new = (await api.post(pods_path(ns), json=pod("p"))).json()
    r = await api.post(pods_path(ns, "p") + "/binding", json=binding("p", "n1", uid=old["metadata"]["uid"]))
    assert r.status_code == 409, r.text
    assert r.json()["message"] == (
        f'Operation cannot be fulfilled on pods "p": Precondition failed: UID in precondition: '
        f"{old['metadata']['uid']}, UID in object meta: {new['metadata']['uid']}"
    )
    assert not (await api.get(pods_path(ns, "p"))).json()["spec"].get("nodeName")
    r = await api.post(pods_path(ns, "p") + "/binding", json=binding("p", "n1", uid=new["metadata"]["uid"]))
    assert r.status_code == 201, r.text
    assert (await api.get(pods_path(ns, "p"))).json()["spec"]["nodeName"] == "n1"


async def test_binding_with_a_stale_resource_version_is_refused(api: httpx.AsyncClient, ns: str) -> None:
    created = (await api.post(pods_path(ns), json=pod("q"))).json()
    merge = {"content-type": "application/merge-patch+json"}
    patched = await api.patch(pods_path(ns, "q"), headers=merge, json={"metadata": {"labels": {"a": "b"}}})
    assert patched.status_code == 200
    stale = created["metadata"]["resourceVersion"]
    r = await api.post(pods_path(ns, "q") + "/binding", json=binding("q", "n1", resourceVersion=stale))
    assert r.status_code == 409 and "Precondition failed: ResourceVersion in precondition" in r.json()["message"]
    current = patched.json()["metadata"]["resourceVersion"]
    r = await api.post(pods_path(ns, "q") + "/binding", json=binding("q", "n1", resourceVersion=current))
    assert r.status_code == 201, r.text


async def test_binding_writes_only_what_upstreams_assign_pod_writes(api: httpx.AsyncClient, ns: str) -> None:
    created = (await api.post(pods_path(ns), json=pod("r"))).json()
    r = await api.post(pods_path(ns, "r") + "/binding", json=binding("other", "n1"))
    assert r.status_code == 400 and r.json()["message"] == "name in URL does not match name in Binding object"
    dry = await api.post(pods_path(ns, "r") + "/binding", params={"dryRun": "All"}, json=binding("r", "n1"))
    assert dry.status_code == 201, dry.text
    assert (await api.get(pods_path(ns, "r"))).json() == created
    body = binding("r", "n1")
    body["metadata"]["annotations"] = {"example.com/placed-by": "test"}  # type: ignore[index]
    r = await api.post(pods_path(ns, "r") + "/binding", json=body)
    assert r.status_code == 201, r.text
    bound = (await api.get(pods_path(ns, "r"))).json()
    assert bound["spec"]["nodeName"] == "n1"
    assert bound["metadata"]["annotations"] == {"example.com/placed-by": "test"}
    # a write straight through storage: no generation bump, no managedFields entry for the binding
    assert bound["metadata"]["generation"] == created["metadata"]["generation"]
    assert bound["metadata"].get("managedFields") == created["metadata"].get("managedFields")
    assert int(bound["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_binding_a_gated_pod_is_refused(api: httpx.AsyncClient, ns: str) -> None:
    assert (await api.post(pods_path(ns), json=pod("g", schedulingGates=[{"name": "wait"}]))).status_code == 201
    r = await api.post(pods_path(ns, "g") + "/binding", json=binding("g", "n1"))
    assert r.status_code == 409, r.text
    assert (
        r.json()["message"]
        == 'Operation cannot be fulfilled on pods/binding "g": pod g has non-empty .spec.schedulingGates'
    )
    assert not (await api.get(pods_path(ns, "g"))).json()["spec"].get("nodeName")
