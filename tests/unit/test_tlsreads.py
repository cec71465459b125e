"""TLS reads through one shared buffer: every byte arrives, in order, on each of many connections at once,
on uvloop's TLS transport and on asyncio's, server side (`BufferedReads` around a plain protocol) and client
side (`open_connection`)."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from apimachinery import tlsreads
from tinykube.pki import ClusterPKI

CONNECTIONS = 8
PAYLOAD = 3 * tlsreads.BUFFER_SIZE + 12345  # several buffer fills per direction


def _payload(n: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest() * (PAYLOAD // 32 + 1)


class Echo(asyncio.Protocol):
    """A plain protocol: echoes every byte back as it comes."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.transport: asyncio.Transport | None = None
        self.face: object = None  # the protocol the transport reads for

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.face = transport.get_protocol()

    def data_received(self, data: bytes) -> None:
        assert isinstance(data, bytes)
        self.received += data
        assert self.transport is not None
        self.transport.write(data)


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    pki = ClusterPKI(Path(tmp_path_factory.mktemp("pki")))
    pki.ensure(ips=["127.0.0.1"], dns_names=["localhost"], clients=[])
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(pki.apiserver.cert, pki.apiserver.key)
    client = ssl.create_default_context(cafile=str(pki.ca.cert))
    return server, client


async def _exchange(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    loop = asyncio.get_running_loop()
    protocols: list[Echo] = []

    def make() -> Echo:
        protocols.append(Echo())
        return protocols[-1]

    server = await loop.create_server(lambda: tlsreads.BufferedReads(make()), "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]

    async def one(n: int) -> bytes:
        reader, writer = await tlsreads.open_connection(
            "127.0.0.1", port, tls=client_ctx, server_hostname="127.0.0.1", limit=2**16
        )
        assert isinstance(writer.transport.get_protocol(), tlsreads.BufferedReads)
        data = _payload(n)
        for start in range(0, len(data), 5000):  # many small writes, interleaved with the other connections
            writer.write(data[start : start + 5000])
            await writer.drain()
        echoed = await asyncio.wait_for(reader.readexactly(len(data)), 30)
        writer.close()
        await writer.wait_closed()
        return echoed

    try:
        echoed = await asyncio.gather(*(one(n) for n in range(CONNECTIONS)))
    finally:
        server.close()
        await server.wait_closed()
    assert echoed == [_payload(n) for n in range(CONNECTIONS)]
    assert all(isinstance(p.face, tlsreads.BufferedReads) for p in protocols)
    assert sorted(bytes(p.received) for p in protocols) == sorted(_payload(n) for n in range(CONNECTIONS))


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_every_byte_arrives_in_order_on_every_connection(
    run: Callable[[Coroutine[Any, Any, None]], None], contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    run(_exchange(*contexts))


def test_plain_connections_are_left_as_they_are() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await tlsreads.open_connection("127.0.0.1", port, tls=None, server_hostname=None, limit=10)
        assert not isinstance(writer.transport.get_protocol(), tlsreads.BufferedReads)
        assert await reader.read() == b""
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
