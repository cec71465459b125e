"""The upgrade seam (apimachinery/upgrade.py) on a real uvicorn server with the apiserver's HTTP protocol:
a 101 the app sends hands it the connection's bytes (those the client sent with its head too); any other
answer is plain HTTP and ends the connection; a request without an upgrade is untouched."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from apimachinery.httpserver import ServingLimits, uvicorn_options
from apimachinery.upgrade import SwitchingProtocols, UpgradedConnection, upgrade_of

TIMEOUT = 10


async def echo(conn: UpgradedConnection) -> None:
    """Send back what arrives, upper-cased, until the client closes."""
    while (data := await conn.read()) is not None:
        await conn.write(data.upper())


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Switches `/echo` to the echo protocol when asked for `echo/1`; answers everything else with 200."""
    conn = upgrade_of(scope)
    if scope["path"] == "/echo" and conn is not None and conn.token == "echo/1":
        await SwitchingProtocols({"X-Echo": "yes"}, echo)(scope, receive, send)
        return
    body = b"plain " + (conn.token.encode() if conn is not None else b"-")
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections wait in the backlog until the server accepts them
    config = uvicorn.Config(app, lifespan="off", log_level="warning", **uvicorn_options(ServingLimits()))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    yield sock.getsockname()[1]
    server.should_exit = True
    await asyncio.wait_for(task, TIMEOUT)
    sock.close()


async def request(port: int, head: str, extra: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode() + b"\r\n\r\n" + extra)
    await writer.drain()
    return reader, writer


async def test_a_101_hands_the_connection_to_the_app(port: int) -> None:
    head = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: Echo/1"
    reader, writer = await request(port, head, b"early ")  # bytes right behind the head are not lost
    async with asyncio.timeout(TIMEOUT):
        answer = await reader.readuntil(b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), answer
        assert b"\r\nUpgrade: Echo/1\r\n" in answer and b"\r\nx-echo: yes\r\n" in answer.lower()
        assert b"content-length" not in answer.lower() and b"transfer-encoding" not in answer.lower()
        assert await reader.readexactly(6) == b"EARLY "
        writer.write(b"later")
        assert await reader.readexactly(5) == b"LATER"
        writer.close()
        await writer.wait_closed()


async def test_an_upgrade_the_app_does_not_take_is_plain_http_then_closed(port: int) -> None:
    reader, writer = await request(port, "GET /other HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c")
    async with asyncio.timeout(TIMEOUT):
        answer = await reader.read()  # to the end: the server closes after it
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"plain h2c"), answer
    writer.close()


async def test_requests_without_an_upgrade_keep_the_connection(port: int) -> None:
    reader, writer = await request(port, "GET /a HTTP/1.1\r\nHost: x")
    async with asyncio.timeout(TIMEOUT):
        for _ in range(2):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert await reader.readexactly(len(b"plain -")) == b"plain -"
            writer.write(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    with contextlib.suppress(Exception):
        writer.close()
