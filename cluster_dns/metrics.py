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


PLUGINS = ("kubernetes", "forward", "")


class DnsMetrics(Collector):
    """Request, response and latency counts of one DNS server."""

    def __init__(self, server: str, zone: str = ".", family: str = "1") -> None:
        self.server, self.zone, self.family = server, zone, family
        # (proto, qtype, rcode, plugin) -> bucket counts, then the sum of seconds as the last item
        self.rows: dict[tuple[int, int, int, int], list[float]] = {}

    def row(self, proto: int, qtype: int, rcode: int, plugin: int) -> list[float]:
        """The counts of one label combination: a hot path keeps it and adds to it directly
        (`row[bisect_left(BUCKETS, seconds)] += 1; row[-1] += seconds`)."""
        key = (proto, qtype, rcode, plugin)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0] * (len(BUCKETS) + 2)
        return row

    def observe(self, proto: int, qtype: int, rcode: int, plugin: int, seconds: float) -> None:
        """Count one answered query (`proto` 0 UDP / 1 TCP; `plugin` an index into PLUGINS)."""
        row = self.row(proto, qtype, rcode, plugin)
        row[bisect.bisect_left(BUCKETS, seconds)] += 1
        row[-1] += seconds

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
        requests: dict[tuple[str, str], float] = {}
        responses: dict[tuple[str, str], float] = {}
        durations: dict[str, list[float]] = {}
        for (proto, qtype, rcode, plugin), row in list(self.rows.items()):
            count = sum(row[:-1])
            tname = type_name(qtype)
            k = (PROTOS[proto], tname)
            requests[k] = requests.get(k, 0) + count
            r = (dns.rcode.to_text(rcode), PLUGINS[plugin])
            responses[r] = responses.get(r, 0) + count
            acc = durations.setdefault(tname, [0.0] * len(row))
            for i, v in enumerate(row):
                acc[i] += v
        req = CounterMetricFamily(
            "coredns_dns_requests",
            "Counter of DNS requests made per zone, protocol and family.",
            labels=["server", "zone", "view", "proto", "family", "type"],
        )
        for (proto_name, tname), n in sorted(requests.items()):
            req.add_metric([*base, proto_name, self.family, tname], n)
        yield req
        resp = CounterMetricFamily(
            "coredns_dns_responses",
            "Counter of response status codes.",
            labels=["server", "zone", "view", "rcode", "plugin"],
        )
        for (rcode_name, plugin_name), n in sorted(responses.items()):
            resp.add_metric([*base, rcode_name, plugin_name], n)
        yield resp
        hist = HistogramMetricFamily(
            "coredns_dns_request_duration_seconds",
            "Histogram of the time (in seconds) each request took per zone.",
            labels=["server", "zone", "view", "type"],
        )
        for tname, acc in sorted(durations.items()):
            cumulative, buckets = 0.0, []
            for le, c in zip((*(repr(b) for b in BUCKETS), "+Inf"), acc[:-1], strict=True):
                cumulative += c
                buckets.append((le, cumulative))
            hist.add_metric([*base, tname], buckets, acc[-1])
        yield hist
