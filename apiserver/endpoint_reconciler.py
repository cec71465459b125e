"""The `kubernetes` Service's Endpoints and EndpointSlice: upstream's lease endpoint reconciler
(`--endpoint-reconciler-type=lease`).

Every apiserver process, every interval (10 s), puts the key `/registry/masterleases/<its address>` with
an etcd lease of the TTL (15 s), then lists the keys under `/registry/masterleases/` and, when
`default/kubernetes` does not list exactly those addresses (unique, sorted) and the port, writes it, and
the `kubernetes` EndpointSlice from it. A process that stops stops refreshing its key; etcd drops the
key after the TTL, and the next reconcile of any live process drops the address. A process shutting
down cleanly removes its key at once, unless another live process (by its identity Lease's
`kubernetes.io/peer-advertise-address`) serves the same address, as processes sharing one address and
port (SO_REUSEPORT) do.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from typing import Any

from apimachinery import errors
from apimachinery.resources import by_plural
from apiserver.identity_lease import PEER_ADDRESS_ANNOTATION, live_identity_leases
from apiserver.options import WriteOptions
from apiserver.registry import Registry
from apiserver.storage import KeyNotFound, StorageError

__all__ = ["PREFIX", "EndpointReconciler", "MasterLeases", "ReconcilerOptions"]

log = logging.getLogger("apiserver.endpoints")

PREFIX = "/registry/masterleases/"
SERVICE = "kubernetes"
_SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"


@dataclass(frozen=True)
class ReconcilerOptions:
    """How the `kubernetes` Endpoints are kept (`none`: not at all)."""

    kind: str = "lease"
    lease_ttl_seconds: int = 15  # upstream's DefaultEndpointReconcilerTTL
    interval: float = 10.0  # upstream's DefaultEndpointReconcilerInterval


class MasterLeases:
    """The live apiservers' addresses: one etcd key per address, kept alive by an etcd lease of a TTL."""

    def __init__(self, reg: Registry, ttl: int, timeout: float = 5.0) -> None:
        self.reg = reg
        self.ttl = ttl
        self.timeout = timeout
        self._generation = 0

    async def update(self, ip: str) -> None:
        """Put (or refresh) the key of `ip` with a fresh TTL (upstream stores an Endpoints naming the IP)."""
        self._generation += 1
        body = {
            "kind": "Endpoints",
            "apiVersion": "v1",
            "metadata": {"name": ip, "generation": self._generation, "creationTimestamp": None},
            "subsets": [{"addresses": [{"ip": ip}]}],
        }
        storage = self.reg.storage
        try:
            async with asyncio.timeout(self.timeout):
                lease = await storage.grant_lease(self.ttl)
                await storage.put(f"{PREFIX}{ip}", body, lease=lease)
        except TimeoutError as e:
            raise StorageError(f"etcd did not answer the master lease of {ip} in {self.timeout}s") from e
        except StorageError as e:  # the reconcile is tried again next interval
            raise StorageError(f"master lease of {ip}: {e}") from e

    async def list(self) -> list[str]:
        """The addresses whose keys are alive, sorted."""
        items, _, _ = await self.reg.storage.list(PREFIX)
        ips = set()
        for item in items:
            subsets = item.obj.get("subsets") or []
            addresses = (subsets[0].get("addresses") or []) if subsets else []
            if addresses and addresses[0].get("ip"):
                ips.add(addresses[0]["ip"])
        return sorted(ips)

    async def remove(self, ip: str) -> None:
        """Delete the key of `ip` (whatever its revision)."""
        try:
            stored = await self.reg.storage.get(f"{PREFIX}{ip}")
            await self.reg.storage.delete(stored.key, stored.revision)
        except KeyNotFound:
            return
        except StorageError as e:
            log.warning("master lease of %s not removed: %s", ip, e)


def _ports(port: int) -> list[dict[str, Any]]:
    return [{"name": "https", "port": port, "protocol": "TCP"}]


def _endpoints(ips: list[str], port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": SERVICE, "labels": {_SKIP_MIRROR: "true"}},
        "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": _ports(port)}],
    }


def _endpoint_slice(ips: list[str], port: int) -> dict[str, Any]:
    """The `kubernetes` EndpointSlice as upstream's EndpointsAdapter derives it from the Endpoints."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": SERVICE,
            "labels": {
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": "kube-apiserver",
            },
        },
        "addressType": "IPv6" if ips and ":" in ips[0] else "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
        "ports": _ports(port),
    }


class EndpointReconciler:
    """Keeps `default/kubernetes` Endpoints and EndpointSlice listing every live apiserver's address."""

    def __init__(self, reg: Registry, ip: str, port: int, options: ReconcilerOptions) -> None:
        self.reg = reg
        self.ip = ip
        self.port = port
        self.options = options
        self.leases = MasterLeases(reg, options.lease_ttl_seconds)
        self._stopped = False

    async def reconcile(self) -> None:
        """Refresh our key, then bring the Endpoints and the EndpointSlice to the live addresses."""
        if self._stopped:
            return
        await self.leases.update(self.ip)
        await self._reconcile_objects()

    async def _reconcile_objects(self) -> None:
        ips = await self.leases.list()
        if not ips:
            # as upstream: our own key was just refreshed, so none listed means something is wrong
            raise StorageError("no master IPs were listed in storage, refusing to erase all endpoints")
        await self._ensure("", "endpoints", _endpoints(ips, self.port), ("subsets",))
        slice_ = _endpoint_slice(ips, self.port)
        await self._ensure("discovery.k8s.io", "endpointslices", slice_, ("endpoints", "ports", "addressType"))

    async def _ensure(self, group: str, plural: str, body: dict[str, Any], fields: tuple[str, ...]) -> None:
        """Create the object, or set `fields` and the labels when they differ from `body`'s."""
        res = by_plural(group, plural)
        assert res is not None
        labels = body["metadata"]["labels"]
        try:
            current = await self.reg.get(res, "default", SERVICE)
        except errors.StatusError as e:
            if e.code != 404:
                raise
            try:
                await self.reg.create(res, "default", copy.deepcopy(body), WriteOptions())
            except errors.StatusError as created:
                if created.code != 409:
                    raise
            return
        held = (current.get("metadata") or {}).get("labels") or {}
        if all(current.get(f) == body[f] for f in fields) and all(held.get(k) == v for k, v in labels.items()):
            return
        log.warning("resetting %s for the master service %r to %s", plural, SERVICE, body.get(fields[0]))

        def put(obj: dict[str, Any]) -> dict[str, Any]:
            obj.update({f: copy.deepcopy(body[f]) for f in fields})
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
            return obj

        await self.reg.update(res, "default", SERVICE, put, WriteOptions())

    async def run(self) -> None:
        """Reconcile every interval until cancelled (the first pass is the caller's, in bootstrap)."""
        while True:
            await asyncio.sleep(self.options.interval)
            try:
                await self.reconcile()
            except (errors.StatusError, StorageError) as e:
                log.warning("kubernetes endpoints not reconciled: %s", getattr(e, "message", e))

    async def stop(self, own_lease: str, renew_interval: float) -> None:
        """Stop reconciling; remove our address at once unless another live apiserver (an identity Lease
        other than `own_lease` renewed in the last three intervals) serves it."""
        self._stopped = True
        mine = f"{self.ip}:{self.port}"
        others = [
            lease
            for lease in live_identity_leases(self.reg, within=3 * renew_interval)
            if ((lease.get("metadata") or {}).get("annotations") or {}).get(PEER_ADDRESS_ANNOTATION) == mine
            and lease["metadata"]["name"] != own_lease
        ]
        if others:
            return
        await self.leases.remove(self.ip)
        try:
            await self._reconcile_objects()
        except (errors.StatusError, StorageError) as e:
            log.info("kubernetes endpoints left to the other apiservers: %s", getattr(e, "message", e))
