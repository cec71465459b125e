"""kube-proxy's health: upstream's ProxyHealthServer state (pkg/proxy/healthcheck/proxy_health.go)
and the two HTTP servers, healthz (:10256) and metrics (:10249).

The proxy is healthy unless a change (a Service or EndpointSlice event) has been waiting longer than
`health_timeout` (upstream: twice `--sync-period`) for a successful sync, and its node is eligible
(not deleted, not tainted `ToBeDeletedByClusterAutoscaler`). `/healthz` answers 200 or 503 with
upstream's exact JSON `{"lastUpdated": "…","currentTime": "…", "nodeEligible": true}` (times in Go's
`time.Time` text form); `/livez` the same without the node. The metrics server serves `/metrics`,
`/healthz`, `/livez`, `/readyz` (ready after the first sync) and `/proxyMode`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from apimachinery.httpserver import bind_socket
from kube_proxy import metrics

__all__ = ["ProxyHealth", "go_time", "healthz_app", "listen", "metrics_app", "serve_http"]

TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"
PROXY_MODE = "userspace"
_START_MONOTONIC = time.monotonic()
_HEADERS = {"X-Content-Type-Options": "nosniff"}


def go_time(ts: float | None, monotonic: float | None = None) -> str:
    """A Unix time as Go's `time.Time.String()` in UTC, e.g. `2024-05-01 10:20:30.5 +0000 UTC m=+3.1`;
    None is Go's zero time."""
    if ts is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    t = dt.datetime.fromtimestamp(ts, dt.UTC)
    nanos = round((ts - int(ts)) * 1e9) % 1_000_000_000
    text = t.strftime("%Y-%m-%d %H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    text += " +0000 UTC"
    if monotonic is not None:
        text += f" m=+{monotonic - _START_MONOTONIC:.9f}"
    return text


class ProxyHealth:
    """When the proxy last synced, whether an update is overdue, and whether its node is eligible."""

    def __init__(self, health_timeout: float, clock: Callable[[], float] = time.time) -> None:
        self.health_timeout = health_timeout
        self.clock = clock
        self.last_updated: float | None = None
        self.oldest_queued: float | None = None
        self.node_eligible = True  # eligible while starting up, until a node event says otherwise
        self.synced_once = False

    def queued_update(self) -> None:
        """A change arrived that the next sync must apply."""
        if self.oldest_queued is None:
            self.oldest_queued = self.clock()

    def updated(self) -> None:
        """A sync applied every change queued so far."""
        self.oldest_queued = None
        self.last_updated = self.clock()
        self.synced_once = True

    def sync_node(self, node: dict[str, Any] | None) -> None:
        """Eligible unless the node is gone, being deleted or tainted for deletion by the autoscaler."""
        if node is None or (node.get("metadata") or {}).get("deletionTimestamp"):
            self.node_eligible = False
            return
        taints = (node.get("spec") or {}).get("taints") or []
        self.node_eligible = not any(isinstance(t, dict) and t.get("key") == TO_BE_DELETED_TAINT for t in taints)

    def healthy(self) -> tuple[bool, float | None]:
        """(healthy, last updated) ignoring the node, as upstream's isHealthy."""
        if self.oldest_queued is not None and self.clock() - self.oldest_queued >= self.health_timeout:
            return False, self.last_updated
        return True, self.last_updated

    def body(self, with_node: bool) -> tuple[int, str]:
        """The status code and upstream's JSON body for /healthz (`with_node`) or /livez."""
        healthy, last = self.healthy()
        now, mono = self.clock(), time.monotonic()
        if with_node:
            healthy = healthy and self.node_eligible
        last_text = go_time(now, mono) if healthy else go_time(last, None if last is None else mono - (now - last))
        current = go_time(now, mono)
        if with_node:
            eligible = "true" if self.node_eligible else "false"
            text = f'{{"lastUpdated": "{last_text}","currentTime": "{current}", "nodeEligible": {eligible}}}'
        else:
            text = f'{{"lastUpdated": "{last_text}","currentTime": "{current}"}}'
        return (200 if healthy else 503), text


def healthz_app(health: ProxyHealth) -> Starlette:
    """The healthz server's app: `/healthz` and `/livez` as upstream."""

    def handler(with_node: bool) -> Callable[[Request], Any]:
        counter = metrics.HEALTHZ if with_node else metrics.LIVEZ

        async def endpoint(_: Request) -> Response:
            code, text = health.body(with_node)
            counter.labels(str(code)).inc()
            return Response(text, status_code=code, media_type="application/json", headers=_HEADERS)

        return endpoint

    return Starlette(routes=[Route("/healthz", handler(True)), Route("/livez", handler(False))])


def metrics_app(health: ProxyHealth) -> Starlette:
    """The metrics server's app: `/metrics`, `/healthz`, `/livez`, `/readyz`, `/proxyMode`."""

    async def ok(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        if health.synced_once:
            return PlainTextResponse("ok")
        return PlainTextResponse("not ready: no sync yet", status_code=503)

    async def proxy_mode(_: Request) -> Response:
        return PlainTextResponse(PROXY_MODE)

    async def prom(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/metrics", prom),
            Route("/healthz", ok),
            Route("/livez", ok),
            Route("/readyz", readyz),
            Route("/proxyMode", proxy_mode),
        ]
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the component owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield

    def install_signal_handlers(self) -> None:
        return


def listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket for an HTTP server (OSError with the address when it cannot be bound)."""
    try:
        return bind_socket(host, port)
    except OSError as e:
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror}") from e


async def serve_http(app: Starlette, sock: socket.socket) -> None:
    """Serve `app` on a bound socket until cancelled."""
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = _Server(config)
    try:
        await server.serve(sockets=[sock])
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.shutdown(sockets=[sock]), 3)
        raise
    finally:
        sock.close()
