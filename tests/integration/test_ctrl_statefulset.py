"""StatefulSet controller against a real apiserver: ordered creation, scale down, claims, rolling update."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from controller_kit import controllers, eventually
from ctrl_workload_kit import apply_manifest, owned_pods, patch_retry, set_pod_phase

from apimachinery.errors import StatusError
from client.rest import ApiClient


@pytest.fixture
async def client(apiserver: str):
    async with ApiClient(apiserver) as api:
        yield api


def statefulset(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": f"{name}-svc",
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "db:1"}]},
            },
            **spec,
        },
    }


async def names(client: ApiClient, ns: str, uid: str) -> list[str]:
    return [p["metadata"]["name"] for p in await owned_pods(client, ns, uid, live=True)]


async def test_ordered_ready_scale_up_and_down(apiserver: str, client: ApiClient, ns: str) -> None:
    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    async with controllers(apiserver, "statefulset"):
        sts = await client.create("statefulsets", statefulset("db", 3, volumeClaimTemplates=[claim]), ns)
        uid = sts["metadata"]["uid"]

        async def exactly(want: list[str]):
            got = await names(client, ns, uid)
            return got if got == want else None

        await eventually(lambda: exactly(["db-0"]), what="db-0 first")
        pod = await client.get("pods", "db-0", ns)
        assert pod["spec"]["hostname"] == "db-0" and pod["spec"]["subdomain"] == "db-svc"
        labels = pod["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == "db-0"
        assert labels["apps.kubernetes.io/pod-index"] == "0"
        assert labels["controller-revision-hash"].startswith("db-")
        assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in pod["spec"]["volumes"]
        pvc = await client.get("persistentvolumeclaims", "data-db-0", ns)
        assert pvc["metadata"]["labels"]["app"] == "db"

        # db-1 waits until db-0 is Running and Ready
        await set_pod_phase(client, ns, "db-0", "Running", ready=False)
        await eventually(lambda: client.get("pods", "db-0", ns), what="db-0")
        assert await names(client, ns, uid) == ["db-0"]
        await set_pod_phase(client, ns, "db-0", "Running", ready=True)
        await eventually(lambda: exactly(["db-0", "db-1"]), what="db-1 after db-0 is ready")
        await set_pod_phase(client, ns, "db-1", "Running", ready=True)
        await eventually(lambda: exactly(["db-0", "db-1", "db-2"]), what="db-2 after db-1 is ready")
        await set_pod_phase(client, ns, "db-2", "Running", ready=True)

        async def status_ready():
            st = (await client.get("statefulsets", "db", ns)).get("status") or {}
            return st if st.get("readyReplicas") == 3 else None

        st = await eventually(status_ready, what="readyReplicas 3")
        assert st["replicas"] == 3 and st["currentReplicas"] == 3 and st["updatedReplicas"] == 3
        assert st["currentRevision"] == st["updateRevision"] == labels["controller-revision-hash"]
        assert st["availableReplicas"] == 3 and st["collisionCount"] == 0

        # scale down: the highest ordinal goes first, one at a time
        await patch_retry(client, "statefulsets", "db", {"spec": {"replicas": 1}}, ns)
        await eventually(lambda: exactly(["db-0"]), what="scale down to db-0")

        async def delete_order():
            evs = (await client.list("events", ns))["items"]
            evs = sorted((e for e in evs if e["reason"] == "SuccessfulDelete"), key=lambda e: e["metadata"]["name"])
            return [e["message"] for e in evs] if len(evs) == 2 else None

        assert await eventually(delete_order, what="two delete events") == [
            "delete Pod db-2 in StatefulSet db successful",
            "delete Pod db-1 in StatefulSet db successful",
        ]
        # claims are retained
        await client.get("persistentvolumeclaims", "data-db-2", ns)


async def test_parallel_and_rolling_update(apiserver: str, client: ApiClient, ns: str) -> None:
    async with controllers(apiserver, "statefulset"):
        sts = await client.create("statefulsets", statefulset("web", 3, podManagementPolicy="Parallel"), ns)
        uid = sts["metadata"]["uid"]

        async def all_three():
            got = await owned_pods(client, ns, uid, live=True)
            return got if len(got) == 3 else None

        pods = await eventually(all_three, what="3 pods at once")
        old_rev = pods[0]["metadata"]["labels"]["controller-revision-hash"]
        for p in pods:
            await set_pod_phase(client, ns, p["metadata"]["name"], "Running", ready=True)
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "db:2"}]}}}}
        await patch_retry(client, "statefulsets", "web", patch, ns)

        order: list[str] = []

        async def rolled():
            got = await owned_pods(client, ns, uid)
            for p in got:
                name = p["metadata"]["name"]
                rev = p["metadata"]["labels"]["controller-revision-hash"]
                if rev != old_rev and (p.get("status") or {}).get("phase") != "Running":
                    order.append(name)
                    await set_pod_phase(client, ns, name, "Running", ready=True)
            live = [p for p in got if not p["metadata"].get("deletionTimestamp")]
            revs = {p["metadata"]["labels"]["controller-revision-hash"] for p in live}
            return len(live) == 3 and old_rev not in revs

        await eventually(rolled, timeout=30, what="rolling update to finish")
        assert order == ["web-2", "web-1", "web-0"]

        async def status_done():
            st = (await client.get("statefulsets", "web", ns)).get("status") or {}
            return (
                st if st.get("updatedReplicas") == 3 and st.get("currentRevision") == st.get("updateRevision") else None
            )

        st = await eventually(status_done, what="currentRevision = updateRevision")
        assert st["updateRevision"] != old_rev


async def test_daemon_and_stateful_example_manifest(apiserver: str, client: ApiClient, ns: str) -> None:
    node = f"cp-{uuid.uuid4().hex[:8]}"
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node, "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
    }
    await client.create("nodes", body)
    path = Path(__file__).parents[2] / "examples" / "daemon-and-stateful.yaml"
    try:
        async with controllers(apiserver, "daemonset,statefulset"):
            created = {(o["kind"], o["metadata"]["name"]): o for o in await apply_manifest(client, str(path), ns)}
            ds_uid = created[("DaemonSet", "log-collector")]["metadata"]["uid"]

            async def on_our_node():
                pods = await owned_pods(client, ns, ds_uid, live=True)
                return [p for p in pods if pinned_node(p) == node]

            [pod] = await eventually(on_our_node, what="log-collector pod on the tainted control-plane node")
            assert pod["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"

            sts_uid = created[("StatefulSet", "db")]["metadata"]["uid"]
            for i in range(3):

                async def next_pod(i: int = i):
                    got = await names(client, ns, sts_uid)
                    return got if got == [f"db-{k}" for k in range(i + 1)] else None

                await eventually(next_pod, what=f"db-{i}")
                p = await client.get("pods", f"db-{i}", ns)
                assert p["spec"]["hostname"] == f"db-{i}" and p["spec"]["subdomain"] == "db"
                await set_pod_phase(client, ns, f"db-{i}", "Running", ready=True)

            async def ready3():
                st = (await client.get("statefulsets", "db", ns)).get("status") or {}
                return st.get("readyReplicas") == 3

            await eventually(ready3, what="db readyReplicas 3")
    finally:
        await client.delete("nodes", node)


def pinned_node(pod: dict[str, Any]) -> str | None:
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return terms["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]


async def test_on_delete_and_partition(apiserver: str, client: ApiClient, ns: str) -> None:
    async with controllers(apiserver, "statefulset"):
        sts = await client.create(
            "statefulsets",
            statefulset("od", 2, podManagementPolicy="Parallel", updateStrategy={"type": "OnDelete"}),
            ns,
        )
        uid = sts["metadata"]["uid"]

        async def both():
            got = await owned_pods(client, ns, uid, live=True)
            return got if len(got) == 2 else None

        pods = await eventually(both, what="2 pods")
        old_rev = pods[0]["metadata"]["labels"]["controller-revision-hash"]
        for p in pods:
            await set_pod_phase(client, ns, p["metadata"]["name"], "Running", ready=True)
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "db:2"}]}}}}
        await patch_retry(client, "statefulsets", "od", patch, ns)

        async def update_revision():
            st = (await client.get("statefulsets", "od", ns)).get("status") or {}
            return st if st.get("updateRevision") and st["updateRevision"] != old_rev else None

        st = await eventually(update_revision, what="a new updateRevision")
        assert st["currentRevision"] == old_rev
        # OnDelete: nothing is replaced until a pod is deleted by hand
        assert {p["metadata"]["labels"]["controller-revision-hash"] for p in await owned_pods(client, ns, uid)} == {
            old_rev
        }
        await client.delete("pods", "od-1", ns)

        async def recreated():
            try:
                p = await client.get("pods", "od-1", ns)
            except StatusError as e:
                if e.code == 404:
                    return None
                raise
            rev = p["metadata"]["labels"]["controller-revision-hash"]
            return p if rev == st["updateRevision"] else None

        p = await eventually(recreated, what="od-1 recreated at the update revision")
        assert p["spec"]["containers"][0]["image"] == "db:2"
        assert (await client.get("pods", "od-0", ns))["metadata"]["labels"]["controller-revision-hash"] == old_rev


async def test_rolling_update_respects_partition(apiserver: str, client: ApiClient, ns: str) -> None:
    async with controllers(apiserver, "statefulset"):
        spec = {
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
        }
        sts = await client.create("statefulsets", statefulset("pt", 2, **spec), ns)
        uid = sts["metadata"]["uid"]

        async def both():
            got = await owned_pods(client, ns, uid, live=True)
            return got if len(got) == 2 else None

        pods = await eventually(both, what="2 pods")
        old_rev = pods[0]["metadata"]["labels"]["controller-revision-hash"]
        for p in pods:
            await set_pod_phase(client, ns, p["metadata"]["name"], "Running", ready=True)
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "db:2"}]}}}}
        await patch_retry(client, "statefulsets", "pt", patch, ns)

        async def pt1_updated():
            try:
                p = await client.get("pods", "pt-1", ns)
            except StatusError as e:
                if e.code == 404:
                    return None
                raise
            return p if p["metadata"]["labels"]["controller-revision-hash"] != old_rev else None

        await eventually(pt1_updated, what="pt-1 (>= partition) updated")
        await set_pod_phase(client, ns, "pt-1", "Running", ready=True)

        async def status_partial():
            st = (await client.get("statefulsets", "pt", ns)).get("status") or {}
            return st if st.get("updatedReplicas") == 1 and st.get("readyReplicas") == 2 else None

        st = await eventually(status_partial, what="1 updated replica")
        assert st["currentRevision"] == old_rev and st["currentReplicas"] == 1
        assert (await client.get("pods", "pt-0", ns))["metadata"]["labels"]["controller-revision-hash"] == old_rev
