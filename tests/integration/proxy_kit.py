"""Helpers for the kube-proxy integration tests: addresses, backends that answer with their name,
kube-proxy processes, API objects and waits."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tinykube.procs import Process, wait_ready

T = TypeVar("T")


@dataclass(frozen=True)
class Net:
    """Loopback addresses for one test module, in 127.230.R.0/24 with a random R so that concurrent
    runs and clusters do not collide: Service IPs .1-.126, backends .130-.149, LB/external IPs
    .150-.199, node addresses .201-.250."""

    octet: int = field(default_factory=lambda: random.randrange(256))

    def ip(self, host: int) -> str:
        """127.230.R.host."""
        return f"127.230.{self.octet}.{host}"

    @property
    def service_range(self) -> str:
        """The apiserver's --service-cluster-ip-range."""
        return f"127.230.{self.octet}.0/25"

    def node(self, i: int) -> str:
        """Node i's address (1-based)."""
        return self.ip(200 + i)

    def backend(self, i: int) -> str:
        """Backend i's address."""
        return self.ip(130 + i)

    def external(self, i: int) -> str:
        """An LB / external IP."""
        return self.ip(150 + i)


async def wait_for(check: Callable[[], Awaitable[T]], timeout: float = 10.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
            last = e
        if last and not isinstance(last, BaseException):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last: {last!r}")
        await asyncio.sleep(0.05)


# --- backends ------------------------------------------------------------------------------


class TcpBackend:
    """A TCP server that answers each line `x` with `<name> x` (connections stay open); a line
    `bulk N` is answered with N bytes; at the client's EOF it says `<name> eof` and closes."""

    def __init__(self, name: str, host: str, port: int = 0) -> None:
        self.name, self.host, self.port = name, host, port
        self.server: asyncio.Server | None = None
        self.bulk_sent = 0  # bytes of `bulk` answers handed to the socket so far

    async def start(self) -> TcpBackend:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while line := await reader.readline():
                    text = line.decode().strip()
                    if text.startswith("bulk "):
                        await self._bulk(writer, int(text.split()[1]))
                        continue
                    writer.write(f"{self.name} {text}\n".encode())
                    await writer.drain()
                writer.write(f"{self.name} eof\n".encode())  # the client half-closed: we may still talk
                await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _bulk(self, writer: asyncio.StreamWriter, size: int) -> None:
        chunk = b"x" * 65536
        while size > 0:
            piece = chunk[: min(size, len(chunk))]
            writer.write(piece)
            await writer.drain()  # blocks while the reader does not keep up
            self.bulk_sent += len(piece)
            size -= len(piece)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)


class UdpBackend(asyncio.DatagramProtocol):
    """A UDP server that answers each datagram `x` with `<name> x` (after `delay` seconds)."""

    def __init__(self, name: str, host: str, port: int = 0, delay: float = 0.0) -> None:
        self.name, self.host, self.port, self.delay = name, host, port, delay
        self.transport: asyncio.DatagramTransport | None = None

    async def start(self) -> UdpBackend:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        reply = f"{self.name} {data.decode()}".encode()
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, self.transport.sendto, reply, addr)
        else:
            self.transport.sendto(reply, addr)

    async def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()


# --- clients -------------------------------------------------------------------------------


class Conn:
    """An open client connection, asking line by line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int, timeout: float = 2.0) -> Conn:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        return cls(reader, writer)

    async def ask(self, text: str = "hi", timeout: float = 2.0) -> str:
        """Send a line; the backend's name from the answer."""
        self.writer.write(f"{text}\n".encode())
        await self.writer.drain()
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            raise ConnectionResetError("closed without an answer")
        name, _, echoed = line.decode().strip().partition(" ")
        assert echoed == text
        return name

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def ask(host: str, port: int, timeout: float = 2.0) -> str:
    """Connect, ask once, close; the name of the backend that answered."""
    conn = await Conn.open(host, port, timeout)
    try:
        return await conn.ask(timeout=timeout)
    finally:
        await conn.close()


async def refused(host: str, port: int) -> bool:
    """Whether a connection is refused at once (True), rather than accepted or hanging."""
    try:
        conn = await Conn.open(host, port, timeout=1.0)
    except ConnectionRefusedError:
        return True
    await conn.close()
    return False


async def ask_udp(host: str, port: int, text: str = "hi", timeout: float = 2.0) -> str:
    """Send a datagram from a fresh socket; the name of the backend that answered."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if not got.done():
                got.set_result(data)

        def error_received(self, exc: Exception) -> None:
            if not got.done():
                got.set_exception(exc)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=(host, port))
    try:
        transport.sendto(text.encode())
        data = await asyncio.wait_for(got, timeout)
    finally:
        transport.close()
    name, _, echoed = data.decode().partition(" ")
    assert echoed == text
    return name


# --- kube-proxy processes -------------------------------------------------------------------


class KubeProxy:
    """A real `python -m kube_proxy` process for one node."""

    def __init__(self, api_url: str, node: str, address: str, log_dir: Path) -> None:
        self.api_url, self.node, self.address, self.log_dir = api_url, node, address, log_dir
        self.proc: Process | None = None

    def start(self) -> KubeProxy:
        argv = [
            sys.executable,
            "-m",
            "kube_proxy",
            "--server",
            self.api_url,
            "--node-name",
            self.node,
            "--bind-address",
            self.address,
            "--min-sync-period",
            "0.05",
            "--udp-timeout",
            "1s",
        ]
        self.proc = Process(
            f"kube-proxy-{self.node}", argv, self.log_dir / f"kube-proxy-{self.node}-{uuid.uuid4().hex[:4]}.log"
        )
        wait_ready(f"http://{self.address}:10249/readyz", self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    async def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of this proxy's /metrics (0 when absent)."""
        async with httpx.AsyncClient(timeout=5, trust_env=False) as c:
            text = (await c.get(f"http://{self.address}:10249/metrics")).text
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(name + "{" if labels else name + " "):
                metric, _, value = line.rpartition(" ")
                got = metric[len(name) :].strip("{}")
                if ",".join(sorted(got.split(","))) == want or not labels:
                    return float(value)
        return 0.0


# --- API objects ---------------------------------------------------------------------------


def service(name: str, ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A Service without selector (its EndpointSlices are written by the test)."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"ports": ports, **spec}}


def endpoint(backend: TcpBackend | UdpBackend, node: str = "node-1", **conditions: bool) -> dict[str, Any]:
    """An EndpointSlice endpoint for a backend (ready unless conditions say otherwise)."""
    cond = {"ready": True, "serving": True, "terminating": False, **conditions}
    return {"addresses": [backend.host], "nodeName": node, "conditions": cond}


def endpoint_slice(svc: str, endpoints: list[dict[str, Any]], ports: list[dict[str, Any]]) -> dict[str, Any]:
    """An EndpointSlice of `svc`."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{svc}-1", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }


class Objects:
    """Create and change Services and EndpointSlices in one namespace through the API."""

    def __init__(self, api: httpx.AsyncClient, ns: str) -> None:
        self.api, self.ns = api, ns

    async def create_service(self, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.api.post(f"/api/v1/namespaces/{self.ns}/services", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    async def service_status(self, name: str, status: dict[str, Any]) -> None:
        r = await self.api.patch(
            f"/api/v1/namespaces/{self.ns}/services/{name}/status",
            json={"status": status},
            headers={"content-type": "application/merge-patch+json"},
        )
        assert r.status_code == 200, r.text

    async def patch_service(self, name: str, spec: dict[str, Any]) -> None:
        r = await self.api.patch(
            f"/api/v1/namespaces/{self.ns}/services/{name}",
            json={"spec": spec},
            headers={"content-type": "application/merge-patch+json"},
        )
        assert r.status_code == 200, r.text

    async def delete_service(self, name: str) -> None:
        r = await self.api.delete(f"/api/v1/namespaces/{self.ns}/services/{name}")
        assert r.status_code == 200, r.text

    async def put_slice(self, body: dict[str, Any]) -> None:
        """Create the slice, or replace it when it exists."""
        base = f"/apis/discovery.k8s.io/v1/namespaces/{self.ns}/endpointslices"
        name = body["metadata"]["name"]
        r = await self.api.get(f"{base}/{name}")
        if r.status_code == 404:
            r = await self.api.post(base, json=body)
            assert r.status_code == 201, r.text
            return
        body = {**body, "metadata": {**body["metadata"], "resourceVersion": r.json()["metadata"]["resourceVersion"]}}
        r = await self.api.put(f"{base}/{name}", json=body)
        assert r.status_code == 200, r.text
