"""The cluster DNS process: informers into the zone, the listeners, and the kube-dns Service.

Informers on Services, EndpointSlices and Namespaces (namespace existence decides NXDOMAIN versus
NODATA for `<ns>.svc` and pod names, as in CoreDNS) feed the zone object by object; each change
drops the cached answers it can alter. The listeners open once the informers have synced, or after
`sync_timeout` seconds without (CoreDNS starts unsynced after 5 s too). The kube-system/kube-dns
Service (ClusterIP = the 10th address of the Service range) and its EndpointSlice pointing at this
process are applied with `publish_addon`, retried with backoff until the apiserver takes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
from dataclasses import dataclass

from client.addon import AddonEndpoint, publish_addon
from client.backoff import Backoff
from client.informer import InformerFactory
from client.request import Obj
from client.rest import ApiClient
from cluster_dns.forward import Forwarder, Upstream, read_resolv_conf
from cluster_dns.handler import DnsHandler
from cluster_dns.metrics import DnsMetrics
from cluster_dns.server import DnsServer
from cluster_dns.zone import Tag, Zone, ZoneConfig, service_record, slice_record

__all__ = ["ClusterDns", "DnsOptions", "dns_service_ip", "kube_dns_service"]

log = logging.getLogger("cluster_dns")

FIELD_MANAGER = "tinykube-dns"
SERVICE_NAME = "kube-dns"
SERVICE_NAMESPACE = "kube-system"
METRICS_PORT = 9153


@dataclass(frozen=True)
class DnsOptions:
    """Where to listen and what to serve."""

    bind_address: str
    service_cluster_ip_range: str
    port: int = 53
    cluster_domain: str = "cluster.local"
    ttl: int = 5
    health_port: int = 0
    resolv_conf: str = "/etc/resolv.conf"
    forward_timeout: float = 2.0
    sync_timeout: float = 5.0


def dns_service_ip(cidr: str) -> str:
    """The 10th address of the Service range (kubeadm's kube-dns ClusterIP, e.g. 10.96.0.10)."""
    net = ipaddress.ip_network(cidr, strict=False)
    if net.num_addresses <= 11:
        raise ValueError(f"service range {cidr} is too small for a DNS Service at its 10th address")
    return str(net.network_address + 10)


def kube_dns_service(cluster_ip: str, metrics: bool) -> Obj:
    """The kube-system/kube-dns Service as kubeadm installs it (selector-less: the process is its endpoint)."""
    ports: list[Obj] = [
        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
    ]
    if metrics:
        ports.append({"name": "metrics", "port": METRICS_PORT, "protocol": "TCP", "targetPort": METRICS_PORT})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": SERVICE_NAME,
            "namespace": SERVICE_NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
            "annotations": {"prometheus.io/port": str(METRICS_PORT), "prometheus.io/scrape": "true"},
        },
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ports": ports},
    }


class ClusterDns:
    """The zone, handler and listeners of one DNS server, fed by informers."""

    def __init__(self, opts: DnsOptions) -> None:
        self.opts = opts
        self.service_ip = dns_service_ip(opts.service_cluster_ip_range)
        self.zone = Zone(ZoneConfig(opts.cluster_domain, opts.ttl, (self.service_ip,)))
        upstreams = [
            u for u in read_resolv_conf(opts.resolv_conf) if (u.host, u.port) != (opts.bind_address, opts.port)
        ]
        self.metrics = DnsMetrics(f"dns://{opts.bind_address}:{opts.port}")
        self.handler = DnsHandler(self.zone, Forwarder(upstreams, opts.forward_timeout), self.metrics)
        self.server = DnsServer(self.handler, opts.bind_address, opts.port)
        self.synced = False
        self.serving = False
        self.published = False
        if not upstreams:
            log.warning("no upstream nameservers in %s; names outside the cluster get SERVFAIL", opts.resolv_conf)

    @property
    def upstreams(self) -> tuple[Upstream, ...]:
        """The resolvers names outside the cluster go to."""
        return self.handler.forwarder.upstreams

    def ready(self) -> bool:
        """Ready once the informers have synced and the listeners are open."""
        return self.synced and self.serving

    def _changed(self, tags: set[Tag]) -> None:
        if tags:
            self.handler.invalidate(tags)

    # --- informer handlers ---------------------------------------------------------------

    def _service_set(self, obj: Obj) -> None:
        rec = service_record(obj)
        if rec is not None:
            self._changed(self.zone.set_service(rec))

    def _service_update(self, old: Obj, new: Obj) -> None:
        self._service_set(new)

    def _service_delete(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self._changed(self.zone.delete_service(str(meta.get("namespace", "")), str(meta.get("name", ""))))

    def _slice_set(self, obj: Obj) -> None:
        rec = slice_record(obj)
        if rec is not None:
            self._changed(self.zone.set_slice(rec))
        else:
            self._slice_delete(obj)

    def _slice_update(self, old: Obj, new: Obj) -> None:
        self._slice_set(new)

    def _slice_delete(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self._changed(self.zone.delete_slice(str(meta.get("namespace", "")), str(meta.get("name", ""))))

    def _ns_set(self, obj: Obj) -> None:
        self._changed(self.zone.add_namespace(str((obj.get("metadata") or {}).get("name", ""))))

    def _ns_update(self, old: Obj, new: Obj) -> None:
        self._ns_set(new)

    def _ns_delete(self, obj: Obj) -> None:
        self._changed(self.zone.delete_namespace(str((obj.get("metadata") or {}).get("name", ""))))

    # --- running -------------------------------------------------------------------------

    async def run(self, api: ApiClient) -> None:
        """Serve until cancelled."""
        factory = InformerFactory(api)
        factory.informer("services").add_handler(self._service_set, self._service_update, self._service_delete)
        factory.informer("endpointslices").add_handler(self._slice_set, self._slice_update, self._slice_delete)
        factory.informer("namespaces").add_handler(self._ns_set, self._ns_update, self._ns_delete)
        self.metrics.register()
        publisher: asyncio.Task[None] | None = None
        try:
            async with factory:
                self.synced = await factory.wait_for_sync(self.opts.sync_timeout)
                if not self.synced:
                    log.warning("starting to serve with an unsynced Kubernetes API")
                try:
                    await self.server.start()
                except OSError as e:
                    raise RuntimeError(f"cannot serve DNS on {self.opts.bind_address}:{self.opts.port}: {e}") from None
                self.serving = True
                publisher = asyncio.create_task(self._publish(api))
                if not self.synced:
                    await factory.wait_for_sync()
                    self.synced = True
                # the synced objects live as long as the process: keep the collector off them, so a
                # full collection cannot stall the query path for milliseconds
                gc.collect()
                gc.freeze()
                log.info(
                    "cluster DNS ready: zone %s, %d services, DNS Service IP %s",
                    self.zone.origin,
                    len(self.zone.services),
                    self.service_ip,
                )
                await asyncio.Event().wait()
        finally:
            self.serving = False
            if publisher is not None:
                publisher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await publisher
            await self.server.stop()
            self.metrics.unregister()

    async def _publish(self, api: ApiClient) -> None:
        """Apply kube-system/kube-dns and its EndpointSlice, retrying until the apiserver takes them."""
        ports = [AddonEndpoint("dns", self.opts.port, "UDP"), AddonEndpoint("dns-tcp", self.opts.port, "TCP")]
        if self.opts.health_port:
            ports.append(AddonEndpoint("metrics", self.opts.health_port, "TCP"))
        service = kube_dns_service(self.service_ip, metrics=bool(self.opts.health_port))
        backoff = Backoff(initial=0.5, cap=30.0)
        failures = 0
        while True:
            try:
                await publish_addon(api, service, self.opts.bind_address, ports, field_manager=FIELD_MANAGER)
            except Exception as e:
                delay = backoff.delay(failures)
                failures += 1
                log.warning("publishing %s/%s failed (%s); retry in %.1fs", SERVICE_NAMESPACE, SERVICE_NAME, e, delay)
                await asyncio.sleep(delay)
                continue
            self.published = True
            log.info(
                "published %s/%s at %s -> %s:%d",
                SERVICE_NAMESPACE,
                SERVICE_NAME,
                self.service_ip,
                self.opts.bind_address,
                self.opts.port,
            )
            return
