"""The proxier on real sockets, in-process: plans applied one after another open, update and close
listeners (no apiserver needed)."""

from __future__ import annotations

import pytest

from kube_proxy.plan import Endpoint, ListenerKey, Plan, PortRef, Route
from kube_proxy.proxier import Proxier
from tests.integration.proxy_kit import Net, TcpBackend, ask, refused

REF = PortRef("default", "web", "http", "TCP")


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
