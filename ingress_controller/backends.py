"""From a backend Service port to the endpoints a request is sent to (pure), and round-robin order.

As ingress-nginx does, requests go to the Service's ready endpoints directly, not through its
ClusterIP: the Service port is found by number or by name, and the EndpointSlices labelled
`kubernetes.io/service-name` give the addresses whose `conditions.ready` is not false (unset
means ready) and the port of the same name. An ExternalName Service is reached at its DNS name.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Balancer", "Resolution", "Target", "resolve"]

Obj = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class Target:
    """One endpoint address and port."""

    host: str
    port: int

    @property
    def authority(self) -> str:
        """`host:port`, with an IPv6 address in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Resolution:
    """The targets of a backend, or why there are none (`reason`)."""

    targets: tuple[Target, ...] = ()
    reason: str = ""


def _service_port(service: Obj, ref: int | str) -> Obj | None:
    for p in (service.get("spec") or {}).get("ports") or []:
        if isinstance(ref, int) and p.get("port") == ref:
            return p
        if isinstance(ref, str) and ref and p.get("name") == ref:
            return p
    return None


def _ready(endpoint: Obj) -> bool:
    return (endpoint.get("conditions") or {}).get("ready") is not False


def resolve(service: Obj | None, slices: Iterable[Obj], ref: int | str) -> Resolution:
    """The ready endpoints behind port `ref` (number or name) of `service`, from its EndpointSlices."""
    if service is None:
        return Resolution(reason="service not found")
    spec = service.get("spec") or {}
    port = _service_port(service, ref)
    if spec.get("type") == "ExternalName":
        number = port.get("port") if port else ref
        if not spec.get("externalName") or not isinstance(number, int):
            return Resolution(reason="no port for the ExternalName service")
        return Resolution((Target(str(spec["externalName"]), number),))
    if port is None:
        return Resolution(reason=f"service has no port {ref!r}")
    name = port.get("name") or ""
    found: set[Target] = set()
    for sl in slices:
        if sl.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
            continue
        numbers = [
            p.get("port")
            for p in sl.get("ports") or []
            if (p.get("name") or "") == name and p.get("protocol", "TCP") == "TCP" and p.get("port")
        ]
        if not numbers:
            continue
        for ep in sl.get("endpoints") or []:
            if _ready(ep):
                found.update(Target(addr, numbers[0]) for addr in ep.get("addresses") or [])
    if not found:
        return Resolution(reason="no ready endpoints")
    return Resolution(tuple(sorted(found)))


class Balancer:
    """Round-robin over each backend's targets: each call starts one further along."""

    def __init__(self) -> None:
        self._counters: dict[Hashable, itertools.count[int]] = {}

    def order(self, key: Hashable, targets: Sequence[Target]) -> list[Target]:
        """`targets` rotated to start at the next one for `key` (the rest follow, to skip refusals)."""
        if len(targets) <= 1:
            return list(targets)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = itertools.count()
        start = next(counter) % len(targets)
        return [*targets[start:], *targets[:start]]

    def forget(self, keep: Iterable[Hashable]) -> None:
        """Drop the counters of backends not in `keep`."""
        alive = set(keep)
        for key in [k for k in self._counters if k not in alive]:
            del self._counters[key]
