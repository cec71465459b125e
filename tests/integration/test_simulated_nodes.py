"""Simulated nodes: registered Ready with Leases; their pods reported Running; deletes finish at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import httpx
from controller_kit import eventually
from helpers import pod, pods_path

from client.rest import ApiClient
from kubelet.simulated import SimulatedNodes


async def test_simulated_nodes_register_and_run_pods(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    prefix = f"sim-{uuid.uuid4().hex[:6]}"
    async with ApiClient(apiserver) as client:
        nodes = SimulatedNodes(client, prefix, 3, lease_duration=8)
        task = asyncio.create_task(nodes.run())
        try:
            await asyncio.wait_for(nodes.registered.wait(), 10)
            for name in nodes.names:
                node = (await api.get(f"/api/v1/nodes/{name}")).json()
                ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
                assert ready["Ready"] == "True"
                assert node["status"]["allocatable"]["pods"] == "110"
                lease = (await api.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}")).json()
                assert lease["spec"]["holderIdentity"] == name

            target = nodes.names[1]
            r = await api.post(pods_path(ns), json=pod("p1", nodeName=target))
            assert r.status_code == 201, r.text

            async def running() -> dict | None:
                p = (await api.get(pods_path(ns, "p1"))).json()
                return p if p.get("status", {}).get("phase") == "Running" else None

            p = await eventually(running, 10, "pod Running")
            assert p["status"]["podIP"].startswith("127.128.1.")
            assert {c["type"]: c["status"] for c in p["status"]["conditions"]}["Ready"] == "True"

            r = await api.delete(pods_path(ns, "p1"))
            assert r.status_code == 200

            async def gone() -> bool:
                return (await api.get(pods_path(ns, "p1"))).status_code == 404

            await eventually(gone, 10, "pod deleted")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for name in nodes.names:
                await api.delete(f"/api/v1/nodes/{name}")


class _InFlight(httpx.AsyncHTTPTransport):
    """A real transport that remembers the most requests it had in flight at once (watches left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("watch"):
            return await super().handle_async_request(request)
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            return await super().handle_async_request(request)
        finally:
            self.now -= 1


async def test_many_nodes_register_and_renew_a_few_at_a_time_spread_over_the_interval(
    apiserver: str, api: httpx.AsyncClient
) -> None:
    prefix = f"simmany-{uuid.uuid4().hex[:6]}"
    count, concurrency, lease_duration = 30, 3, 4
    interval = lease_duration / 4
    transport = _InFlight()
    async with ApiClient(apiserver, transport=transport) as client:
        nodes = SimulatedNodes(client, prefix, count, lease_duration=lease_duration, concurrency=concurrency)
        task = asyncio.create_task(nodes.run())
        try:
            await asyncio.wait_for(nodes.registered.wait(), 60)
            leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
            listing = (await api.get(leases)).json()
            by_name = {item["metadata"]["name"]: item for item in listing["items"]}
            mine = {name: lease for name, lease in by_name.items() if name in nodes.cidrs}
            assert sorted(mine) == sorted(nodes.names)
            for name, lease in mine.items():
                node = (await api.get(f"/api/v1/nodes/{name}")).json()
                assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
                assert lease["spec"]["holderIdentity"] == name
                assert lease["spec"]["leaseDurationSeconds"] == lease_duration
                owner = lease["metadata"]["ownerReferences"][0]
                assert (owner["kind"], owner["name"], owner["uid"]) == ("Node", name, node["metadata"]["uid"])

            # every Lease is renewed within about one interval of registration, at spread-out moments
            renewed: dict[str, float] = {}
            loop = asyncio.get_running_loop()
            params = {"watch": "1", "resourceVersion": listing["metadata"]["resourceVersion"]}
            async with asyncio.timeout(30):
                async with api.stream("GET", leases, params=params, timeout=httpx.Timeout(10, read=None)) as r:
                    async for line in r.aiter_lines():
                        name = json.loads(line)["object"]["metadata"]["name"] if line.strip() else ""
                        if name in nodes.cidrs:
                            renewed.setdefault(name, loop.time())
                        if len(renewed) == count:
                            break
            times = sorted(renewed.values())
            assert times[-1] - times[0] >= interval / 2, f"renewals bunched together: {times[-1] - times[0]:.2f}s"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for name in nodes.names:
                await api.delete(f"/api/v1/nodes/{name}")
                await api.delete(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}")
    # registrations, then renewals, `concurrency` at a time (plus the pod informer's list)
    assert transport.peak <= concurrency + 1, transport.peak
