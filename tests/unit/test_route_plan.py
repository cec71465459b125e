"""The route agent's plan: which peer routes a node wants and what changes get it there."""

from __future__ import annotations

from typing import Any

from route_agent.plan import RouteChanges, diff_routes, wanted_routes


def node(name: str, cidr: str | None = None, ip: str | None = None, *, cidrs: list[str] | None = None) -> dict:
    """A Node with an optional podCIDR (or podCIDRs) and InternalIP."""
    spec: dict[str, Any] = {}
    if cidr:
        spec["podCIDR"] = cidr
    if cidrs is not None:
        spec["podCIDRs"] = cidrs
    addresses = [{"type": "Hostname", "address": name}]
    if ip:
        addresses.insert(0, {"type": "InternalIP", "address": ip})
    return {"metadata": {"name": name}, "spec": spec, "status": {"addresses": addresses}}


def test_every_other_node_with_a_pod_cidr_and_an_internal_ip_is_routed_through_it() -> None:
    nodes = [
        node("node-1", "10.244.1.0/24", "172.18.0.2"),
        node("node-2", "10.244.2.0/24", "172.18.0.3"),
        node("node-3", "10.244.3.0/24", None),  # no address yet: no route
        node("node-4", None, "172.18.0.5"),  # no podCIDR yet (the IPAM has not got to it): no route
    ]
    assert wanted_routes(nodes, "node-1") == {"10.244.2.0/24": "172.18.0.3"}
    assert wanted_routes(nodes, "node-2") == {"10.244.1.0/24": "172.18.0.2"}


def test_pod_cidrs_list_wins_ipv6_and_garbage_are_left_out() -> None:
    nodes = [
        node("a", "10.244.9.0/24", "172.18.0.9", cidrs=["10.244.1.0/24", "fd00:10:244:1::/64"]),
        node("b", "not-a-cidr", "172.18.0.3"),
        node("c", "10.244.3.0/24", "not-an-ip"),
        node("d", "10.244.4.7/24", "172.18.0.4"),  # host bits set: normalised to the network
    ]
    assert wanted_routes(nodes, "self") == {"10.244.1.0/24": "172.18.0.9", "10.244.4.0/24": "172.18.0.4"}


def test_diff_replaces_new_and_moved_routes_and_deletes_those_of_gone_nodes() -> None:
    current = {"10.244.2.0/24": "172.18.0.3", "10.244.3.0/24": "172.18.0.4", "10.244.5.0/24": "172.18.0.6"}
    wanted = {"10.244.2.0/24": "172.18.0.3", "10.244.3.0/24": "172.18.0.9", "10.244.4.0/24": "172.18.0.5"}
    changes = diff_routes(current, wanted)
    assert changes == RouteChanges(
        replace={"10.244.3.0/24": "172.18.0.9", "10.244.4.0/24": "172.18.0.5"}, delete=["10.244.5.0/24"]
    )
    assert not diff_routes(wanted, wanted)
