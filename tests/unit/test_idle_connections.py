"""The apiserver's idle timeout (Go's IdleTimeout, `ServingLimits.idle_timeout`) on a real uvicorn server with the
apiserver's HTTP protocol, which keeps one idle timer per connection instead of one per response: a kept
connection left idle is closed once the timeout passes, one whose requests keep coming stays open however long it
lives, and a request being served is never cut off by it."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from apimachinery.httpserver import ServingLimits, uvicorn_options

IDLE = 0.5
TIMEOUT = 10


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers `ok`; `/slow` only after twice the idle timeout."""
    if scope["path"] == "/slow":
        await asyncio.sleep(2 * IDLE)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    options = uvicorn_options(ServingLimits(idle_timeout=IDLE))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    yield sock.getsockname()[1]
    server.should_exit = True
    await asyncio.wait_for(task, TIMEOUT)
    sock.close()


async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
    """One request on a kept connection: the answer's head."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert await reader.readexactly(2) == b"ok"
    return head


async def test_a_connection_left_idle_is_closed_after_the_idle_timeout(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    async with asyncio.timeout(TIMEOUT):
        head = await get(reader, writer, "/a")
        answered = time.monotonic()
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"server:" not in head.lower()
        assert await reader.read() == b""  # the server closed it
    assert time.monotonic() - answered >= IDLE * 0.9
    writer.close()


async def test_a_connection_whose_requests_keep_coming_stays_open_until_it_idles(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = time.monotonic()
    async with asyncio.timeout(TIMEOUT):
        while time.monotonic() - opened < 4 * IDLE:  # the timer armed after the first answer fires in here
            await get(reader, writer, "/a")
            await asyncio.sleep(IDLE / 3)  # idle, but for less than the timeout
        await get(reader, writer, "/a")
        answered = time.monotonic()
        assert await reader.read() == b""  # then left idle: closed all the same
    assert time.monotonic() - answered >= IDLE * 0.9
    writer.close()


async def test_an_idle_spell_that_began_after_the_timer_was_set_still_ends_in_a_close(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    async with asyncio.timeout(TIMEOUT):
        await get(reader, writer, "/a")  # the connection's timer is set for IDLE from here
        await asyncio.sleep(IDLE / 2)
        await get(reader, writer, "/a")  # it fires while the connection idles again, with time left: set again
        answered = time.monotonic()
        assert await reader.read() == b""
    assert time.monotonic() - answered >= IDLE * 0.9
    writer.close()


async def test_a_request_served_longer_than_the_idle_timeout_is_answered(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    async with asyncio.timeout(TIMEOUT):
        await get(reader, writer, "/a")  # the idle clock runs from here until /slow's bytes arrive
        await asyncio.sleep(IDLE / 2)
        assert (await get(reader, writer, "/slow")).startswith(b"HTTP/1.1 200 OK\r\n")
        await get(reader, writer, "/a")
    writer.close()
