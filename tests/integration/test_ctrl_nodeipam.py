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
    held, first, second = (f"ipam-{n}-{tag}" for n in ("held", "a", "b"))
    # Nodes other tests left without a podCIDR get subnets too (the controller serves every Node):
    # the range is sized to hold them and this test's nodes, and they are waited for below.
    strays = [
        n["metadata"]["name"] for n in (await api.list("nodes"))["items"] if not (n.get("spec") or {}).get("podCIDR")
    ]
    size = 4
    while size < len(strays) + 4:
        size *= 2
    prefix = 24 - size.bit_length() + 1
    second_octet = 100 + int(tag[:2], 16) % 100
    cluster_cidr = f"10.{second_octet}.0.0/{prefix}"
    subnets = [f"10.{second_octet}.{i}.0/24" for i in range(size)]

    async def pod_cidr(name: str) -> str | None:
        return ((await api.get("nodes", name)).get("spec") or {}).get("podCIDR")

    names = [held, first, second]
    try:
        # a kubelet's --pod-cidr: kept, and counted as taken
        await api.create(
            "nodes",
            {"metadata": {"name": held}, "spec": {"podCIDR": subnets[1], "podCIDRs": [subnets[1]]}},
        )
        async with controllers(apiserver, "nodeipam", allocate_node_cidrs=1.0, cluster_cidr=cluster_cidr):
            for name in (first, second):
                await api.create("nodes", {"metadata": {"name": name}})
            got = {
                name: await eventually(lambda name=name: pod_cidr(name), 10, f"{name}'s podCIDR") for name in names[1:]
            }
            assert len(set(got.values())) == 2 and set(got.values()) <= set(subnets) - {subnets[1]}
            node = await api.get("nodes", first)
            assert node["spec"]["podCIDRs"] == [node["spec"]["podCIDR"]]
            assert await pod_cidr(held) == subnets[1]
            for stray in strays:  # every Node gets one while the range lasts

                async def stray_cidr(stray: str = stray) -> str | None:
                    with contextlib.suppress(Exception):
                        return await pod_cidr(stray)
                    return "deleted"

                await eventually(stray_cidr, 10, f"{stray}'s podCIDR")
            taken = {(n.get("spec") or {}).get("podCIDR") for n in (await api.list("nodes"))["items"]} & set(subnets)
            more = [f"ipam-m{i}-{tag}" for i in range(size - len(taken) + 1)]  # one more than the range holds
            for name in more:
                await api.create("nodes", {"metadata": {"name": name}})
                names.append(name)

            async def full_event() -> list[dict]:
                events = (await api.list("events", "default"))["items"]
                return [e for e in events if e["involvedObject"].get("name") in more]

            events = await eventually(full_event, 10, "a CIDRNotAvailable event")
            assert events[0]["reason"] == "CIDRNotAvailable"
            left = events[0]["involvedObject"]["name"]
            assert events[0]["message"] == f"Node {left} status is now: CIDRNotAvailable"
            assert await pod_cidr(left) is None
            for name in more:
                if name != left:
                    await eventually(lambda name=name: pod_cidr(name), 10, f"{name}'s podCIDR")
    finally:
        for name in names:
            with contextlib.suppress(Exception):
                await api.delete("nodes", name)
