"""The nodeipam controller (range allocator) against a real apiserver, with Nodes created over REST."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from controller_kit import controllers, eventually

from client.rest import ApiClient

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def api(apiserver: str) -> AsyncIterator[ApiClient]:
    async with ApiClient(apiserver) as client:
        yield client


async def test_nodes_get_free_pod_cidrs_and_an_event_when_the_range_is_used_up(api: ApiClient, apiserver: str) -> None:
    tag = uuid.uuid4().hex[:6]
    held, first, second, third = (f"ipam-{n}-{tag}" for n in ("held", "a", "b", "c"))
    # a /22 of its own, so nodes other tests leave without a podCIDR cannot take what this test counts on
    cluster_cidr = f"10.{100 + int(tag[:2], 16) % 100}.4.0/22"
    base = cluster_cidr.rsplit(".", 2)[0]

    async def pod_cidr(name: str) -> str | None:
        return ((await api.get("nodes", name)).get("spec") or {}).get("podCIDR")

    names = [held, first, second, third]
    try:
        # a kubelet's --pod-cidr: kept, and counted as taken
        await api.create(
            "nodes",
            {"metadata": {"name": held}, "spec": {"podCIDR": f"{base}.5.0/24", "podCIDRs": [f"{base}.5.0/24"]}},
        )
        async with controllers(apiserver, "nodeipam", allocate_node_cidrs=1.0, cluster_cidr=cluster_cidr):
            for name in (first, second):
                await api.create("nodes", {"metadata": {"name": name}})
            got = {
                name: await eventually(lambda name=name: pod_cidr(name), 10, f"{name}'s podCIDR") for name in names[1:3]
            }
            assert sorted(got.values()) == [f"{base}.4.0/24", f"{base}.6.0/24"]
            node = await api.get("nodes", first)
            assert node["spec"]["podCIDRs"] == [node["spec"]["podCIDR"]]
            assert await pod_cidr(held) == f"{base}.5.0/24"

            await api.create("nodes", {"metadata": {"name": third}})
            await api.create("nodes", {"metadata": {"name": f"ipam-d-{tag}"}})
            names.append(f"ipam-d-{tag}")
            await eventually(lambda: pod_cidr(third), 10, f"{third}'s podCIDR (the last free /24)")

            async def full_event() -> list[dict]:
                events = (await api.list("events", "default"))["items"]
                return [e for e in events if e["involvedObject"].get("name") == f"ipam-d-{tag}"]

            events = await eventually(full_event, 10, "a CIDRNotAvailable event")
            assert events[0]["reason"] == "CIDRNotAvailable"
            assert events[0]["message"] == f"Node ipam-d-{tag} status is now: CIDRNotAvailable"
            assert await pod_cidr(f"ipam-d-{tag}") is None
    finally:
        for name in names:
            with contextlib.suppress(Exception):
                await api.delete("nodes", name)
