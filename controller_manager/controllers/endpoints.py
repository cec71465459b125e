"""The endpoints controller (upstream pkg/controller/endpoint): for each Service with a selector, an
Endpoints object named after it listing the selected pods' IPs — ready pods in `addresses`, the
others in `notReadyAddresses` — with ports resolved per pod from each service port's targetPort.

The pure helpers here (which pods count, port resolution, subset packing) are shared with the
EndpointSlice controller.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apimachinery.errors import StatusError
from apimachinery.meta import parse_time
from apimachinery.selectors import selector_from_map
from client.request import Obj
from client.store import NAMESPACE_INDEX, namespace_indexer
from controller_manager.base import Controller, split_key
from controller_manager.controllers import register
from controller_manager.podtemplate import is_pod_ready

__all__ = [
    "HEADLESS_LABEL",
    "SKIP_MIRROR_LABEL",
    "EndpointsController",
    "build_subsets",
    "find_port",
    "pod_ip",
    "selected_pods",
    "service_keys_for_pod",
    "should_pod_be_in_endpoints",
    "should_set_hostname",
]

SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


def pod_ip(pod: Obj) -> str:
    """The pod's primary IP, or ''."""
    status = pod.get("status") or {}
    if status.get("podIP"):
        return str(status["podIP"])
    ips = status.get("podIPs") or []
    return str(ips[0].get("ip", "")) if ips else ""


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """Upstream's ShouldPodBeInEndpoints: has an IP, not terminal, terminating only if asked."""
    if not pod_ip(pod):
        return False
    if not include_terminating and (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    phase = (pod.get("status") or {}).get("phase")
    policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def find_port(pod: Obj, service_port: dict[str, Any]) -> int | None:
    """The pod's port for a service port (upstream podutil.FindPort): a number as is, a name via containerPorts."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target:
        protocol = service_port.get("protocol") or "TCP"
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or []) + [
            c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
        ]
        for c in containers:
            for p in c.get("ports") or []:
                if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                    return int(p["containerPort"])
    return None


def should_set_hostname(pod: Obj, service: Obj) -> bool:
    """A pod's hostname is published when its subdomain names the service."""
    spec = pod.get("spec") or {}
    svc_name = (service.get("metadata") or {}).get("name")
    return bool(spec.get("hostname")) and spec.get("subdomain") == svc_name


def selected_pods(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """Pods in the service's namespace matched by its selector."""
    selector = selector_from_map((service.get("spec") or {}).get("selector") or {})
    return [p for p in pods if selector.matches((p.get("metadata") or {}).get("labels") or {})]


def service_keys_for_pod(services: Iterable[Obj], *pods: Obj) -> set[str]:
    """Keys of the services (with selectors) that select any of these versions of a pod."""
    keys: set[str] = set()
    for svc in services:
        sel = (svc.get("spec") or {}).get("selector")
        if not sel:
            continue
        selector = selector_from_map(sel)
        for pod in pods:
            if selector.matches((pod.get("metadata") or {}).get("labels") or {}):
                m = svc["metadata"]
                keys.add(f"{m['namespace']}/{m['name']}")
                break
    return keys


def _address(pod: Obj, service: Obj) -> dict[str, Any]:
    m = pod.get("metadata") or {}
    addr: dict[str, Any] = {"ip": pod_ip(pod)}
    if should_set_hostname(pod, service):
        addr["hostname"] = pod["spec"]["hostname"]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    addr["targetRef"] = {"kind": "Pod", "namespace": m.get("namespace"), "name": m.get("name"), "uid": m.get("uid")}
    return addr


def _endpoint_port(service_port: dict[str, Any], number: int) -> dict[str, Any]:
    port: dict[str, Any] = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def build_subsets(service: Obj, pods: Iterable[Obj]) -> list[dict[str, Any]]:
    """Endpoints subsets for the service's pods, packed like upstream's RepackSubsets (sorted, deduplicated)."""
    spec = service.get("spec") or {}
    tolerate = bool(spec.get("publishNotReadyAddresses"))
    svc_ports = spec.get("ports") or []
    # (address json, ready) → set of port tuples
    by_addr: dict[tuple[str, bool], tuple[dict[str, Any], set[tuple[Any, ...]]]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, tolerate):
            continue
        addr = _address(pod, service)
        ready = tolerate or is_pod_ready(pod)
        ports: set[tuple[Any, ...]] = set()
        if svc_ports:
            for sp in svc_ports:
                number = find_port(pod, sp)
                if number is not None:
                    ports.add(tuple(sorted(_endpoint_port(sp, number).items())))
            if not ports:
                continue
        elif spec.get("clusterIP") != "None":
            continue
        ident = (repr(sorted(addr.items(), key=lambda kv: kv[0])), ready)
        by_addr.setdefault(ident, (addr, set()))[1].update(ports)
    groups: dict[tuple[tuple[Any, ...], ...], dict[str, list[dict[str, Any]]]] = {}
    for (_, ready), (addr, ports) in by_addr.items():
        key = tuple(sorted(ports, key=repr))
        group = groups.setdefault(key, {"addresses": [], "notReadyAddresses": []})
        group["addresses" if ready else "notReadyAddresses"].append(addr)
    subsets = []
    for ports_key in sorted(groups, key=repr):
        group = groups[ports_key]
        subset: dict[str, Any] = {}
        for field in ("addresses", "notReadyAddresses"):
            if group[field]:
                subset[field] = sorted(group[field], key=lambda a: (_ip_sort_key(a["ip"]), a["targetRef"]["uid"]))
        if ports_key:
            subset["ports"] = sorted(
                (dict(p) for p in ports_key), key=lambda p: (p.get("name", ""), p["port"], p["protocol"])
            )
        subsets.append(subset)
    return subsets


def _ip_sort_key(ip: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in ip.split("."))
    except ValueError:
        return (1 << 32,)


def endpoints_labels(service: Obj) -> dict[str, str]:
    """The service's labels plus the skip-mirror label, and the headless label for clusterIP None."""
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    labels.pop(HEADLESS_LABEL, None)
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    labels[SKIP_MIRROR_LABEL] = "true"
    return labels


class TriggerTimeTracker:
    """Upstream's TriggerTimeTracker: the earliest change (pod Ready transition, service creation) not yet
    reflected in a write, for the endpoints.kubernetes.io/last-change-trigger-time annotation.

    A sync's changes count as reflected only once its write succeeded (`written`): a write refused by a
    conflict is retried with the same trigger time instead of none."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, dict[str, str]]] = {}
        self._pending: dict[str, tuple[str, dict[str, str]]] = {}

    def compute(self, key: str, service: Obj, pods: Iterable[Obj]) -> str:
        """The trigger time for this sync ('' when nothing observable changed)."""
        svc_time = str((service.get("metadata") or {}).get("creationTimestamp") or "")
        pod_times = {}
        for pod in pods:
            ready = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
            pod_times[str(pod["metadata"].get("uid"))] = str(ready.get("lastTransitionTime") or "")
        old_svc, old_pods = self._seen.get(key, ("", {}))
        changed = [t for uid, t in pod_times.items() if t and old_pods.get(uid) != t]
        if svc_time and svc_time != old_svc:
            changed.append(svc_time)
        self._pending[key] = (svc_time, pod_times)
        return min(changed, key=_rfc3339_key) if changed else ""

    def written(self, key: str) -> None:
        """The last `compute` of `key` is reflected in the Endpoints now (written, or already equal)."""
        pending = self._pending.pop(key, None)
        if pending is not None:
            self._seen[key] = pending

    def forget(self, key: str) -> None:
        """Drop a deleted service's state."""
        self._seen.pop(key, None)
        self._pending.pop(key, None)


def _rfc3339_key(ts: str) -> float:
    try:
        return parse_time(ts).timestamp()
    except ValueError:
        return float("inf")


class ServicePodsController(Controller):
    """Base of the controllers keyed by Service that follow the pods its selector picks."""

    def watch_services_and_pods(self) -> None:
        """Queue a Service when it changes, and every Service whose selector a changed pod matches (or did)."""
        idx = {NAMESPACE_INDEX: namespace_indexer}
        self.services = self.ctx.factory.informer("services", indexers=idx)
        self.services.add_handler(**self.handlers())
        self.pods = self.ctx.factory.informer("pods", indexers=idx)
        self.pods.add_handler(
            on_add=lambda p: self._pod_changed(p),
            on_update=lambda old, new: self._pod_changed(old, new),
            on_delete=lambda p: self._pod_changed(p),
        )

    def _pod_changed(self, *versions: Obj) -> None:
        ns = (versions[-1].get("metadata") or {}).get("namespace", "")
        for key in service_keys_for_pod(self.services.store.by_index(NAMESPACE_INDEX, ns), *versions):
            self.queue.add(key)


@register
class EndpointsController(ServicePodsController):
    """Keeps an Endpoints object per selector Service in step with its pods."""

    name = "endpoints"
    event_source = "endpoint-controller"
    workers = 2

    def setup(self) -> None:
        self.watch_services_and_pods()
        self.endpoints = self.ctx.factory.informer("endpoints")
        self.endpoints.add_handler(on_delete=self._endpoints_deleted)
        self.triggers = TriggerTimeTracker()

    async def run(self) -> None:
        """Start like any controller, first queueing every Endpoints so leftovers of deleted services go."""
        await self.ctx.factory.wait_for_sync()
        for ep in self.endpoints.store.list():  # upstream checkLeftoverEndpoints
            if LEADER_ANNOTATION not in ((ep.get("metadata") or {}).get("annotations") or {}):
                self.enqueue(ep)
        await super().run()

    def _endpoints_deleted(self, ep: Obj) -> None:
        m = ep.get("metadata") or {}
        if self.services.store.get_by_name(m.get("name", ""), m.get("namespace")) is not None:
            self.enqueue(ep)

    async def sync(self, key: str) -> None:
        """Reconcile the Endpoints of one Service."""
        namespace, name = split_key(key)
        service = self.services.store.get(key)
        if service is None:
            self.triggers.forget(key)
            try:
                await self.api.delete("endpoints", name, namespace)
            except StatusError as e:
                if e.code != 404:
                    raise
            return
        if not (service.get("spec") or {}).get("selector"):
            return
        pods = selected_pods(service, self.pods.store.by_index(NAMESPACE_INDEX, namespace or ""))
        trigger = self.triggers.compute(key, service, pods)
        subsets = build_subsets(service, pods)
        labels = endpoints_labels(service)
        current = self.endpoints.store.get(key)
        if current is not None and (current.get("subsets") or []) == subsets:
            if ((current.get("metadata") or {}).get("labels") or {}) == labels:
                self.triggers.written(key)
                return
        cm = (current or {}).get("metadata") or {}
        annotations = dict(cm.get("annotations") or {})
        if trigger:
            annotations[TRIGGER_TIME_ANNOTATION] = trigger
        else:
            annotations.pop(TRIGGER_TIME_ANNOTATION, None)
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {**cm, "name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
        }
        if not annotations:
            body["metadata"].pop("annotations")
        if subsets:
            body["subsets"] = subsets
        try:
            if current is None:
                await self.api.create("endpoints", body, namespace)
            else:
                await self.api.update("endpoints", body, namespace)
        except StatusError as e:
            if e.code == 403 and "being terminated" in e.message:
                return
            if e.code == 409:
                raise
            verb = "create" if current is None else "update"
            reason = "FailedToCreateEndpoint" if current is None else "FailedToUpdateEndpoint"
            self.events.record(service, "Warning", reason, f"Failed to {verb} endpoint {key}: {e}")
            raise
        self.triggers.written(key)
