"""Which routes a node should have: pure functions over Node objects (unit-tested)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["RouteChanges", "diff_routes", "wanted_routes"]

Obj = Mapping[str, object]


def _internal_ip(node: Obj) -> str | None:
    for addr in (node.get("status") or {}).get("addresses") or []:  # type: ignore[union-attr]
        if addr.get("type") == "InternalIP":
            try:
                return str(ipaddress.IPv4Address(addr.get("address", "")))
            except ValueError:
                return None
    return None


def _pod_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))  # type: ignore[union-attr]
    out = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if net.version == 4:
            out.append(str(net))
    return out


def wanted_routes(nodes: Iterable[Obj], self_name: str) -> dict[str, str]:
    """podCIDR → gateway (the node's InternalIP) for every other node that has both."""
    out: dict[str, str] = {}
    for node in sorted(nodes, key=lambda n: (n.get("metadata") or {}).get("name", "")):  # type: ignore[union-attr]
        if (node.get("metadata") or {}).get("name") == self_name:  # type: ignore[union-attr]
            continue
        gateway = _internal_ip(node)
        if gateway is None:
            continue
        for cidr in _pod_cidrs(node):
            out.setdefault(cidr, gateway)
    return out


@dataclass(frozen=True)
class RouteChanges:
    """What to change in the route table: routes to (re)place and destinations to delete."""

    replace: dict[str, str]
    delete: list[str]

    def __bool__(self) -> bool:
        return bool(self.replace or self.delete)


def diff_routes(current: Mapping[str, str], wanted: Mapping[str, str]) -> RouteChanges:
    """The changes that turn `current` (destination → gateway) into `wanted`."""
    replace = {dst: gw for dst, gw in wanted.items() if current.get(dst) != gw}
    delete = sorted(dst for dst in current if dst not in wanted)
    return RouteChanges(replace, delete)
