"""A kubelet's server is bounded as upstream's (MaxHeaderBytes 1 MiB; a read timeout on a request's headers):
it runs the apiserver's HTTP protocol (`apimachinery/httpserver.py`), so a client cannot make it buffer
headers without end or hold a connection open by never finishing a request."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from apimachinery.httpserver import ServingLimits
from kubelet.auth import KUBELET_LIMITS
from kubelet.server import KubeletServer
from tests.integration.test_streaming import DirRuntime

HEADER_TIMEOUT = 0.5


async def _started(tmp_path: Path, limits: ServingLimits = KUBELET_LIMITS) -> KubeletServer:
    server = KubeletServer(DirRuntime(tmp_path), "127.0.0.1", 0, lambda _host: None, limits=limits)
    await server.start()
    return server


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(10):
        return await reader.read()  # to EOF: the server closed the connection


async def test_headers_past_one_mebibyte_get_431_and_the_connection_closed(tmp_path: Path) -> None:
    server = await _started(tmp_path)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        filler = b"x-filler: " + b"a" * 8000 + b"\r\n"
        try:
            for _ in range((2 << 20) // len(filler)):  # 2 MiB of headers, never ended
                writer.write(filler)
                await writer.drain()
        except ConnectionError:
            pass  # refused and closed while the headers were still going out
        answer = await _read_all(reader)
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        status = orjson.loads(body)
        assert (status["code"], status["reason"]) == (431, "RequestHeaderFieldsTooLarge")
        assert status["message"] == f"Request header fields too large: limit is {1 << 20}"
    finally:
        await server.stop()


async def test_a_request_whose_headers_never_end_is_closed_after_the_header_timeout(tmp_path: Path) -> None:
    server = await _started(tmp_path, ServingLimits(header_timeout=HEADER_TIMEOUT))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        started = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")  # and nothing more
        assert await _read_all(reader) == b""  # no answer, as Go's server: the connection is closed
        assert time.monotonic() - started >= HEADER_TIMEOUT * 0.9
        writer.close()
        # a whole request on a new connection is answered as before
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        answer = await _read_all(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nok")
        assert b"\r\nserver:" not in answer.lower()  # upstream's kubelet sends no Server header
    finally:
        await server.stop()
