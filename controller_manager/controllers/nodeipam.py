"""Node IPAM, upstream's range allocator (pkg/controller/nodeipam/ipam/range_allocator.go): with
`--allocate-node-cidrs`, every Node without a `spec.podCIDR` gets the first free subnet of
`--node-cidr-mask-size` bits (24) from `--cluster-cidr`; the podCIDRs Nodes already hold (from their
kubelets' `--pod-cidr`, or an earlier allocation) count as taken. When the range is used up the Node
gets upstream's `CIDRNotAvailable` event and is looked at again later. IPv4 only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from apimachinery.errors import StatusError
from client.request import Obj
from controller_manager.base import Controller
from controller_manager.controllers import register

__all__ = ["NodeIpamController", "first_free_subnet"]

RETRY_WHEN_FULL = 30.0


def _node_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


def first_free_subnet(cluster_cidr: str, mask_size: int, taken: Iterable[str]) -> str | None:
    """The first /`mask_size` subnet of `cluster_cidr` that overlaps none of `taken` (None when all do)."""
    network = ipaddress.IPv4Network(cluster_cidr, strict=False)
    used = []
    for cidr in taken:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if net.version == 4:
            used.append(net)
    for subnet in network.subnets(new_prefix=mask_size):
        if not any(subnet.overlaps(u) for u in used):
            return str(subnet)
    return None


@register
class NodeIpamController(Controller):
    """Gives each Node without one a podCIDR from the cluster CIDR (only with --allocate-node-cidrs)."""

    name = "nodeipam"
    event_source = "cidrAllocator"
    workers = 1  # one allocator: two workers could hand out the same free subnet

    def setup(self) -> None:
        self.cluster_cidr = self.ctx.text_option("cluster-cidr", "")
        self.mask_size = int(self.ctx.option("node-cidr-mask-size", 24))
        self.enabled = bool(self.ctx.option("allocate-node-cidrs", 0)) and bool(self.cluster_cidr)
        # node → subnet handed out but maybe not yet in the informer's cache (so it is not handed out twice)
        self.pending: dict[str, str] = {}
        if self.enabled:
            self.nodes = self.ctx.factory.informer("nodes")
            self.nodes.add_handler(**self.handlers())

    async def sync(self, key: str) -> None:
        node = self.nodes.store.get(key)
        if node is None:
            self.pending.pop(key, None)
            return
        if _node_cidrs(node):
            self.pending.pop(key, None)
            return
        if key in self.pending:
            cidr = self.pending[key]
        else:
            taken = [c for n in self.nodes.store.list() for c in _node_cidrs(n)]
            found = first_free_subnet(self.cluster_cidr, self.mask_size, [*taken, *self.pending.values()])
            if found is None:
                self.events.record(node, "Normal", "CIDRNotAvailable", f"Node {key} status is now: CIDRNotAvailable")
                self.requeue_after(key, RETRY_WHEN_FULL)
                return
            cidr = self.pending[key] = found
        try:
            await self.api.patch("nodes", key, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except StatusError as e:
            if e.code == 404:
                self.pending.pop(key, None)
                return
            raise
        self.log.info("node %s: podCIDR %s", key, cidr)
