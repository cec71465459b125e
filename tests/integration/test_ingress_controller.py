"""The ingress controller process against a real apiserver, with real HTTP backends on loopback
behind Services and hand-written EndpointSlices: routing, answers without a backend, status,
streaming, keep-alive, metrics, and how fast it follows changes."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import h11
import httpx
import pytest
from ingress_kit import (
    INGRESS_API,
    PUBLISHED,
    EchoBackend,
    create,
    endpoint_slice,
    free_port_on,
    ingress,
    ingress_path,
    put,
    service,
    start_controller,
    wait_for,
)
from prometheus_client.parser import text_string_to_metric_families

from tinykube.procs import Process, start_apiserver, start_etcd


@dataclass
class Controller:
    """The controller process under test and where it answers."""

    proc: Process
    address: str
    port: int
    url: str
    health_url: str


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's own etcd: class-less Ingresses other suites leave behind would be ours to serve."""
    proc, url = start_etcd(tmp_path_factory.mktemp("ingress-etcd"))
    yield url
    proc.stop()


@pytest.fixture(scope="module")
def apiserver(etcd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's own apiserver."""
    proc, url = start_apiserver(tmp_path_factory.mktemp("ingress-apiserver"), etcd)
    yield url
    proc.stop()


@pytest.fixture(scope="module")
def net() -> str:
    """A /24 of loopback addresses for this module's run, unlikely to be used by anyone else."""
    return f"127.233.{random.randint(1, 254)}"


@pytest.fixture(scope="module")
def controller(apiserver: str, net: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    """`python -m ingress_controller` with the default class, on <net>.252."""
    address = f"{net}.252"
    proc, port, health = start_controller(apiserver, address, tmp_path_factory.mktemp("ingress") / "ingress.log")
    yield Controller(proc, address, port, f"http://{address}:{port}", f"http://{address}:{health}")
    proc.stop()
    # the session's apiserver is shared: leave no default IngressClass behind for other modules
    for name in ("tinykube", "second"):
        httpx.delete(f"{apiserver}{INGRESS_API}/ingressclasses/{name}", timeout=10)


@pytest.fixture(scope="module")
async def backends(net: str) -> AsyncIterator[dict[str, EchoBackend]]:
    """Two HTTP servers, `a` on <net>.1 and `b` on <net>.2."""
    servers = {"a": EchoBackend("a", f"{net}.1"), "b": EchoBackend("b", f"{net}.2")}
    for s in servers.values():
        await s.start()
    yield servers
    for s in servers.values():
        await s.stop()


@pytest.fixture
async def proxy(controller: Controller) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the controller's listener."""
    async with httpx.AsyncClient(base_url=controller.url, timeout=10) as client:
        yield client


class Web:
    """Services of one test's namespace: `svc-a` → backend a, `svc-b` → backend b (slices by hand)."""

    def __init__(self, api: httpx.AsyncClient, ns: str, backends: dict[str, EchoBackend]) -> None:
        self.api, self.ns, self.backends = api, ns, backends

    async def service(self, name: str, *endpoints: tuple[EchoBackend | str, bool], port: int | None = None) -> None:
        """A Service whose slice lists these endpoints (a backend, or a bare address on `port`)."""
        await create(self.api, f"/api/v1/namespaces/{self.ns}/services", service(name))
        if endpoints:
            await self.slice(name, *endpoints, port=port)

    async def slice(
        self, name: str, *endpoints: tuple[EchoBackend | str, bool], port: int | None = None, suffix: str = "1"
    ) -> dict[str, Any]:
        """Create the Service's EndpointSlice (all endpoints on one port)."""
        addrs = [(e.address if isinstance(e, EchoBackend) else e, ready) for e, ready in endpoints]
        if port is None:
            port = next(e.port for e, _ in endpoints if isinstance(e, EchoBackend))
        body = endpoint_slice(name, addrs, port, suffix=suffix)
        return await create(self.api, self.slices_path(), body)

    def slices_path(self, name: str = "") -> str:
        """URL path of the namespace's EndpointSlices (or one)."""
        return f"/apis/discovery.k8s.io/v1/namespaces/{self.ns}/endpointslices" + (f"/{name}" if name else "")

    def ingress_path(self, name: str = "") -> str:
        """URL path of the namespace's Ingresses (or one)."""
        return f"{INGRESS_API}/namespaces/{self.ns}/ingresses" + (f"/{name}" if name else "")

    async def ingress(self, name: str, rules: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
        """Create an Ingress."""
        return await create(self.api, self.ingress_path(), ingress(name, rules, **spec))

    async def ab(self) -> None:
        """svc-a → a, svc-b → b."""
        await self.service("svc-a", (self.backends["a"], True))
        await self.service("svc-b", (self.backends["b"], True))


@pytest.fixture
def web(api: httpx.AsyncClient, ns: str, backends: dict[str, EchoBackend]) -> Web:
    """The test's namespace with builders."""
    return Web(api, ns, backends)


async def get(proxy: httpx.AsyncClient, host: str, path: str, **headers: str) -> httpx.Response:
    """A GET through the controller with this Host header."""
    return await proxy.get(path, headers={"Host": host, **headers})


async def backend_of(proxy: httpx.AsyncClient, host: str, path: str) -> str | None:
    """Which backend answered (None for a non-200)."""
    r = await get(proxy, host, path)
    return r.json()["backend"] if r.status_code == 200 else None


async def routed(proxy: httpx.AsyncClient, host: str, path: str, want: str, timeout: float = 10) -> None:
    """Wait until the controller sends this request to backend `want`."""
    last: list[str] = []

    async def check() -> bool:
        r = await get(proxy, host, path)
        last[:] = [f"{r.status_code} {r.text[:80]!r}"]
        return r.status_code == 200 and r.json()["backend"] == want

    await wait_for(check, timeout, lambda: f"{host}{path} → {want} (last answer: {last})")


async def status_of(proxy: httpx.AsyncClient, host: str, path: str) -> int:
    """The status code of a GET."""
    return (await get(proxy, host, path)).status_code


# --- start-up -------------------------------------------------------------------------------------


async def test_applies_its_ingress_class_and_publishes_a_load_balancer_service(
    api: httpx.AsyncClient, controller: Controller
) -> None:
    cls = (await api.get(f"{INGRESS_API}/ingressclasses/tinykube")).json()
    assert cls["spec"] == {"controller": "tinykube.io/ingress-controller"}
    assert cls["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"

    svc = (await api.get(PUBLISHED)).json()
    assert svc["spec"]["type"] == "LoadBalancer"
    [port] = svc["spec"]["ports"]
    assert (port["name"], port["port"], port["protocol"]) == ("http", 80, "TCP")
    assert svc["spec"]["clusterIP"]
    slices = (
        await api.get(
            "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
            params={"labelSelector": "kubernetes.io/service-name=ingress-nginx-controller"},
        )
    ).json()["items"]
    assert [(s["endpoints"][0]["addresses"], s["ports"]) for s in slices] == [
        ([controller.address], [{"name": "http", "port": controller.port, "protocol": "TCP"}])
    ]
    [owner] = slices[0]["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Service",
        "ingress-nginx-controller",
        svc["metadata"]["uid"],
    )
    async with httpx.AsyncClient(base_url=controller.health_url, timeout=5) as health:
        assert (await health.get("/healthz")).text == "ok"
        assert (await health.get("/readyz")).status_code == 200


# --- routing --------------------------------------------------------------------------------------


async def test_routes_by_host_and_path(web: Web, proxy: httpx.AsyncClient) -> None:
    await web.ab()
    host = f"shop.{web.ns}.test"
    await web.ingress(
        "web",
        [
            {
                "host": host,
                "http": {
                    "paths": [
                        ingress_path("/", "Prefix", "svc-a"),
                        ingress_path("/cart", "Prefix", "svc-b"),
                        ingress_path("/login", "Exact", "svc-b", port="http"),
                    ]
                },
            },
            {"host": f"*.{web.ns}.wild.test", "http": {"paths": [ingress_path("/", "Prefix", "svc-b")]}},
        ],
    )
    await routed(proxy, host, "/", "a")
    # svc-b and its slice were made after svc-a's, each on its own watch: a route to a says nothing of b
    await routed(proxy, host, "/cart", "b")
    assert await backend_of(proxy, host, "/anything/else") == "a"
    assert await backend_of(proxy, host, "/cart") == "b"
    assert await backend_of(proxy, host, "/cart/items/3") == "b"
    assert await backend_of(proxy, host, "/cartoon") == "a"  # Prefix is element-wise
    assert await backend_of(proxy, host, "/login") == "b"
    assert await backend_of(proxy, host, "/login/") == "a"  # Exact is exact
    assert await backend_of(proxy, host.upper() + ":80", "/cart") == "b"
    assert await backend_of(proxy, f"x.{web.ns}.wild.test", "/login") == "b"
    assert await status_of(proxy, f"y.x.{web.ns}.wild.test", "/") == 404  # a wildcard covers one label
    assert await status_of(proxy, f"{web.ns}.wild.test", "/") == 404
    assert await status_of(proxy, f"other.{web.ns}.test", "/") == 404


async def test_forwards_path_headers_and_body_as_a_proxy(web: Web, proxy: httpx.AsyncClient) -> None:
    await web.ab()
    host = f"api.{web.ns}.test"
    await web.ingress("api", [{"host": host, "http": {"paths": [ingress_path("/", "Prefix", "svc-a")]}}])
    await routed(proxy, host, "/", "a")
    r = await proxy.post(
        "/v1/items%2F7?q=a%20b&x=1",
        content=b"x" * 1000,
        headers={
            "Host": host,
            "X-Forwarded-For": "10.1.2.3",
            "X-Request-ID": "abc",
            "Connection": "keep-alive, X-Gone",
            "X-Gone": "1",
        },
    )
    assert r.status_code == 200
    seen = r.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/v1/items%2F7?q=a%20b&x=1"
    assert seen["body_bytes"] == 1000
    h = seen["headers"]
    assert h["host"] == host
    assert h["x-forwarded-host"] == host
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-port"] == str(proxy.base_url.port)
    assert h["x-forwarded-for"] == f"10.1.2.3, {h['x-real-ip']}"
    assert h["x-real-ip"].startswith("127.")
    assert h["x-request-id"] == "abc"
    assert "x-gone" not in h  # named in Connection: hop-by-hop
    assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]
    own_id = (await get(proxy, host, "/")).json()["headers"]["x-request-id"]
    assert len(own_id) == 32


async def test_exact_beats_prefix_and_longest_path_wins(web: Web, proxy: httpx.AsyncClient) -> None:
    await web.ab()
    host = f"paths.{web.ns}.test"
    paths = [
        ingress_path("/api", "Prefix", "svc-a"),
        ingress_path("/api", "Exact", "svc-b"),
        ingress_path("/api/v2", "ImplementationSpecific", "svc-b"),
    ]
    await web.ingress("paths", [{"host": host, "http": {"paths": paths}}])
    await routed(proxy, host, "/api", "b")
    assert await backend_of(proxy, host, "/api/") == "a"
    assert await backend_of(proxy, host, "/api/v1") == "a"
    assert await backend_of(proxy, host, "/api/v2/x") == "b"
    assert await status_of(proxy, host, "/") == 404


async def test_default_backend_takes_what_no_rule_matches(web: Web, proxy: httpx.AsyncClient) -> None:
    await web.ab()
    host = f"fallback.{web.ns}.test"
    stray = f"stray.{web.ns}.test"
    await web.ingress(
        "fallback",
        [{"host": host, "http": {"paths": [ingress_path("/only", "Exact", "svc-a")]}}],
        defaultBackend={"service": {"name": "svc-b", "port": {"number": 80}}},
    )
    try:
        await routed(proxy, host, "/only", "a")
        await routed(proxy, host, "/other", "b")  # svc-b's Service and slice may trail svc-a's
        assert await backend_of(proxy, host, "/other") == "b"
        assert await backend_of(proxy, stray, "/") == "b"
    finally:
        r = await web.api.delete(web.ingress_path("fallback"))
        assert r.status_code == 200, r.text

    async def answers_404() -> bool:
        return await status_of(proxy, stray, "/") == 404

    await wait_for(answers_404, 5, "404 once the Ingress with the default backend is gone")


async def test_404_when_nothing_matches(web: Web, proxy: httpx.AsyncClient) -> None:
    await web.ab()
    host = f"none.{web.ns}.test"
    await web.ingress("none", [{"host": host, "http": {"paths": [ingress_path("/a", "Exact", "svc-a")]}}])
    await routed(proxy, host, "/a", "a")
    r = await get(proxy, host, "/b")
    assert r.status_code == 404
    assert r.headers["content-type"] == "text/html"
    assert "<title>404 Not Found</title>" in r.text
    assert await status_of(proxy, f"unknown.{web.ns}.test", "/a") == 404


async def test_503_without_ready_endpoints_then_200_when_one_is_ready(web: Web, proxy: httpx.AsyncClient) -> None:
    a = web.backends["a"]
    await web.service("svc-unready", (a, False))
    await web.service("svc-empty")
    host = f"down.{web.ns}.test"
    paths = [
        ingress_path("/unready", "Prefix", "svc-unready"),
        ingress_path("/empty", "Prefix", "svc-empty"),
        ingress_path("/missing", "Prefix", "svc-missing"),
        ingress_path("/badport", "Prefix", "svc-empty", port=8443),
    ]
    await web.ingress("down", [{"host": host, "http": {"paths": paths}}])

    async def served() -> bool:
        return await status_of(proxy, host, "/unready") == 503

    await wait_for(served, 10, "the Ingress to be served")
    for path in ("/empty", "/missing", "/badport"):
        r = await get(proxy, host, path)
        assert r.status_code == 503, path
        assert "<title>503 Service Temporarily Unavailable</title>" in r.text

    sl = (await web.api.get(web.slices_path("svc-unready-1"))).json()
    sl["endpoints"][0]["conditions"]["ready"] = True
    await put(web.api, web.slices_path("svc-unready-1"), sl)
    await routed(proxy, host, "/unready", "a", timeout=1.0)


async def test_round_robin_skips_refusing_endpoints_and_502_when_all_refuse(
    web: Web, proxy: httpx.AsyncClient, net: str
) -> None:
    a, b = web.backends["a"], web.backends["b"]
    # svc-rr: a and b (two slices, one per port); svc-half: a live endpoint and one that refuses
    await web.service("svc-rr", (a, True))
    await web.slice("svc-rr", (b, True), suffix="2")
    dead = f"{net}.9"  # nothing listens there
    await web.service("svc-half", (a, True), (dead, True))
    await web.service("svc-dead", (dead, True), port=free_port_on(dead))
    host = f"rr.{web.ns}.test"
    paths = [
        ingress_path("/rr", "Prefix", "svc-rr"),
        ingress_path("/half", "Prefix", "svc-half"),
        ingress_path("/dead", "Prefix", "svc-dead"),
    ]
    await web.ingress("rr", [{"host": host, "http": {"paths": paths}}])

    async def both_slices_seen() -> bool:
        return {await backend_of(proxy, host, "/rr") for _ in range(2)} == {"a", "b"}

    await wait_for(both_slices_seen, 10, "both endpoints of svc-rr in rotation")

    async def dead_seen() -> bool:
        return await status_of(proxy, host, "/dead") == 502

    # svc-dead and its slice came last on their watches: once they are seen, so are svc-half's
    await wait_for(dead_seen, 10, "svc-dead's endpoint tried (502, not 503)")
    seen = [await backend_of(proxy, host, "/rr") for _ in range(6)]
    assert sorted(seen) == ["a"] * 3 + ["b"] * 3
    assert all(x != y for x, y in itertools.pairwise(seen))  # alternating
    assert [await backend_of(proxy, host, "/half") for _ in range(6)] == ["a"] * 6
    r = await get(proxy, host, "/dead")
    assert r.status_code == 502
    assert "502 Bad Gateway" in r.text


async def test_follows_backend_changes_within_a_second(web: Web, proxy: httpx.AsyncClient) -> None:
    a, b = web.backends["a"], web.backends["b"]
    await web.ab()
    await web.service("svc-moving", (a, True))
    host = f"moving.{web.ns}.test"
    await web.ingress("moving", [{"host": host, "http": {"paths": [ingress_path("/", "Prefix", "svc-moving")]}}])
    await routed(proxy, host, "/", "a")

    # the EndpointSlice now lists b only
    sl = (await web.api.get(web.slices_path("svc-moving-1"))).json()
    sl["endpoints"] = [{"addresses": [b.address], "conditions": {"ready": True}}]
    sl["ports"][0]["port"] = b.port
    await put(web.api, web.slices_path("svc-moving-1"), sl)
    started = time.monotonic()
    await routed(proxy, host, "/", "b", timeout=1.0)
    endpoint_change = time.monotonic() - started

    # the Ingress now names another Service
    ing = (await web.api.get(web.ingress_path("moving"))).json()
    ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "svc-a"
    await put(web.api, web.ingress_path("moving"), ing)
    started = time.monotonic()
    await routed(proxy, host, "/", "a", timeout=1.0)
    ingress_change = time.monotonic() - started
    assert endpoint_change < 1.0 and ingress_change < 1.0


# --- classes and status ---------------------------------------------------------------------------


async def test_serves_only_its_class(web: Web, proxy: httpx.AsyncClient) -> None:
    await web.ab()
    ignored, annotated, classless = (f"{n}.{web.ns}.test" for n in ("ignored", "annotated", "classless"))
    root = [ingress_path("/", "Prefix", "svc-a")]
    await web.ingress("other", [{"host": ignored, "http": {"paths": root}}], ingressClassName="other")
    body = ingress("annotated", [{"host": annotated, "http": {"paths": root}}])
    body["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "tinykube"}
    await create(web.api, web.ingress_path(), body)
    await web.ingress("classless", [{"host": classless, "http": {"paths": root}}])
    # the watch delivers in order: once the last is served, the first has been seen
    await routed(proxy, classless, "/", "a")
    assert await backend_of(proxy, annotated, "/") == "a"
    assert await status_of(proxy, ignored, "/") == 404


async def test_writes_the_published_address_to_ingress_status(web: Web, proxy: httpx.AsyncClient, net: str) -> None:
    api = web.api
    await web.ab()
    host = f"status.{web.ns}.test"
    root = [ingress_path("/", "Prefix", "svc-a")]
    await web.ingress("mine", [{"host": host, "http": {"paths": root}}], ingressClassName="tinykube")
    await web.ingress("theirs", [{"host": f"x.{host}", "http": {"paths": root}}], ingressClassName="other")
    await routed(proxy, host, "/", "a")

    async def set_lb(ip: str) -> None:
        # what the controller-manager's service-lb controller does
        svc = (await api.get(PUBLISHED)).json()
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}
        await put(api, f"{PUBLISHED}/status", svc)

    async def address(name: str, want: str) -> bool:
        ing = (await api.get(web.ingress_path(name))).json()
        return ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") == [{"ip": want}]

    first, second = f"{net}.200", f"{net}.201"
    await set_lb(first)
    await wait_for(lambda: address("mine", first), 5, "the first address in the Ingress status")
    await set_lb(second)
    await wait_for(lambda: address("mine", second), 5, "the new address in the Ingress status")
    theirs = (await api.get(web.ingress_path("theirs"))).json()
    assert not ((theirs.get("status") or {}).get("loadBalancer") or {}).get("ingress")

    async def synced() -> list[dict[str, Any]]:
        events = (await api.get(f"/api/v1/namespaces/{web.ns}/events")).json()["items"]
        return [e for e in events if e["involvedObject"]["name"] == "mine" and e["reason"] == "Sync"]

    # events are written from a queue of their own, apart from the status
    syncs = await wait_for(synced, 5, "the Sync event of the Ingress")
    assert syncs and syncs[0]["source"]["component"] == "nginx-ingress-controller"


# --- the HTTP stack -------------------------------------------------------------------------------


async def test_streams_bodies_both_ways(web: Web, proxy: httpx.AsyncClient) -> None:
    a = web.backends["a"]
    await web.ab()
    host = f"stream.{web.ns}.test"
    await web.ingress("stream", [{"host": host, "http": {"paths": [ingress_path("/", "Prefix", "svc-a")]}}])
    await routed(proxy, host, "/", "a")

    # upload: the backend must see the first chunk before the client sends the rest
    a.first_chunk.clear()

    async def upload() -> AsyncIterator[bytes]:
        yield b"x" * 65536
        await asyncio.wait_for(a.first_chunk.wait(), 5)
        for _ in range(64):
            yield b"y" * 65536

    r = await proxy.post("/upload", content=upload(), headers={"Host": host})
    assert r.status_code == 200
    assert r.json()["body_bytes"] == 65 * 65536

    # echo: a body streamed back and forth arrives intact
    payload = os.urandom(3 * 1024 * 1024 + 17)
    r = await proxy.post("/echo", content=payload, headers={"Host": host})
    assert r.status_code == 200 and r.content == payload

    # download: the first chunk reaches the client while the backend still holds the rest
    a.release.clear()
    async with proxy.stream("GET", "/slow", headers={"Host": host}) as r:
        chunks = r.aiter_raw()
        assert await asyncio.wait_for(anext(chunks), 5) == b"first\n"
        a.release.set()
        assert b"".join([c async for c in chunks]) == b"last\n"


async def test_a_client_leaving_ends_the_upstream_response_and_a_broken_upstream_is_not_passed_off(
    web: Web, proxy: httpx.AsyncClient
) -> None:
    a = web.backends["a"]
    await web.ab()
    host = f"broken.{web.ns}.test"
    await web.ingress("broken", [{"host": host, "http": {"paths": [ingress_path("/", "Prefix", "svc-a")]}}])
    await routed(proxy, host, "/", "a")

    a.release.clear()
    a.client_left.clear()
    async with httpx.AsyncClient(base_url=proxy.base_url, timeout=5) as client:
        async with client.stream("GET", "/slow", headers={"Host": host}) as r:
            assert await asyncio.wait_for(anext(r.aiter_raw()), 5) == b"first\n"
        # leaving the block closed the (unfinished) response: the connection is dropped
    await asyncio.wait_for(a.client_left.wait(), 5)

    # 10 of the 1000 bytes announced, then the backend fails: the client must see a broken response
    with pytest.raises(httpx.RemoteProtocolError):
        await get(proxy, host, "/abort")
    assert await backend_of(proxy, host, "/") == "a"  # and the controller carries on


async def test_keeps_the_client_connection_alive(web: Web, controller: Controller) -> None:
    await web.ab()
    host = f"keepalive.{web.ns}.test"
    await web.ingress("keepalive", [{"host": host, "http": {"paths": [ingress_path("/", "Prefix", "svc-b")]}}])
    async with httpx.AsyncClient(base_url=controller.url, timeout=5) as proxy:
        await routed(proxy, host, "/", "b")
    reader, writer = await asyncio.open_connection(controller.address, controller.port)
    conn = h11.Connection(our_role=h11.CLIENT)
    try:
        for i in range(3):  # three requests, one connection
            writer.write(conn.send(h11.Request(method="GET", target=f"/n{i}", headers=[("Host", host)])))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            status, body = 0, b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await asyncio.wait_for(reader.read(65536), 5))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert status == 200 and f'"path": "/n{i}"'.encode() in body
            assert conn.our_state is h11.DONE and conn.their_state is h11.DONE
            conn.start_next_cycle()
    finally:
        writer.close()


async def test_metrics_count_requests_by_ingress_service_and_code(
    web: Web, proxy: httpx.AsyncClient, controller: Controller
) -> None:
    await web.ab()
    host = f"metrics.{web.ns}.test"
    paths = [ingress_path("/", "Prefix", "svc-a"), ingress_path("/gone", "Prefix", "svc-missing")]
    await web.ingress("metered", [{"host": host, "http": {"paths": paths}}])
    await routed(proxy, host, "/", "a")
    for _ in range(3):
        assert await status_of(proxy, host, "/x") == 200
    for _ in range(2):
        assert await status_of(proxy, host, "/gone") == 503
    async with httpx.AsyncClient(base_url=controller.health_url, timeout=5) as health:
        text = (await health.get("/metrics")).text
    counts = {
        (s.labels["service"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "nginx_ingress_controller_requests"
        for s in family.samples
        if s.name.endswith("_total") and s.labels.get("namespace") == web.ns and s.labels.get("ingress") == "metered"
    }
    assert counts[("svc-a", "200")] >= 4  # 3 + the request(s) that waited for the route
    assert counts[("svc-missing", "503")] == 2


# --- flags and signals ----------------------------------------------------------------------------


async def test_second_instance_with_its_own_class_and_sigterm(
    apiserver: str, web: Web, net: str, tmp_path: Any, proxy: httpx.AsyncClient
) -> None:
    """A second controller (`--ingress-class second --no-default-class`, its own published Service)
    serves only Ingresses of its class, and exits 0 on SIGTERM."""
    await web.ab()
    proc, port, _ = await asyncio.to_thread(
        start_controller,
        apiserver,
        f"{net}.251",
        tmp_path / "second.log",
        "--ingress-class",
        "second",
        "--no-default-class",
        "--publish-service",
        f"{web.ns}/second-controller",
    )
    try:
        cls = (await web.api.get(f"{INGRESS_API}/ingressclasses/second")).json()
        assert "ingressclass.kubernetes.io/is-default-class" not in (cls["metadata"].get("annotations") or {})
        assert (await web.api.get(f"/api/v1/namespaces/{web.ns}/services/second-controller")).status_code == 200
        mine, default = f"second.{web.ns}.test", f"first.{web.ns}.test"
        root = [ingress_path("/", "Prefix", "svc-b")]
        await web.ingress("second", [{"host": mine, "http": {"paths": root}}], ingressClassName="second")
        await web.ingress("first", [{"host": default, "http": {"paths": root}}])
        async with httpx.AsyncClient(base_url=f"http://{net}.251:{port}", timeout=5) as second:
            await routed(second, mine, "/", "b")
            await routed(proxy, default, "/", "b")
            assert await status_of(second, default, "/") == 404
            assert await status_of(proxy, mine, "/") == 404
        os.killpg(proc.pid, signal.SIGTERM)
        code = await asyncio.to_thread(proc.proc.wait, 10)
        assert code == 0, proc.tail()
    finally:
        await asyncio.to_thread(proc.stop)
