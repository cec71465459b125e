"""Simulated nodes: registered Ready with Leases; their pods reported Running; deletes finish at once."""

from __future__ import annotations

import asyncio
import contextlib
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
