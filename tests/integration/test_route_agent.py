"""The route agent against a real apiserver, writing real routes into a network namespace of its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from controller_kit import eventually

from client.rest import ApiClient
from route_agent.agent import RouteAgent
from route_agent.iproute import PROTO, IpRoute

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and routes need root"),
]


def ip(*args: str) -> str:
    """Run `ip` (fails the test when it fails)."""
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10).stdout


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace whose veth0 holds 192.0.2.1/24 (so gateways 192.0.2.x are on-link)."""
    name = f"tkra-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    try:
        # a veth pair, both ends in the namespace (kernels without the dummy driver have veth)
        ip("-n", name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
        ip("-n", name, "addr", "add", "192.0.2.1/24", "dev", "veth0")
        ip("-n", name, "link", "set", "veth1", "up")
        ip("-n", name, "link", "set", "veth0", "up")
        yield name
    finally:
        ip("netns", "del", name)


@pytest.fixture
async def api(apiserver: str) -> AsyncIterator[ApiClient]:
    async with ApiClient(apiserver) as client:
        yield client


async def make_node(api: ApiClient, name: str, cidr: str, address: str) -> None:
    """A Node with a podCIDR and an InternalIP, as a kubelet registers one."""
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    body["spec"] = {"podCIDR": cidr, "podCIDRs": [cidr]}
    created = await api.create("nodes", body)
    created["status"] = {"addresses": [{"type": "InternalIP", "address": address}]}
    await api.update_status("nodes", created)


async def test_routes_follow_nodes(api: ApiClient, netns: str) -> None:
    tag = uuid.uuid4().hex[:6]
    me, peer, other = f"ra-self-{tag}", f"ra-peer-{tag}", f"ra-other-{tag}"
    # a route an earlier agent left for a node that is gone by now, and one that is not the agent's
    ip("-n", netns, "route", "add", "10.250.9.0/24", "via", "192.0.2.9", "proto", str(PROTO))
    ip("-n", netns, "route", "add", "10.250.8.0/24", "via", "192.0.2.8")
    routes = IpRoute(("ip", "-n", netns))
    await make_node(api, me, "10.250.1.0/24", "192.0.2.1")
    await make_node(api, peer, "10.250.2.0/24", "192.0.2.2")
    await make_node(api, other, "10.250.3.0/24", "192.0.2.3")
    far = f"ra-far-{tag}"  # a gateway that is not on-link: the kernel refuses its route, the others still go in
    await make_node(api, far, "10.250.7.0/24", "198.51.100.7")
    agent = RouteAgent(api, me, routes, resync_period=60)
    task = asyncio.create_task(agent.run())
    try:

        async def routes_are(want: dict[str, str]) -> bool:
            # only this test's range: other tests' Nodes in the shared apiserver get routes too (or fail to)
            mine = {dst: gw for dst, gw in (await routes.list()).items() if dst.startswith("10.250.")}
            return mine == want

        want = {"10.250.2.0/24": "192.0.2.2", "10.250.3.0/24": "192.0.2.3"}
        await eventually(lambda: routes_are(want), 10, f"routes {want}")
        assert "10.250.8.0/24 via 192.0.2.8" in ip("-n", netns, "route"), "routes of others stay"

        await api.delete("nodes", other)
        await eventually(lambda: routes_are({"10.250.2.0/24": "192.0.2.2"}), 10, "the deleted node's route gone")

        await api.patch(
            "nodes",
            peer,
            {"status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.4"}]}},
            subresource="status",
        )
        await eventually(lambda: routes_are({"10.250.2.0/24": "192.0.2.4"}), 10, "the route through the new address")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for name in (me, peer, other, far):
            with contextlib.suppress(Exception):
                await api.delete("nodes", name)
