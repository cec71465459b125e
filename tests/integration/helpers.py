"""Small builders and waiters shared by the integration tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

MERGE = {"content-type": "application/merge-patch+json"}
STRATEGIC = {"content-type": "application/strategic-merge-patch+json"}
JSONPATCH = {"content-type": "application/json-patch+json"}


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A minimal valid Pod."""
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx:1.25"}], **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": body}


def etcd_calls(metrics: str, operation: str) -> float:
    """How many etcd calls of one operation the apiserver made, from its /metrics text."""
    prefix = f'etcd_request_duration_seconds_count{{operation="{operation}"}} '
    return sum(float(line[len(prefix) :]) for line in metrics.splitlines() if line.startswith(prefix))


def pods_path(ns: str, name: str = "") -> str:
    """URL path of the pods collection or one pod."""
    return f"/api/v1/namespaces/{ns}/pods" + (f"/{name}" if name else "")


async def watch_lines(api: httpx.AsyncClient, path: str, **params: str) -> AsyncIterator[dict[str, Any]]:
    """Stream watch events from a list path."""
    async with api.stream("GET", path, params={"watch": "1", **params}, timeout=30) as r:
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            if line.strip():
                yield json.loads(line)


async def collect(
    api: httpx.AsyncClient, path: str, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 10, **params: str
) -> list[dict[str, Any]]:
    """Watch until `until(events)` holds; fail after timeout."""
    events: list[dict[str, Any]] = []

    async def run() -> None:
        async for ev in watch_lines(api, path, **params):
            events.append(ev)
            if until(events):
                return

    await asyncio.wait_for(run(), timeout)
    return events
