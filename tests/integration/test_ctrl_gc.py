"""Garbage collector against the real apiserver: background, orphan and foreground cascades."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from controller_kit import controllers, eventually
from housekeeping_kit import (
    configmap_body,
    delete_quietly,
    get_or_none,
    node_body,
    owner_ref,
    pod_body,
    replicaset_body,
    uniq,
)

from client.request import DeleteOptions
from client.rest import ApiClient


async def _owner_with_dependents(api: ApiClient, ns: str, n: int = 2) -> tuple[dict, list[str], list[str]]:
    rs = await api.create("replicasets", replicaset_body(uniq("rs")), ns)
    ref = owner_ref(rs)
    pods = [(await api.create("pods", pod_body(uniq("p"), owners=[ref]), ns))["metadata"]["name"] for _ in range(n)]
    cms = [(await api.create("configmaps", configmap_body(uniq("cm"), [ref]), ns))["metadata"]["name"]]
    return rs, pods, cms


async def test_background_cascade_deletes_dependents(apiserver: str, ns: str) -> None:
    async with controllers(apiserver, "garbagecollector") as ctx:
        api = ctx.api
        rs, pods, cms = await _owner_with_dependents(api, ns)
        await api.delete(
            "replicasets", rs["metadata"]["name"], ns, options=DeleteOptions(propagation_policy="Background")
        )

        async def all_gone() -> bool:
            left = [p for p in pods if await get_or_none(api, "pods", p, ns)]
            left += [c for c in cms if await get_or_none(api, "configmaps", c, ns)]
            return not left

        await eventually(all_gone, 15, "dependents deleted")


async def test_dangling_owner_at_creation_and_partial_owners(apiserver: str, ns: str) -> None:
    async with controllers(apiserver, "garbagecollector") as ctx:
        api = ctx.api
        alive = await api.create("configmaps", configmap_body(uniq("alive")), ns)
        ghost = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "ghost",
            "uid": "00000000-0000-0000-0000-000000000001",
        }
        lone = await api.create("configmaps", configmap_body(uniq("lone"), [ghost]), ns)
        both = await api.create("configmaps", configmap_body(uniq("both"), [ghost, owner_ref(alive)]), ns)

        async def lone_gone() -> bool:
            return await get_or_none(api, "configmaps", lone["metadata"]["name"], ns) is None

        await eventually(lone_gone, 15, "object with only a missing owner deleted")

        async def ref_pruned() -> bool:
            cur = await get_or_none(api, "configmaps", both["metadata"]["name"], ns)
            return cur is not None and [r["uid"] for r in cur["metadata"]["ownerReferences"]] == [
                alive["metadata"]["uid"]
            ]

        await eventually(ref_pruned, 15, "dangling ownerReference removed, object kept")


async def test_orphan_keeps_dependents_and_strips_references(apiserver: str, ns: str) -> None:
    async with controllers(apiserver, "garbagecollector") as ctx:
        api = ctx.api
        rs, pods, cms = await _owner_with_dependents(api, ns)
        name = rs["metadata"]["name"]
        marked = await api.delete("replicasets", name, ns, options=DeleteOptions(propagation_policy="Orphan"))
        assert "orphan" in marked["metadata"]["finalizers"]

        async def owner_gone() -> bool:
            return await get_or_none(api, "replicasets", name, ns) is None

        await eventually(owner_gone, 15, "owner deleted after orphaning")
        for p in pods:
            cur = await api.get("pods", p, ns)
            assert not cur["metadata"].get("ownerReferences")
        for c in cms:
            cur = await api.get("configmaps", c, ns)
            assert not cur["metadata"].get("ownerReferences")


async def test_foreground_waits_for_blocking_dependents(apiserver: str, ns: str) -> None:
    async with controllers(apiserver, "garbagecollector") as ctx:
        api = ctx.api
        rs = await api.create("replicasets", replicaset_body(uniq("rs")), ns)
        name = rs["metadata"]["name"]
        ref = owner_ref(rs)
        held = await api.create("configmaps", configmap_body(uniq("held"), [ref], ["example.com/hold"]), ns)
        free = await api.create("pods", pod_body(uniq("p"), owners=[ref]), ns)
        await api.delete("replicasets", name, ns, options=DeleteOptions(propagation_policy="Foreground"))

        async def held_terminating() -> bool:
            cur = await get_or_none(api, "configmaps", held["metadata"]["name"], ns)
            return bool(cur and cur["metadata"].get("deletionTimestamp"))

        await eventually(held_terminating, 15, "blocking dependent marked for deletion")

        async def free_gone() -> bool:
            return await get_or_none(api, "pods", free["metadata"]["name"], ns) is None

        await eventually(free_gone, 15, "other dependent deleted")
        owner = await api.get("replicasets", name, ns)
        assert owner["metadata"]["deletionTimestamp"]
        assert owner["metadata"]["finalizers"] == ["foregroundDeletion"]

        await api.patch("configmaps", held["metadata"]["name"], {"metadata": {"finalizers": None}}, ns)

        async def owner_gone() -> bool:
            return await get_or_none(api, "replicasets", name, ns) is None

        await eventually(owner_gone, 15, "owner deleted once its dependents are gone")


async def test_foreground_chain_deletes_grandchildren_first(apiserver: str, ns: str) -> None:
    async with controllers(apiserver, "garbagecollector") as ctx:
        api = ctx.api
        top = await api.create("replicasets", replicaset_body(uniq("top")), ns)
        mid = await api.create("configmaps", configmap_body(uniq("mid"), [owner_ref(top)]), ns)
        leaf = await api.create("pods", pod_body(uniq("leaf"), owners=[owner_ref(mid)]), ns)
        await api.delete(
            "replicasets", top["metadata"]["name"], ns, options=DeleteOptions(propagation_policy="Foreground")
        )

        async def all_gone() -> bool:
            return (
                await get_or_none(api, "replicasets", top["metadata"]["name"], ns) is None
                and await get_or_none(api, "configmaps", mid["metadata"]["name"], ns) is None
                and await get_or_none(api, "pods", leaf["metadata"]["name"], ns) is None
            )

        await eventually(all_gone, 20, "whole chain deleted")


async def _kubectl(apiserver: str, tmp_dir: Path, *args: str) -> tuple[int, str]:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl not installed")
    env = {"HOME": str(tmp_dir), "PATH": os.environ.get("PATH", "")}
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--server",
        apiserver,
        "--cache-dir",
        str(tmp_dir / "cache"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 40)
    return proc.returncode or 0, out.decode()


async def test_kubectl_cascade_foreground_and_orphan(apiserver: str, ns: str, tmp_dir: Path) -> None:
    async with controllers(apiserver, "garbagecollector") as ctx:
        api = ctx.api
        rs, pods, _ = await _owner_with_dependents(api, ns, n=1)
        name = rs["metadata"]["name"]
        code, out = await _kubectl(
            apiserver, tmp_dir, "delete", "rs", name, "-n", ns, "--cascade=foreground", "--wait", "--timeout=30s"
        )
        assert code == 0, out
        assert await get_or_none(api, "replicasets", name, ns) is None
        assert await get_or_none(api, "pods", pods[0], ns) is None  # foreground: dependents went first

        rs, pods, _ = await _owner_with_dependents(api, ns, n=1)
        name = rs["metadata"]["name"]
        code, out = await _kubectl(
            apiserver, tmp_dir, "delete", "rs", name, "-n", ns, "--cascade=orphan", "--wait", "--timeout=30s"
        )
        assert code == 0, out
        assert await get_or_none(api, "replicasets", name, ns) is None
        kept = await api.get("pods", pods[0], ns)
        assert not kept["metadata"].get("ownerReferences")


async def test_cluster_scoped_object_with_namespaced_owner_is_left_alone(apiserver: str) -> None:
    async with controllers(apiserver, "garbagecollector") as ctx:
        api = ctx.api
        name = uniq("gcnode")
        body = node_body(name)
        ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "00000000-0000-0000-0000-0000000000aa"}
        body["metadata"]["ownerReferences"] = [ghost]
        await api.create("nodes", body)
        try:

            async def reported() -> list:
                items = (await api.list("events", "default"))["items"]
                return [
                    e
                    for e in items
                    if e["involvedObject"].get("name") == name and e["reason"] == "OwnerRefInvalidNamespace"
                ]

            (ev,) = await eventually(reported, 10, "OwnerRefInvalidNamespace event")
            assert ev["type"] == "Warning"
            assert await get_or_none(api, "nodes", name) is not None
        finally:
            await delete_quietly(api, "nodes", name)
