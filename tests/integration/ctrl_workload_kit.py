"""Helpers for the workload-controller integration tests: drive pod status without a kubelet."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from apimachinery.errors import StatusError
from client.request import Obj, Selectors
from client.rest import ApiClient

__all__ = ["apply_manifest", "owned_pods", "patch_retry", "set_pod_phase"]


async def set_pod_phase(api: ApiClient, ns: str, name: str, phase: str, *, ready: bool = False) -> Obj:
    """PATCH pods/<name>/status to `phase` with a Ready condition (as envtest users do)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now},
        ],
        "containerStatuses": [{"name": "c", "ready": ready, "restartCount": 0, "image": "x", "imageID": ""}],
    }
    return await api.patch("pods", name, {"status": status}, ns, subresource="status")


async def owned_pods(api: ApiClient, ns: str, owner_uid: str, *, live: bool = False) -> list[Obj]:
    """Pods in `ns` controlled by the object with this uid (live: not terminal and not being deleted)."""
    items = (await api.list("pods", ns, selectors=Selectors())).get("items") or []
    out = []
    for p in items:
        refs = p["metadata"].get("ownerReferences") or []
        if not any(r.get("uid") == owner_uid and r.get("controller") for r in refs):
            continue
        if live and (
            p["metadata"].get("deletionTimestamp") or (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        ):
            continue
        out.append(p)
    return sorted(out, key=lambda p: p["metadata"]["name"])


async def apply_manifest(api: ApiClient, path: str, ns: str) -> list[Obj]:
    """Create every document of a YAML manifest in `ns` (cluster-scoped kinds ignore it); the created objects."""
    import pathlib

    import yaml

    text = await asyncio.to_thread(pathlib.Path(path).read_text)
    return [await api.create(doc["kind"], doc, ns) for doc in yaml.safe_load_all(text) if doc]


async def patch_retry(api: ApiClient, resource: str, name: str, body: Obj, ns: str | None = None) -> Obj:
    """A merge patch retried on 409: the apiserver can answer Conflict to a patch without a
    resourceVersion when a controller writes the object at the same moment (see the report)."""
    for _ in range(10):
        try:
            return await api.patch(resource, name, body, ns)
        except StatusError as e:
            if e.code != 409:
                raise
    return await api.patch(resource, name, body, ns)
