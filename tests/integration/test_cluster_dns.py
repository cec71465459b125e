"""Cluster DNS end to end: the real `python -m cluster_dns` process on a real apiserver and etcd,
asked with dnspython's resolver and query functions over UDP and TCP.

Each DNS process listens on a random 127.231.x.y address (a free port), so tests never collide
with a cluster or another run. Names outside the cluster go to a small resolver this module runs
on <random loopback>:53 (resolv.conf has no port syntax; the tests run as root, as CI does).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.asyncresolver
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset
import httpx
import pytest

from cluster_dns.app import dns_service_ip
from tinykube.procs import Process, free_port, wait_ready

SERVICE_RANGE = "127.96.0.0/16"  # the range of the session's apiserver (its default)
ZONE = "cluster.local"
OUTSIDE_A = "192.0.2.7"
EXTERNAL_A = "192.0.2.8"


def loopback() -> str:
    """A loopback address unlikely to be used by anything else."""
    return f"127.231.{random.randint(1, 254)}.{random.randint(2, 254)}"


# --- a resolver for names outside the cluster ---------------------------------------------------


class Upstream(asyncio.DatagramProtocol):
    """Answers `outside.test`/`www.outside.test` A, `big.test` TXT (truncated over UDP), and never `silent.test`."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.seen: list[tuple[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.server: asyncio.Server | None = None

    def reply(self, wire: bytes, proto: str) -> bytes | None:
        query = dns.message.from_wire(wire)
        q = query.question[0]
        name = q.name.to_text().lower()
        self.seen.append((name, proto))
        if name == "silent.test.":
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        addresses = {"outside.test.": OUTSIDE_A, "www.outside.test.": EXTERNAL_A}
        if name in addresses and q.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", addresses[name]))
        elif name == "big.test." and q.rdtype == dns.rdatatype.TXT:
            if proto == "udp":
                response.flags |= dns.flags.TC
            else:
                texts = [f'"record {i:02d} of a long answer that does not fit a datagram"' for i in range(40)]
                response.answer.append(dns.rrset.from_text_list(q.name, 60, "IN", "TXT", texts))
        elif name not in addresses and name != "big.test.":
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        out = self.reply(data, "udp")
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                out = self.reply(await reader.readexactly(size), "tcp")
                if out is not None:
                    writer.write(len(out).to_bytes(2, "big") + out)
                    await writer.drain()
        writer.close()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, 53))
        self.server = await asyncio.start_server(self._tcp, self.host, 53)

    async def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self.server is not None:
            self.server.close()


# --- the DNS process ----------------------------------------------------------------------------


@dataclass
class DnsProc:
    """A running cluster DNS process and how to ask it."""

    proc: Process
    address: str
    port: int
    health_port: int

    def resolver(self, lifetime: float = 3.0) -> dns.asyncresolver.Resolver:
        """A dnspython resolver that asks only this server."""
        r = dns.asyncresolver.Resolver(configure=False)
        r.nameservers = [self.address]
        r.port = self.port
        r.lifetime = r.timeout = lifetime
        r.cache = None
        return r

    async def resolve(self, name: str, rdtype: str = "A", tcp: bool = False) -> dns.resolver.Answer:
        """Resolve an absolute name with this server over UDP or TCP."""
        return await self.resolver().resolve(name, rdtype, tcp=tcp, search=False)

    async def query(self, name: str, rdtype: str = "A", tcp: bool = False, **kw: Any) -> dns.message.Message:
        """One raw query (no retries), for rcodes, flags and authority sections."""
        q = dns.message.make_query(name, rdtype, **kw)
        if tcp:
            return await dns.asyncquery.tcp(q, self.address, port=self.port, timeout=5)
        return await dns.asyncquery.udp(q, self.address, port=self.port, timeout=5)


def start_dns(apiserver: str, tmp: Path, resolv_conf: Path, address: str | None = None, port: int = 0) -> DnsProc:
    """Start `python -m cluster_dns` and wait until it is ready."""
    address = address or loopback()
    port = port or free_port()
    health_port = free_port()
    argv = [
        sys.executable,
        "-m",
        "cluster_dns",
        "--server",
        apiserver,
        "--bind-address",
        address,
        "--port",
        str(port),
        "--service-cluster-ip-range",
        SERVICE_RANGE,
        "--health-port",
        str(health_port),
        "--resolv-conf",
        str(resolv_conf),
        "--forward-timeout",
        "1.0",
    ]
    proc = Process("cluster-dns", argv, tmp / f"dns-{address}-{port}-{uuid.uuid4().hex[:6]}.log")
    wait_ready(f"http://{address}:{health_port}/readyz", proc, timeout=30)
    return DnsProc(proc, address, port, health_port)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Await `check()` until it returns a truthy value without raising; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last result {result!r})")
        await asyncio.sleep(interval)


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[Upstream]:
    """The outside resolver, on <random loopback>:53."""
    up = Upstream(loopback())
    await up.start()
    yield up
    await up.stop()


@pytest.fixture(scope="module")
def dead_address() -> str:
    """A loopback address where nothing answers DNS (the kernel refuses at once)."""
    return loopback()


@pytest.fixture(scope="module")
def dns_proc(apiserver: str, upstream: Upstream, dead_address: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The module's DNS process; its resolv.conf lists a dead resolver first, then the live one."""
    tmp = tmp_path_factory.mktemp("cluster-dns")
    resolv = tmp / "resolv.conf"
    resolv.write_text(f"# test upstreams\nnameserver {dead_address}\nnameserver {upstream.host}\noptions ndots:1\n")
    d = start_dns(apiserver, tmp, resolv)
    yield d
    d.proc.stop()


def fqdn(name: str, ns: str, kind: str = "svc") -> str:
    """`name.ns.svc.cluster.local.`"""
    return f"{name}.{ns}.{kind}.{ZONE}."


def addresses(answer: dns.resolver.Answer) -> set[str]:
    """The A records of an answer."""
    return {rd.to_text() for rd in answer}


async def create(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST an object; the stored object."""
    r = await api.post(path, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def service(name: str, **spec: Any) -> dict[str, Any]:
    """A Service manifest."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def endpoint_slice(service_name: str, endpoints: list[dict[str, Any]], ports: list[dict[str, Any]]) -> dict[str, Any]:
    """An EndpointSlice of a Service, as the EndpointSlice controller writes it."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-x1",
            "labels": {"kubernetes.io/service-name": service_name, "endpointslice.kubernetes.io/managed-by": "test"},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }


# --- tests --------------------------------------------------------------------------------------


async def test_publishes_kube_dns(api: httpx.AsyncClient, dns_proc: DnsProc) -> None:
    async def published() -> dict[str, Any] | None:
        r = await api.get("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns-addon")
        return r.json() if r.status_code == 200 else None

    eps = await eventually(published)
    svc = (await api.get("/api/v1/namespaces/kube-system/services/kube-dns")).json()
    assert svc["spec"]["clusterIP"] == dns_service_ip(SERVICE_RANGE) == "127.96.0.10"
    assert svc["metadata"]["labels"] == {
        "k8s-app": "kube-dns",
        "kubernetes.io/cluster-service": "true",
        "kubernetes.io/name": "CoreDNS",
    }
    assert "selector" not in svc["spec"]
    assert [(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [
        ("dns", 53, "UDP"),
        ("dns-tcp", 53, "TCP"),
        ("metrics", 9153, "TCP"),
    ]
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert [e["addresses"] for e in eps["endpoints"]] == [[dns_proc.address]]
    assert sorted((p["name"], p["port"], p["protocol"]) for p in eps["ports"]) == [
        ("dns", dns_proc.port, "UDP"),
        ("dns-tcp", dns_proc.port, "TCP"),
        ("metrics", dns_proc.health_port, "TCP"),
    ]
    # the server learns of the Service it published through its own watch, which may trail the API
    answer = await eventually(lambda: dns_proc.resolve(fqdn("kube-dns", "kube-system")))
    assert addresses(answer) == {"127.96.0.10"}


async def test_service_records_over_udp_and_tcp(api: httpx.AsyncClient, ns: str, dns_proc: DnsProc) -> None:
    base = f"/api/v1/namespaces/{ns}/services"
    web = await create(api, base, service("web", ports=[{"name": "http", "port": 80}], selector={"app": "web"}))
    ip = web["spec"]["clusterIP"]
    await create(api, base, service("db", clusterIP="None", ports=[{"name": "mysql", "port": 3306}]))
    slice_ = endpoint_slice(
        "db",
        [
            {"addresses": ["127.1.7.5"], "hostname": "db-0", "conditions": {"ready": True}},
            {"addresses": ["127.1.7.6"], "hostname": "db-1", "conditions": {"ready": True}},
            {"addresses": ["127.1.7.7"], "hostname": "db-2", "conditions": {"ready": False}},
        ],
        [{"name": "mysql", "port": 3306, "protocol": "TCP"}],
    )
    await create(api, f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", slice_)
    await create(api, base, service("alias", type="ExternalName", externalName=f"web.{ns}.svc.{ZONE}"))
    await create(api, base, service("ext", type="ExternalName", externalName="www.outside.test"))
    await eventually(lambda: dns_proc.resolve(fqdn("ext", ns), "CNAME"))
    # EndpointSlices come on a watch of their own: the last Service seen says nothing of db's slice
    await eventually(lambda: dns_proc.resolve(fqdn("db", ns)))

    for tcp in (False, True):
        assert addresses(await dns_proc.resolve(fqdn("web", ns), tcp=tcp)) == {ip}
        srv = await dns_proc.resolve(f"_http._tcp.{fqdn('web', ns)}", "SRV", tcp=tcp)
        assert [rd.to_text() for rd in srv] == [f"0 100 80 {fqdn('web', ns)}"]
        ptr = await dns_proc.resolver().resolve_address(ip, tcp=tcp)
        assert [rd.to_text() for rd in ptr] == [fqdn("web", ns)]
        # headless: the ready endpoints; StatefulSet-style hostnames; SRV per endpoint
        assert addresses(await dns_proc.resolve(fqdn("db", ns), tcp=tcp)) == {"127.1.7.5", "127.1.7.6"}
        assert addresses(await dns_proc.resolve(f"db-0.{fqdn('db', ns)}", tcp=tcp)) == {"127.1.7.5"}
        srv = await dns_proc.resolve(f"_mysql._tcp.{fqdn('db', ns)}", "SRV", tcp=tcp)
        assert {rd.target.to_text() for rd in srv} == {f"db-0.{fqdn('db', ns)}", f"db-1.{fqdn('db', ns)}"}
        ptr = await dns_proc.resolver().resolve_address("127.1.7.6", tcp=tcp)
        assert [rd.to_text() for rd in ptr] == [f"db-1.{fqdn('db', ns)}"]
        # ExternalName: a CNAME, followed inside the zone or resolved upstream
        alias = await dns_proc.resolve(fqdn("alias", ns), tcp=tcp)
        assert alias.canonical_name.to_text() == fqdn("web", ns) and addresses(alias) == {ip}
        ext = await dns_proc.resolve(fqdn("ext", ns), tcp=tcp)
        assert ext.canonical_name.to_text() == "www.outside.test." and addresses(ext) == {EXTERNAL_A}
        # pods insecure
        assert addresses(await dns_proc.resolve(fqdn("127-1-7-9", ns, "pod"), tcp=tcp)) == {"127.1.7.9"}
        # schema version
        txt = await dns_proc.resolve(f"dns-version.{ZONE}.", "TXT", tcp=tcp)
        assert [rd.to_text() for rd in txt] == ['"1.1.0"']
        # no such name: NXDOMAIN, authoritative, with the zone's SOA
        for name in (fqdn("nope", ns), f"db-2.{fqdn('db', ns)}", fqdn("web", "no-such-ns")):
            with pytest.raises(dns.resolver.NXDOMAIN):
                await dns_proc.resolve(name, tcp=tcp)
            raw = await dns_proc.query(name, tcp=tcp)
            assert raw.rcode() == dns.rcode.NXDOMAIN and raw.flags & dns.flags.AA
            assert raw.authority[0].to_text().startswith(f"{ZONE}. 5 IN SOA ns.dns.{ZONE}. hostmaster.{ZONE}.")
        nodata = await dns_proc.query(fqdn("web", ns), "AAAA", tcp=tcp)
        assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == [] and nodata.authority


async def test_mixed_case_and_edns(api: httpx.AsyncClient, ns: str, dns_proc: DnsProc) -> None:
    web = await create(api, f"/api/v1/namespaces/{ns}/services", service("case", ports=[{"port": 80}]))
    await eventually(lambda: dns_proc.resolve(fqdn("case", ns)))
    name = f"CaSe.{ns.upper()}.Svc.Cluster.Local."
    for _ in range(2):  # built, then served from the cached answer
        r = await dns_proc.query(name, use_edns=0, payload=1400)
        assert r.question[0].name.to_text() == name and r.answer[0].name.to_text() == name
        assert [rd.to_text() for rd in r.answer[0]] == [web["spec"]["clusterIP"]]
        assert r.edns == 0


async def test_large_answer_truncated_over_udp_complete_over_tcp(
    api: httpx.AsyncClient, ns: str, dns_proc: DnsProc
) -> None:
    await create(api, f"/api/v1/namespaces/{ns}/services", service("many", clusterIP="None", ports=[{"port": 1}]))
    endpoints = [{"addresses": [f"127.1.9.{i}"]} for i in range(1, 61)]
    big = endpoint_slice("many", endpoints, [{"port": 1, "protocol": "TCP"}])
    await create(api, f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", big)
    name = fqdn("many", ns)
    await eventually(lambda: dns_proc.resolve(name, tcp=True))
    udp = await dns_proc.query(name)  # no EDNS: 512 bytes at most
    assert udp.flags & dns.flags.TC and udp.answer == [] and udp.rcode() == dns.rcode.NOERROR
    edns = await dns_proc.query(name, use_edns=0, payload=4096)
    assert not edns.flags & dns.flags.TC and len(edns.answer[0]) == 60
    answer = await dns_proc.resolve(name)  # dnspython retries over TCP on TC
    assert len(addresses(answer)) == 60


async def test_answers_follow_updates_and_deletes_within_a_second(
    api: httpx.AsyncClient, ns: str, dns_proc: DnsProc
) -> None:
    base = f"/api/v1/namespaces/{ns}/services"
    await create(api, base, service("moving", ports=[{"name": "http", "port": 80}], selector={"a": "b"}))
    srv_name = f"_http._tcp.{fqdn('moving', ns)}"
    await eventually(lambda: dns_proc.resolve(srv_name, "SRV"))

    async def gone(name: str, rdtype: str = "A") -> bool:
        return (await dns_proc.query(name, rdtype)).rcode() == dns.rcode.NXDOMAIN

    async def srv_port() -> set[int]:
        return {rd.port for rd in await dns_proc.resolve(f"_web._tcp.{fqdn('moving', ns)}", "SRV")}

    patch = {"spec": {"ports": [{"name": "web", "port": 8080}]}}
    r = await api.patch(f"{base}/moving", json=patch, headers={"content-type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    start = time.monotonic()
    assert await eventually(srv_port, timeout=1.0) == {8080}
    assert await eventually(lambda: gone(srv_name, "SRV"), timeout=1.0)
    assert time.monotonic() - start < 1.0

    assert (await api.delete(f"{base}/moving")).status_code == 200
    start = time.monotonic()
    assert await eventually(lambda: gone(fqdn("moving", ns)), timeout=1.0)
    assert time.monotonic() - start < 1.0

    # endpoints of a headless Service
    await create(api, base, service("grow", clusterIP="None", ports=[{"name": "p", "port": 1}]))
    one = endpoint_slice("grow", [{"addresses": ["127.1.8.1"]}], [{"name": "p", "port": 1, "protocol": "TCP"}])
    stored = await create(api, f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", one)
    assert addresses(await eventually(lambda: dns_proc.resolve(fqdn("grow", ns)))) == {"127.1.8.1"}
    stored["endpoints"].append({"addresses": ["127.1.8.2"]})
    r = await api.put(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/grow-x1", json=stored)
    assert r.status_code == 200, r.text

    async def both() -> bool:
        return addresses(await dns_proc.resolve(fqdn("grow", ns))) == {"127.1.8.1", "127.1.8.2"}

    assert await eventually(both, timeout=1.0)


async def test_forwards_outside_names(dns_proc: DnsProc, upstream: Upstream) -> None:
    # the first nameserver refuses; the second answers
    assert addresses(await dns_proc.resolve("outside.test.")) == {OUTSIDE_A}
    missing = await dns_proc.query("missing.test.")
    assert missing.rcode() == dns.rcode.NXDOMAIN and not missing.flags & dns.flags.AA
    # upstream truncates over UDP: asked again over TCP; too big for the client's 512 bytes: TC
    upstream.seen.clear()
    udp = await dns_proc.query("big.test.", "TXT")
    assert udp.flags & dns.flags.TC and udp.answer == []
    assert ("big.test.", "udp") in upstream.seen and ("big.test.", "tcp") in upstream.seen
    full = await dns_proc.resolve("big.test.", "TXT")  # the resolver retries over TCP itself
    assert len(full) == 40
    # nobody answers: SERVFAIL once the forward timeout (1 s) runs out
    start = time.monotonic()
    silent = await dns_proc.query("silent.test.")
    assert silent.rcode() == dns.rcode.SERVFAIL
    assert 0.9 < time.monotonic() - start < 3.0
    # reverse names of addresses that are not the cluster's go upstream too
    upstream.seen.clear()
    reverse = await dns_proc.query("1.2.0.192.in-addr.arpa.", "PTR")
    assert reverse.rcode() == dns.rcode.NXDOMAIN and ("1.2.0.192.in-addr.arpa.", "udp") in upstream.seen


async def test_kill_9_then_restart_answers_again(
    api: httpx.AsyncClient, ns: str, apiserver: str, dead_address: str, tmp_path: Path
) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {dead_address}\n")  # the only resolver refuses
    web = await create(api, f"/api/v1/namespaces/{ns}/services", service("web", ports=[{"port": 80}]))
    ip = web["spec"]["clusterIP"]
    d = start_dns(apiserver, tmp_path, resolv)
    try:
        assert addresses(await eventually(lambda: d.resolve(fqdn("web", ns)))) == {ip}
        d.proc.kill()
        with pytest.raises(dns.resolver.LifetimeTimeout):
            await d.resolver(lifetime=0.3).resolve(fqdn("web", ns), search=False)
        d = start_dns(apiserver, tmp_path, resolv, address=d.address, port=d.port)
        assert addresses(await d.resolve(fqdn("web", ns))) == {ip}
        assert addresses(await d.resolve(fqdn("web", ns), tcp=True)) == {ip}
        # every resolver refuses: SERVFAIL at once
        start = time.monotonic()
        assert (await d.query("outside.test.")).rcode() == dns.rcode.SERVFAIL
        assert time.monotonic() - start < 0.5
        async with httpx.AsyncClient(base_url=f"http://{d.address}:{d.health_port}") as h:
            assert (await h.get("/healthz")).text == "ok"
            assert (await h.get("/readyz")).status_code == 200
            metrics = (await h.get("/metrics")).text
        assert 'coredns_dns_responses_total{plugin="forward",rcode="SERVFAIL"' in metrics
        assert 'coredns_dns_responses_total{plugin="kubernetes",rcode="NOERROR"' in metrics
        assert 'coredns_dns_requests_total{family="1",proto="udp"' in metrics
        assert 'coredns_dns_requests_total{family="1",proto="tcp"' in metrics
        assert "coredns_dns_request_duration_seconds_bucket" in metrics
    finally:
        d.proc.stop()
    assert d.proc.proc.returncode == 0  # SIGTERM is a clean exit
