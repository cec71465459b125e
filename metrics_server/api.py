"""The metrics.k8s.io/v1beta1 API as metrics-server serves it: discovery, NodeMetrics and PodMetrics
(get and list, label and field selectors, Tables for `kubectl get`).

Objects are built per request from the store and the informers' Nodes and Pods: a node or pod
without fresh usage is simply not listed (a get answers 404), as metrics-server does. CPU is a
quantity of nanocores and memory of bytes, in Kubernetes' canonical form (`250m`, `10837Ki`); the
window is the time between the two samples the CPU rate came from, as Go prints a duration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from apimachinery import errors
from apimachinery.selectors import SelectorError, parse_field_selector, parse_label_selector
from metrics_server.storage import MetricsStore, Usage

__all__ = ["GROUP", "GROUP_VERSION", "VERSION", "MetricsApi", "cpu_quantity", "go_duration", "memory_quantity"]

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
Obj = dict[str, Any]

_RESOURCE_LIST = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": GROUP_VERSION,
    "resources": [
        {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
        {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
    ],
}
_GROUP_VERSION_DOC = {"groupVersion": GROUP_VERSION, "version": VERSION}
_API_GROUP = {
    "kind": "APIGroup",
    "apiVersion": "v1",
    "name": GROUP,
    "versions": [_GROUP_VERSION_DOC],
    "preferredVersion": _GROUP_VERSION_DOC,
}
_COLUMNS = [
    {"name": "Name", "type": "string", "format": "name", "description": "Name of the resource", "priority": 0},
    {"name": "CPU", "type": "string", "format": "", "description": "CPU consumption", "priority": 0},
    {"name": "Memory", "type": "string", "format": "", "description": "Memory consumption", "priority": 0},
    {
        "name": "Window",
        "type": "string",
        "format": "",
        "description": "Interval used to calculate CPU consumption",
        "priority": 0,
    },
]


def cpu_quantity(nanocores: int) -> str:
    """CPU in nanocores as a canonical quantity (`2`, `250m`, `1500u`, `123456789n`)."""
    for div, suffix in ((10**9, ""), (10**6, "m"), (10**3, "u")):
        if nanocores % div == 0:
            return f"{nanocores // div}{suffix}"
    return f"{nanocores}n"


def memory_quantity(value: int) -> str:
    """Bytes as a canonical binary quantity (`10837Ki`, `2Gi`, `12345`)."""
    if value == 0:
        return "0"
    for power, suffix in ((6, "Ei"), (5, "Pi"), (4, "Ti"), (3, "Gi"), (2, "Mi"), (1, "Ki")):
        if value % 1024**power == 0:
            return f"{value // 1024**power}{suffix}"
    return str(value)


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it (`15s`, `10.044s`, `1m0.5s`, `500ms`)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 10**9:
        for div, unit in ((10**6, "ms"), (10**3, "µs"), (1, "ns")):
            if ns >= div:
                return sign + _trim(ns / div) + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    secs = _trim(rest / 1e9) if rest % 10**9 else str(rest // 10**9)
    out = f"{hours}h{minutes}m{secs}s" if hours else (f"{minutes}m{secs}s" if minutes else f"{secs}s")
    return sign + out


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def _time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(doc: Any, code: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=code, media_type="application/json")


def _status(err: errors.StatusError) -> Response:
    return _json(err.to_status(), err.code)


def _wants_table(accept: str | None) -> bool:
    return any("as=Table" in part for part in (accept or "").split(","))


class MetricsApi:
    """NodeMetrics and PodMetrics from a store and the cluster's Nodes and Pods."""

    def __init__(
        self,
        store: MetricsStore,
        nodes: Callable[[], Iterable[Mapping[str, Any]]],
        pods: Callable[[], Iterable[Mapping[str, Any]]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.nodes = nodes
        self.pods = pods
        self.clock = clock

    # --- objects ---------------------------------------------------------------------------------

    def node_metrics(self, node: Mapping[str, Any], now: float) -> Obj | None:
        """The NodeMetrics of one Node (None without usage)."""
        meta = node.get("metadata") or {}
        usage = self.store.node_usage(str(meta.get("name", "")), now)
        if usage is None:
            return None
        return {
            "kind": "NodeMetrics",
            "apiVersion": GROUP_VERSION,
            "metadata": {
                "name": meta.get("name", ""),
                "creationTimestamp": _time(now),
                "labels": dict(meta.get("labels") or {}),
            },
            "timestamp": _time(usage.timestamp),
            "window": go_duration(usage.window),
            "usage": {"cpu": cpu_quantity(usage.cpu_nanocores), "memory": memory_quantity(usage.memory_bytes)},
        }

    def _pod_doc(self, pod: Mapping[str, Any], containers: dict[str, Usage], now: float) -> Obj:
        meta = pod.get("metadata") or {}
        order = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        names = sorted(containers, key=lambda n: (order.index(n) if n in order else len(order), n))
        latest = max(containers.values(), key=lambda u: u.timestamp)
        return {
            "kind": "PodMetrics",
            "apiVersion": GROUP_VERSION,
            "metadata": {
                "name": meta.get("name", ""),
                "namespace": meta.get("namespace", ""),
                "creationTimestamp": _time(now),
                "labels": dict(meta.get("labels") or {}),
            },
            "timestamp": _time(latest.timestamp),
            "window": go_duration(latest.window),
            "containers": [
                {
                    "name": n,
                    "usage": {
                        "cpu": cpu_quantity(containers[n].cpu_nanocores),
                        "memory": memory_quantity(containers[n].memory_bytes),
                    },
                }
                for n in names
            ],
        }

    # --- HTTP ------------------------------------------------------------------------------------

    @staticmethod
    def _selectors(request: Request) -> tuple[Any, Any]:
        try:
            labels = parse_label_selector(request.query_params.get("labelSelector", ""))
            fields = parse_field_selector(request.query_params.get("fieldSelector", ""))
        except SelectorError as e:
            raise errors.bad_request(str(e)) from None
        return labels, fields

    @staticmethod
    def _matches(obj: Mapping[str, Any], labels: Any, fields: Any) -> bool:
        meta = obj.get("metadata") or {}
        if not labels.matches(meta.get("labels") or {}):
            return False
        values = {"metadata.name": str(meta.get("name", "")), "metadata.namespace": str(meta.get("namespace", ""))}
        return not fields.requirements or fields.matches(values)

    def _answer(self, request: Request, kind: str, items: list[Obj]) -> Response:
        if _wants_table(request.headers.get("accept")):
            return _json(self._table(kind, items))
        return _json({"kind": f"{kind}List", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})

    def _table(self, kind: str, items: list[Obj]) -> Obj:
        rows = []
        for m in items:
            if kind == "NodeMetrics":
                cpu, memory = m["usage"]["cpu"], m["usage"]["memory"]
            else:
                total_cpu = sum(_nanocores(c["usage"]["cpu"]) for c in m["containers"])
                total_mem = sum(_bytes(c["usage"]["memory"]) for c in m["containers"])
                cpu, memory = cpu_quantity(total_cpu), memory_quantity(total_mem)
            rows.append(
                {
                    "cells": [m["metadata"]["name"], cpu, memory, m["window"]],
                    "object": {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": m["metadata"],
                    },
                }
            )
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {},
            "columnDefinitions": _COLUMNS,
            "rows": rows,
        }

    async def _nodes(self, request: Request) -> Response:
        labels, fields = self._selectors(request)
        now = self.clock()
        items = []
        for node in sorted(self.nodes(), key=lambda n: str((n.get("metadata") or {}).get("name", ""))):
            if self._matches(node, labels, fields) and (m := self.node_metrics(node, now)) is not None:
                items.append(m)
        return self._answer(request, "NodeMetrics", items)

    async def _node(self, request: Request) -> Response:
        name = request.path_params["name"]
        node = next((n for n in self.nodes() if (n.get("metadata") or {}).get("name") == name), None)
        m = self.node_metrics(node, self.clock()) if node is not None else None
        if m is None:
            raise errors.not_found("nodemetrics", name, GROUP)
        return self._answer(request, "NodeMetrics", [m]) if _wants_table(request.headers.get("accept")) else _json(m)

    def _pod_list(self, namespace: str | None) -> list[Mapping[str, Any]]:
        pods = [p for p in self.pods() if namespace is None or (p.get("metadata") or {}).get("namespace") == namespace]
        return sorted(
            pods,
            key=lambda p: ((p.get("metadata") or {}).get("namespace", ""), (p.get("metadata") or {}).get("name", "")),
        )

    async def _pods(self, request: Request) -> Response:
        namespace = request.path_params.get("namespace")
        labels, fields = self._selectors(request)
        now = self.clock()
        usage = self.store.pods(now)
        items = []
        for pod in self._pod_list(namespace):
            meta = pod.get("metadata") or {}
            containers = usage.get((str(meta.get("namespace", "")), str(meta.get("name", ""))))
            if containers and self._matches(pod, labels, fields):
                items.append(self._pod_doc(pod, containers, now))
        return self._answer(request, "PodMetrics", items)

    async def _pod(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        pod = next((p for p in self._pod_list(namespace) if (p.get("metadata") or {}).get("name") == name), None)
        now = self.clock()
        containers = self.store.pod_usage(namespace, name, now) if pod is not None else None
        if pod is None or not containers:
            raise errors.not_found("podmetrics", name, GROUP)
        doc = self._pod_doc(pod, containers, now)
        return self._answer(request, "PodMetrics", [doc]) if _wants_table(request.headers.get("accept")) else _json(doc)

    def app(self) -> Starlette:
        """The ASGI app (every path under /apis as the aggregator forwards it)."""

        async def resources(_: Request) -> Response:
            return _json(_RESOURCE_LIST)

        async def group(_: Request) -> Response:
            return _json(_API_GROUP)

        async def groups(_: Request) -> Response:
            return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": [_API_GROUP]})

        async def healthz(_: Request) -> Response:
            return Response("ok", media_type="text/plain")

        def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
            async def run(request: Request) -> Response:
                try:
                    return await handler(request)
                except errors.StatusError as e:
                    return _status(e)

            return run

        root = f"/apis/{GROUP_VERSION}"
        return Starlette(
            routes=[
                Route("/healthz", healthz),
                Route("/livez", healthz),
                Route("/apis", groups),
                Route(f"/apis/{GROUP}", group),
                Route(root, resources),
                Route(f"{root}/nodes", guarded(self._nodes)),
                Route(f"{root}/nodes/{{name}}", guarded(self._node)),
                Route(f"{root}/pods", guarded(self._pods)),
                Route(f"{root}/namespaces/{{namespace}}/pods", guarded(self._pods)),
                Route(f"{root}/namespaces/{{namespace}}/pods/{{name}}", guarded(self._pod)),
            ]
        )


def _nanocores(q: str) -> int:
    for suffix, mul in (("n", 1), ("u", 10**3), ("m", 10**6)):
        if q.endswith(suffix):
            return int(q[: -len(suffix)]) * mul
    return int(q) * 10**9


def _bytes(q: str) -> int:
    for i, suffix in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), start=1):
        if q.endswith(suffix):
            return int(q[:-2]) * 1024**i
    return int(q)
