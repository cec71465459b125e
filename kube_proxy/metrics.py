"""kube-proxy's Prometheus metrics: upstream's sync metrics and per-service traffic of the userspace proxy."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from kube_proxy.plan import PortRef

__all__ = ["ServiceStats", "stats_for"]

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

_LABELS = ["namespace", "service", "port", "protocol"]
CONNECTIONS = Counter(
    "kubeproxy_userspace_connections_total",
    "Connections (TCP) or client associations (UDP) forwarded to an endpoint",
    _LABELS,
)
CONNECT_FAILURES = Counter(
    "kubeproxy_userspace_endpoint_failures_total",
    "Attempts to reach an endpoint that were refused or timed out",
    _LABELS,
)
REJECTED = Counter(
    "kubeproxy_userspace_rejected_total",
    "Accepted connections closed because no endpoint could be reached",
    _LABELS,
)
ACTIVE = Gauge("kubeproxy_userspace_active_connections", "Connections or UDP associations open now", _LABELS)
BYTES = Counter(
    "kubeproxy_userspace_bytes_total",
    "Bytes forwarded; direction in = client to endpoint, out = endpoint to client",
    [*_LABELS, "direction"],
)


@dataclass(frozen=True)
class ServiceStats:
    """The metric children of one service port, resolved once so the data path only increments."""

    connections: Counter
    failures: Counter
    rejected: Counter
    active: Gauge
    bytes_in: Counter
    bytes_out: Counter


_cache: dict[PortRef, ServiceStats] = {}


def stats_for(ref: PortRef) -> ServiceStats:
    """The metric children for a service port (created on first use, then shared)."""
    stats = _cache.get(ref)
    if stats is None:
        labels = (ref.namespace, ref.service, ref.port, ref.protocol)
        stats = _cache[ref] = ServiceStats(
            CONNECTIONS.labels(*labels),
            CONNECT_FAILURES.labels(*labels),
            REJECTED.labels(*labels),
            ACTIVE.labels(*labels),
            BYTES.labels(*labels, "in"),
            BYTES.labels(*labels, "out"),
        )
    return stats


def forget(ref: PortRef) -> None:
    """Drop a deleted service port's series."""
    if _cache.pop(ref, None) is None:
        return
    labels = (ref.namespace, ref.service, ref.port, ref.protocol)
    for metric in (CONNECTIONS, CONNECT_FAILURES, REJECTED, ACTIVE):
        metric.remove(*labels)
    for direction in ("in", "out"):
        BYTES.remove(*labels, direction)
