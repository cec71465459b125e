"""A finished request leaves no reference cycles behind: the apiserver's per-request objects (the server's
response cycle, the request context, the Request and the chain's closures) and the client transport's
response parser are freed by reference counting as the request ends. Left in cycles, they would wait for
the cyclic collector, whose young collections they trigger (bench/README.md, "Session 15")."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn

from apimachinery.httpserver import ServingLimits, uvicorn_options
from apiserver.app import Config as ServerConfig
from apiserver.app import create_app
from apiserver.chain.listener import INSECURE, Listener
from apiserver.context import RequestContext
from client.config import Config
from client.rest import ApiClient
from tinykube.procs import start_etcd

_LEFT_BEHIND = ("RequestContext", "RequestResponseCycle", "ResponseCycle", "_Message", "HttpResponseParser")


@contextlib.asynccontextmanager
async def _apiserver_in_this_process(tmp_path: Path) -> AsyncIterator[str]:
    """An etcd of its own and the apiserver's app served by uvicorn in this process, as `python -m
    apiserver` serves it (the same protocol and options); yields its URL."""
    etcd, etcd_url = start_etcd(tmp_path)
    try:
        app = create_app(ServerConfig(etcd_servers=etcd_url, insecure_port=0, etcd_compaction_interval=0))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # connections wait in the backlog until the server accepts them
        options = uvicorn_options(ServingLimits())
        config = uvicorn.Config(Listener(app, INSECURE), lifespan="off", log_config=None, access_log=False, **options)
        server = uvicorn.Server(config)
        async with app.router.lifespan_context(app):
            task = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                yield f"http://127.0.0.1:{sock.getsockname()[1]}"
            finally:
                server.should_exit = True
                await asyncio.wait_for(task, 30)
                sock.close()
    finally:
        etcd.stop()


def _left_behind() -> dict[str, int]:
    """Objects of a finished request's kinds that are still alive, by kind."""
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in _LEFT_BEHIND and (name != "RequestContext" or isinstance(obj, RequestContext)):
            counts[name] = counts.get(name, 0) + 1
    return counts


async def test_finished_requests_leave_no_cycles_for_the_collector(tmp_path: Path) -> None:
    async with _apiserver_in_this_process(tmp_path) as url, ApiClient(Config(server=url)) as api:
        await api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}})
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "first"}, "data": {"a": "b"}}
        await api.create("configmaps", cm, namespace="ns")  # the first requests build what is cached
        await api.get("configmaps", "first", namespace="ns")
        gc.collect()
        before = _left_behind()
        gc.disable()  # what is left now stays: only reference counting frees anything
        try:
            for i in range(20):
                cm["metadata"] = {"name": f"cm-{i}"}
                await api.create("configmaps", cm, namespace="ns")
                await api.get("configmaps", f"cm-{i}", namespace="ns")
                await api.list("configmaps", namespace="ns")
            after = _left_behind()
        finally:
            gc.enable()
    grown = {name: n - before.get(name, 0) for name, n in after.items() if n > before.get(name, 0)}
    # 60 requests: at most the last request's objects may still be held (by the server's connection)
    assert all(n <= 2 for n in grown.values()), f"left behind by 60 finished requests: {grown}"
