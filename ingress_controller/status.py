"""Ingress status: every Ingress this controller serves gets the addresses of the published
Service (its LoadBalancer ingress, as ingress-nginx's `--publish-service` does), kept current."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from apimachinery.resources import ResourceInfo
from client.request import Obj
from client.rest import ApiClient
from client.workqueue import WorkQueue, default_controller_rate_limiter, process_items
from ingress_controller.state import RoutingState

__all__ = ["StatusSyncer", "published_addresses"]

log = logging.getLogger("ingress.status")


def published_addresses(service: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The Ingress status entries for a published Service: its load-balancer IPs and hostnames,
    then its external IPs, sorted and without duplicates (ingress-nginx's statusAddressFromService)."""
    if service is None:
        return []
    found: set[tuple[str, str]] = set()
    for lb in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if lb.get("ip"):
            found.add(("ip", lb["ip"]))
        elif lb.get("hostname"):
            found.add(("hostname", lb["hostname"]))
    for ip in (service.get("spec") or {}).get("externalIPs") or []:
        found.add(("ip", ip))
    return [{kind: value} for kind, value in sorted(found, key=lambda kv: (kv[1], kv[0]))]


class StatusSyncer:
    """Writes `status.loadBalancer.ingress` of each served Ingress through /status when it differs."""

    def __init__(self, api: ApiClient, ingresses: ResourceInfo, state: RoutingState, publish_key: str) -> None:
        self.api = api
        self.ingresses = ingresses
        self.state = state
        self.publish_key = publish_key
        self.queue: WorkQueue[str] = WorkQueue(default_controller_rate_limiter())

    def enqueue(self, key: str) -> None:
        """Check one Ingress (`namespace/name`)."""
        self.queue.add(key)

    def enqueue_all(self) -> None:
        """Check every Ingress served (the published address or the classes changed)."""
        for key in self.state.served_keys():
            self.queue.add(key)

    async def run(self, workers: int = 2) -> None:
        """Process the queue until cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(workers):
                    tg.create_task(process_items(self.queue, self.sync, log))
        finally:
            self.queue.shut_down()

    async def sync(self, key: str) -> None:
        """Bring one Ingress's status to the published addresses (if it is ours)."""
        ing = self.state.ingresses.get(key)
        if ing is None or not self.state.class_filter.serves(ing):
            return
        want = published_addresses(self.state.services.get(self.publish_key))
        have = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if have == want:
            return
        meta = ing["metadata"]
        patch: Obj = {
            "metadata": {"resourceVersion": meta.get("resourceVersion")},
            "status": {"loadBalancer": {"ingress": want}},
        }
        await self.api.patch(self.ingresses, meta["name"], patch, meta.get("namespace"), subresource="status")
        log.info("ingress %s status: %s", key, ", ".join(v for a in want for v in a.values()) or "no address")
