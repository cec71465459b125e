"""The query path of the cluster DNS: cached wire answers, case, EDNS, truncation, invalidation,
malformed queries and the metrics, driven with real DNS messages built by dnspython."""

from __future__ import annotations

import random
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype as T
import pytest

from cluster_dns.forward import Forwarder, Upstream, read_resolv_conf
from cluster_dns.handler import TCP, UDP, DnsHandler
from cluster_dns.metrics import DnsMetrics
from cluster_dns.wire import parse_question
from cluster_dns.zone import Zone, ZoneConfig, service_record, slice_record


def make_zone(endpoints: int = 3) -> Zone:
    """Namespace `a` with Service `web` (ClusterIP) and headless `hl` with `endpoints` ready endpoints."""
    z = Zone(ZoneConfig(nameserver_ips=("127.96.0.10",)))
    z.add_namespace("a")
    z.set_service(
        service_record(
            {
                "metadata": {"namespace": "a", "name": "web"},
                "spec": {"clusterIP": "127.96.0.20", "ports": [{"name": "http", "port": 80}]},
            }
        )
    )
    z.set_service(
        service_record(
            {
                "metadata": {"namespace": "a", "name": "hl"},
                "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]},
            }
        )
    )
    z.set_slice(
        slice_record(
            {
                "metadata": {"namespace": "a", "name": "hl-1", "labels": {"kubernetes.io/service-name": "hl"}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                "endpoints": [{"addresses": [f"127.1.{i // 250}.{i % 250 + 1}"]} for i in range(endpoints)],
            }
        )
    )
    return z


@pytest.fixture
def handler() -> DnsHandler:
    """A handler on a small zone, with no upstream resolvers."""
    return DnsHandler(make_zone(), Forwarder([], timeout=0.2), DnsMetrics("dns://test:53"))


async def ask(h: DnsHandler, query: dns.message.Message, proto: int = UDP) -> tuple[dns.message.Message, bool]:
    """Send a query through the handler as the server does; the response and whether the cache answered."""
    wire = query.to_wire()
    out = h.fast(wire, proto)
    cached = out is not None
    if out is None:
        out = await h.answer(wire, proto)
    assert out is not None
    return dns.message.from_wire(out), cached


async def test_second_query_comes_from_the_cache_with_its_own_id(handler: DnsHandler) -> None:
    q1 = dns.message.make_query("web.a.svc.cluster.local.", "A")
    r1, cached1 = await ask(handler, q1)
    q2 = dns.message.make_query("web.a.svc.cluster.local.", "A")
    r2, cached2 = await ask(handler, q2)
    assert (cached1, cached2) == (False, True)
    for q, r in ((q1, r1), (q2, r2)):
        assert r.id == q.id and q.is_response(r)
        assert r.flags & dns.flags.AA and r.flags & dns.flags.RA and r.flags & dns.flags.RD
        assert [rr.to_text() for rr in r.answer] == ["web.a.svc.cluster.local. 5 IN A 127.96.0.20"]


async def test_query_case_is_preserved(handler: DnsHandler) -> None:
    await ask(handler, dns.message.make_query("web.a.svc.cluster.local.", "A"))
    r, cached = await ask(handler, dns.message.make_query("WeB.A.svc.Cluster.local.", "A"))
    assert cached
    assert r.question[0].name.to_text() == "WeB.A.svc.Cluster.local."
    assert r.answer[0].name.to_text() == "WeB.A.svc.Cluster.local."
    assert [rd.to_text() for rd in r.answer[0]] == ["127.96.0.20"]


async def test_rd_and_cd_bits_are_copied(handler: DnsHandler) -> None:
    for flags in (0, dns.flags.RD, dns.flags.CD, dns.flags.RD | dns.flags.CD):
        q = dns.message.make_query("web.a.svc.cluster.local.", "A")
        q.flags = flags
        r, _ = await ask(handler, q)
        assert r.flags & (dns.flags.RD | dns.flags.CD) == flags


async def test_edns_is_answered_with_an_opt_record(handler: DnsHandler) -> None:
    for _ in range(2):  # built, then cached
        q = dns.message.make_query("web.a.svc.cluster.local.", "A", use_edns=0, payload=4096, want_dnssec=True)
        r, _ = await ask(handler, q)
        assert r.edns == 0 and r.payload == handler.udp_payload and r.ednsflags & dns.flags.DO
        assert r.answer


async def test_large_answers_are_truncated_over_udp_but_not_tcp() -> None:
    h = DnsHandler(make_zone(endpoints=80), Forwarder([]), DnsMetrics("x"))
    for _ in range(2):
        plain, _ = await ask(h, dns.message.make_query("hl.a.svc.cluster.local.", "A"))
        assert plain.flags & dns.flags.TC and plain.answer == []
    big, _ = await ask(h, dns.message.make_query("hl.a.svc.cluster.local.", "A", use_edns=0, payload=4096))
    assert not big.flags & dns.flags.TC and len(big.answer[0]) == 80
    tcp, _ = await ask(h, dns.message.make_query("hl.a.svc.cluster.local.", "A"), TCP)
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 80


async def test_address_answers_rotate(handler: DnsHandler) -> None:
    firsts = set()
    for _ in range(6):
        r, _ = await ask(handler, dns.message.make_query("hl.a.svc.cluster.local.", "A"))
        assert {rd.to_text() for rd in r.answer[0]} == {"127.1.0.1", "127.1.0.2", "127.1.0.3"}
        firsts.add(next(iter(r.answer[0])).to_text())
    assert len(firsts) == 3


async def test_a_change_drops_exactly_the_answers_it_alters(handler: DnsHandler) -> None:
    await ask(handler, dns.message.make_query("web.a.svc.cluster.local.", "A"))
    await ask(handler, dns.message.make_query("hl.a.svc.cluster.local.", "A"))
    await ask(handler, dns.message.make_query("new.a.svc.cluster.local.", "A"))
    handler.invalidate(
        handler.zone.set_service(
            service_record(
                {
                    "metadata": {"namespace": "a", "name": "new"},
                    "spec": {"clusterIP": "127.96.0.30", "ports": [{"port": 1}]},
                }
            )
        )
    )
    r, cached = await ask(handler, dns.message.make_query("new.a.svc.cluster.local.", "A"))
    assert not cached and r.rcode() == dns.rcode.NOERROR
    assert [rd.to_text() for rd in r.answer[0]] == ["127.96.0.30"]
    _, web_cached = await ask(handler, dns.message.make_query("web.a.svc.cluster.local.", "A"))
    assert web_cached  # untouched by the change
    handler.invalidate(handler.zone.delete_service("a", "web"))
    r, cached = await ask(handler, dns.message.make_query("web.a.svc.cluster.local.", "A"))
    assert not cached and r.rcode() == dns.rcode.NXDOMAIN
    assert r.authority[0].rdtype == T.SOA


async def test_apex_soa_shows_the_current_serial(handler: DnsHandler) -> None:
    first, _ = await ask(handler, dns.message.make_query("cluster.local.", "SOA"))
    handler.invalidate(handler.zone.add_namespace("b"))
    second, cached = await ask(handler, dns.message.make_query("cluster.local.", "SOA"))
    assert not cached
    assert second.answer[0][0].serial > first.answer[0][0].serial


async def test_nxdomain_carries_the_soa(handler: DnsHandler) -> None:
    r, _ = await ask(handler, dns.message.make_query("nope.a.svc.cluster.local.", "A"))
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA and r.answer == []
    soa = r.authority[0].to_text()
    assert soa.startswith("cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local.")


async def test_outside_names_get_servfail_without_upstreams(handler: DnsHandler) -> None:
    r, cached = await ask(handler, dns.message.make_query("www.example.com.", "A"))
    assert not cached and r.rcode() == dns.rcode.SERVFAIL
    _, again = await ask(handler, dns.message.make_query("www.example.com.", "A"))
    assert not again  # forwarded answers are not cached


async def test_malformed_and_unsupported_queries(handler: DnsHandler) -> None:
    assert await handler.answer(b"\x12", UDP) is None  # shorter than a header: dropped
    formerr = await handler.answer(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05abc", UDP)
    assert formerr is not None and formerr[:2] == b"\x12\x34" and formerr[3] & 0x0F == dns.rcode.FORMERR
    response = dns.message.make_response(dns.message.make_query("web.a.svc.cluster.local.", "A"))
    assert await handler.answer(response.to_wire(), UDP) is None  # never answer a response
    notify = dns.message.make_query("cluster.local.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    r, _ = await ask(handler, notify)
    assert r.rcode() == dns.rcode.NOTIMP
    v1 = dns.message.make_query("web.a.svc.cluster.local.", "A", use_edns=1)
    r, _ = await ask(handler, v1)
    assert r.rcode() == dns.rcode.BADVERS


def test_fast_parser_only_takes_plain_queries() -> None:
    plain = dns.message.make_query("web.a.svc.cluster.local.", "A").to_wire()
    parsed = parse_question(plain)
    assert parsed is not None and parsed[0] == b"\x03web\x01a\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01"
    two = dns.message.make_query("web.a.svc.cluster.local.", "A")
    two.question.append(two.question[0])
    assert parse_question(two.to_wire()) is None
    assert parse_question(plain + b"junk") is None
    assert parse_question(dns.message.make_response(dns.message.make_query("x.", "A")).to_wire()) is None
    cookie = dns.message.make_query("x.", "A", use_edns=0, options=[dns.edns.GenericOption(10, b"12345678")])
    assert parse_question(cookie.to_wire()) is not None


async def test_cache_is_bounded() -> None:
    h = DnsHandler(make_zone(), Forwarder([]), DnsMetrics("x"), cache_size=5)
    for i in range(20):
        await ask(h, dns.message.make_query(f"n{i}.a.svc.cluster.local.", "A"))
    assert len(h.cache) == 5
    assert sum(len(keys) for keys in h._tagged.values()) <= 5 * 2


async def test_metrics_count_requests_responses_and_latency(handler: DnsHandler) -> None:
    await ask(handler, dns.message.make_query("web.a.svc.cluster.local.", "A"))
    await ask(handler, dns.message.make_query("web.a.svc.cluster.local.", "A"), TCP)
    await ask(handler, dns.message.make_query("nope.a.svc.cluster.local.", "SRV"))
    families = {m.name: m for m in handler.metrics.collect()}
    requests = {(s.labels["proto"], s.labels["type"]): s.value for s in families["coredns_dns_requests"].samples}
    assert requests == {("udp", "A"): 1, ("tcp", "A"): 1, ("udp", "SRV"): 1}
    responses = {(s.labels["rcode"], s.labels["plugin"]): s.value for s in families["coredns_dns_responses"].samples}
    assert responses == {("NOERROR", "kubernetes"): 2, ("NXDOMAIN", "kubernetes"): 1}
    counts = {
        s.labels["type"]: s.value
        for s in families["coredns_dns_request_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts == {"A": 2, "SRV": 1}


def test_resolv_conf_nameservers(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "# generated\nsearch example.com\nnameserver 192.0.2.53 # primary\n; comment\n"
        "nameserver fe80::1%eth0\noptions ndots:5 timeout:2\nnameserver\n"
    )
    assert read_resolv_conf(conf) == [Upstream("192.0.2.53"), Upstream("fe80::1")]
    assert read_resolv_conf(tmp_path / "missing") == []


async def test_exact_query_bytes_map_to_response_bytes_until_a_change(handler: DnsHandler) -> None:
    q = dns.message.make_query("web.a.svc.cluster.local.", "A")
    await ask(handler, q)  # built
    await ask(handler, q)  # served by fast(), which remembers the exact bytes
    wire = q.to_wire()
    tail, _ = handler.exact[wire[2:]]
    r = dns.message.from_wire(b"\xab\xcd" + tail)
    assert r.id == 0xABCD and [rd.to_text() for rd in r.answer[0]] == ["127.96.0.20"]
    handler.invalidate(handler.zone.delete_service("a", "web"))
    assert wire[2:] not in handler.exact
    assert handler.fast(wire, UDP) is None


async def test_random_bytes_never_raise(handler: DnsHandler) -> None:
    rng = random.Random(7)
    valid = dns.message.make_query("web.a.svc.cluster.local.", "A", use_edns=0).to_wire()
    await ask(handler, dns.message.make_query("web.a.svc.cluster.local.", "A", use_edns=0))
    for i in range(3000):
        if i % 2:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        else:  # a valid query with a few bytes flipped
            flipped = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            data = bytes(flipped)
        for proto in (UDP, TCP):
            out = handler.fast(data, proto)
            if out is None:
                out = await handler.answer(data, proto)
            if out is not None:
                assert out[:2] == data[:2]
