"""Scrapes reuse their connections: metrics-server keeps one per node between rounds, and a kubelet's server
keeps an idle connection open as upstream's does (90 s), so a scrape every resolution costs no new handshake."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import uvicorn

from client.config import Config
from kubelet.server import KubeletServer
from kubelet.simulated_stats import StatsServer
from metrics_server.kubelet_client import KubeletClientOptions, KubeletClients
from tests.integration.controller_kit import eventually
from tests.integration.test_streaming import DirRuntime
from tinykube.procs import free_port


def _connections(server: StatsServer | KubeletServer) -> set[object]:
    """The connections the server holds open now (uvicorn's protocol instances)."""
    inner: uvicorn.Server | None = server._server
    assert inner is not None
    return set(inner.server_state.connections)


async def _count(server: StatsServer, n: int) -> bool:
    return len(_connections(server)) == n


async def test_metrics_server_keeps_a_connection_to_every_node_between_scrapes() -> None:
    addresses = [f"127.77.0.{i}" for i in range(1, 31)]  # more nodes than httpx keeps connections by default (20)
    server = StatsServer(addresses, free_port(), lambda _address: None)
    served = await server.start()
    assert len(served) >= 25, served
    make = KubeletClientOptions(completely_insecure=True).client_factory(Config(server="http://127.0.0.1:1"), 10)
    clients = KubeletClients(make)
    urls = [f"http://{a}:{server.port}" for a in served]
    try:
        for round_ in range(2):
            answers = await asyncio.gather(*(clients.client(u).get(u + "/metrics/resource") for u in urls))
            assert all(r.status_code == 200 for r in answers)
            if round_ == 0:
                first = _connections(server)
                assert len(first) == len(served)
        assert _connections(server) == first  # the second round came over the same connections
        # a node gone: its connection is closed
        await clients.keep(set(urls[1:]))
        await eventually(lambda: _count(server, len(served) - 1), what="the gone node's connection closed")
    finally:
        await clients.aclose()
        await server.stop()


async def test_kubelet_servers_keep_an_idle_connection_past_five_seconds(tmp_path: Path) -> None:
    stats = StatsServer(["127.0.0.1"], free_port(), lambda _address: None)
    await stats.start()
    kubelet = KubeletServer(DirRuntime(tmp_path), "127.0.0.1", 0, lambda _host: None)
    await kubelet.start()
    servers: list[StatsServer | KubeletServer] = [stats, kubelet]
    limits = httpx.Limits(keepalive_expiry=60)
    try:
        async with httpx.AsyncClient(limits=limits, timeout=10, trust_env=False) as client:
            urls = [f"http://127.0.0.1:{s.port}/healthz" for s in servers]
            assert all(r.status_code == 200 for r in await asyncio.gather(*(client.get(u) for u in urls)))
            before = [_connections(s) for s in servers]
            assert all(len(c) == 1 for c in before)
            # past uvicorn's default keep-alive (5 s), well within upstream's idle timeout (90 s)
            await asyncio.sleep(6)
            assert all(r.status_code == 200 for r in await asyncio.gather(*(client.get(u) for u in urls)))
            assert [_connections(s) for s in servers] == before
    finally:
        for s in servers:
            await s.stop()
