"""ReplicaSet and ReplicationController controllers against the real apiserver (pods made Ready by
PATCHing their status, as there is no kubelet)."""

from __future__ import annotations

import httpx

from tests.integration.controller_kit import controllers, eventually
from tests.integration.rsdeploy_kit import (
    create,
    event_messages,
    events,
    get,
    is_ready,
    list_pods,
    make_ready,
    owner_uid,
    patch,
    replicaset,
    template,
)


def rs_path(ns: str, name: str = "") -> str:
    """URL path of the replicasets collection or one ReplicaSet."""
    return f"/apis/apps/v1/namespaces/{ns}/replicasets" + (f"/{name}" if name else "")


async def test_replicaset_creates_pods_and_adopts_orphan(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """An orphan matching the selector is adopted; the rest are created with a controller ownerReference."""
    orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "labels": {"app": "web"}}}
    orphan["spec"] = template({"app": "web"})["spec"]
    await create(api, f"/api/v1/namespaces/{ns}/pods", orphan)
    async with controllers(apiserver, "replicaset"):
        rs = await create(api, rs_path(ns), replicaset("web", 3, {"app": "web"}))
        uid = rs["metadata"]["uid"]

        async def owned() -> list | None:
            pods = await list_pods(api, ns)
            mine = [p for p in pods if owner_uid(p) == uid]
            return mine if len(pods) == 3 and len(mine) == 3 else None

        pods = await eventually(owned, what="3 owned pods")
        names = {p["metadata"]["name"] for p in pods}
        assert "orphan" in names
        for p in pods:
            ref = p["metadata"]["ownerReferences"][0]
            assert ref == {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
            if p["metadata"]["name"] != "orphan":
                assert p["metadata"]["generateName"] == "web-"

        for p in pods:
            await make_ready(api, ns, p)

        async def status_ok() -> dict | None:
            st = (await get(api, rs_path(ns, "web")))["status"]
            ok = st.get("readyReplicas") == 3 and st.get("availableReplicas") == 3 and st.get("replicas") == 3
            return st if ok and st.get("fullyLabeledReplicas") == 3 and st.get("observedGeneration") == 1 else None

        st = await eventually(status_ok, what="status 3/3")
        assert st["terminatingReplicas"] == 0  # 1.35: DeploymentReplicaSetTerminatingReplicas is on by default

        async def created_events() -> list | None:
            evs = [e for e in await events(api, ns, "web") if e["reason"] == "SuccessfulCreate"]
            return evs if len(evs) == 2 else None

        evs = await eventually(created_events, what="2 SuccessfulCreate events")
        assert all(e["message"].startswith("Created pod: web-") for e in evs)

        # A pod whose labels stop matching is released and replaced.
        victim = next(p for p in pods if p["metadata"]["name"] != "orphan")
        victim_path = f"/api/v1/namespaces/{ns}/pods/{victim['metadata']['name']}"
        await patch(api, victim_path, {"metadata": {"labels": {"app": "x"}}})

        async def released() -> bool:
            p = await get(api, victim_path)
            owned_now = [q for q in await list_pods(api, ns, "app=web") if owner_uid(q) == uid]
            return not p["metadata"].get("ownerReferences") and len(owned_now) == 3

        await eventually(released, what="released pod and a replacement")


async def test_replicaset_scale_down_deletes_not_ready_first(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """Scaling 4 → 2 with two Ready pods deletes the two that are not Ready."""
    async with controllers(apiserver, "replicaset"):
        await create(api, rs_path(ns), replicaset("sd", 4, {"app": "sd"}))

        async def four() -> list | None:
            pods = await list_pods(api, ns)
            return pods if len(pods) == 4 else None

        pods = await eventually(four, what="4 pods")
        ready = {p["metadata"]["name"] for p in pods[:2]}
        for p in pods[:2]:
            await make_ready(api, ns, p)
        await eventually(lambda: _status_field(api, ns, "sd", "readyReplicas", 2), what="2 ready in status")
        await patch(api, rs_path(ns, "sd"), {"spec": {"replicas": 2}})

        async def two() -> set | None:
            names = {p["metadata"]["name"] for p in await list_pods(api, ns)}
            return names if len(names) == 2 else None

        assert await eventually(two, what="2 pods left") == ready
        st = await eventually(lambda: _status_field(api, ns, "sd", "replicas", 2), what="status replicas 2")
        assert st["observedGeneration"] == 2
        want = {f"Deleted pod: {p['metadata']['name']}" for p in pods[2:]}
        deleted = await event_messages(api, ns, "sd", "SuccessfulDelete", lambda m: set(m) >= want)
        assert set(deleted) == want


async def _status_field(api: httpx.AsyncClient, ns: str, name: str, field: str, value: int) -> dict | None:
    st = (await get(api, rs_path(ns, name))).get("status") or {}
    return st if st.get(field, 0) == value else None


async def test_replicaset_min_ready_seconds(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """A Ready pod counts as available only after minReadySeconds; the controller requeues itself for it."""
    async with controllers(apiserver, "replicaset"):
        await create(api, rs_path(ns), replicaset("mr", 1, {"app": "mr"}, minReadySeconds=4))
        pods = await eventually(lambda: list_pods(api, ns), what="a pod")
        await make_ready(api, ns, pods[0])
        st = await eventually(lambda: _status_field(api, ns, "mr", "readyReplicas", 1), what="ready")
        assert st.get("availableReplicas", 0) == 0
        await eventually(lambda: _status_field(api, ns, "mr", "availableReplicas", 1), timeout=15, what="available")


async def test_replicationcontroller(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """An RC (map selector, v1) creates its pods, scales down, and reports status."""
    rc = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "rc"},
        "spec": {"replicas": 2, "selector": {"app": "rc"}, "template": template({"app": "rc"})},
    }
    path = f"/api/v1/namespaces/{ns}/replicationcontrollers"
    async with controllers(apiserver, "replicationcontroller"):
        created = await create(api, path, rc)

        async def two() -> list | None:
            pods = await list_pods(api, ns)
            return pods if len(pods) == 2 else None

        pods = await eventually(two, what="2 pods")
        for p in pods:
            ref = p["metadata"]["ownerReferences"][0]
            want = ("ReplicationController", "v1", created["metadata"]["uid"])
            assert (ref["kind"], ref["apiVersion"], ref["uid"]) == want
            await make_ready(api, ns, p)

        async def status(n: int) -> dict | None:
            st = (await get(api, f"{path}/rc")).get("status") or {}
            return st if st.get("replicas") == n and st.get("readyReplicas", 0) == n else None

        await eventually(lambda: status(2), what="rc status 2/2")
        await patch(api, f"{path}/rc", {"spec": {"replicas": 1}})
        await eventually(lambda: status(1), what="rc status 1/1")
        assert len(await list_pods(api, ns)) == 1
        assert all(is_ready(p) for p in await list_pods(api, ns))


async def test_terminating_pod_is_replaced_and_counted(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """A pod held in deletion by a finalizer no longer counts as a replica: it is replaced and reported as
    terminatingReplicas."""
    async with controllers(apiserver, "replicaset"):
        await create(api, rs_path(ns), replicaset("t", 1, {"app": "t"}))
        (first,) = await eventually(lambda: list_pods(api, ns), what="a pod")
        path = f"/api/v1/namespaces/{ns}/pods/{first['metadata']['name']}"
        await patch(api, path, {"metadata": {"finalizers": ["example.com/hold"]}})
        r = await api.delete(path)
        assert r.status_code == 200, r.text

        async def replaced() -> dict | None:
            pods = await list_pods(api, ns)
            st = (await get(api, rs_path(ns, "t"))).get("status") or {}
            ok = len(pods) == 2 and st.get("replicas") == 1 and st.get("terminatingReplicas") == 1
            return st if ok else None

        await eventually(replaced, what="a replacement, one terminating")
        await patch(api, path, {"metadata": {"finalizers": None}})
        await eventually(lambda: _status_field(api, ns, "t", "terminatingReplicas", 0), what="terminating gone")
        assert len(await list_pods(api, ns)) == 1
