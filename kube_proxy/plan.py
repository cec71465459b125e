"""The pure half of a sync: Services + EndpointSlices + this node → the listeners kube-proxy must hold.

`plan(services, slices, node)` returns a `Plan`: for every (ip, port, protocol) this node's proxy
must listen on, the `Route` saying which service port it serves, the endpoints new connections may
go to and the session affinity. Nothing here does I/O, so every rule is unit-tested on its own.

The rules are upstream kube-proxy's (pkg/proxy/topology.go `CategorizeEndpoints`, servicechangetracker,
endpointslicecache), in the userspace proxy's terms:
- a service port matches the EndpointSlice port with the same name and protocol, whose number is the
  resolved targetPort (so a named targetPort resolves through the slice's ports);
- usable ("cluster") endpoints are the ready ones; when none is ready anywhere, the serving-and-
  terminating ones (upstream's fallback). A not-ready or terminating endpoint otherwise gets no new
  connection;
- `internalTrafficPolicy: Local` restricts ClusterIP traffic, and `externalTrafficPolicy: Local`
  NodePort / LoadBalancer / external-IP traffic, to the endpoints whose `nodeName` is this node
  (ready ones, else serving-and-terminating ones);
- a listener whose endpoint list is empty is not planned at all: nothing listens, so the kernel
  refuses the connection at once (upstream's REJECT). With eTP Local this also means a node without
  local endpoints does not bind the LoadBalancer and external IPs;
- ClusterIPs, LoadBalancer ingress IPs and externalIPs are bound by every node's proxy with
  SO_REUSEPORT (all nodes share the host's network namespace); NodePorts only on this node's address.
Headless and ExternalName Services, Services labelled `service.kubernetes.io/service-proxy-name`
(another proxy's) and protocols other than TCP/UDP get no listener; LoadBalancer ingress entries with
`ipMode: Proxy` are left to the load balancer, as upstream does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "DEFAULT_AFFINITY_TIMEOUT",
    "HEADLESS_LABEL",
    "SERVICE_NAME_LABEL",
    "SERVICE_PROXY_NAME_LABEL",
    "Endpoint",
    "ListenerKey",
    "NodeInfo",
    "Plan",
    "PortRef",
    "Route",
    "plan",
]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds, v1.DefaultClientIPServiceAffinitySeconds
PROTOCOLS = ("TCP", "UDP")

Obj = Mapping[str, Any]


class Endpoint(NamedTuple):
    """One backend address a connection can be forwarded to."""

    ip: str
    port: int


class ListenerKey(NamedTuple):
    """Where a listener is bound."""

    ip: str
    port: int
    protocol: str


@dataclass(frozen=True, order=True)
class PortRef:
    """A service port (upstream's ServicePortName): what metrics and logs name a listener by."""

    namespace: str
    service: str
    port: str  # the port's name, or its number when unnamed
    protocol: str = "TCP"

    def __str__(self) -> str:
        """`namespace/service:port/protocol`."""
        return f"{self.namespace}/{self.service}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Route:
    """What a listener does: which service port it serves and where new connections go."""

    ref: PortRef
    endpoints: tuple[Endpoint, ...]
    local: bool = False  # endpoints restricted to this node by a Local traffic policy
    affinity_timeout: float | None = None  # ClientIP session affinity timeout in seconds; None: no affinity
    reuse_port: bool = True  # bound with SO_REUSEPORT, shared with the other nodes' proxies

    @property
    def balancer_key(self) -> tuple[PortRef, bool]:
        """Listeners with the same key share one round-robin position and affinity table."""
        return (self.ref, self.local)


@dataclass(frozen=True)
class NodeInfo:
    """This proxy's node: its name (as in `nodeName` of endpoints) and the address its NodePorts bind."""

    name: str
    address: str


@dataclass
class Plan:
    """The desired listeners, every service port proxied (with or without endpoints), and warnings
    about objects that could not be planned."""

    listeners: dict[ListenerKey, Route] = field(default_factory=dict)
    ports: set[PortRef] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Candidate:
    """One endpoint of one service port, with its conditions, as read from a slice."""

    endpoint: Endpoint
    node: str
    ready: bool
    serving: bool
    terminating: bool


def _dict(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _ipv4(value: Any) -> str | None:
    """The canonical text of an IPv4 address, or None."""
    if not isinstance(value, str):
        return None
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    return str(ip) if ip.version == 4 else None


def _port_number(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= 65535 else None


def _conditions(ep: Obj) -> tuple[bool, bool, bool]:
    """(ready, serving, terminating) with upstream's defaults for absent conditions."""
    cond = _dict(ep.get("conditions"))
    ready = cond.get("ready") is not False  # nil means ready
    serving = ready if cond.get("serving") is None else bool(cond.get("serving"))
    terminating = bool(cond.get("terminating"))
    return ready, serving, terminating


def _slice_candidates(slices: Iterable[Obj]) -> dict[tuple[str, str], dict[tuple[str, str], list[_Candidate]]]:
    """(namespace, service) → (port name, protocol) → endpoints, merged over the service's slices."""
    out: dict[tuple[str, str], dict[tuple[str, str], dict[Endpoint, _Candidate]]] = {}
    for s in slices:
        meta = _dict(s.get("metadata"))
        svc = _dict(meta.get("labels")).get(SERVICE_NAME_LABEL)
        if not svc or s.get("addressType", "IPv4") != "IPv4":
            continue
        by_port = out.setdefault((str(meta.get("namespace") or ""), svc), {})
        for p in _list(s.get("ports")):
            p = _dict(p)
            number = _port_number(p.get("port"))
            if number is None:
                continue
            bucket = by_port.setdefault((str(p.get("name") or ""), str(p.get("protocol") or "TCP")), {})
            for ep in _list(s.get("endpoints")):
                ep = _dict(ep)
                ip = next((a for a in map(_ipv4, _list(ep.get("addresses"))) if a), None)
                if ip is None:
                    continue
                ready, serving, terminating = _conditions(ep)
                key = Endpoint(ip, number)
                prev = bucket.get(key)
                # the same endpoint in two slices (mid-move between slices): the ready copy wins
                if prev is None or (ready and not prev.ready):
                    bucket[key] = _Candidate(key, str(ep.get("nodeName") or ""), ready, serving, terminating)
    return {svc: {port: list(eps.values()) for port, eps in ports.items()} for svc, ports in out.items()}


def _usable(cands: list[_Candidate], node: str | None) -> tuple[Endpoint, ...]:
    """Ready endpoints (on `node` when given), else serving-and-terminating ones; sorted."""
    pool = [c for c in cands if node is None or c.node == node]
    chosen = [c for c in pool if c.ready] or [c for c in pool if c.serving and c.terminating]
    return tuple(sorted(c.endpoint for c in chosen))


def _affinity(spec: Obj) -> float | None:
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    timeout = _dict(_dict(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds")
    if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0:
        return float(timeout)
    return float(DEFAULT_AFFINITY_TIMEOUT)


def _external_ips(svc: Obj, spec: Obj, warn: list[str], name: str) -> list[str]:
    """spec.externalIPs, then (type LoadBalancer) status.loadBalancer.ingress[].ip not in ipMode Proxy."""
    raw = list(_list(spec.get("externalIPs")))
    if spec.get("type") == "LoadBalancer":
        for ing in _list(_dict(_dict(svc.get("status")).get("loadBalancer")).get("ingress")):
            ing = _dict(ing)
            if ing.get("ip") and ing.get("ipMode") != "Proxy":
                raw.append(ing["ip"])
    out: list[str] = []
    for value in raw:
        ip = _ipv4(value)
        if ip is None:
            warn.append(f"service {name}: ignoring external address {value!r} (not an IPv4 address)")
        elif ip not in out:
            out.append(ip)
    return out


def plan(services: Iterable[Obj], slices: Iterable[Obj], node: NodeInfo) -> Plan:
    """The listeners this node's proxy must hold for these Services and EndpointSlices."""
    result = Plan()
    endpoints = _slice_candidates(slices)

    def add(key: ListenerKey, route: Route) -> None:
        if not route.endpoints:
            return  # nothing listens: connections are refused at once
        held = result.listeners.get(key)
        if held is not None and held.ref != route.ref:
            result.warnings.append(f"{key.ip}:{key.port}/{key.protocol} wanted by {route.ref} is held by {held.ref}")
            return
        result.listeners.setdefault(key, route)

    def order(s: Obj) -> tuple[str, str]:
        m = _dict(s.get("metadata"))
        return (str(m.get("namespace") or ""), str(m.get("name") or ""))

    for svc in sorted((s for s in services if isinstance(s, Mapping)), key=order):
        meta, spec = _dict(svc.get("metadata")), _dict(svc.get("spec"))
        namespace, name = order(svc)
        if SERVICE_PROXY_NAME_LABEL in _dict(meta.get("labels")) or spec.get("type") == "ExternalName":
            continue
        cluster_ip = spec.get("clusterIP")
        if cluster_ip in (None, "", "None"):
            continue  # headless: DNS answers with the endpoints, nothing to proxy
        full = f"{namespace}/{name}"
        cluster_ip = _ipv4(cluster_ip)
        if cluster_ip is None:
            result.warnings.append(f"service {full}: clusterIP {spec.get('clusterIP')!r} is not an IPv4 address")
            continue
        node_ports = spec.get("type") in ("NodePort", "LoadBalancer")
        internal_local = spec.get("internalTrafficPolicy") == "Local"
        external_local = spec.get("externalTrafficPolicy") == "Local"
        affinity = _affinity(spec)
        external_ips = _external_ips(svc, spec, result.warnings, full)
        by_port = endpoints.get((namespace, name), {})
        for p in _list(spec.get("ports")):
            p = _dict(p)
            protocol = str(p.get("protocol") or "TCP")
            port = _port_number(p.get("port"))
            if protocol not in PROTOCOLS or port is None:
                continue
            port_name = str(p.get("name") or "")
            ref = PortRef(namespace, name, port_name or str(port), protocol)
            result.ports.add(ref)
            cands = by_port.get((port_name, protocol), [])
            internal = _usable(cands, node.name if internal_local else None)
            external = _usable(cands, node.name if external_local else None)
            add(ListenerKey(cluster_ip, port, protocol), Route(ref, internal, internal_local, affinity))
            node_port = _port_number(p.get("nodePort"))
            if node_ports and node_port is not None:
                route = Route(ref, external, external_local, affinity, reuse_port=False)
                add(ListenerKey(node.address, node_port, protocol), route)
            for ip in external_ips:
                add(ListenerKey(ip, port, protocol), Route(ref, external, external_local, affinity))
    return result
