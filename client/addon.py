"""Cluster add-ons that run as processes rather than pods (cluster DNS, the ingress controller)
publish themselves the way kubeadm's add-ons are reached: a Service, and an EndpointSlice that
points at the process's own address, both written with server-side apply so that a restarted
add-on simply re-applies them.

The Service has no selector (the endpoint controllers leave it alone); the EndpointSlice carries
`kubernetes.io/service-name` so kube-proxy routes the Service's IP to the add-on, and the Service
as its controlling owner so that deleting the Service deletes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from client.request import Obj, PatchType
from client.rest import ApiClient

__all__ = ["AddonEndpoint", "publish_addon"]

MANAGED_BY = "endpointslice.kubernetes.io/managed-by"


@dataclass(frozen=True)
class AddonEndpoint:
    """One port the add-on process listens on, named as the Service's port it backs."""

    name: str
    port: int
    protocol: str = "TCP"


async def publish_addon(
    api: ApiClient,
    service: Obj,
    address: str,
    ports: Sequence[AddonEndpoint],
    *,
    node_name: str | None = None,
    field_manager: str = "tinykube-addon",
) -> tuple[Obj, Obj]:
    """Apply `service` (a whole Service manifest, without selector) and an EndpointSlice that sends
    its ports to `address`; returns both as stored."""
    meta = service["metadata"]
    namespace, name = meta.get("namespace", "kube-system"), meta["name"]
    svc = await api.patch(
        "services", name, service, namespace, patch_type=PatchType.APPLY, field_manager=field_manager, force=True
    )
    endpoint: Obj = {"addresses": [address], "conditions": {"ready": True, "serving": True, "terminating": False}}
    if node_name:
        endpoint["nodeName"] = node_name
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-addon",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": name, MANAGED_BY: field_manager},
            # as the endpointslice controller does: deleting the Service collects its slice
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": name,
                    "uid": svc["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "addressType": "IPv4",
        "endpoints": [endpoint],
        "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in ports],
    }
    stored = await api.patch(
        "endpointslices",
        slice_["metadata"]["name"],
        slice_,
        namespace,
        patch_type=PatchType.APPLY,
        field_manager=field_manager,
        force=True,
    )
    return svc, stored
