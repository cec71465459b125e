"""kube-proxy as a whole: informers → bounded-frequency runner → sync (plan + apply) → health.

Services and EndpointSlices are watched with upstream's label selector (not another proxy's
Services, not headless ones); every change marks an update as queued for the health check and asks
the runner for a sync. Syncs start once both informers have listed. This node's Node object is
watched only for the health check's `nodeEligible`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter

from client.informer import InformerFactory
from client.request import Obj, Selectors
from client.rest import ApiClient
from kube_proxy import metrics
from kube_proxy.health import ProxyHealth, healthz_app, listen, metrics_app, serve_http
from kube_proxy.plan import HEADLESS_LABEL, SERVICE_PROXY_NAME_LABEL, NodeInfo, plan
from kube_proxy.proxier import Proxier, ProxierOptions
from kube_proxy.runner import BoundedFrequencyRunner

__all__ = ["ProxyOptions", "ProxyServer"]

log = logging.getLogger("kube_proxy")

LABEL_SELECTOR = f"!{SERVICE_PROXY_NAME_LABEL},!{HEADLESS_LABEL}"


@dataclass(frozen=True)
class ProxyOptions:
    """Everything `python -m kube_proxy` takes."""

    node: NodeInfo
    healthz_port: int = 10256
    metrics_port: int = 10249
    sync_period: float = 30.0
    min_sync_period: float = 0.1
    retry_period: float = 5.0
    proxier: ProxierOptions = field(default_factory=ProxierOptions)


class ProxyServer:
    """One node's kube-proxy."""

    def __init__(self, api: ApiClient, options: ProxyOptions) -> None:
        self.api = api
        self.options = options
        self.health = ProxyHealth(2 * options.sync_period)
        self.proxier = Proxier(options.proxier)
        self.runner = BoundedFrequencyRunner(
            "sync-runner",
            self.sync_proxy_rules,
            options.min_sync_period,
            options.sync_period,
            min(options.retry_period, options.sync_period),
        )
        self.factory = InformerFactory(api)
        selectors = Selectors(labels=LABEL_SELECTOR)
        self.services = self.factory.informer("services", selectors=selectors)
        self.slices = self.factory.informer("endpointslices", selectors=selectors)
        self.nodes = self.factory.informer("nodes", selectors=Selectors.of(fields={"metadata.name": options.node.name}))

    def _on_change(self, counter: Counter) -> Callable[..., None]:
        """An informer handler (add, update or delete) that counts the change and asks for a sync."""

        def changed(*_: Obj) -> None:
            counter.inc()
            self.health.queued_update()
            metrics.SYNC_QUEUED.set(time.time())
            self.runner.run()

        return changed

    def _watch(self) -> None:
        services, slices = self._on_change(metrics.SERVICE_CHANGES), self._on_change(metrics.ENDPOINT_CHANGES)
        self.services.add_handler(services, services, services)
        self.slices.add_handler(slices, slices, slices)
        self.nodes.add_handler(
            on_add=self.health.sync_node,
            on_update=lambda _old, new: self.health.sync_node(new),
            on_delete=lambda _obj: self.health.sync_node(None),
        )

    async def sync_proxy_rules(self) -> bool:
        """Plan from the informers' current state and apply it; False when some listener could not
        be opened (the runner then retries soon). The sync still counts as done for the health
        check: an address that cannot be bound is that Service's problem, logged and counted in
        `kubeproxy_userspace_bind_errors_total`, not the proxy's."""
        start = time.perf_counter()
        desired = plan(self.services.store.list(), self.slices.store.list(), self.options.node)
        ok = await self.proxier.apply(desired)
        metrics.SYNC_DURATION.observe(time.perf_counter() - start)
        metrics.SYNC_LAST.set(time.time())
        self.health.updated()
        return ok

    async def run(self) -> None:
        """Serve health and metrics, wait for the informers, then sync until cancelled."""
        opts = self.options
        async with contextlib.AsyncExitStack() as stack:
            tasks: list[asyncio.Task[None]] = []
            stack.callback(self.proxier.close)
            apps = ((opts.healthz_port, healthz_app(self.health)), (opts.metrics_port, metrics_app(self.health)))
            bound = [(app, listen(opts.node.address, port)) for port, app in apps if port]  # fail before serving
            tasks += [asyncio.create_task(serve_http(app, sock)) for app, sock in bound]
            self._watch()
            await stack.enter_async_context(self.factory)
            try:
                while not await self.factory.wait_for_sync(timeout=30):
                    log.warning("informers have not synced after 30s; still waiting")
                log.info(
                    "informers synced; node %s at %s, %d services, %d endpoint slices",
                    opts.node.name,
                    opts.node.address,
                    len(self.services.store),
                    len(self.slices.store),
                )
                self.runner.run()
                tasks.append(asyncio.create_task(self.runner.loop()))
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for t in done:
                    t.result()  # a server or the runner died: raise its error
            finally:
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t
