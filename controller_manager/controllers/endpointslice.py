"""The EndpointSlice controller (upstream pkg/controller/endpointslice): discovery.k8s.io/v1
EndpointSlices for each Service with a selector, owned by the Service, one set of slices per
distinct resolved port list, at most 100 endpoints a slice, and a placeholder slice (no endpoints)
when nothing matches.

Each endpoint carries conditions ready/serving/terminating as upstream: serving = pod Ready,
terminating = pod being deleted, ready = serving and not terminating (or publishNotReadyAddresses).
Slices are written only when they differ; a small tracker of our own writes keeps a sync from
acting on a cache that has not yet seen them (upstream's EndpointSliceTracker).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from apimachinery.errors import StatusError
from client.request import DeleteOptions, Obj, Preconditions
from client.store import NAMESPACE_INDEX
from controller_manager.base import split_key
from controller_manager.controllers import register
from controller_manager.controllers.endpoints import (
    HEADLESS_LABEL,
    ServicePodsController,
    find_port,
    pod_ip,
    selected_pods,
    should_pod_be_in_endpoints,
    should_set_hostname,
)
from controller_manager.podtemplate import is_pod_ready

__all__ = [
    "CONTROLLER_NAME",
    "MANAGED_BY_LABEL",
    "MAX_ENDPOINTS_PER_SLICE",
    "SERVICE_NAME_LABEL",
    "EndpointSliceController",
    "desired_groups",
    "pod_to_endpoint",
]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
ZONE_LABEL = "topology.kubernetes.io/zone"
_SERVICE_INDEX = "service"
_TRACK_TTL = 10.0
_MAX_NODE_BACKOFF = 300.0

PortsKey = tuple[tuple[tuple[str, Any], ...], ...]


def pod_to_endpoint(pod: Obj, service: Obj, node: Obj | None = None) -> dict[str, Any]:
    """The EndpointSlice endpoint for a pod (upstream podToEndpoint); the node gives the zone."""
    m = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    serving = is_pod_ready(pod)
    terminating = bool(m.get("deletionTimestamp"))
    ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses")) or (serving and not terminating)
    ep: dict[str, Any] = {
        "addresses": [pod_ip(pod)],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
    }
    if should_set_hostname(pod, service):
        ep["hostname"] = spec["hostname"]
    ep["targetRef"] = {"kind": "Pod", "namespace": m.get("namespace"), "name": m.get("name"), "uid": m.get("uid")}
    if spec.get("nodeName"):
        ep["nodeName"] = spec["nodeName"]
    zone = ((node or {}).get("metadata") or {}).get("labels", {}).get(ZONE_LABEL)
    if zone:
        ep["zone"] = zone
    return ep


def _endpoint_ports(service: Obj, pod: Obj) -> list[dict[str, Any]]:
    ports = []
    for sp in (service.get("spec") or {}).get("ports") or []:
        number = find_port(pod, sp)
        if number is None:
            continue
        port: dict[str, Any] = {"name": sp.get("name", ""), "port": number, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        ports.append(port)
    return ports


def _ports_key(ports: list[dict[str, Any]]) -> PortsKey:
    return tuple(sorted(tuple(sorted(p.items())) for p in ports))


def _ep_sort_key(ep: dict[str, Any]) -> tuple[str, str]:
    return (ep["addresses"][0], (ep.get("targetRef") or {}).get("uid", ""))


def desired_groups(
    service: Obj, pods: list[Obj], nodes: Callable[[str], Obj | None] | None = None
) -> tuple[dict[PortsKey, tuple[list[dict[str, Any]], list[dict[str, Any]]]], list[str]]:
    """ports key → (ports, endpoints sorted) for the IPv4 pods the service selects, and the pods skipped
    because their node is unknown (upstream leaves them out unless publishNotReadyAddresses)."""
    groups: dict[PortsKey, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    skipped: list[str] = []
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, True) or ":" in pod_ip(pod):
            continue
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        node = nodes(node_name) if nodes else None
        if nodes and node is None and not publish:
            skipped.append(pod["metadata"]["name"])
            continue
        ports = sorted(_endpoint_ports(service, pod), key=lambda p: (p["name"], p["port"], p["protocol"]))
        groups.setdefault(_ports_key(ports), (ports, []))[1].append(pod_to_endpoint(pod, service, node))
    for _, eps in groups.values():
        eps.sort(key=_ep_sort_key)
    return groups, skipped


def slice_labels(service: Obj) -> dict[str, str]:
    """The service's labels (reserved ones replaced), service-name, managed-by and headless."""
    m = service.get("metadata") or {}
    labels = {
        k: v
        for k, v in (m.get("labels") or {}).items()
        if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
    }
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = m.get("name", "")
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def _service_ref(service: Obj) -> dict[str, Any]:
    m = service.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": m.get("name"),
        "uid": m.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _service_index(obj: Obj) -> list[str]:
    m = obj.get("metadata") or {}
    labels = m.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{m.get('namespace')}/{labels[SERVICE_NAME_LABEL]}"]


@register
class EndpointSliceController(ServicePodsController):
    """Keeps a Service's EndpointSlices in step with its pods."""

    name = "endpointslice"
    event_source = "endpoint-slice-controller"
    workers = 2

    def setup(self) -> None:
        self.watch_services_and_pods()
        self.nodes = self.ctx.factory.informer("nodes")
        self.nodes.add_handler(on_add=self._node_added)
        self.slices = self.ctx.factory.informer("endpointslices", indexers={_SERVICE_INDEX: _service_index})
        self.slices.add_handler(**self.handlers(self._slice_changed))
        # service key → (deadline, {slice name: resourceVersion we wrote, or None when we deleted it})
        self._written: dict[str, tuple[float, dict[str, str | None]]] = {}
        self._node_backoff: dict[str, float] = {}

    def _node_added(self, _node: Obj) -> None:
        for key in list(self._node_backoff):  # services waiting for a pod's node
            self.queue.add(key)

    def _slice_changed(self, obj: Obj) -> None:
        for key in _service_index(obj):
            self.queue.add(key)

    def _stale(self, key: str) -> bool:
        """Whether the slice cache has not yet caught up with our last writes for this service."""
        entry = self._written.get(key)
        if entry is None:
            return False
        deadline, names = entry
        if time.monotonic() > deadline:
            del self._written[key]
            return False
        ns, _ = split_key(key)
        for name, rv in names.items():
            cur = self.slices.store.get_by_name(name, ns)
            if rv is None and cur is not None:
                return True
            if rv is not None and (cur is None or int(cur["metadata"].get("resourceVersion", "0")) < int(rv)):
                return True
        del self._written[key]
        return False

    async def sync(self, key: str) -> None:
        """Reconcile the EndpointSlices of one Service."""
        namespace, _name = split_key(key)
        service = self.services.store.get(key)
        if service is None or not (service.get("spec") or {}).get("selector"):
            self._node_backoff.pop(key, None)
            self._written.pop(key, None)
            return  # slices of a deleted service go with it through the garbage collector
        if self._stale(key):
            self.requeue_after(key, 0.2)
            return
        pods = selected_pods(service, self.pods.store.by_index(NAMESPACE_INDEX, namespace or ""))
        groups, skipped = desired_groups(service, pods, self.nodes.store.get)
        if skipped:  # upstream retries the service, with backoff, until the pods' nodes show up
            delay = self._node_backoff[key] = min(self._node_backoff.get(key, 0.5) * 2, _MAX_NODE_BACKOFF)
            self.log.info("service %s: skipping pods %s, node not found; retry in %.0fs", key, skipped, delay)
            self.requeue_after(key, delay)
        else:
            self._node_backoff.pop(key, None)
        if not groups:
            groups = {(): ([], [])}  # placeholder slice
        try:
            await self._reconcile(key, service, groups)
        except StatusError as e:
            if e.code != 409:
                self.events.record(
                    service,
                    "Warning",
                    "FailedToUpdateEndpointSlices",
                    f"Error updating Endpoint Slices for Service {key}: {e}",
                )
            raise

    async def _reconcile(
        self, key: str, service: Obj, groups: dict[PortsKey, tuple[list[dict[str, Any]], list[dict[str, Any]]]]
    ) -> None:
        existing = [
            s
            for s in self.slices.store.by_index(_SERVICE_INDEX, key)
            if s.get("addressType") == "IPv4"
            and any(r.get("uid") == service["metadata"].get("uid") for r in s["metadata"].get("ownerReferences") or [])
        ]
        labels = slice_labels(service)
        written: dict[str, str | None] = {}
        used: set[str] = set()
        try:
            for pkey in sorted(groups, key=repr):
                ports, eps = groups[pkey]
                step = MAX_ENDPOINTS_PER_SLICE
                chunks = [eps[i : i + step] for i in range(0, len(eps), step)] or [[]]
                candidates = sorted(
                    (
                        s
                        for s in existing
                        if _ports_key(s.get("ports") or []) == pkey and s["metadata"]["name"] not in used
                    ),
                    key=lambda s: s["metadata"]["name"],
                )
                for i, chunk in enumerate(chunks):
                    if i < len(candidates):
                        cur = candidates[i]
                        used.add(cur["metadata"]["name"])
                        await self._update(service, cur, ports, chunk, labels, written)
                    else:
                        await self._create(service, ports, chunk, labels, written)
            for s in existing:
                if s["metadata"]["name"] not in used:
                    await self._delete(s, written)
        finally:
            if written:  # even after a failure: what we did write must be seen before the next pass
                self._written[key] = (time.monotonic() + _TRACK_TTL, written)

    def _body(
        self, service: Obj, ports: list[dict[str, Any]], eps: list[dict[str, Any]], labels: dict[str, str]
    ) -> Obj:
        m = service["metadata"]
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "generateName": f"{m['name']}-",
                "namespace": m["namespace"],
                "labels": labels,
                "ownerReferences": [_service_ref(service)],
            },
            "addressType": "IPv4",
            "endpoints": eps,
            "ports": ports,
        }

    async def _create(
        self, service: Obj, ports: list[dict[str, Any]], eps: list[dict[str, Any]], labels: dict[str, str], w: dict
    ) -> None:
        try:
            made = await self.api.create(
                "endpointslices", self._body(service, ports, eps, labels), service["metadata"]["namespace"]
            )
        except StatusError as e:
            if e.code == 403 and "being terminated" in e.message:
                return
            raise
        w[made["metadata"]["name"]] = made["metadata"]["resourceVersion"]

    async def _update(
        self,
        service: Obj,
        cur: Obj,
        ports: list[dict[str, Any]],
        eps: list[dict[str, Any]],
        labels: dict[str, str],
        w: dict,
    ) -> None:
        cm = cur["metadata"]
        same = (
            sorted(cur.get("endpoints") or [], key=_ep_sort_key) == eps
            and _ports_key(cur.get("ports") or []) == _ports_key(ports)
            and (cm.get("labels") or {}) == labels
        )
        if same:
            return
        body = self._body(service, ports, eps, labels)
        body["metadata"] = {**cm, "labels": labels}
        made = await self.api.update("endpointslices", body, cm["namespace"])
        w[cm["name"]] = made["metadata"]["resourceVersion"]

    async def _delete(self, cur: Obj, w: dict) -> None:
        cm = cur["metadata"]
        try:
            opts = DeleteOptions(preconditions=Preconditions(uid=cm.get("uid")))
            await self.api.delete("endpointslices", cm["name"], cm["namespace"], options=opts)
        except StatusError as e:
            if e.code != 404:
                raise
        w[cm["name"]] = None
