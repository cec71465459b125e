"""Namespace controller against the real apiserver: a deleted namespace is emptied and disappears."""

from __future__ import annotations

from controller_kit import controllers, eventually
from housekeeping_kit import configmap_body, get_or_none, pod_body, uniq

from client.rest import ApiClient


async def _new_namespace(api: ApiClient) -> str:
    name = uniq("nsdel")
    await api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


async def test_namespace_deletion_empties_and_removes_it(apiserver: str) -> None:
    async with controllers(apiserver, "namespace") as ctx:
        api = ctx.api
        ns = await _new_namespace(api)
        await api.create("pods", pod_body("p1"), ns)
        await api.create("configmaps", configmap_body("cm1"), ns)
        await api.create("serviceaccounts", {"metadata": {"name": "sa1"}}, ns)
        marked = await api.delete("namespaces", ns)
        assert marked["status"]["phase"] == "Terminating"

        async def gone() -> bool:
            return await get_or_none(api, "namespaces", ns) is None

        await eventually(gone, 20, "namespace removed")
        assert not (await api.list("configmaps", ns))["items"]
        assert not (await api.list("pods", ns))["items"]


async def test_namespace_reports_remaining_finalizers(apiserver: str) -> None:
    async with controllers(apiserver, "namespace") as ctx:
        api = ctx.api
        ns = await _new_namespace(api)
        await api.create("configmaps", configmap_body("held", finalizers=["example.com/hold"]), ns)
        await api.delete("namespaces", ns)

        async def conditions() -> dict | None:
            cur = await get_or_none(api, "namespaces", ns)
            conds = {c["type"]: c for c in ((cur or {}).get("status") or {}).get("conditions") or []}
            return conds if "NamespaceFinalizersRemaining" in conds else None

        conds = await eventually(conditions, 15, "namespace conditions")
        assert conds["NamespaceDeletionDiscoveryFailure"]["status"] == "False"
        assert conds["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"
        assert conds["NamespaceDeletionContentFailure"]["message"] == (
            "All content successfully deleted, may be waiting on finalization"
        )
        assert conds["NamespaceContentRemaining"]["status"] == "True"
        assert conds["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
        assert conds["NamespaceContentRemaining"]["message"] == (
            "Some resources are remaining: configmaps. has 1 resource instances"
        )
        assert conds["NamespaceFinalizersRemaining"]["message"] == (
            "Some finalizers are remaining: example.com/hold in 1 resource instances"
        )
        cur = await api.get("namespaces", ns)
        assert cur["spec"]["finalizers"] == ["kubernetes"]

        await api.patch("configmaps", "held", {"metadata": {"finalizers": None}}, ns)

        async def gone() -> bool:
            return await get_or_none(api, "namespaces", ns) is None

        await eventually(gone, 20, "namespace removed once its content is gone")
