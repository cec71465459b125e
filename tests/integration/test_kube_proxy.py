"""kube-proxy end to end: a real etcd, a real apiserver and real `python -m kube_proxy` processes;
Services and EndpointSlices written through the API by hand; real TCP/UDP backends on loopback that
answer with their own name. Every address is in 127.230.R.0/24 with a random R (see `Net`)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.proxy_kit import (
    Conn,
    KubeProxy,
    Net,
    Objects,
    TcpBackend,
    UdpBackend,
    ask,
    ask_udp,
    endpoint,
    endpoint_slice,
    refused,
    service,
    wait_for,
)
from tinykube.procs import Process, start_apiserver, start_etcd

pytestmark = pytest.mark.timeout(60)

HTTP = [{"name": "http", "port": 80, "protocol": "TCP"}]


@pytest.fixture(scope="module")
def net() -> Net:
    return Net()


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, net: Net) -> Iterator[str]:
    """An etcd and an apiserver of this module only (so no other test's Service is proxied)."""
    tmp = tmp_path_factory.mktemp("proxy")
    procs: list[Process] = []
    try:
        etcd, etcd_url = start_etcd(tmp)
        procs.append(etcd)
        api, url = start_apiserver(tmp, etcd_url, extra=["--service-cluster-ip-range", net.service_range])
        procs.append(api)
        yield url
    finally:
        for p in reversed(procs):
            p.stop()


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy-logs")


@pytest.fixture(scope="module")
def proxy1(api_url: str, net: Net, log_dir: Path) -> Iterator[KubeProxy]:
    """node-1's kube-proxy (a test that kills it starts a new one in its place)."""
    proxy = KubeProxy(api_url, "node-1", net.node(1), log_dir).start()
    yield proxy
    proxy.stop()


@pytest.fixture
async def objs(api_url: str, proxy1: KubeProxy) -> AsyncIterator[Objects]:
    async with httpx.AsyncClient(base_url=api_url, timeout=10, trust_env=False) as api:
        ns = f"t-{uuid.uuid4().hex[:8]}"
        r = await api.post(
            "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
        assert r.status_code == 201, r.text
        yield Objects(api, ns)


@pytest.fixture
async def backends(net: Net) -> AsyncIterator[list[TcpBackend]]:
    """Two TCP backends, "a" and "b", on their own addresses and the same port (as two pods of a Deployment)."""
    a = await TcpBackend("a", net.backend(1)).start()
    b = await TcpBackend("b", net.backend(2), a.port).start()
    yield [a, b]
    await a.stop()
    await b.stop()


def slice_for(svc: str, eps: list[dict], port: int, name: str = "http", protocol: str = "TCP") -> dict:
    return endpoint_slice(svc, eps, [{"name": name, "port": port, "protocol": protocol}])


async def names_via(host: str, port: int, n: int) -> list[str]:
    return [await ask(host, port) for _ in range(n)]


# --- tests ----------------------------------------------------------------------------------


async def test_round_robin_through_cluster_ip_with_a_named_target_port(
    objs: Objects, backends: list[TcpBackend]
) -> None:
    a, b = backends
    svc = await objs.create_service(service("web", [{"name": "http", "port": 80, "targetPort": "web-port"}]))
    ip = svc["spec"]["clusterIP"]
    # the slice carries the number the named targetPort resolved to, under the service port's name
    await objs.put_slice(slice_for("web", [endpoint(a), endpoint(b)], a.port))
    await wait_for(lambda: ask(ip, 80), what="the ClusterIP to answer")
    names = await names_via(ip, 80, 10)
    assert sorted(names) == ["a"] * 5 + ["b"] * 5
    assert all(names[i] != names[i + 1] for i in range(9))  # strictly in turn


async def test_node_port_on_the_node_address(objs: Objects, proxy1: KubeProxy, backends, net: Net) -> None:
    a, b = backends
    svc = await objs.create_service(service("np", HTTP, type="NodePort"))
    node_port = svc["spec"]["ports"][0]["nodePort"]
    await objs.put_slice(slice_for("np", [endpoint(a), endpoint(b, node="node-2")], a.port))
    await wait_for(lambda: ask(proxy1.address, node_port), what="the NodePort to answer")
    assert set(await names_via(proxy1.address, node_port, 4)) == {"a", "b"}
    assert await refused(net.node(2), node_port)  # no proxy runs for node-2: its address has no NodePort


async def test_no_endpoints_refuses_at_once_and_endpoints_coming_back(objs: Objects, backends) -> None:
    a, _ = backends
    svc = await objs.create_service(service("empty", HTTP))
    ip = svc["spec"]["clusterIP"]
    await objs.put_slice(slice_for("empty", [], a.port))
    assert await refused(ip, 80)
    await objs.put_slice(slice_for("empty", [endpoint(a)], a.port))
    await wait_for(lambda: ask(ip, 80), what="endpoints to be used")
    await objs.put_slice(slice_for("empty", [endpoint(a, ready=False, serving=False)], a.port))
    await wait_for(lambda: refused(ip, 80), what="the listener to close")
    for _ in range(5):
        start = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            await Conn.open(ip, 80, timeout=2)
        assert time.monotonic() - start < 0.5  # REJECT, not a hang


async def test_client_ip_affinity_sticks(objs: Objects, backends) -> None:
    a, b = backends
    svc = await objs.create_service(
        service("sticky", HTTP, sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    )
    ip = svc["spec"]["clusterIP"]
    await objs.put_slice(slice_for("sticky", [endpoint(a), endpoint(b)], a.port))
    first = await wait_for(lambda: ask(ip, 80), what="the ClusterIP to answer")
    assert await names_via(ip, 80, 10) == [first] * 10


async def test_deleting_the_service_closes_its_listener(objs: Objects, backends) -> None:
    a, _ = backends
    svc = await objs.create_service(service("gone", HTTP))
    ip = svc["spec"]["clusterIP"]
    await objs.put_slice(slice_for("gone", [endpoint(a)], a.port))
    await wait_for(lambda: ask(ip, 80), what="the ClusterIP to answer")
    open_conn = await Conn.open(ip, 80)
    await objs.delete_service("gone")
    await wait_for(lambda: refused(ip, 80), what="the listener to close")
    assert await open_conn.ask() == "a"  # closing a listener leaves accepted connections alone
    await open_conn.close()


async def test_terminating_endpoint_gets_no_new_connections_while_open_ones_finish(objs: Objects, backends) -> None:
    a, b = backends
    svc = await objs.create_service(service("term", HTTP))
    ip = svc["spec"]["clusterIP"]
    await objs.put_slice(slice_for("term", [endpoint(a), endpoint(b)], a.port))
    await wait_for(lambda: ask(ip, 80), what="the ClusterIP to answer")
    to_b: Conn | None = None
    for _ in range(4):
        conn = await Conn.open(ip, 80)
        if await conn.ask() == "b":
            to_b = conn
            break
        await conn.close()
    assert to_b is not None
    terminating = endpoint(b, ready=False, serving=True, terminating=True)
    await objs.put_slice(slice_for("term", [endpoint(a), terminating], a.port))

    async def only_a() -> bool:
        return set(await names_via(ip, 80, 6)) == {"a"}

    await wait_for(only_a, what="new connections to go to the ready endpoint only")
    assert set(await names_via(ip, 80, 10)) == {"a"}
    assert await to_b.ask("still there") == "b"  # the open connection keeps working
    await to_b.close()


async def test_load_balancer_ip_and_external_ip(objs: Objects, backends, net: Net) -> None:
    a, _ = backends
    lb_ip, ext_ip = net.external(1), net.external(2)
    await objs.create_service(service("lb", HTTP, type="LoadBalancer", externalIPs=[ext_ip]))
    await objs.put_slice(slice_for("lb", [endpoint(a)], a.port))
    await wait_for(lambda: ask(ext_ip, 80), what="the external IP to answer")
    assert await refused(lb_ip, 80)
    await objs.service_status("lb", {"loadBalancer": {"ingress": [{"ip": lb_ip}]}})
    assert await wait_for(lambda: ask(lb_ip, 80), what="the LoadBalancer IP to answer") == "a"


async def test_udp_through_cluster_ip(objs: Objects, net: Net) -> None:
    a = await UdpBackend("a", net.backend(1)).start()
    b = await UdpBackend("b", net.backend(2), a.port).start()
    try:
        ports = [{"name": "dns", "port": 53, "protocol": "UDP"}]
        svc = await objs.create_service(service("dns", ports))
        ip = svc["spec"]["clusterIP"]
        await objs.put_slice(slice_for("dns", [endpoint(a), endpoint(b)], a.port, name="dns", protocol="UDP"))
        await wait_for(lambda: ask_udp(ip, 53), what="the UDP ClusterIP to answer")
        names = [await ask_udp(ip, 53, f"q{i}") for i in range(6)]  # a new client socket each time
        assert sorted(names) == ["a"] * 3 + ["b"] * 3
    finally:
        await a.stop()
        await b.stop()


async def test_external_traffic_policy_local_with_two_proxies(
    objs: Objects, proxy1: KubeProxy, backends, api_url: str, net: Net, log_dir: Path
) -> None:
    a, b = backends
    proxy2 = await asyncio.to_thread(KubeProxy(api_url, "node-2", net.node(2), log_dir).start)
    try:
        lb_ip = net.external(3)
        svc = await objs.create_service(service("local", HTTP, type="LoadBalancer", externalTrafficPolicy="Local"))
        node_port = svc["spec"]["ports"][0]["nodePort"]
        await objs.service_status("local", {"loadBalancer": {"ingress": [{"ip": lb_ip}]}})
        await objs.put_slice(slice_for("local", [endpoint(a, node="node-1"), endpoint(b, node="node-2")], a.port))
        # each proxy programs the Service on its own: wait for both, not for one of them
        await wait_for(lambda: ask(proxy1.address, node_port), what="node-1's NodePort")
        await wait_for(lambda: ask(proxy2.address, node_port), what="node-2's NodePort")
        assert set(await names_via(proxy1.address, node_port, 6)) == {"a"}
        assert set(await names_via(proxy2.address, node_port, 6)) == {"b"}
        # with endpoints on node-1 only, node-2 neither serves its NodePort nor binds the LB IP
        await objs.put_slice(slice_for("local", [endpoint(a, node="node-1")], a.port))
        await wait_for(lambda: refused(proxy2.address, node_port), what="node-2's NodePort to close")
        assert set(await names_via(lb_ip, 80, 10)) == {"a"}
        labels = {"namespace": objs.ns, "service": "local", "port": "http", "protocol": "TCP"}
        assert await proxy1.metric("kubeproxy_userspace_connections_total", **labels) >= 10
        # eTP Cluster: every node's NodePort reaches every endpoint again
        await objs.put_slice(slice_for("local", [endpoint(a, node="node-1"), endpoint(b, node="node-1")], a.port))
        await objs.patch_service("local", {"externalTrafficPolicy": "Cluster"})

        async def both() -> bool:
            return set(await names_via(proxy2.address, node_port, 4)) == {"a", "b"}

        # the Service and its slice come on separate watches: with the policy but the old slice, only a answers
        await wait_for(both, what="node-2's NodePort to reach both endpoints with eTP Cluster")
        assert set(await names_via(proxy2.address, node_port, 4)) == {"a", "b"}
    finally:
        await asyncio.to_thread(proxy2.stop)
    assert proxy2.proc is not None and proxy2.proc.proc.returncode == 0  # SIGTERM: a clean exit


async def test_health_and_metrics(objs: Objects, proxy1: KubeProxy, backends) -> None:
    a, _ = backends
    svc = await objs.create_service(service("obs", HTTP))
    ip = svc["spec"]["clusterIP"]
    await objs.put_slice(slice_for("obs", [endpoint(a)], a.port))
    await wait_for(lambda: ask(ip, 80), what="the ClusterIP to answer")
    async with httpx.AsyncClient(timeout=5, trust_env=False) as c:
        r = await c.get(f"http://{proxy1.address}:10256/healthz")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert set(r.json()) == {"lastUpdated", "currentTime", "nodeEligible"}
        assert r.json()["nodeEligible"] is True
        r = await c.get(f"http://{proxy1.address}:10256/livez")
        assert r.status_code == 200 and set(r.json()) == {"lastUpdated", "currentTime"}
        assert (await c.get(f"http://{proxy1.address}:10249/proxyMode")).text == "userspace"
    # the node tainted for deletion by the autoscaler: not eligible, /healthz 503 (livez still 200)
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": proxy1.node}}
    node["spec"] = {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]}
    r = await objs.api.post("/api/v1/nodes", json=node)
    assert r.status_code == 201, r.text
    async with httpx.AsyncClient(timeout=5, trust_env=False) as c:

        async def healthz(code: int, eligible: bool) -> bool:
            r = await c.get(f"http://{proxy1.address}:10256/healthz")
            return r.status_code == code and r.json()["nodeEligible"] is eligible

        try:
            await wait_for(lambda: healthz(503, False), what="/healthz to report the node ineligible")
            assert (await c.get(f"http://{proxy1.address}:10256/livez")).status_code == 200
        finally:
            r = await objs.api.patch(
                f"/api/v1/nodes/{proxy1.node}",
                json={"spec": {"taints": None}},
                headers={"content-type": "application/merge-patch+json"},
            )
            assert r.status_code == 200, r.text
        await wait_for(lambda: healthz(200, True), what="/healthz to be eligible again")
    labels = {"namespace": objs.ns, "service": "obs", "port": "http", "protocol": "TCP"}
    before = await proxy1.metric("kubeproxy_userspace_bytes_total", direction="in", **labels)
    await ask(ip, 80)
    assert await proxy1.metric("kubeproxy_userspace_bytes_total", direction="in", **labels) == before + len("hi\n")
    assert await proxy1.metric("kubeproxy_sync_proxy_rules_duration_seconds_count") > 0
    assert await proxy1.metric("kubeproxy_sync_proxy_rules_last_timestamp_seconds") > time.time() - 60


async def test_kill_9_then_a_new_proxy_routes_again(objs: Objects, proxy1: KubeProxy, backends) -> None:
    a, _ = backends
    svc = await objs.create_service(service("phoenix", HTTP, type="NodePort"))
    ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    await objs.put_slice(slice_for("phoenix", [endpoint(a)], a.port))
    await wait_for(lambda: ask(ip, 80), what="the ClusterIP to answer")
    await asyncio.to_thread(proxy1.kill)
    assert await refused(ip, 80)
    assert await refused(proxy1.address, node_port)
    await asyncio.to_thread(proxy1.start)  # same node, same addresses, no change to the objects
    assert await wait_for(lambda: ask(ip, 80), what="the ClusterIP after restart") == "a"
    assert await ask(proxy1.address, node_port) == "a"


async def test_endpoints_that_refuse_or_do_not_answer_are_skipped(objs: Objects, backends, net: Net) -> None:
    a, _ = backends
    # a port nothing listens on (refuses), and a listener whose accept queue is full (SYNs go unanswered)
    dead_host, stuck_host = net.backend(3), net.backend(4)
    stuck = socket.socket()
    stuck.bind((stuck_host, a.port))
    stuck.listen(0)
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue; later connects hang in SYN-SENT
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((stuck_host, a.port))
            fillers.append(s)
        eps = [endpoint(a), {**endpoint(a), "addresses": [dead_host]}, {**endpoint(a), "addresses": [stuck_host]}]
        svc = await objs.create_service(service("flaky", HTTP))
        ip = svc["spec"]["clusterIP"]
        await objs.put_slice(slice_for("flaky", eps, a.port))
        await wait_for(lambda: ask(ip, 80), what="the ClusterIP to answer")
        start = time.monotonic()
        assert await names_via(ip, 80, 6) == ["a"] * 6  # every connection reaches the live endpoint
        assert time.monotonic() - start < 6 * 1.5  # a stuck endpoint costs a dial timeout, not a hang
    finally:
        for s in [*fillers, stuck]:
            s.close()


async def test_udp_moves_off_an_endpoint_that_refuses(objs: Objects, net: Net) -> None:
    live = await UdpBackend("a", net.backend(1)).start()
    try:
        dead = {"addresses": [net.backend(3)], "nodeName": "node-1", "conditions": {"ready": True}}
        svc = await objs.create_service(service("udp2", [{"name": "dns", "port": 53, "protocol": "UDP"}]))
        ip = svc["spec"]["clusterIP"]
        await objs.put_slice(slice_for("udp2", [endpoint(live), dead], live.port, name="dns", protocol="UDP"))
        await wait_for(lambda: ask_udp(ip, 53), what="the UDP ClusterIP to answer")
        # every query is answered at once, also those whose association first went to the dead endpoint
        assert [await ask_udp(ip, 53, f"q{i}", timeout=1.0) for i in range(6)] == ["a"] * 6
    finally:
        await live.stop()


async def test_half_close_and_flow_control(objs: Objects, proxy1: KubeProxy, backends) -> None:
    a, _ = backends
    svc = await objs.create_service(service("stream", HTTP))
    ip = svc["spec"]["clusterIP"]
    await objs.put_slice(slice_for("stream", [endpoint(a)], a.port))
    await wait_for(lambda: ask(ip, 80), what="the ClusterIP to answer")

    # half-close: the client's EOF reaches the backend, which can still answer
    conn = await Conn.open(ip, 80)
    assert await conn.ask() == "a"
    conn.writer.write_eof()
    assert await asyncio.wait_for(conn.reader.readline(), 2) == b"a eof\n"
    assert await asyncio.wait_for(conn.reader.read(), 2) == b""  # then the backend's close arrives
    await conn.close()

    # flow control: a client that does not read holds the backend back (kernel buffers and the
    # proxy's bounded write buffer fill up), instead of the proxy reading everything into memory
    size = 96 * 1024 * 1024
    conn = await Conn.open(ip, 80)
    conn.writer.write(f"bulk {size}\n".encode())
    last = -1
    while a.bulk_sent != last:  # wait until the backend is blocked
        last = a.bulk_sent
        await asyncio.sleep(0.2)
    assert a.bulk_sent < 48 * 1024 * 1024
    got = 0
    while got < size:
        data = await asyncio.wait_for(conn.reader.read(1 << 20), 5)
        assert data, f"stream ended after {got} bytes"
        got += len(data)
    assert got == size and a.bulk_sent == size
    await conn.close()


async def test_an_address_taken_by_someone_else_is_retried_and_others_keep_working(
    objs: Objects, proxy1: KubeProxy, backends, net: Net
) -> None:
    a, _ = backends
    taken = net.external(4)
    blocker = socket.socket()  # holds the address without SO_REUSEPORT: kube-proxy cannot share it
    blocker.bind((taken, 80))
    blocker.listen(1)
    try:
        svc = await objs.create_service(service("blocked", HTTP, externalIPs=[taken]))
        await objs.put_slice(slice_for("blocked", [endpoint(a)], a.port))
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: ask(ip, 80), what="the ClusterIP of the same Service")
        await wait_for(lambda: proxy1.metric("kubeproxy_userspace_bind_errors_total"), what="a bind error")
        async with httpx.AsyncClient(timeout=5, trust_env=False) as c:
            assert (await c.get(f"http://{proxy1.address}:10256/healthz")).status_code == 200
    finally:
        blocker.close()
    # released: the runner's retry (within 5 s) opens it, with no change to the objects
    assert await wait_for(lambda: ask(taken, 80), what="the external IP after the retry") == "a"


async def test_udp_associations_wait_for_slow_answers_and_close_once_answered(
    objs: Objects, proxy1: KubeProxy, net: Net
) -> None:
    slow = await UdpBackend("slow", net.backend(1), delay=0.6).start()  # kube-proxy runs with --udp-timeout 1s
    try:
        svc = await objs.create_service(service("slowdns", [{"name": "dns", "port": 53, "protocol": "UDP"}]))
        ip = svc["spec"]["clusterIP"]
        await objs.put_slice(slice_for("slowdns", [endpoint(slow)], slow.port, name="dns", protocol="UDP"))
        # an answer 0.6 s late still comes back (the association waits up to --udp-timeout for a reply)
        assert await wait_for(lambda: ask_udp(ip, 53, timeout=2), what="the slow UDP answer") == "slow"
        labels = {"namespace": objs.ns, "service": "slowdns", "port": "dns", "protocol": "UDP"}

        async def closed() -> bool:
            return await proxy1.metric("kubeproxy_userspace_active_connections", **labels) == 0

        # answered associations are closed soon after (250 ms idle), not held open per client port
        await wait_for(closed, timeout=3, what="the answered associations to close")
        assert await proxy1.metric("kubeproxy_userspace_connections_total", **labels) >= 1
    finally:
        await slow.stop()
