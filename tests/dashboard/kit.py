"""Builders and waiters for the dashboard tests: Nodes and Pods written through the API, made to look
as a kubelet would report them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MERGE = {"content-type": "application/merge-patch+json"}


def now() -> str:
    """The current time as the API writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unique(prefix: str) -> str:
    """A name no other test (or concurrent run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20, what: str = "") -> Any:
    """Poll `check` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}: last value {last!r}")


async def create_node(api: httpx.AsyncClient, name: str, ip: str, ready: bool = True) -> dict[str, Any]:
    """A Node as a kubelet registers it, with its status (Ready or not)."""
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "node-role.kubernetes.io/worker": ""}},
    }
    r = await api.post("/api/v1/nodes", json=body)
    assert r.status_code == 201, r.text
    t = now()
    conditions = [
        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
        {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
        {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID"},
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "kubelet is posting ready status" if ready else "container runtime is down",
        },
    ]
    status = {
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [c | {"lastHeartbeatTime": t, "lastTransitionTime": t} for c in conditions],
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
        "nodeInfo": {"kubeletVersion": "v1.35.0", "osImage": "Debian", "containerRuntimeVersion": "process://1"},
    }
    r = await api.patch(f"/api/v1/nodes/{name}/status", json={"status": status}, headers=MERGE)
    assert r.status_code == 200, r.text
    return r.json()


def running_status(pod: dict[str, Any], ip: str, restarts: int = 0) -> dict[str, Any]:
    """The status a kubelet reports for a pod whose containers all run and are ready."""
    t = now()
    containers = pod["spec"]["containers"]
    return {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "hostIP": "127.0.0.1",
        "startTime": t,
        "conditions": [
            {"type": c, "status": "True", "lastTransitionTime": t}
            for c in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": "",
                "ready": True,
                "started": True,
                "restartCount": restarts,
                "state": {"running": {"startedAt": t}},
            }
            for c in containers
        ],
    }


async def bind(api: httpx.AsyncClient, ns: str, name: str, node: str) -> None:
    """Bind a pod to a node as the scheduler does."""
    body = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    r = await api.post(f"/api/v1/namespaces/{ns}/pods/{name}/binding", json=body)
    assert r.status_code == 201, r.text


async def set_pod_status(api: httpx.AsyncClient, ns: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    """Write a pod's status through /status, as the kubelet does."""
    r = await api.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    assert r.status_code == 200, r.text
    pod = r.json()
    pod["status"] = status
    r = await api.put(f"/api/v1/namespaces/{ns}/pods/{name}/status", json=pod)
    assert r.status_code == 200, r.text
    return r.json()


async def make_running(api: httpx.AsyncClient, ns: str, name: str, node: str, ip: str) -> dict[str, Any]:
    """Bind the pod to `node` and report it Running and Ready with `ip`."""
    await bind(api, ns, name, node)
    r = await api.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    return await set_pod_status(api, ns, name, running_status(r.json(), ip))


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A minimal Pod."""
    body = {"containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"]}], **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": body}


def deployment(name: str, replicas: int) -> dict[str, Any]:
    """A Deployment of `replicas` sleeping pods."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
            },
        },
    }


async def pods_of(api: httpx.AsyncClient, ns: str, selector: str) -> list[dict[str, Any]]:
    """The pods matching a label selector."""
    r = await api.get(f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": selector})
    assert r.status_code == 200, r.text
    return r.json()["items"]
