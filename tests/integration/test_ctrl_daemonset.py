"""DaemonSet controller against a real apiserver, with Nodes created over REST (no kubelet)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from controller_kit import controllers, eventually
from ctrl_workload_kit import owned_pods, patch_retry, set_pod_phase

from apimachinery.errors import StatusError
from client.rest import ApiClient

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def client(apiserver: str):
    async with ApiClient(apiserver) as api:
        yield api


@pytest.fixture
async def nodes(client: ApiClient):
    """Four nodes of our own (unique label value): two fit, one tainted, one unlabelled; deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    specs: dict[str, dict[str, Any]] = {
        f"ds-a-{tag}": {"labels": {"ds-test": tag}},
        f"ds-b-{tag}": {"labels": {"ds-test": tag}},
        f"ds-tainted-{tag}": {
            "labels": {"ds-test": tag},
            "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
        },
        f"ds-other-{tag}": {"labels": {"ds-test": "nope"}},
    }
    for name, s in specs.items():
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": s["labels"]},
            "spec": {"taints": s.get("taints", [])},
        }
        await client.create("nodes", body)
    yield tag, sorted(specs)
    for name in specs:
        try:
            await client.delete("nodes", name)
        except StatusError as e:
            if e.code != 404:
                raise


def daemonset(name: str, tag: str, image: str = "agent:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"nodeSelector": {"ds-test": tag}, "containers": [{"name": "c", "image": image}]},
            },
        },
    }


def pinned(pod: dict[str, Any]) -> str:
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    [term] = terms["nodeSelectorTerms"]
    [field] = term["matchFields"]
    assert (field["key"], field["operator"]) == ("metadata.name", "In")
    return field["values"][0]


async def test_one_pod_per_eligible_node_and_rolling_update(
    apiserver: str, client: ApiClient, ns: str, nodes: tuple[str, list[str]]
) -> None:
    tag, _ = nodes
    fit = {f"ds-a-{tag}", f"ds-b-{tag}"}
    async with controllers(apiserver, "daemonset"):
        ds = await client.create("daemonsets", daemonset("agent", tag), ns)
        uid = ds["metadata"]["uid"]

        async def placed():
            pods = await owned_pods(client, ns, uid, live=True)
            return pods if {pinned(p) for p in pods} == fit and len(pods) == 2 else None

        pods = await eventually(placed, what="one pod on each fitting node")
        p = pods[0]
        assert p["metadata"]["generateName"] == "agent-"
        assert "controller-revision-hash" in p["metadata"]["labels"]
        assert p["metadata"]["labels"]["pod-template-generation"] == "1"
        keys = {(t["key"], t["effect"]) for t in p["spec"]["tolerations"]}
        assert ("node.kubernetes.io/not-ready", "NoExecute") in keys
        assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
        old_hash = p["metadata"]["labels"]["controller-revision-hash"]
        for q in pods:
            await set_pod_phase(client, ns, q["metadata"]["name"], "Running", ready=True)

        async def ready_status():
            st = (await client.get("daemonsets", "agent", ns)).get("status") or {}
            return st if st.get("numberReady") == 2 and st.get("numberAvailable") == 2 else None

        st = await eventually(ready_status, what="status numberReady 2")
        assert st["desiredNumberScheduled"] == 2 and st["currentNumberScheduled"] == 2
        assert st["numberMisscheduled"] == 0 and st["updatedNumberScheduled"] == 2

        # roll: change the template; with maxUnavailable 1 only one node is without a ready pod at a time
        await patch_retry(
            client,
            "daemonsets",
            "agent",
            {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}},
            ns,
        )
        seen_unready_max = 0
        new_hash = None
        for _ in range(100):
            pods = await owned_pods(client, ns, uid, live=True)
            ready = [q for q in pods if (q.get("status") or {}).get("phase") == "Running"]
            seen_unready_max = max(seen_unready_max, 2 - len(ready))
            hashes = {q["metadata"]["labels"]["controller-revision-hash"] for q in pods}
            if len(pods) == 2 and len(ready) == 2 and old_hash not in hashes:
                new_hash = hashes.pop()
                break
            for q in pods:
                if (q.get("status") or {}).get("phase") != "Running":
                    await set_pod_phase(client, ns, q["metadata"]["name"], "Running", ready=True)
            await asyncio.sleep(0.1)  # poll interval while the controller works through the nodes
        assert new_hash and new_hash != old_hash, "rolling update did not finish"
        assert seen_unready_max <= 1
        for q in await owned_pods(client, ns, uid, live=True):
            assert q["spec"]["containers"][0]["image"] == "agent:2"
        revs = [
            r
            for r in (await client.list("controllerrevisions", ns))["items"]
            if r["metadata"]["ownerReferences"][0]["uid"] == uid
        ]
        assert {r["metadata"]["labels"]["controller-revision-hash"] for r in revs} == {old_hash, new_hash}
        assert {r["metadata"]["name"] for r in revs} == {f"agent-{old_hash}", f"agent-{new_hash}"}

        async def updated_status():
            st = (await client.get("daemonsets", "agent", ns)).get("status") or {}
            return st if st.get("updatedNumberScheduled") == 2 and st.get("numberReady") == 2 else None

        st = await eventually(updated_status, what="updated status")
        assert st["observedGeneration"] == 2


async def test_node_label_change_removes_pod(
    apiserver: str, client: ApiClient, ns: str, nodes: tuple[str, list[str]]
) -> None:
    tag, _ = nodes
    async with controllers(apiserver, "daemonset"):
        ds = await client.create("daemonsets", daemonset("mover", tag), ns)
        uid = ds["metadata"]["uid"]

        async def count(n: int):
            pods = await owned_pods(client, ns, uid, live=True)
            return pods if len(pods) == n else None

        await eventually(lambda: count(2), what="2 pods")
        await patch_retry(client, "nodes", f"ds-other-{tag}", {"metadata": {"labels": {"ds-test": tag}}})
        pods = await eventually(lambda: count(3), what="3 pods after labelling a node")
        assert f"ds-other-{tag}" in {pinned(p) for p in pods}
        await patch_retry(client, "nodes", f"ds-a-{tag}", {"metadata": {"labels": {"ds-test": "gone"}}})
        pods = await eventually(lambda: count(2), what="pod removed from the unlabelled node")
        assert f"ds-a-{tag}" not in {pinned(p) for p in pods}


async def test_surge_update_keeps_every_node_served(
    apiserver: str, client: ApiClient, ns: str, nodes: tuple[str, list[str]]
) -> None:
    tag, _ = nodes
    async with controllers(apiserver, "daemonset"):
        body = daemonset("surger", tag)
        body["spec"]["updateStrategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }
        ds = await client.create("daemonsets", body, ns)
        uid = ds["metadata"]["uid"]

        async def two():
            pods = await owned_pods(client, ns, uid, live=True)
            return pods if len(pods) == 2 else None

        pods = await eventually(two, what="2 pods")
        old_hash = pods[0]["metadata"]["labels"]["controller-revision-hash"]
        for q in pods:
            await set_pod_phase(client, ns, q["metadata"]["name"], "Running", ready=True)
        await eventually(
            lambda: _status_field(client, ns, "surger", "numberAvailable", 2), what="both pods available first"
        )
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}}
        await patch_retry(client, "daemonsets", "surger", patch, ns)
        most = 0
        for _ in range(150):
            pods = await owned_pods(client, ns, uid, live=True)
            most = max(most, len(pods))
            running = [q for q in pods if (q.get("status") or {}).get("phase") == "Running"]
            assert len(running) >= 2, "surge must never leave a node without a ready pod"
            hashes = {q["metadata"]["labels"]["controller-revision-hash"] for q in pods}
            if len(pods) == 2 and old_hash not in hashes and len(running) == 2:
                break
            for q in pods:
                if (q.get("status") or {}).get("phase") != "Running":
                    await set_pod_phase(client, ns, q["metadata"]["name"], "Running", ready=True)
            await asyncio.sleep(0.1)  # poll interval while the controller works through the nodes
        else:
            raise AssertionError("surge update did not finish")
        assert most == 3  # one node at a time ran an old and a new pod side by side


async def _status_field(client: ApiClient, ns: str, name: str, field: str, want: int) -> bool:
    st = (await client.get("daemonsets", name, ns)).get("status") or {}
    return st.get(field) == want
