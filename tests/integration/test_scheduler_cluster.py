"""Helpers for the scheduler integration tests: test nodes (tainted so only our pods land there), pods, waits."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx

from client.rest import ApiClient
from scheduler.scheduler import run_scheduler

T = TypeVar("T")
TAINT_KEY = "tinykube.test/scheduler"


async def wait_for(check: Callable[[], Awaitable[T | None]], timeout: float = 15.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.05)


class TestCluster:
    """Nodes created for one test, labelled and tainted with a unique group so other tests' pods stay away."""

    __test__ = False

    def __init__(self, api: httpx.AsyncClient, ns: str) -> None:
        self.api = api
        self.ns = ns
        self.group = f"g-{uuid.uuid4().hex[:6]}"
        self.nodes: list[str] = []

    async def add_node(
        self, suffix: str, cpu: str = "2", memory: str = "4Gi", pods: str = "110", labels: dict[str, str] | None = None
    ) -> str:
        """Create a Ready node with this allocatable (and extra labels); returns its name."""
        name = f"{self.group}-{suffix}"
        status = {
            "capacity": {"cpu": cpu, "memory": memory, "pods": pods},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}],
        }
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/hostname": name, "sched-test": self.group, **(labels or {})},
            },
            "spec": {"taints": [{"key": TAINT_KEY, "value": self.group, "effect": "NoSchedule"}]},
            "status": status,
        }
        r = await self.api.post("/api/v1/nodes", json=body)
        assert r.status_code == 201, r.text
        self.nodes.append(name)
        node = r.json()
        if (node.get("status") or {}).get("allocatable") != status["allocatable"]:
            node["status"] = status
            r = await self.api.put(f"/api/v1/nodes/{name}/status", json=node)
            assert r.status_code == 200, r.text
        return name

    def pod(self, name: str, cpu: str = "100m", memory: str = "64Mi", **spec: Any) -> dict[str, Any]:
        """A pod that only fits this test's nodes."""
        body: dict[str, Any] = {
            "containers": [
                {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
            ],
            "nodeSelector": {"sched-test": self.group},
            "tolerations": [{"key": TAINT_KEY, "operator": "Equal", "value": self.group, "effect": "NoSchedule"}],
            **spec,
        }
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {}}, "spec": body}

    async def create_pod(self, body: dict[str, Any]) -> None:
        """POST a pod into the test namespace."""
        r = await self.api.post(f"/api/v1/namespaces/{self.ns}/pods", json=body)
        assert r.status_code == 201, r.text

    async def get_pod(self, name: str) -> dict[str, Any]:
        """GET a pod."""
        r = await self.api.get(f"/api/v1/namespaces/{self.ns}/pods/{name}")
        assert r.status_code == 200, r.text
        return r.json()

    async def bound(self, name: str, timeout: float = 15.0) -> str:
        """Wait until the pod has a node; the node's name."""

        async def check() -> str:
            return (await self.get_pod(name)).get("spec", {}).get("nodeName", "")

        return await wait_for(check, timeout, f"pod {name} bound")

    async def condition(self, name: str, message_ok: Callable[[str], bool] = bool, timeout: float = 15.0) -> dict:
        """Wait for PodScheduled=False on the pod; the condition."""

        async def check() -> dict | None:
            for c in (await self.get_pod(name)).get("status", {}).get("conditions") or []:
                if c["type"] == "PodScheduled" and c["status"] == "False" and message_ok(c.get("message", "")):
                    return c
            return None

        return await wait_for(check, timeout, f"pod {name} PodScheduled=False")

    async def events(self, name: str, reason: str) -> list[dict[str, Any]]:
        """Events about a pod with this reason."""
        r = await self.api.get(
            f"/api/v1/namespaces/{self.ns}/events",
            params={"fieldSelector": f"involvedObject.name={name}"},
        )
        assert r.status_code == 200, r.text
        return [e for e in r.json()["items"] if e["reason"] == reason]

    async def other_nodes(self) -> int:
        """How many nodes in the cluster are not this test's."""
        r = await self.api.get("/api/v1/nodes")
        return len([n for n in r.json()["items"] if n["metadata"]["name"] not in self.nodes])

    async def cleanup(self) -> None:
        """Delete this test's nodes."""
        for name in self.nodes:
            await self.api.delete(f"/api/v1/nodes/{name}")


@contextlib.asynccontextmanager
async def cluster(api: httpx.AsyncClient, ns: str) -> AsyncIterator[TestCluster]:
    """A TestCluster whose nodes are deleted at the end."""
    tc = TestCluster(api, ns)
    try:
        yield tc
    finally:
        await tc.cleanup()


@contextlib.asynccontextmanager
async def scheduler(apiserver: str, name: str = "default-scheduler") -> AsyncIterator[None]:
    """Run the scheduler in-process until the block ends."""
    async with ApiClient(apiserver) as client:
        task = asyncio.create_task(run_scheduler(client, name))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
