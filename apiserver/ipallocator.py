"""ClusterIP allocation with IPAddress objects (networking.k8s.io/v1), as upstream's ipallocator does.

An IP is allocated by creating the IPAddress named by it; etcd's create-if-absent makes two
concurrent requests for one IP end in one success and one AlreadyExists ("provided IP is already
allocated"). A free IP is found by walking a range from a random offset, skipping addresses the
watch cache already holds, until a create succeeds. The ranges are the ServiceCIDRs that are ready
and not being deleted (upstream's MetaAllocator); the `kubernetes` ServiceCIDR comes from
--service-cluster-ip-range and is used before the others, and alone until it is in the cache.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from apimachinery import errors
from apimachinery.resources import by_plural
from apiserver import managedfields, openapi
from apiserver.options import WriteOptions

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = [
    "DEFAULT_SERVICE_CIDR",
    "LABEL_FAMILY",
    "LABEL_MANAGED_BY",
    "MANAGED_BY",
    "IPAllocated",
    "IPAllocationError",
    "IPAllocator",
    "IPRange",
    "IPRangeFull",
    "MismatchedNetwork",
    "service_ref",
]

MANAGED_BY = "ipallocator.k8s.io"
LABEL_FAMILY = "ipaddress.kubernetes.io/ip-family"
LABEL_MANAGED_BY = "ipaddress.kubernetes.io/managed-by"
DEFAULT_SERVICE_CIDR = "kubernetes"
_IPADDRESSES = by_plural("networking.k8s.io", "ipaddresses")
_FIELD_MANAGER = "kube-apiserver"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOCATIONS = Counter(
    "kube_apiserver_clusterip_allocator_allocation_total",
    "Cluster IPs allocated, by range and scope (static: requested, dynamic: picked)",
    ["cidr", "scope"],
)
ALLOCATION_ERRORS = Counter(
    "kube_apiserver_clusterip_allocator_allocation_errors_total",
    "Cluster IP allocations refused, by range and scope",
    ["cidr", "scope"],
)


class IPAllocationError(Exception):
    """An IP could not be allocated; the message is upstream's."""


class IPAllocated(IPAllocationError):
    """Another object holds the IP."""

    def __init__(self) -> None:
        super().__init__("provided IP is already allocated")


class MismatchedNetwork(IPAllocationError):
    """The IP is in no ready ServiceCIDR."""

    def __init__(self) -> None:
        super().__init__("the provided network does not match the current range")


class IPRangeFull(IPAllocationError):
    """No free IP is left in any ready ServiceCIDR."""

    def __init__(self) -> None:
        super().__init__("range is full")


def service_ref(namespace: str, name: str) -> dict[str, str]:
    """The parentRef of an IPAddress held by a Service."""
    return {"group": "", "resource": "services", "namespace": namespace, "name": name}


@dataclass(frozen=True)
class IPRange:
    """The allocatable addresses of a CIDR, split as KEP-3070 does into a lower static band and an upper one."""

    network: Network

    @property
    def first(self) -> int:
        """The first usable address (never the network address)."""
        return int(self.network.network_address) + 1

    @property
    def last(self) -> int:
        """The last usable address (IPv4 leaves out the broadcast address)."""
        top = int(self.network.broadcast_address)
        return top - 1 if self.network.version == 4 else top

    @property
    def size(self) -> int:
        """How many addresses can be allocated."""
        return max(self.last - self.first + 1, 0)

    @property
    def offset(self) -> int:
        """Size of the lower band kept for requested IPs: min(max(16, size/16), 256)."""
        size = self.network.num_addresses
        if size <= 16:
            return 0
        return min(max(16, size // 16), 256)

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return ip.version == self.network.version and self.first <= int(ip) <= self.last

    def search_order(self, rng: random.Random) -> Iterator[str]:
        """Every usable address once: the upper band from a random start (wrapping), then the lower band."""
        make = ipaddress.ip_address
        upper_first = min(self.first + self.offset, self.last + 1)
        upper_size = self.last - upper_first + 1
        if upper_size > 0:
            start = rng.randrange(upper_size)
            for i in range(upper_size):
                yield str(make(upper_first + (start + i) % upper_size))
        lower_size = upper_first - self.first
        if lower_size > 0:
            start = rng.randrange(lower_size)
            for i in range(lower_size):
                yield str(make(self.first + (start + i) % lower_size))


def _ready(cidr: dict[str, Any]) -> bool:
    """A ServiceCIDR allocates when Ready is not False (no condition yet counts as ready) and it is not deleting."""
    if (cidr.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for cond in (cidr.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return True


class IPAllocator:
    """Allocates and releases Service cluster IPs as IPAddress objects through the registry."""

    def __init__(self, reg: Registry, default_cidr: str) -> None:
        self.reg = reg
        self.default = ipaddress.ip_network(default_cidr, strict=False)
        self._rng = random.Random()

    def ranges(self, family: int = 4) -> list[IPRange]:
        """The ranges of every ready ServiceCIDR of an IP family: `kubernetes` first, the rest by name."""
        found: list[tuple[str, Network]] = []
        cache = self.reg.cache
        if cache.ready.is_set():
            for stored in cache.cache("servicecidrs").snapshot():
                obj = stored.obj
                if not _ready(obj):
                    continue
                name = (obj.get("metadata") or {}).get("name", "")
                for text in (obj.get("spec") or {}).get("cidrs") or []:
                    try:
                        found.append((name, ipaddress.ip_network(text, strict=False)))
                    except ValueError:
                        continue
        if not any(name == DEFAULT_SERVICE_CIDR for name, _ in found):
            found.append((DEFAULT_SERVICE_CIDR, self.default))
        found.sort(key=lambda item: (item[0] != DEFAULT_SERVICE_CIDR, item[0]))
        out: list[IPRange] = []
        for _, net in found:
            if net.version == family and all(r.network != net for r in out):
                out.append(IPRange(net))
        return out

    def _known_taken(self, ip: str) -> bool:
        cache = self.reg.cache
        return cache.ready.is_set() and cache.cache("ipaddresses").get(f"/registry/ipaddresses/{ip}") is not None

    def _body(self, ip: str, parent: dict[str, str]) -> dict[str, Any]:
        version = ipaddress.ip_address(ip).version
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IPAddress",
            "metadata": {
                "name": ip,
                "labels": {LABEL_FAMILY: f"IPv{version}", LABEL_MANAGED_BY: MANAGED_BY},
            },
            "spec": {"parentRef": dict(parent)},
        }
        assert _IPADDRESSES is not None
        managedfields.set_on_create(_IPADDRESSES, body, _FIELD_MANAGER)
        return body

    async def claim(self, ip: str, parent: dict[str, str]) -> None:
        """Create the IPAddress of `ip` for `parent` whatever the ranges are; IPAllocated if it exists."""
        assert _IPADDRESSES is not None
        await openapi.ensure_loaded()  # managed fields read the schemas: load them off the event loop
        try:
            await self.reg.create(_IPADDRESSES, None, self._body(ip, parent), WriteOptions())
        except errors.StatusError as e:
            if e.code == 409:
                raise IPAllocated() from e
            raise

    async def allocate(self, ip: str, parent: dict[str, str], dry_run: bool = False) -> None:
        """Reserve `ip` for `parent`; MismatchedNetwork or IPAllocated when it cannot be had."""
        addr = ipaddress.ip_address(ip)
        owner = next((r for r in self.ranges(addr.version) if addr in r), None)
        if owner is None:
            raise MismatchedNetwork()
        if dry_run:
            return
        try:
            await self.claim(str(addr), parent)
        except IPAllocated:
            ALLOCATION_ERRORS.labels(str(owner.network), "static").inc()
            raise
        ALLOCATIONS.labels(str(owner.network), "static").inc()

    async def allocate_next(self, parent: dict[str, str], dry_run: bool = False, family: int = 4) -> str:
        """Reserve a free IP for `parent` from the first ready range that has one; IPRangeFull if none."""
        ranges = self.ranges(family)
        if dry_run:  # upstream answers a dry run with the network address rather than race for a free one
            return str(ranges[0].network.network_address)
        for r in ranges:
            for ip in r.search_order(self._rng):
                if self._known_taken(ip):
                    continue
                try:
                    await self.claim(ip, parent)
                except IPAllocated:
                    continue  # taken since the cache last heard: try the next one
                ALLOCATIONS.labels(str(r.network), "dynamic").inc()
                return ip
        for r in ranges:
            ALLOCATION_ERRORS.labels(str(r.network), "dynamic").inc()
        raise IPRangeFull()

    async def release(self, ip: str, parent: dict[str, str], uid: str = "") -> bool:
        """Delete the IPAddress of `ip` if `parent` still holds it (and it is object `uid`, if given)."""
        assert _IPADDRESSES is not None
        try:
            current = await self.reg.get(_IPADDRESSES, None, str(ipaddress.ip_address(ip)))
        except (errors.StatusError, ValueError):
            return False
        ref = (current.get("spec") or {}).get("parentRef") or {}
        if {k: ref.get(k, "") for k in parent} != parent:
            return False
        if uid and (current.get("metadata") or {}).get("uid") != uid:
            return False
        uid = (current.get("metadata") or {}).get("uid") or ""
        try:
            name = current["metadata"]["name"]
            await self.reg.delete(_IPADDRESSES, None, name, {"preconditions": {"uid": uid}}, False)
        except errors.StatusError as e:
            if e.code in (404, 409):
                return False
            raise
        return True
