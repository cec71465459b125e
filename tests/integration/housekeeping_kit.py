"""Builders and status helpers for the housekeeping-controller tests (no kubelet runs: tests play its part)."""

from __future__ import annotations

import uuid
from typing import Any

from apimachinery.errors import StatusError
from client.events import now_rfc3339
from client.request import Obj
from client.rest import ApiClient


def uniq(prefix: str) -> str:
    """A unique DNS-1123 name."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def pod_body(name: str, labels: dict[str, str] | None = None, owners: list[Obj] | None = None, **spec: Any) -> Obj:
    """A minimal Pod, optionally with ownerReferences."""
    meta: Obj = {"name": name, "labels": labels or {}}
    if owners:
        meta["ownerReferences"] = owners
    body = {"containers": [{"name": "c", "image": "nginx:1.25"}], **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


def owner_ref(owner: Obj, *, controller: bool = True, block: bool = True) -> Obj:
    """An ownerReference to `owner`."""
    m = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": m["name"],
        "uid": m["uid"],
        "controller": controller,
        "blockOwnerDeletion": block,
    }


def replicaset_body(name: str) -> Obj:
    """A ReplicaSet with zero replicas (no controller acts on it in these tests)."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    }


def configmap_body(name: str, owners: list[Obj] | None = None, finalizers: list[str] | None = None) -> Obj:
    """A ConfigMap, optionally owned and with finalizers."""
    meta: Obj = {"name": name}
    if owners:
        meta["ownerReferences"] = owners
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


async def set_pod_status(api: ApiClient, ns: str, name: str, ip: str | None, ready: bool, node: str = "") -> Obj:
    """Play the kubelet: phase Running, podIP and the Ready condition as asked."""
    pod = await api.get("pods", name, ns)
    status = "True" if ready else "False"
    now = now_rfc3339()
    pod["status"] = {
        **(pod.get("status") or {}),
        "phase": "Running",
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
            {"type": "Ready", "status": status, "lastTransitionTime": now},
        ],
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": "",
                "ready": ready,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": now}},
            }
            for c in pod["spec"]["containers"]
        ],
    }
    if ip:
        pod["status"]["podIP"] = ip
        pod["status"]["podIPs"] = [{"ip": ip}]
    return await api.update_status("pods", pod, ns)


def node_body(name: str, ready: str = "True") -> Obj:
    """A Node as a kubelet registers it, with a fresh Ready heartbeat."""
    now = now_rfc3339()
    conds = [
        {
            "type": t,
            "status": "False",
            "reason": f"KubeletHas{r}",
            "message": "ok",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        for t, r in (
            ("MemoryPressure", "SufficientMemory"),
            ("DiskPressure", "NoDiskPressure"),
            ("PIDPressure", "SufficientPID"),
        )
    ]
    conds.append(
        {
            "type": "Ready",
            "status": ready,
            "reason": "KubeletReady" if ready == "True" else "KubeletNotReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"conditions": conds, "capacity": {"pods": "110"}, "allocatable": {"pods": "110"}},
    }


async def ensure_namespace(api: ApiClient, name: str) -> None:
    """Create a namespace if it is not there."""
    try:
        await api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except StatusError as e:
        if e.code != 409:
            raise


async def renew_lease(api: ApiClient, node: str) -> Obj:
    """Create or renew the node's Lease in kube-node-lease, as a kubelet heartbeats."""
    await ensure_namespace(api, "kube-node-lease")
    spec = {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": _micro_now()}
    try:
        lease = await api.get("leases", node, "kube-node-lease")
    except StatusError as e:
        if e.code != 404:
            raise
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": node, "namespace": "kube-node-lease"},
            "spec": spec,
        }
        return await api.create("leases", body, "kube-node-lease")
    lease["spec"] = spec
    return await api.update("leases", lease, "kube-node-lease")


def _micro_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def get_or_none(api: ApiClient, res: str, name: str, ns: str | None = None) -> Obj | None:
    """The object, or None on 404."""
    try:
        return await api.get(res, name, ns)
    except StatusError as e:
        if e.code == 404:
            return None
        raise


async def delete_quietly(api: ApiClient, res: str, name: str, ns: str | None = None) -> None:
    """Delete, ignoring 404."""
    try:
        await api.delete(res, name, ns)
    except StatusError as e:
        if e.code != 404:
            raise
