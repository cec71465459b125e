"""Node lifecycle: a node whose Lease stops is marked Unknown and tainted, its pods evicted after their toleration."""

from __future__ import annotations

import asyncio
import time

from controller_kit import controllers, eventually
from housekeeping_kit import delete_quietly, get_or_none, node_body, pod_body, renew_lease, set_pod_status, uniq

from client.rest import ApiClient

UNREACHABLE = "node.kubernetes.io/unreachable"


def _tolerating(name: str, node: str, **toleration: object) -> dict:
    tol = {"key": UNREACHABLE, "operator": "Exists", **toleration}
    return pod_body(name, nodeName=node, tolerations=[tol])


def _conditions(node: dict) -> dict[str, dict]:
    return {c["type"]: c for c in node["status"]["conditions"]}


async def _events_for(api: ApiClient, name: str, reason: str) -> list[dict]:
    items = (await api.list("events", "default"))["items"]
    return [e for e in items if e["involvedObject"].get("name") == name and e["reason"] == reason]


async def test_silent_node_goes_unknown_tainted_and_evicts(apiserver: str, ns: str) -> None:
    node = uniq("node")
    async with controllers(apiserver, "nodelifecycle", node_monitor_grace_period=2, pod_eviction_timeout=1) as ctx:
        api = ctx.api
        try:
            await api.create("nodes", node_body(node))
            await renew_lease(api, node)
            await api.create("pods", _tolerating("short", node, effect="NoExecute", tolerationSeconds=2), ns)
            await api.create("pods", _tolerating("forever", node, effect="NoExecute"), ns)
            await api.create("pods", _tolerating("untolerated", node, effect="NoSchedule"), ns)
            for p in ("short", "forever", "untolerated"):
                await set_pod_status(api, ns, p, "10.9.0.1", ready=True, node=node)

            # heartbeats through the Lease keep it Ready past the grace period
            end = time.monotonic() + 3
            while time.monotonic() < end:
                await renew_lease(api, node)
                await asyncio.sleep(0.4)
            cur = await api.get("nodes", node)
            assert _conditions(cur)["Ready"]["status"] == "True"
            assert not (cur.get("spec") or {}).get("taints")

            async def unknown() -> dict | None:
                n = await api.get("nodes", node)
                return n if _conditions(n)["Ready"]["status"] == "Unknown" else None

            cur = await eventually(unknown, 10, "Ready=Unknown")
            conds = _conditions(cur)
            for t in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
                assert conds[t]["status"] == "Unknown"
                assert conds[t]["reason"] == "NodeStatusUnknown"
                assert conds[t]["message"] == "Kubelet stopped posting node status."

            async def tainted() -> list | None:
                n = await api.get("nodes", node)
                return [t for t in (n.get("spec") or {}).get("taints") or [] if t["key"] == UNREACHABLE] or None

            taints = await eventually(tainted, 10, "unreachable taint")
            no_exec = [t for t in taints if t["effect"] == "NoExecute"]
            assert len(no_exec) == 1 and no_exec[0]["timeAdded"]

            async def not_ready() -> bool:
                pod = await api.get("pods", "forever", ns)
                return any(c["type"] == "Ready" and c["status"] == "False" for c in pod["status"]["conditions"])

            await eventually(not_ready, 10, "pods marked not Ready")

            async def evicted(name: str) -> bool:
                pod = await get_or_none(api, "pods", name, ns)
                return pod is None or bool(pod["metadata"].get("deletionTimestamp"))

            await eventually(lambda: evicted("untolerated"), 10, "untolerated pod evicted after the default timeout")
            await eventually(lambda: evicted("short"), 10, "pod evicted after its tolerationSeconds")
            (ev,) = await eventually(lambda: _events_for(api, node, "NodeNotReady"), 10, "NodeNotReady event")
            assert ev["message"] == f"Node {node} status is now: NodeNotReady"
            (reg,) = await eventually(lambda: _events_for(api, node, "RegisteredNode"), 10, "RegisteredNode event")
            assert reg["message"] == f"Node {node} event: Registered Node {node} in Controller"
            assert reg["source"]["component"] == "node-controller"
            forever = await api.get("pods", "forever", ns)
            assert not forever["metadata"].get("deletionTimestamp")

            # the kubelet comes back: heartbeat with Ready=True → taints removed
            await renew_lease(api, node)
            fresh = node_body(node)
            cur = await api.get("nodes", node)
            cur["status"] = fresh["status"]
            await api.update_status("nodes", cur)

            async def untainted() -> bool:
                n = await api.get("nodes", node)
                return not [t for t in (n.get("spec") or {}).get("taints") or [] if t["key"] == UNREACHABLE]

            await eventually(untainted, 10, "taint removed on recovery")
        finally:
            await delete_quietly(api, "nodes", node)
            await delete_quietly(api, "leases", node, "kube-node-lease")


async def test_not_ready_node_gets_not_ready_taint(apiserver: str) -> None:
    node = uniq("node")
    async with controllers(apiserver, "nodelifecycle", node_monitor_grace_period=30) as ctx:
        api = ctx.api
        try:
            await api.create("nodes", node_body(node, ready="False"))

            async def tainted() -> list | None:
                n = await api.get("nodes", node)
                keys = {(t["key"], t["effect"]) for t in (n.get("spec") or {}).get("taints") or []}
                return keys if ("node.kubernetes.io/not-ready", "NoExecute") in keys else None

            keys = await eventually(tainted, 10, "not-ready taint")
            assert (UNREACHABLE, "NoExecute") not in keys
        finally:
            await delete_quietly(api, "nodes", node)
