"""Helpers for the ReplicaSet/ReplicationController/Deployment controller tests: builders, pod readiness
by PATCHing pods/<name>/status (the envtest way, no kubelet), and small list/get shortcuts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.integration.controller_kit import eventually
from tinykube.kubectl_binary import ensure_kubectl

MERGE = {"content-type": "application/merge-patch+json"}
Obj = dict[str, Any]


def now_str() -> str:
    """The current time as metav1.Time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def template(labels: dict[str, str], image: str = "nginx:1.25") -> Obj:
    """A pod template with one container."""
    return {"metadata": {"labels": dict(labels)}, "spec": {"containers": [{"name": "c", "image": image}]}}


def replicaset(name: str, replicas: int, labels: dict[str, str], **spec: Any) -> Obj:
    """An apps/v1 ReplicaSet."""
    body = {"replicas": replicas, "selector": {"matchLabels": dict(labels)}, "template": template(labels), **spec}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name}, "spec": body}


def deployment(name: str, replicas: int, labels: dict[str, str], image: str = "nginx:1.25", **spec: Any) -> Obj:
    """An apps/v1 Deployment."""
    body = {
        "replicas": replicas,
        "selector": {"matchLabels": dict(labels)},
        "template": template(labels, image),
        **spec,
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": body}


async def list_pods(api: httpx.AsyncClient, ns: str, selector: str = "") -> list[Obj]:
    """Pods in `ns` (optionally by label selector)."""
    params = {"labelSelector": selector} if selector else {}
    r = await api.get(f"/api/v1/namespaces/{ns}/pods", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def get(api: httpx.AsyncClient, path: str) -> Obj:
    """GET an object by path."""
    r = await api.get(path)
    assert r.status_code == 200, r.text
    return r.json()


async def create(api: httpx.AsyncClient, path: str, body: Obj) -> Obj:
    """POST an object to a collection path."""
    r = await api.post(path, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def patch(api: httpx.AsyncClient, path: str, body: Obj) -> Obj:
    """Merge-PATCH an object."""
    r = await api.patch(path, json=body, headers=MERGE)
    assert r.status_code == 200, r.text
    return r.json()


async def make_ready(api: httpx.AsyncClient, ns: str, pod: Obj, since: str | None = None) -> Obj:
    """Mark a pod Running and Ready (as a kubelet would) by PATCHing its status."""
    status = _ready_status(pod, since or now_str())
    return await patch(api, f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}/status", {"status": status})


def _ready_status(pod: Obj, ts: str) -> Obj:
    containers = pod["spec"]["containers"]
    return {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts},
            {"type": "Initialized", "status": "True", "lastTransitionTime": ts},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": ts},
            {"type": "Ready", "status": "True", "lastTransitionTime": ts},
        ],
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": "",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": ts}},
            }
            for c in containers
        ],
        "startTime": ts,
    }


def is_ready(pod: Obj) -> bool:
    """Whether the pod's Ready condition is True."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def owner_uid(obj: Obj) -> str | None:
    """The uid of the object's controller."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref["uid"]
    return None


async def events(api: httpx.AsyncClient, ns: str, name: str) -> list[Obj]:
    """Events in `ns` about the object named `name`."""
    r = await api.get(f"/api/v1/namespaces/{ns}/events")
    assert r.status_code == 200, r.text
    return [e for e in r.json()["items"] if e["involvedObject"].get("name") == name]


async def event_messages(
    api: httpx.AsyncClient, ns: str, name: str, reason: str, done: Callable[[list[str]], bool], timeout: float = 10
) -> list[str]:
    """Messages of `reason` events about `name`, once `done(messages)` holds (events are written async)."""

    async def check() -> list[str] | None:
        msgs = [e["message"] for e in await events(api, ns, name) if e["reason"] == reason]
        return msgs if done(msgs) else None

    return await eventually(check, timeout, f"{reason} events about {name}")


# --- a stand-in kubelet, a pod census and kubectl ----------------------------------------------------


@contextlib.asynccontextmanager
async def auto_ready(api: httpx.AsyncClient, ns: str, selector: str = "") -> AsyncIterator[None]:
    """While the block runs, mark every new pod in `ns` Ready (as a kubelet would once it runs it)."""

    async def loop() -> None:
        while True:
            for p in await list_pods(api, ns, selector):
                if not is_ready(p) and not p["metadata"].get("deletionTimestamp"):
                    r = await api.patch(
                        f"/api/v1/namespaces/{ns}/pods/{p['metadata']['name']}/status",
                        json={"status": _ready_status(p, now_str())},
                        headers=MERGE,
                    )
                    assert r.status_code in (200, 404, 409), r.text
            await asyncio.sleep(0.05)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class PodCensus:
    """Watches the pods of a namespace and records every moment an invariant on (active, ready) fails."""

    def __init__(self, api: httpx.AsyncClient, ns: str, check: Callable[[int, int], str | None]) -> None:
        self.api, self.ns, self.check = api, ns, check
        self.pods: dict[str, Obj] = {}
        self.violations: list[str] = []
        self.events = 0
        self._task: asyncio.Task[None] | None = None

    def counts(self) -> tuple[int, int]:
        """(active pods, ready active pods)."""
        active = [p for p in self.pods.values() if not p["metadata"].get("deletionTimestamp")]
        return len(active), sum(1 for p in active if is_ready(p))

    async def __aenter__(self) -> PodCensus:
        r = await self.api.get(f"/api/v1/namespaces/{self.ns}/pods")
        listing = r.json()
        self.pods = {p["metadata"]["name"]: p for p in listing["items"]}
        rv = listing["metadata"]["resourceVersion"]
        started = asyncio.Event()

        async def run() -> None:
            params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "false"}
            async with self.api.stream(
                "GET", f"/api/v1/namespaces/{self.ns}/pods", params=params, timeout=None
            ) as resp:
                started.set()
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    ev = json.loads(line)
                    obj = ev["object"]
                    if ev["type"] == "DELETED":
                        self.pods.pop(obj["metadata"]["name"], None)
                    elif ev["type"] in ("ADDED", "MODIFIED"):
                        self.pods[obj["metadata"]["name"]] = obj
                    self.events += 1
                    problem = self.check(*self.counts())
                    if problem:
                        self.violations.append(f"{problem} after {ev['type']} {obj['metadata']['name']}")

        self._task = asyncio.create_task(run())
        await asyncio.wait_for(started.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def kubectl(server: str, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run the real kubectl v1.35 against `server`; (exit code, stdout, stderr)."""
    binary = await asyncio.to_thread(ensure_kubectl)
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "KUBECONFIG": os.devnull, "HOME": home}
        proc = await asyncio.create_subprocess_exec(
            str(binary),
            "--server",
            server,
            "--cache-dir",
            f"{home}/cache",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    return proc.returncode or 0, out.decode(), err.decode()
