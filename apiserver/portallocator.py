"""NodePort allocation persisted in etcd: one key per allocated port, created only if absent.

Upstream keeps a bitmap (a RangeAllocation at /registry/ranges/servicenodeports) and rewrites it
with a compare-and-swap for every allocation; here each allocated port is its own key under that
prefix, written with etcd's create-if-absent transaction. Two concurrent requests for one port end
in one success and one "already allocated", allocations never contend on a shared key, and they
survive an apiserver restart because they live in etcd. The key records the owning Service, so a
release only deletes a port its Service still holds.

A free port is found as upstream does (KEP-3668): the range is split into a small lower band kept
for ports users ask for and an upper band for dynamic ones, and the search starts at a random
offset of the upper band, skipping ports the watch cache already shows as taken.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from apiserver.storage import EtcdStorage, KeyExists, KeyNotFound, RevisionConflict
from apiserver.watch_cache import WatchCache

__all__ = [
    "PREFIX",
    "PortAllocated",
    "PortAllocationError",
    "PortAllocator",
    "PortNotInRange",
    "PortRange",
    "PortRangeFull",
]

PREFIX = "/registry/ranges/servicenodeports/"
_CACHE_NAME = "ranges"  # the watch cache files keys by their first segment under /registry/
ALLOCATIONS = Counter(
    "kube_apiserver_nodeport_allocator_allocation_total",
    "Node ports allocated, by scope (static: requested, dynamic: picked)",
    ["scope"],
)
ALLOCATION_ERRORS = Counter(
    "kube_apiserver_nodeport_allocator_allocation_errors_total", "Node port allocations refused, by scope", ["scope"]
)
_RANGE = re.compile(r"^\s*(\d+)\s*(?:([-+])\s*(\d+)\s*)?$")


class PortAllocationError(Exception):
    """A port could not be allocated; the message is upstream's."""


class PortAllocated(PortAllocationError):
    """The port is held by another Service."""

    def __init__(self) -> None:
        super().__init__("provided port is already allocated")


class PortNotInRange(PortAllocationError):
    """The port is outside --service-node-port-range."""

    def __init__(self, valid: PortRange) -> None:
        super().__init__(f"provided port is not in the valid range. The range of valid ports is {valid}")


class PortRangeFull(PortAllocationError):
    """Every port of the range is taken."""

    def __init__(self) -> None:
        super().__init__("range is full")


@dataclass(frozen=True)
class PortRange:
    """A closed range of ports, written `30000-32767` (or `30000+2767`, base plus extra ports)."""

    base: int = 30000
    size: int = 2768

    @classmethod
    def parse(cls, text: str) -> PortRange:
        """Parse `low-high`, `base+extra` or a single port, as net.ParsePortRange does."""
        m = _RANGE.match(text or "")
        if not m:
            raise ValueError(f'invalid port range "{text}": expected "low-high", e.g. 30000-32767')
        low = int(m.group(1))
        if m.group(2) == "-":
            high = int(m.group(3))
        elif m.group(2) == "+":
            high = low + int(m.group(3))
        else:
            high = low
        if not 0 < low <= high <= 65535:
            raise ValueError(f'invalid port range "{text}": ports must satisfy 0 < low <= high <= 65535')
        return cls(low, high - low + 1)

    @property
    def last(self) -> int:
        """The highest port of the range."""
        return self.base + self.size - 1

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.base <= port <= self.last

    def __str__(self) -> str:
        return f"{self.base}-{self.last}"

    @property
    def offset(self) -> int:
        """Size of the lower band reserved for requested ports: min(max(16, size/32), 128)."""
        if self.size < 16:
            return 0
        return min(max(16, self.size // 32), 128)

    def search_order(self, rng: random.Random) -> Iterator[int]:
        """Every port once: the upper band from a random start (wrapping), then the lower band."""
        upper_start, upper_size = self.base + self.offset, self.size - self.offset
        start = rng.randrange(upper_size)
        for i in range(upper_size):
            yield upper_start + (start + i) % upper_size
        if self.offset:
            start = rng.randrange(self.offset)
            for i in range(self.offset):
                yield self.base + (start + i) % self.offset


def port_key(port: int) -> str:
    """The etcd key recording that `port` is allocated."""
    return f"{PREFIX}{port}"


def _owner_of(stored: dict[str, Any]) -> dict[str, Any]:
    ref = stored.get("parentRef")
    return ref if isinstance(ref, dict) else {}


class PortAllocator:
    """Allocates NodePorts of one range for Services (`owner`: the Service's namespace, name and uid)."""

    def __init__(self, storage: EtcdStorage, cache: WatchCache, port_range: PortRange) -> None:
        self.storage = storage
        self.cache = cache
        self.range = port_range
        self._rng = random.Random()

    def _record(self, port: int, owner: dict[str, Any]) -> dict[str, Any]:
        return {
            "kind": "ServiceNodePort",
            "port": port,
            "parentRef": {"group": "", "resource": "services", **owner},
        }

    def _known_taken(self, port: int) -> bool:
        return self.cache.ready.is_set() and self.cache.cache(_CACHE_NAME).get(port_key(port)) is not None

    async def allocate(self, port: int, owner: dict[str, Any], dry_run: bool = False) -> None:
        """Reserve `port` for `owner`; PortNotInRange or PortAllocated when it cannot be had."""
        if port not in self.range:
            ALLOCATION_ERRORS.labels("static").inc()
            raise PortNotInRange(self.range)
        if dry_run:
            if self._known_taken(port):
                raise PortAllocated()
            return
        try:
            await self.storage.create(port_key(port), self._record(port, owner))
        except KeyExists as e:
            ALLOCATION_ERRORS.labels("static").inc()
            raise PortAllocated() from e
        ALLOCATIONS.labels("static").inc()

    async def allocate_next(self, owner: dict[str, Any], dry_run: bool = False, avoid: set[int] | None = None) -> int:
        """Reserve any free port for `owner`; PortRangeFull when none is left."""
        for port in self.range.search_order(self._rng):
            if (avoid and port in avoid) or self._known_taken(port):
                continue
            if dry_run:
                return port
            try:
                await self.storage.create(port_key(port), self._record(port, owner))
            except KeyExists:
                continue  # taken since the cache last heard: try the next one
            ALLOCATIONS.labels("dynamic").inc()
            return port
        ALLOCATION_ERRORS.labels("dynamic").inc()
        raise PortRangeFull()

    async def release(self, port: int, owner: dict[str, Any]) -> bool:
        """Free `port` if `owner` (matched by uid when given, else by name) still holds it."""
        key = port_key(port)
        for _ in range(5):
            try:
                stored = await self.storage.get(key)
            except KeyNotFound:
                return False
            held = _owner_of(stored.obj)
            if owner.get("uid") and held.get("uid"):
                if held["uid"] != owner["uid"]:
                    return False
            elif (held.get("namespace"), held.get("name")) != (owner.get("namespace"), owner.get("name")):
                return False
            try:
                await self.storage.delete(key, stored.revision)
                return True
            except KeyNotFound:
                return False
            except RevisionConflict:
                continue
        return False

    def holder(self, port: int) -> dict[str, Any] | None:
        """Who holds `port` as the watch cache knows it (None: free, or not yet seen)."""
        stored = self.cache.cache(_CACHE_NAME).get(port_key(port))
        return _owner_of(stored.obj) if stored is not None else None

    def allocated(self) -> dict[int, dict[str, Any]]:
        """Every allocated port with its holder, as the watch cache knows them."""
        out: dict[int, dict[str, Any]] = {}
        for stored in self.cache.cache(_CACHE_NAME).snapshot():
            if stored.key.startswith(PREFIX):
                try:
                    out[int(stored.key[len(PREFIX) :])] = _owner_of(stored.obj)
                except ValueError:
                    continue
        return out
