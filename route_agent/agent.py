"""The agent's control loop: Nodes from an informer, reconciled into the route table."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from client.informer import Informer
from client.rest import ApiClient
from route_agent.iproute import IpRoute
from route_agent.plan import diff_routes, wanted_routes

__all__ = ["RouteAgent"]

log = logging.getLogger("route_agent")


class RouteAgent:
    """Keeps a route to every other node's podCIDR through that node's InternalIP."""

    def __init__(
        self, api: ApiClient, node_name: str, routes: IpRoute, resync_period: float = 30.0, retry: float = 2.0
    ) -> None:
        self.api = api
        self.node_name = node_name
        self.routes = routes
        self.resync_period = resync_period
        self.retry = retry
        self.informer = Informer(api, "nodes")
        self._wanted = asyncio.Event()
        self.synced = False

    def _changed(self, *_objs: object) -> None:
        self._wanted.set()

    def ready(self) -> bool:
        """Whether the routes have been reconciled at least once."""
        return self.synced

    async def sync(self) -> None:
        """Make the route table match the Nodes held now."""
        wanted = wanted_routes(self.informer.store.list(), self.node_name)
        changes = diff_routes(await self.routes.list(), wanted)
        failed: list[str] = []  # one route the kernel refuses (a gateway not on-link) must not stop the rest
        for dst, gateway in changes.replace.items():
            try:
                await self.routes.replace(dst, gateway)
                log.info("route %s via %s", dst, gateway)
            except Exception as e:
                failed.append(f"{dst} via {gateway}: {e}")
        for dst in changes.delete:
            try:
                await self.routes.delete(dst)
                log.info("route %s removed", dst)
            except Exception as e:
                failed.append(f"removing {dst}: {e}")
        self.synced = True
        if failed:
            raise RuntimeError("; ".join(failed))

    async def run(self) -> None:
        """Watch Nodes and reconcile on every change (and every resync period) until cancelled."""
        self.informer.add_handler(self._changed, lambda _old, _new: self._changed(), self._changed)
        self.informer.start()
        try:
            await self.informer.wait_for_sync()
            while True:
                self._wanted.clear()
                delay = self.resync_period
                try:
                    await self.sync()
                except Exception as e:  # the kernel said no, or `ip` hung: try again soon
                    log.warning("syncing routes failed: %s", e)
                    delay = self.retry
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wanted.wait()
        finally:
            await self.informer.stop()
