"""Builders for the scheduler unit tests: Node and Pod dicts, NodeInfo with pods."""

from __future__ import annotations

from typing import Any

from scheduler.cache import Cache, NodeInfo
from scheduler.podinfo import PodInfo


def node(
    name: str,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
    unschedulable: bool = False,
    ready: str = "True",
) -> dict[str, Any]:
    """A Node object."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def pod(
    name: str,
    cpu: str | None = None,
    memory: str | None = None,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    node_name: str = "",
    **spec: Any,
) -> dict[str, Any]:
    """A Pod object with one container requesting cpu/memory."""
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if requests:
        container["resources"] = {"requests": requests}
    body: dict[str, Any] = {"containers": [container], **spec}
    if node_name:
        body["nodeName"] = node_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {}},
        "spec": body,
    }


def node_info(n: dict[str, Any], *bound: dict[str, Any]) -> NodeInfo:
    """A NodeInfo for node `n` with `bound` pods counted on it."""
    ni = NodeInfo(n["metadata"]["name"])
    ni.set_node(n)
    for p in bound:
        ni.add_pod(PodInfo.of(p))
    return ni


def cache(*nodes: dict[str, Any]) -> Cache:
    """A Cache holding `nodes`."""
    c = Cache()
    for n in nodes:
        c.set_node(n)
    return c
