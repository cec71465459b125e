"""kube-proxy's Prometheus metrics: upstream's sync metrics and per-service traffic of the userspace proxy.

The data path only adds to plain integers (`ServiceStats`); a collector turns them into
`kubeproxy_userspace_*` series at scrape time, so forwarding a chunk costs no lock and no call
into prometheus_client.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kube_proxy.plan import PortRef

__all__ = ["ServiceStats", "forget", "stats_for"]

# upstream pkg/proxy/metrics: exponential buckets from 1 ms, doubling, 15 of them
_SYNC_BUCKETS = tuple(0.001 * 2**i for i in range(15))

SYNC_DURATION = Histogram(
    "kubeproxy_sync_proxy_rules_duration_seconds",
    "SyncProxyRules latency in seconds",
    buckets=_SYNC_BUCKETS,
)
SYNC_LAST = Gauge(
    "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
    "The last time proxy rules were successfully synced",
)
SYNC_QUEUED = Gauge(
    "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
    "The last time a sync of proxy rules was queued",
)
SERVICE_CHANGES = Counter("kubeproxy_sync_proxy_rules_service_changes_total", "Cumulative proxy rules Service changes")
ENDPOINT_CHANGES = Counter(
    "kubeproxy_sync_proxy_rules_endpoint_changes_total", "Cumulative proxy rules Endpoint changes"
)
HEALTHZ = Counter("kubeproxy_proxy_healthz_total", "Cumulative proxy healthz HTTP status", ["code"])
LIVEZ = Counter("kubeproxy_proxy_livez_total", "Cumulative proxy livez HTTP status", ["code"])
LISTENERS = Gauge("kubeproxy_userspace_listeners", "Sockets the userspace proxy listens on", ["protocol"])
BIND_ERRORS = Counter("kubeproxy_userspace_bind_errors_total", "Listeners that could not be opened")


class ServiceStats:
    """Traffic counters of one service port (plain integers, added to by the data path)."""

    __slots__ = ("active", "bytes_in", "bytes_out", "connections", "failures", "rejected")

    def __init__(self) -> None:
        self.connections = 0  # connections (TCP) or client associations (UDP) forwarded to an endpoint
        self.failures = 0  # attempts to reach an endpoint that were refused or timed out
        self.rejected = 0  # clients turned away because no endpoint could be reached
        self.active = 0  # connections or associations open now
        self.bytes_in = 0  # client to endpoint
        self.bytes_out = 0  # endpoint to client


_stats: dict[PortRef, ServiceStats] = {}


def stats_for(ref: PortRef) -> ServiceStats:
    """The counters of a service port (created on first use, then shared)."""
    stats = _stats.get(ref)
    if stats is None:
        stats = _stats[ref] = ServiceStats()
    return stats


def forget(ref: PortRef) -> None:
    """Drop a deleted service port's series."""
    _stats.pop(ref, None)


_LABELS = ["namespace", "service", "port", "protocol"]


class _TrafficCollector(Collector):
    """Exports every `ServiceStats` as `kubeproxy_userspace_*` series."""

    def collect(self) -> Iterator[Metric]:
        conns = CounterMetricFamily(
            "kubeproxy_userspace_connections",
            "Connections (TCP) or client associations (UDP) forwarded to an endpoint",
            labels=_LABELS,
        )
        failures = CounterMetricFamily(
            "kubeproxy_userspace_endpoint_failures",
            "Attempts to reach an endpoint that were refused or timed out",
            labels=_LABELS,
        )
        rejected = CounterMetricFamily(
            "kubeproxy_userspace_rejected",
            "Clients turned away because no endpoint could be reached",
            labels=_LABELS,
        )
        active = GaugeMetricFamily(
            "kubeproxy_userspace_active_connections", "Connections or UDP associations open now", labels=_LABELS
        )
        traffic = CounterMetricFamily(
            "kubeproxy_userspace_bytes",
            "Bytes forwarded; direction in = client to endpoint, out = endpoint to client",
            labels=[*_LABELS, "direction"],
        )
        for ref, s in list(_stats.items()):
            labels = [ref.namespace, ref.service, ref.port, ref.protocol]
            conns.add_metric(labels, s.connections)
            failures.add_metric(labels, s.failures)
            rejected.add_metric(labels, s.rejected)
            active.add_metric(labels, s.active)
            traffic.add_metric([*labels, "in"], s.bytes_in)
            traffic.add_metric([*labels, "out"], s.bytes_out)
        yield from (conns, failures, rejected, active, traffic)


REGISTRY.register(_TrafficCollector())
