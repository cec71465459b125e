"""For the ingress controller's tests: real HTTP backends on loopback, the controller process, and
builders for Services, hand-written EndpointSlices and Ingresses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from client.component import _QuietServer as QuietServer
from tinykube.procs import Process, wait_ready

T = TypeVar("T")

INGRESS_API = "/apis/networking.k8s.io/v1"
PUBLISHED = "/api/v1/namespaces/kube-system/services/ingress-nginx-controller"


def free_port_on(address: str) -> int:
    """A TCP port nothing listens on at `address`."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


async def wait_for(
    check: Callable[[], Awaitable[T | None]], timeout: float = 10.0, what: str | Callable[[], str] = ""
) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds (saying `what`,
    which may be a function, called then, to describe the last state seen)."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {(what() if callable(what) else what) or check}"
            )
        await asyncio.sleep(0.02)


class EchoBackend:
    """A small HTTP server (uvicorn, in the test's loop): answers JSON naming itself and echoing the
    request; `/echo` streams the request body back; `/upload` notes the first body chunk at once;
    `/slow` sends one chunk, then the rest only after `release` is set (or notes `client_left`);
    `/abort` breaks off its response."""

    def __init__(self, name: str, address: str) -> None:
        self.name = name
        self.address = address
        self.port = free_port_on(address)
        self.first_chunk = asyncio.Event()
        self.release = asyncio.Event()
        self.client_left = asyncio.Event()
        self._server: QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path.startswith("/echo"):
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x")]})
            more = True
            while more:
                msg = await receive()
                more = msg.get("more_body", False)
                await send({"type": "http.response.body", "body": msg.get("body", b""), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if path.startswith("/slow"):
            await receive()  # the (empty) request body; the next receive() waits for a disconnect
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
            released = asyncio.create_task(self.release.wait())
            gone = asyncio.create_task(receive())
            await asyncio.wait({released, gone}, return_when=asyncio.FIRST_COMPLETED)
            released.cancel()
            if gone.done():
                self.client_left.set()
                return
            gone.cancel()
            await send({"type": "http.response.body", "body": b"last\n", "more_body": False})
            return
        if path.startswith("/abort"):
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"1000")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
            raise RuntimeError("the backend fails mid-response (on purpose)")
        size = 0
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            size += len(msg.get("body", b""))
            more = msg.get("more_body", False)
            if size and path.startswith("/upload"):
                self.first_chunk.set()
        body = json.dumps(
            {
                "backend": self.name,
                "method": scope["method"],
                "path": scope["raw_path"].decode()
                + (f"?{scope['query_string'].decode()}" if scope["query_string"] else ""),
                "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                "body_bytes": size,
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def start(self) -> None:
        """Listen and wait until serving."""
        config = uvicorn.Config(self, host=self.address, port=self.port, log_config=None, lifespan="off", ws="none")
        self._server = QuietServer(config)
        self._task = asyncio.create_task(self._server.serve())
        await wait_for(self._started, 10, f"backend {self.name} to listen")

    async def _started(self) -> bool:
        return bool(self._server and self._server.started)

    async def stop(self) -> None:
        """Stop serving."""
        if self._server and self._task:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)


def start_controller(apiserver: str, address: str, log: Path, *extra: str) -> tuple[Process, int, int]:
    """`python -m ingress_controller` on `address`; returns it with its HTTP and health ports once ready."""
    port, health = free_port_on(address), free_port_on(address)
    argv = [
        sys.executable,
        "-m",
        "ingress_controller",
        "--server",
        apiserver,
        "--bind-address",
        address,
        "--port",
        str(port),
        "--health-port",
        str(health),
        *extra,
    ]
    proc = Process("ingress-controller", argv, log)
    wait_ready(f"http://{address}:{health}/readyz", proc, 30)
    return proc, port, health


def service(name: str, ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Service without selector (its EndpointSlices are written by the test)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": ports or [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }


def endpoint_slice(
    service_name: str, endpoints: list[tuple[str, bool]], port: int, port_name: str = "http", suffix: str = "1"
) -> dict[str, Any]:
    """An EndpointSlice of a Service: (address, ready) pairs, all on `port`."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service_name}-{suffix}", "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in endpoints],
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
    }


def ingress_path(path: str, path_type: str, service_name: str, port: int | str = 80) -> dict[str, Any]:
    """An HTTPIngressPath to a Service port (by number or by name)."""
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"path": path, "pathType": path_type, "backend": {"service": {"name": service_name, "port": ref}}}


def ingress(name: str, rules: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """An Ingress (class and default backend through `spec`)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {"rules": rules, **spec},
    }


async def create(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST an object; assert 201."""
    r = await api.post(path, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def put(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """PUT an object (read-modify-write by the caller); assert 200."""
    r = await api.put(path, json=body)
    assert r.status_code == 200, r.text
    return r.json()
