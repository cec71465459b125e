"""The metrics-server process: scrape every node's kubelet each `--metric-resolution`, serve the
Metrics API, and register it with the apiserver's aggregation layer.

Every resolution period, each Node's kubelet (its preferred address — InternalIP first — and
`status.daemonEndpoints.kubeletEndpoint.Port`) is asked for `/metrics/resource`, all nodes at
once (bounded), each within `--kubelet-request-timeout`, over HTTPS with this process's own
credentials (`metrics_server/kubelet_client.py`); a node that fails keeps its last points until
they are stale. The API listens on `--bind-address:--port` in plain HTTP. At start the
process publishes itself as upstream's manifests install metrics-server: a kube-system/metrics-server
Service (port 443, `appProtocol: http`, which tells the aggregator to speak plain HTTP) with an
EndpointSlice pointing at this process (client/addon.py), and the v1beta1.metrics.k8s.io APIService
naming that Service, all by server-side apply, retried with backoff until the apiserver takes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from prometheus_client import Counter, Gauge, Histogram

from apimachinery.httpserver import bind_socket
from client.addon import AddonEndpoint, publish_addon
from client.backoff import Backoff
from client.component import _QuietServer
from client.informer import InformerFactory
from client.request import Obj, PatchType
from client.rest import ApiClient
from metrics_server.api import GROUP, VERSION, MetricsApi
from metrics_server.kubelet_client import KubeletClientOptions, KubeletClients
from metrics_server.scrape import ParseError, parse_resource_metrics
from metrics_server.storage import MetricsStore

__all__ = [
    "APISERVICE_NAME",
    "SERVICE_NAME",
    "MetricsServer",
    "MetricsServerOptions",
    "api_service",
    "kubelet_url",
    "metrics_service",
]

log = logging.getLogger("metrics_server")

FIELD_MANAGER = "tinykube-metrics-server"
SERVICE_NAME = "metrics-server"
SERVICE_NAMESPACE = "kube-system"
APISERVICE_NAME = f"{VERSION}.{GROUP}"
ADDRESS_TYPES = ("InternalIP", "Hostname", "InternalDNS", "ExternalDNS", "ExternalIP")
DEFAULT_KUBELET_PORT = 10250

REQUESTS = Counter("metrics_server_kubelet_request_total", "Scrapes of kubelets", ["success"])
REQUEST_SECONDS = Histogram(
    "metrics_server_kubelet_request_duration_seconds",
    "Duration of kubelet scrapes",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TICK_SECONDS = Histogram(
    "metrics_server_manager_tick_duration_seconds",
    "Duration of one scrape of all nodes",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STORED = Gauge("metrics_server_storage_points", "Points held", ["type"])


@dataclass(frozen=True)
class MetricsServerOptions:
    """Where to listen, how often to scrape, whether to register with the apiserver."""

    bind_address: str
    port: int = 10250
    metric_resolution: float = 15.0
    kubelet_request_timeout: float = 10.0
    max_concurrent_scrapes: int = 32
    register: bool = True
    kubelet: KubeletClientOptions = field(default_factory=KubeletClientOptions)


def metrics_service(target_port: int) -> Obj:
    """kube-system/metrics-server as upstream installs it, selector-less (this process is its endpoint)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": SERVICE_NAME,
            "namespace": SERVICE_NAMESPACE,
            "labels": {"k8s-app": "metrics-server"},
        },
        "spec": {
            "type": "ClusterIP",
            "ports": [
                {"name": "http", "port": 443, "protocol": "TCP", "targetPort": target_port, "appProtocol": "http"}
            ],
        },
    }


def api_service() -> Obj:
    """The v1beta1.metrics.k8s.io APIService naming kube-system/metrics-server."""
    return {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": APISERVICE_NAME, "labels": {"k8s-app": "metrics-server"}},
        "spec": {
            "group": GROUP,
            "version": VERSION,
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
            "insecureSkipTLSVerify": True,
            "service": {"namespace": SERVICE_NAMESPACE, "name": SERVICE_NAME, "port": 443},
        },
    }


def kubelet_url(node: dict[str, Any], scheme: str = "https") -> str | None:
    """`<scheme>://<address>:<port>` of a Node's kubelet, or None when it reports no address."""
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    for kind in ADDRESS_TYPES:
        host = next((a.get("address") for a in addresses if a.get("type") == kind and a.get("address")), None)
        if host:
            port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
            port = port or DEFAULT_KUBELET_PORT
            return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
    return None


class MetricsServer:
    """Scraper, store and API of one metrics-server."""

    def __init__(self, opts: MetricsServerOptions) -> None:
        self.opts = opts
        resolution = opts.metric_resolution
        self.store = MetricsStore(max_age=max(3 * resolution, resolution + 30), fresh_start=2 * resolution + 1)
        self.serving = False
        self.published = False
        self.scraped = False
        self._clients: KubeletClients | None = None  # made in run(), from the API connection's credentials

    def ready(self) -> bool:
        """Serving, registered (when asked to be) and holding one round of scrapes."""
        return self.serving and self.scraped and (self.published or not self.opts.register)

    async def _scrape_node(self, node: dict[str, Any], limit: asyncio.Semaphore) -> None:
        name = str((node.get("metadata") or {}).get("name", ""))
        url = kubelet_url(node, self.opts.kubelet.scheme)
        if url is None or self._clients is None:
            return
        async with limit:
            started = time.monotonic()
            try:
                resp = await self._clients.client(url).get(url + "/metrics/resource")
                resp.raise_for_status()
                batch = parse_resource_metrics(resp.text, time.time())
            except (httpx.HTTPError, ParseError) as e:
                REQUESTS.labels("false").inc()
                log.warning("failed scraping node %s (%s): %s", name, url, e or type(e).__name__)
                return
            finally:
                REQUEST_SECONDS.observe(time.monotonic() - started)
        REQUESTS.labels("true").inc()
        self.store.store(name, batch, time.time())

    async def scrape(self, nodes: list[dict[str, Any]]) -> None:
        """One round: every node's kubelet, concurrently."""
        started = time.monotonic()
        limit = asyncio.Semaphore(self.opts.max_concurrent_scrapes)
        await asyncio.gather(*(self._scrape_node(n, limit) for n in nodes))
        self.store.forget({str((n.get("metadata") or {}).get("name", "")) for n in nodes})
        if self._clients is not None:
            await self._clients.keep({u for n in nodes if (u := kubelet_url(n, self.opts.kubelet.scheme))})
        TICK_SECONDS.observe(time.monotonic() - started)
        now = time.time()
        STORED.labels("node").set(sum(1 for n in nodes if self.store.node_usage(n["metadata"]["name"], now)))
        STORED.labels("pod").set(len(self.store.pods(now)))
        self.scraped = True

    async def _publish(self, api: ApiClient) -> None:
        ports = [AddonEndpoint("http", self.opts.port)]
        backoff = Backoff(initial=0.5, cap=30.0)
        failures = 0
        while True:
            try:
                await publish_addon(
                    api, metrics_service(self.opts.port), self.opts.bind_address, ports, field_manager=FIELD_MANAGER
                )
                await api.patch(
                    "apiservices",
                    APISERVICE_NAME,
                    api_service(),
                    patch_type=PatchType.APPLY,
                    field_manager=FIELD_MANAGER,
                    force=True,
                )
            except Exception as e:
                delay = backoff.delay(failures)
                failures += 1
                log.warning("registering the Metrics API failed (%s); retry in %.1fs", e, delay)
                await asyncio.sleep(delay)
                continue
            self.published = True
            log.info(
                "published APIService %s -> %s/%s -> %s:%d",
                APISERVICE_NAME,
                SERVICE_NAMESPACE,
                SERVICE_NAME,
                self.opts.bind_address,
                self.opts.port,
            )
            return

    async def run(self, api: ApiClient) -> None:
        """Serve until cancelled."""
        factory = InformerFactory(api)
        nodes, pods = factory.informer("nodes"), factory.informer("pods")
        metrics_api = MetricsApi(self.store, nodes.store.list, pods.store.list)
        try:
            sock = bind_socket(self.opts.bind_address, self.opts.port)
        except OSError as e:
            raise RuntimeError(
                f"cannot serve the Metrics API on {self.opts.bind_address}:{self.opts.port}: {e}"
            ) from None
        self._clients = KubeletClients(self.opts.kubelet.client_factory(api.config, self.opts.kubelet_request_timeout))
        config = uvicorn.Config(metrics_api.app(), log_config=None, access_log=False, lifespan="off")
        server = _QuietServer(config)
        tasks: list[asyncio.Task[Any]] = []
        try:
            async with factory:
                await factory.wait_for_sync()
                tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name="metrics-api"))
                self.serving = True
                if self.opts.register:
                    tasks.append(asyncio.create_task(self._publish(api), name="publish"))
                log.info(
                    "metrics-server serving %s on %s:%d, scraping every %gs",
                    f"{GROUP}/{VERSION}",
                    self.opts.bind_address,
                    self.opts.port,
                    self.opts.metric_resolution,
                )
                while True:
                    started = time.monotonic()
                    await self.scrape(nodes.store.list())
                    await asyncio.sleep(max(self.opts.metric_resolution - (time.monotonic() - started), 0.05))
        finally:
            self.serving = False
            server.should_exit = True
            for t in tasks:
                if t.get_name() != "metrics-api":
                    t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(t, 5)
            sock.close()
            if self._clients is not None:
                await self._clients.aclose()
                self._clients = None
