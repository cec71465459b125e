"""CoreDNS's request metrics, counted in plain ints on the hot path and exposed at scrape time.

`coredns_dns_requests_total{server,zone,view,proto,family,type}`,
`coredns_dns_responses_total{server,zone,view,rcode,plugin}` and the histogram
`coredns_dns_request_duration_seconds{server,zone,view,type}` (CoreDNS's buckets: 0.25 ms doubling
to about 8 s). A prometheus_client Counter costs a lock and a label lookup per call; at tens of
thousands of queries a second that is a visible share, so the counts live in dicts and a collector
turns them into metric families when /metrics is read.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import dns.rcode
import dns.rdatatype
from prometheus_client.core import REGISTRY, CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["BUCKETS", "DnsMetrics"]

BUCKETS = tuple(0.00025 * 2**i for i in range(16))
# the types CoreDNS reports by name; others count as "other"
MONITORED_TYPES = frozenset(
    dns.rdatatype.from_text(t)
    for t in "A AAAA NS PTR SOA CNAME MX TXT SRV DS DNSKEY RRSIG NSEC NSEC3 HTTPS IXFR AXFR ANY".split()
)
PROTOS = ("udp", "tcp")


def type_name(qtype: int) -> str:
    """CoreDNS's `type` label for a query type."""
    return dns.rdatatype.to_text(qtype) if qtype in MONITORED_TYPES else "other"


class DnsMetrics(Collector):
    """Request, response and latency counts of one DNS server."""

    def __init__(self, server: str, zone: str = ".", family: str = "1") -> None:
        self.server, self.zone, self.family = server, zone, family
        self.requests: dict[tuple[int, int], int] = {}
        self.responses: dict[tuple[int, str], int] = {}
        self.durations: dict[int, list[int]] = {}
        self.duration_sums: dict[int, float] = {}

    def observe(self, proto: int, qtype: int, rcode: int, plugin: str, seconds: float) -> None:
        """Count one answered query (`proto` 0 = UDP, 1 = TCP)."""
        key = (proto, qtype)
        self.requests[key] = self.requests.get(key, 0) + 1
        rkey = (rcode, plugin)
        self.responses[rkey] = self.responses.get(rkey, 0) + 1
        counts = self.durations.get(qtype)
        if counts is None:
            counts = self.durations[qtype] = [0] * (len(BUCKETS) + 1)
            self.duration_sums[qtype] = 0.0
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.duration_sums[qtype] += seconds

    def register(self) -> DnsMetrics:
        """Expose these metrics on the process's default registry (served at /metrics)."""
        REGISTRY.register(self)
        return self

    def unregister(self) -> None:
        """Stop exposing them."""
        REGISTRY.unregister(self)

    def collect(self) -> Iterator[Metric]:
        """Metric families for a scrape."""
        base = [self.server, self.zone, ""]
        req = CounterMetricFamily(
            "coredns_dns_requests",
            "Counter of DNS requests made per zone, protocol and family.",
            labels=["server", "zone", "view", "proto", "family", "type"],
        )
        by_type: dict[tuple[int, str], int] = {}
        for (proto, qtype), n in list(self.requests.items()):
            k = (proto, type_name(qtype))
            by_type[k] = by_type.get(k, 0) + n
        for (proto, tname), n in sorted(by_type.items()):
            req.add_metric([*base, PROTOS[proto], self.family, tname], n)
        yield req
        resp = CounterMetricFamily(
            "coredns_dns_responses",
            "Counter of response status codes.",
            labels=["server", "zone", "view", "rcode", "plugin"],
        )
        for (rcode, plugin), n in sorted(self.responses.items()):
            resp.add_metric([*base, dns.rcode.to_text(rcode), plugin], n)
        yield resp
        hist = HistogramMetricFamily(
            "coredns_dns_request_duration_seconds",
            "Histogram of the time (in seconds) each request took per zone.",
            labels=["server", "zone", "view", "type"],
        )
        merged: dict[str, tuple[list[int], float]] = {}
        for qtype, counts in list(self.durations.items()):
            tname = type_name(qtype)
            acc, total = merged.get(tname, ([0] * len(counts), 0.0))
            merged[tname] = ([a + c for a, c in zip(acc, counts, strict=True)], total + self.duration_sums[qtype])
        for tname, (counts, total) in sorted(merged.items()):
            cumulative, buckets = 0, []
            for le, c in zip((*(repr(b) for b in BUCKETS), "+Inf"), counts, strict=True):
                cumulative += c
                buckets.append((le, cumulative))
            hist.add_metric([*base, tname], buckets, total)
        yield hist
