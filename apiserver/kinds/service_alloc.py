"""The allocations of one Service write: cluster IPs and node ports, as upstream's service REST does.

A create or update allocates what the new Service needs (IPAddress objects, node-port keys) before
the Service is written and notes what the old Service held that the new one no longer does. When
the write is stored, the noted values are released; when it is not (a conflict, a failure, an
AlreadyExists), what was allocated is released instead, so nothing leaks and nothing is freed that
the stored Service still uses. Follows pkg/registry/core/service/storage/alloc.go.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

import orjson

from apimachinery import errors
from apiserver.ipallocator import IPAllocationError, IPAllocator, service_ref
from apiserver.portallocator import PortAllocationError, PortAllocator

__all__ = [
    "ServiceAllocation",
    "needs_cluster_ip",
    "needs_hc_node_port",
    "needs_node_port",
    "release_all",
]

log = logging.getLogger("apiserver.services")


def needs_cluster_ip(spec: dict[str, Any]) -> bool:
    """Every type but ExternalName has cluster IPs (or is headless)."""
    return spec.get("type", "ClusterIP") != "ExternalName"


def needs_node_port(spec: dict[str, Any]) -> bool:
    """NodePort and LoadBalancer Services have node ports."""
    return spec.get("type") in ("NodePort", "LoadBalancer")


def needs_hc_node_port(spec: dict[str, Any]) -> bool:
    """A LoadBalancer with externalTrafficPolicy Local gets a health-check node port."""
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _should_allocate_node_ports(spec: dict[str, Any]) -> bool:
    if spec.get("type") == "NodePort":
        return True
    return spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


def _headless(spec: dict[str, Any]) -> bool:
    ips = spec.get("clusterIPs") or []
    return bool(ips) and ips[0] == "None"


def _node_ports(spec: dict[str, Any]) -> list[int]:
    """The distinct node ports of a Service's ports (a port number shared by TCP and UDP counts once)."""
    out: list[int] = []
    for p in spec.get("ports") or []:
        n = p.get("nodePort") if isinstance(p, dict) else None
        if isinstance(n, int) and n and n not in out:
            out.append(n)
    return out


def _cluster_ips(spec: dict[str, Any]) -> list[str]:
    return [ip for ip in spec.get("clusterIPs") or [] if ip and ip != "None"]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _invalid(name: str, field: str, value: Any, detail: str) -> errors.StatusError:
    text = str(value) if isinstance(value, int) else _json(value)
    return errors.invalid("Service", name, [errors.Cause(field, f"Invalid value: {text}: {detail}")])


class ServiceAllocation:
    """Allocations made for one write of one Service, and the releases it owes once stored."""

    def __init__(self, ips: IPAllocator, ports: PortAllocator, service: dict[str, Any], dry_run: bool) -> None:
        m = service.get("metadata") or {}
        self.ips = ips
        self.ports = ports
        self.dry_run = dry_run
        self.name = m.get("name", "")
        self.parent = service_ref(m.get("namespace", ""), self.name)
        self.owner = {"namespace": m.get("namespace", ""), "name": self.name, "uid": m.get("uid", "")}
        self.taken_ips: list[str] = []
        self.taken_ports: list[int] = []
        self.freed_ips: list[str] = []
        self.freed_ports: list[int] = []

    # --- create ----------------------------------------------------------------------------
    async def on_create(self, spec: dict[str, Any]) -> None:
        """Allocate the cluster IP, node ports and health-check node port of a new Service."""
        try:
            # independent etcd writes: made side by side; the IP's error is reported first, as upstream
            outcomes = await asyncio.gather(
                self._alloc_cluster_ips(spec), self._alloc_create_ports(spec), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        except BaseException:
            await self.finish(False)
            raise

    async def _alloc_create_ports(self, spec: dict[str, Any]) -> None:
        if needs_node_port(spec):
            await self._init_node_ports(spec)
        if needs_hc_node_port(spec):
            await self._alloc_hc_node_port(spec)

    # --- update ----------------------------------------------------------------------------
    async def on_update(self, spec: dict[str, Any], old: dict[str, Any]) -> None:
        """Allocate what an updated Service newly needs; note what the old one held and this one drops."""
        try:
            await self._update_cluster_ips(spec, old)
            await self._update_node_ports(spec, old)
            await self._update_hc_node_port(spec, old)
        except BaseException:
            await self.finish(False)
            raise

    # --- finishing -------------------------------------------------------------------------
    async def finish(self, stored: bool) -> None:
        """Stored: release what the old Service held and the new one does not. Not stored: undo allocations."""
        if self.dry_run:
            return
        ips, ports = (self.freed_ips, self.freed_ports) if stored else (self.taken_ips, self.taken_ports)
        for ip in ips:
            await self.ips.release(ip, self.parent)
        for port in ports:
            await self.ports.release(port, self.owner)
        self.taken_ips, self.taken_ports, self.freed_ips, self.freed_ports = [], [], [], []

    # --- cluster IPs -----------------------------------------------------------------------
    async def _alloc_cluster_ips(self, spec: dict[str, Any]) -> None:
        if not needs_cluster_ip(spec):
            return
        if _headless(spec):
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            return
        requested = (spec.get("clusterIPs") or [""])[0] or spec.get("clusterIP") or ""
        family = ipaddress.ip_address(requested).version if requested else self.ips.default.version
        if requested:
            try:
                await self.ips.allocate(requested, self.parent, self.dry_run)
            except IPAllocationError as e:
                value = spec.get("clusterIPs") or [requested]
                raise _invalid(self.name, "spec.clusterIPs", value, f"failed to allocate IP {requested}: {e}") from None
            ip = requested
        else:
            try:
                ip = await self.ips.allocate_next(self.parent, self.dry_run, family)
            except IPAllocationError as e:
                raise errors.internal_error(f"failed to allocate a serviceIP: {e}") from None
        if not self.dry_run:
            self.taken_ips.append(ip)
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
        spec.setdefault("ipFamilies", [f"IPv{family}"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")

    async def _update_cluster_ips(self, spec: dict[str, Any], old: dict[str, Any]) -> None:
        if not needs_cluster_ip(old) and needs_cluster_ip(spec):  # ExternalName → a type with an IP
            await self._alloc_cluster_ips(spec)
            return
        if _headless(old):
            return
        if needs_cluster_ip(old) and not needs_cluster_ip(spec):  # → ExternalName: free after the write
            self.freed_ips.extend(_cluster_ips(old))

    # --- node ports ------------------------------------------------------------------------
    async def _allocate_port(self, port: int, index: int) -> None:
        try:
            await self.ports.allocate(port, self.owner, self.dry_run)
        except PortAllocationError as e:
            raise _invalid(self.name, f"spec.ports[{index}].nodePort", port, str(e)) from None
        if not self.dry_run:
            self.taken_ports.append(port)

    async def _allocate_next_port(self, avoid: set[int]) -> int:
        try:
            port = await self.ports.allocate_next(self.owner, self.dry_run, avoid)
        except PortAllocationError as e:
            raise errors.internal_error(f"failed to allocate a nodePort: {e}") from None
        if not self.dry_run:
            self.taken_ports.append(port)
        return port

    async def _init_node_ports(self, spec: dict[str, Any]) -> None:
        """Create: one node port per distinct service port number; requested ones are honoured."""
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        should = _should_allocate_node_ports(spec)
        by_service_port: dict[Any, int] = {}
        used: set[int] = set()
        for i, p in enumerate(ports):
            node_port = p.get("nodePort") or 0
            if not node_port and not should:
                continue  # no new allocations, but explicit requests are honoured
            allocated = by_service_port.get(p.get("port"), 0)
            if not allocated:
                requested = next(
                    (q.get("nodePort") for q in ports if q.get("port") == p.get("port") and q.get("nodePort")), 0
                )
                if requested:
                    await self._allocate_port(requested, i)
                    node_port = requested
                else:
                    node_port = await self._allocate_next_port(used)
                p["nodePort"] = node_port
                by_service_port[p.get("port")] = node_port
                used.add(node_port)
            elif node_port != allocated:
                if not node_port:
                    p["nodePort"] = allocated
                elif node_port not in used:
                    await self._allocate_port(node_port, i)
                    used.add(node_port)

    async def _update_node_ports(self, spec: dict[str, Any], old: dict[str, Any]) -> None:
        if needs_node_port(old) and not needs_node_port(spec):
            self.freed_ports.extend(_node_ports(old))
            return
        if not needs_node_port(spec):
            return
        old_ports = set(_node_ports(old))
        should = _should_allocate_node_ports(spec)
        allocated: set[int] = set()
        for i, p in enumerate(spec.get("ports") or []):
            if not isinstance(p, dict):
                continue
            node_port = p.get("nodePort") or 0
            if not node_port and not should:
                continue
            if node_port:
                if node_port not in old_ports and node_port not in allocated:
                    await self._allocate_port(node_port, i)
                    allocated.add(node_port)
            else:
                p["nodePort"] = await self._allocate_next_port(old_ports | allocated)
                allocated.add(p["nodePort"])
        kept = set(_node_ports(spec))
        self.freed_ports.extend(n for n in _node_ports(old) if n not in kept)

    async def _alloc_hc_node_port(self, spec: dict[str, Any]) -> None:
        requested = spec.get("healthCheckNodePort") or 0
        if requested:
            try:
                await self.ports.allocate(requested, self.owner, self.dry_run)
            except PortAllocationError as e:
                raise errors.internal_error(
                    f"failed to allocate requested HealthCheck NodePort {requested}: {e}"
                ) from None
            if not self.dry_run:
                self.taken_ports.append(requested)
        else:
            spec["healthCheckNodePort"] = await self._allocate_next_port(set(_node_ports(spec)))

    async def _update_hc_node_port(self, spec: dict[str, Any], old: dict[str, Any]) -> None:
        needed, needs = needs_hc_node_port(old), needs_hc_node_port(spec)
        if not needed and needs:
            await self._alloc_hc_node_port(spec)
        elif needed and not needs and old.get("healthCheckNodePort"):
            self.freed_ports.append(old["healthCheckNodePort"])


async def release_all(ips: IPAllocator, ports: PortAllocator, service: dict[str, Any]) -> None:
    """Free every cluster IP and node port a deleted Service held."""
    m, spec = service.get("metadata") or {}, service.get("spec") or {}
    parent = service_ref(m.get("namespace", ""), m.get("name", ""))
    owner = {"namespace": m.get("namespace", ""), "name": m.get("name", ""), "uid": m.get("uid", "")}
    for ip in _cluster_ips(spec):
        await ips.release(ip, parent)
    held = _node_ports(spec)
    if spec.get("healthCheckNodePort"):
        held.append(spec["healthCheckNodePort"])
    for port in held:
        await ports.release(port, owner)
