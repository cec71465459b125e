"""Pod GC: pods of deleted nodes and terminated pods over the threshold are deleted."""

from __future__ import annotations

from controller_kit import controllers, eventually
from housekeeping_kit import delete_quietly, get_or_none, node_body, pod_body, uniq


async def test_pods_of_deleted_node_are_removed(apiserver: str, ns: str) -> None:
    node = uniq("node")
    async with controllers(apiserver, "podgc", pod_gc_period=0.5, pod_gc_quarantine=0.5) as ctx:
        api = ctx.api
        try:
            await api.create("nodes", node_body(node))
            await api.create("pods", pod_body("bound", nodeName=node), ns)
            await api.create("pods", pod_body("elsewhere"), ns)
            stuck = await api.delete("pods", "bound", ns)
            assert stuck["metadata"]["deletionTimestamp"]  # bound to a live node: waits for a kubelet
            assert await get_or_none(api, "pods", "bound", ns) is not None
        finally:
            await delete_quietly(api, "nodes", node)

        async def gone() -> bool:
            return await get_or_none(api, "pods", "bound", ns) is None

        await eventually(gone, 10, "pod of the deleted node removed")
        assert await get_or_none(api, "pods", "elsewhere", ns) is not None


async def test_terminated_pods_over_threshold_oldest_first(apiserver: str, ns: str) -> None:
    prefix = uniq("done")
    async with controllers(apiserver, "podgc", pod_gc_period=0.5, terminated_pod_gc_threshold=1) as ctx:
        api = ctx.api
        names = [f"{prefix}-{i}" for i in range(3)]
        for name in names:
            await api.create("pods", pod_body(name, restartPolicy="Never"), ns)
            await api.patch("pods", name, {"status": {"phase": "Succeeded"}}, ns, subresource="status")

        async def oldest_gone() -> bool:
            return all([await get_or_none(api, "pods", n, ns) is None for n in names[:2]])

        await eventually(oldest_gone, 10, "oldest terminated pods deleted")
        assert await get_or_none(api, "pods", names[2], ns) is not None


async def test_terminating_pods_on_out_of_service_node_are_force_deleted(apiserver: str, ns: str) -> None:
    node = uniq("node")
    async with controllers(apiserver, "podgc", pod_gc_period=0.5) as ctx:
        api = ctx.api
        try:
            body = node_body(node, ready="False")
            body["spec"] = {"taints": [{"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"}]}
            await api.create("nodes", body)
            await api.create("pods", pod_body("stuck", nodeName=node), ns)
            await api.create("pods", pod_body("running", nodeName=node), ns)
            marked = await api.delete("pods", "stuck", ns)
            assert marked["metadata"]["deletionTimestamp"]

            async def gone() -> bool:
                return await get_or_none(api, "pods", "stuck", ns) is None

            await eventually(gone, 10, "terminating pod on out-of-service node force deleted")
            running = await api.get("pods", "running", ns)
            assert not running["metadata"].get("deletionTimestamp")
        finally:
            await delete_quietly(api, "nodes", node)
