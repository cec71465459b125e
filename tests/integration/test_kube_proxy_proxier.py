"""The proxier on real sockets, in-process: plans applied one after another open, update and close
listeners (no apiserver needed). Two `Proxier`s on one address are two nodes' proxies sharing it."""

from __future__ import annotations

import socket

import pytest

from kube_proxy.balancer import Balancer
from kube_proxy.plan import Endpoint, ListenerKey, Plan, PortRef, Route
from kube_proxy.proxier import Proxier
from tests.integration.proxy_kit import Net, TcpBackend, UdpBackend, ask, ask_udp, refused

REF = PortRef("default", "web", "http", "TCP")
AFFINITY = 60.0  # seconds of ClientIP affinity


@pytest.fixture
def net() -> Net:
    return Net()


async def test_endpoint_changes_update_the_listener_in_place(net: Net) -> None:
    a = await TcpBackend("a", net.backend(1)).start()
    b = await TcpBackend("b", net.backend(2), a.port).start()
    key = ListenerKey(net.ip(10), 80, "TCP")
    proxier = Proxier()
    try:
        assert await proxier.apply(Plan({key: Route(REF, (Endpoint(a.host, a.port),))}))
        listener = proxier.listeners[key]
        assert {await ask(key.ip, 80) for _ in range(3)} == {"a"}

        assert await proxier.apply(Plan({key: Route(REF, (Endpoint(b.host, b.port),))}))
        assert proxier.listeners[key] is listener  # same socket, new endpoints
        assert {await ask(key.ip, 80) for _ in range(3)} == {"b"}

        assert await proxier.apply(Plan({}))
        assert proxier.listeners == {}
        assert await refused(key.ip, 80)
    finally:
        proxier.close()
        await a.stop()
        await b.stop()


async def test_listeners_sharing_a_service_port_share_its_balancer(net: Net) -> None:
    a = await TcpBackend("a", net.backend(1)).start()
    b = await TcpBackend("b", net.backend(2), a.port).start()
    eps = (Endpoint(a.host, a.port), Endpoint(b.host, b.port))
    cluster, node_port = ListenerKey(net.ip(11), 80, "TCP"), ListenerKey(net.node(1), 30080, "TCP")
    proxier = Proxier()
    try:
        plan = Plan({cluster: Route(REF, eps), node_port: Route(REF, eps, reuse_port=False)})
        assert await proxier.apply(plan)
        # one round-robin turn across both addresses of the service port
        names = [await ask(cluster.ip, 80), await ask(node_port.ip, 30080), await ask(cluster.ip, 80)]
        assert names == ["a", "b", "a"]
    finally:
        proxier.close()
        await a.stop()
        await b.stop()


def client_ip(key: ListenerKey) -> str:
    """The source address the kernel picks for this host's connections to `key`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((key.ip, key.port))  # no packet is sent: this only routes
        return s.getsockname()[0]


async def names(key: ListenerKey, n: int) -> list[str]:
    """Who answers `n` fresh connections (UDP: datagrams from fresh sockets) to `key`."""
    if key.protocol == "UDP":
        return [await ask_udp(key.ip, key.port) for _ in range(n)]
    return [await ask(key.ip, key.port) for _ in range(n)]


async def test_a_failover_moves_the_clients_affinity_whichever_proxy_takes_its_next_connections(net: Net) -> None:
    """The race of a Deployment's pod that is Ready before its server listens: the client's first
    connection finds the endpoint the hash picks for it refusing and goes to the other one, where its
    affinity now is. Once the first endpoint listens, every later connection still goes to the second,
    though two nodes' proxies share the ClusterIP and only one of them saw the failover."""
    key = ListenerKey(net.ip(12), 80, "TCP")
    a = await TcpBackend("a", net.backend(1)).start()
    b = await TcpBackend("b", net.backend(2), a.port).start()
    eps = (Endpoint(a.host, a.port), Endpoint(b.host, b.port))
    hashed = Balancer(eps, AFFINITY).order(client_ip(key))[0]
    late, ready = (a, b) if hashed.ip == a.host else (b, a)
    await late.stop()
    proxiers = [Proxier(), Proxier()]
    try:
        for proxier in proxiers:
            assert await proxier.apply(Plan({key: Route(REF, eps, affinity_timeout=AFFINITY)}))
        assert await names(key, 1) == [ready.name]  # failed over
        late = await TcpBackend(late.name, late.host, late.port).start()
        assert await names(key, 20) == [ready.name] * 20
    finally:
        for proxier in proxiers:
            proxier.close()
        await a.stop()
        await b.stop()


@pytest.mark.parametrize("protocol", ["TCP", "UDP"])
async def test_with_client_ip_affinity_one_proxy_takes_every_new_connection(net: Net, protocol: str) -> None:
    """Two proxies share an address, each sending to its own endpoint (as internalTrafficPolicy Local
    does). With ClientIP affinity, the proxy that listened first takes all the client's connections,
    also after the second one joins; once the Service has no affinity, the kernel spreads them again."""
    key = ListenerKey(net.ip(13 if protocol == "TCP" else 14), 80, protocol)
    backend = UdpBackend if protocol == "UDP" else TcpBackend
    a = await backend("a", net.backend(3)).start()
    b = await backend("b", net.backend(4), a.port).start()
    first, second = Proxier(), Proxier()

    def plan(ep: TcpBackend | UdpBackend, affinity: float | None) -> Plan:
        ref = PortRef("default", "web", "http", protocol)
        return Plan({key: Route(ref, (Endpoint(ep.host, ep.port),), local=True, affinity_timeout=affinity)})

    try:
        assert await first.apply(plan(a, AFFINITY))
        assert await names(key, 10) == ["a"] * 10
        assert await second.apply(plan(b, AFFINITY))
        assert await names(key, 20) == ["a"] * 20

        assert await first.apply(plan(a, None))
        assert await second.apply(plan(b, None))
        assert set(await names(key, 30)) == {"a", "b"}
    finally:
        first.close()
        second.close()
        await a.stop()
        await b.stop()
