"""Keeps Service allocations in step with the Services themselves (upstream's ClusterIP and NodePort repair).

Allocation is create-if-absent in etcd, so a crash between allocating and writing the Service (or
between deleting it and releasing) can leave an IPAddress or a node-port key that nobody holds, and
Services written before allocation was recorded hold values with no record. At startup, and then
every interval, this pass reads Services, IPAddresses and node-port keys from etcd and:
- records every cluster IP and node port a Service holds that has no record (so it is never handed
  out again);
- deletes an IPAddress (managed by the allocator) or node-port key no Service holds, once it has been
  seen leaked on two passes in a row (a write between allocating and storing the Service is not a leak).
Several apiservers run it at once safely: recording is create-if-absent, releasing is conditional on the
record's uid (IPAddress) or revision (node port), and each process judges leaks on its own two passes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from apiserver.ipallocator import LABEL_MANAGED_BY, MANAGED_BY, IPAllocated, IPAllocator, service_ref
from apiserver.kinds.services import ServiceNetwork
from apiserver.portallocator import PREFIX as PORT_PREFIX
from apiserver.portallocator import PortAllocationError, PortAllocator
from apiserver.registry import Registry
from apiserver.storage import StoredObject

__all__ = ["ServiceRepair"]

log = logging.getLogger("apiserver.repair")


def _held_ips(svc: dict[str, Any]) -> list[str]:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return []
    return [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"]


def _held_ports(svc: dict[str, Any]) -> list[int]:
    spec = svc.get("spec") or {}
    out = [p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict)]
    out.append(spec.get("healthCheckNodePort"))
    return sorted({p for p in out if isinstance(p, int) and p > 0})


class ServiceRepair:
    """Repairs cluster-IP and node-port records against the Services in etcd."""

    def __init__(self, reg: Registry, network: ServiceNetwork) -> None:
        self.reg = reg
        self.ips = IPAllocator(reg, network.cluster_ip_range)
        self.ports = PortAllocator(reg.storage, reg.cache, network.node_port_range)
        self._suspect_ips: set[tuple[str, str]] = set()  # (ip, uid of its IPAddress)
        self._suspect_ports: set[tuple[int, int]] = set()  # (port, revision of its key)

    async def run(self, interval: float) -> None:
        """Repair every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once()
            except Exception:
                log.exception("service allocation repair failed; next try in %.0fs", interval)

    async def _list(self, prefix: str) -> list[StoredObject]:
        items, _, _ = await self.reg.storage.list(prefix)
        return items

    async def run_once(self) -> None:
        """One pass: record what Services hold, and delete records leaked on two passes in a row."""
        # the records first, then the Services: a Service deleted (and its records released, by this or
        # another apiserver) between the two reads is then not seen, rather than seen holding values whose
        # records are gone and recorded again for nobody
        addresses = await self._list("/registry/ipaddresses/")
        ports = await self._list(PORT_PREFIX)
        services = [s.obj for s in await self._list("/registry/services/")]
        await self._repair_ips(services, addresses)
        await self._repair_ports(services, ports)

    async def _repair_ips(self, services: list[dict[str, Any]], addresses: list[StoredObject]) -> None:
        by_ip = {a.obj["metadata"]["name"]: a.obj for a in addresses}
        holders: dict[str, dict[str, str]] = {}
        for svc in services:
            m = svc.get("metadata") or {}
            parent = service_ref(m.get("namespace", ""), m.get("name", ""))
            for ip in _held_ips(svc):
                holders[ip] = parent
                if ip in by_ip:
                    ref = (by_ip[ip].get("spec") or {}).get("parentRef")
                    if ref != parent:
                        ns, name = m.get("namespace"), m.get("name")
                        log.warning("cluster IP %s of Service %s/%s is allocated to %s", ip, ns, name, ref)
                    continue
                try:
                    await self.ips.claim(ip, parent)
                    log.info("recorded cluster IP %s of Service %s/%s", ip, m.get("namespace"), m.get("name"))
                except IPAllocated:
                    continue
        suspects: set[tuple[str, str]] = set()
        for ip, obj in by_ip.items():
            meta = obj.get("metadata") or {}
            if (meta.get("labels") or {}).get(LABEL_MANAGED_BY) != MANAGED_BY:
                continue
            if holders.get(ip) == (obj.get("spec") or {}).get("parentRef"):
                continue
            key = (ip, meta.get("uid", ""))
            if key not in self._suspect_ips:
                suspects.add(key)
                continue
            log.info("releasing leaked cluster IP %s (held by %s)", ip, (obj.get("spec") or {}).get("parentRef"))
            await self.ips.release(ip, (obj.get("spec") or {}).get("parentRef") or {}, key[1])
        self._suspect_ips = suspects

    async def _repair_ports(self, services: list[dict[str, Any]], records: list[StoredObject]) -> None:
        by_port: dict[int, StoredObject] = {}
        for stored in records:
            try:
                by_port[int(stored.key[len(PORT_PREFIX) :])] = stored
            except ValueError:
                continue
        holders: dict[int, str] = {}
        for svc in services:
            m = svc.get("metadata") or {}
            owner = {"namespace": m.get("namespace", ""), "name": m.get("name", ""), "uid": m.get("uid", "")}
            for port in _held_ports(svc):
                holders[port] = owner["uid"]
                if port in by_port:
                    continue
                try:
                    await self.ports.allocate(port, owner)
                    log.info("recorded node port %d of Service %s/%s", port, owner["namespace"], owner["name"])
                except PortAllocationError as e:
                    log.warning("node port %d of Service %s/%s: %s", port, owner["namespace"], owner["name"], e)
        suspects: set[tuple[int, int]] = set()
        for port, stored in by_port.items():
            ref = stored.obj.get("parentRef") or {}
            if holders.get(port) == ref.get("uid"):
                continue
            key = (port, stored.revision)
            if key not in self._suspect_ports:
                suspects.add(key)
                continue
            log.info("releasing leaked node port %d (held by %s/%s)", port, ref.get("namespace"), ref.get("name"))
            await self.ports.release(port, ref)
        self._suspect_ports = suspects
