"""KeepAliveTransport: connections kept and reused, closed when they must be, httpx's errors and timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import orjson
import pytest
from client_kit import eventually

from apimachinery.errors import StatusError
from client.config import Config
from client.rest import ApiClient
from client.transport import KeepAliveTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A real TCP server on a free port running `handler` per connection; yields its URL and a list that
    counts accepted connections."""
    accepted: list[int] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", accepted
    finally:
        server.close()
        await server.wait_closed()


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, extra: bytes = b"") -> None:
    """Read one request head and answer `ok`."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + extra + b"\r\nok")
    await writer.drain()


async def test_sequential_requests_share_one_connection(apiserver: str) -> None:
    transport = KeepAliveTransport()
    async with httpx.AsyncClient(base_url=apiserver, transport=transport, timeout=10) as http:
        for _ in range(5):
            r = await http.get("/api/v1/namespaces/default")
            assert r.status_code == 200 and r.json()["metadata"]["name"] == "default"
        assert transport.connections == 1


async def test_concurrent_requests_then_reuse_of_the_idle_connections(apiserver: str) -> None:
    transport = KeepAliveTransport()
    async with ApiClient(apiserver, transport=transport) as api:
        await asyncio.gather(*(api.get("namespaces", "default") for _ in range(8)))
        opened = transport.connections
        assert 1 <= opened <= 8
        await asyncio.gather(*(api.get("namespaces", "default") for _ in range(opened)))
        assert transport.connections == opened


async def test_chunked_body_and_a_connection_the_server_closes() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        await writer.drain()
        await answer(reader, writer, b"Connection: close\r\n")

    async with serving(handler) as (url, accepted), httpx.AsyncClient(transport=KeepAliveTransport()) as http:
        assert (await http.get(url)).content == b"abcde"
        assert (await http.get(url)).content == b"ok"  # same connection, which the server then closes
        assert (await http.get(url)).content == b"abcde"  # so this one dials again
        assert len(accepted) == 2


async def test_an_idle_connection_the_server_dropped_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer(reader, writer)  # then close: the client's kept connection sees EOF

    transport = KeepAliveTransport()
    async with serving(handler) as (url, accepted), httpx.AsyncClient(transport=transport) as http:
        assert (await http.get(url)).content == b"ok"
        kept = [c for stack in transport._idle.values() for c in stack]
        await eventually(lambda: not any(c.usable() for c in kept), 5, "the client to see the server's close")
        assert (await http.post(url, content=b"x")).content == b"ok"  # a POST is never sent twice
        assert len(accepted) == 2


async def test_a_lagging_stream_consumer_pauses_reading_then_gets_the_whole_body() -> None:
    part, parts = b"x" * (256 << 10), 128  # 32 MiB: far more than the socket buffers and the client's bound

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(parts):
            writer.write(b"%x\r\n%b\r\n" % (len(part), part))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    transport = KeepAliveTransport()
    async with serving(flood) as (url, _), httpx.AsyncClient(transport=transport, timeout=10) as http:
        async with http.stream("GET", url) as resp:
            chunks = resp.aiter_raw()
            got = len(await anext(chunks))
            (conn,) = transport._open
            # the consumer lags: the client stops reading instead of holding the whole body
            await eventually(lambda: not conn.transport.is_reading(), 10, "the client to pause reading")
            assert conn.msg is not None and conn.msg.size <= 4 << 20
            async for data in chunks:
                got += len(data)
        assert got == len(part) * parts
        assert transport.connections == 1  # read to its end: kept


async def test_a_stream_closed_early_closes_its_connection(apiserver: str) -> None:
    transport = KeepAliveTransport()
    async with httpx.AsyncClient(base_url=apiserver, transport=transport, timeout=10) as http:
        async with http.stream("GET", "/api/v1/namespaces?watch=1&timeoutSeconds=30") as resp:
            assert resp.status_code == 200
            async for _ in resp.aiter_bytes():
                break  # the first event, then stop: the rest of the body is never read
        assert transport.connections == 0
        assert (await http.get("/api/v1/namespaces/default")).status_code == 200


async def test_read_timeout_and_connect_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers

    transport = KeepAliveTransport()
    async with serving(silent) as (url, _), httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(url, timeout=httpx.Timeout(0.2))
        assert transport.connections == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        async with httpx.AsyncClient(transport=KeepAliveTransport()) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/")


async def test_requests_beyond_max_connections_wait_for_a_slot() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
        await writer.drain()
        await reader.read()  # the body never ends

    transport = KeepAliveTransport(max_connections=1)
    async with serving(endless) as (url, _), httpx.AsyncClient(transport=transport) as http:
        async with http.stream("GET", url) as held:
            assert held.status_code == 200
            with pytest.raises(httpx.PoolTimeout):
                await http.get(url, timeout=httpx.Timeout(5, pool=0.2))
        with pytest.raises(httpx.ReadTimeout):  # the slot is free again: this one is sent (and not answered)
            await http.get(url, timeout=httpx.Timeout(0.3, pool=0.2))


async def test_what_api_client_hands_its_transport() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"kind": "ConfigMap"})

    config = Config(server="http://mock/prefix/", token="t0k")
    async with ApiClient(config, transport=httpx.MockTransport(handler), user_agent="ua/1") as api:
        await api.get("configmaps", "a b", "ns", resource_version="0")
        await api.request("GET", "/logs?tail=1", params={"x": "a b"})
        await api.create("configmaps", {"metadata": {"name": "c"}}, "ns")
    get, logs, post = seen
    assert get.url.raw_path == b"/prefix/api/v1/namespaces/ns/configmaps/a%20b?resourceVersion=0"
    assert get.headers["authorization"] == "Bearer t0k" and get.headers["user-agent"] == "ua/1"
    assert get.headers["accept"] == "application/json" and get.headers["host"] == "mock"
    assert logs.url.raw_path == b"/prefix/logs?tail=1&x=a+b"
    assert post.method == "POST" and post.headers["content-type"] == "application/json"
    assert post.content == b'{"metadata":{"name":"c"}}' and post.headers["content-length"] == "25"


async def test_a_get_goes_again_when_a_reused_connection_closes_unanswered_a_post_does_not() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer(reader, writer)
        await reader.readuntil(b"\r\n\r\n")  # the next request on this connection: closed unanswered

    async with serving(handler) as (url, accepted), httpx.AsyncClient(transport=KeepAliveTransport()) as http:
        assert (await http.get(url)).content == b"ok"
        assert (await http.get(url)).content == b"ok"  # sent on the kept connection, then on a new one
        assert len(accepted) == 2
        with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected"):
            await http.post(url, content=b"x")  # on the second kept connection: not sent again
        assert len(accepted) == 2


async def test_chunked_body_with_trailers_keeps_its_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
            b"4\r\nwiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Sum: 9\r\nX-Other: y\r\n\r\n"
        )
        await writer.drain()
        await answer(reader, writer)

    async with serving(handler) as (url, accepted), httpx.AsyncClient(transport=KeepAliveTransport()) as http:
        r = await http.get(url)
        assert r.content == b"wikipedia" and "x-sum" not in r.headers  # trailers are dropped, as httpcore does
        assert (await http.get(url)).content == b"ok"  # on the same connection
        assert len(accepted) == 1


async def test_a_response_split_across_many_segments() -> None:
    response = (
        b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Long: " + b"v" * 300 + b"\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n3\r\n123\r\n0\r\nX-T: 1\r\n\r\n"
    )

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await reader.readuntil(b"\r\n\r\n")
        for i in range(0, len(response), 7):  # 7 bytes apart: splits the status line, names, values, sizes
            writer.write(response[i : i + 7])
            await writer.drain()
            await asyncio.sleep(0.001)  # spacing, so the pieces leave as segments of their own
        await answer(reader, writer)

    async with serving(handler) as (url, accepted), httpx.AsyncClient(transport=KeepAliveTransport()) as http:
        r = await http.get(url)
        assert (r.status_code, r.reason_phrase, r.http_version) == (201, "Created", "HTTP/1.1")
        assert r.headers["x-long"] == "v" * 300 and r.headers["content-type"] == "text/plain"
        assert r.content == b"abcdefghijklmnopqrstuvwxyz123"
        assert (await http.get(url)).content == b"ok"
        assert len(accepted) == 1


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",  # a status code that is not a number
        b"HTTP/1.1 200 OK\r\nContent Length: 2\r\n\r\nok",  # a space in a header name
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",  # a chunk size
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok",  # then the server closes: the body is cut
    ],
    ids=["status", "header-name", "two-lengths", "chunk-size", "cut-body"],
)
async def test_a_malformed_response_is_a_remote_protocol_error(response: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()

    transport = KeepAliveTransport()
    async with serving(handler) as (url, _), httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(url)
        assert transport.connections == 0


async def test_interim_head_no_content_and_to_eof_answers() -> None:
    answers = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",  # a HEAD's answer: the length but no body
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nto the end",  # no length, not chunked: the body runs to the server's close
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for a in answers:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(a)
            await writer.drain()

    transport = KeepAliveTransport()
    async with serving(handler) as (url, accepted), httpx.AsyncClient(transport=transport) as http:
        assert (await http.get(url)).content == b"ok"
        head = await http.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == "9" and head.content == b""
        assert (await http.delete(url)).status_code == 204
        assert (await http.get(url)).content == b"to the end"
        assert len(accepted) == 1 and transport.connections == 0  # all on one connection, then closed


async def test_a_watch_stream_is_read_as_it_arrives_and_closed_early() -> None:
    got_first = asyncio.Event()
    client_closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n{"type":"A"}\n\r\n')
        await writer.drain()
        await got_first.wait()  # the second event only once the client has the first
        writer.write(b'd\r\n{"type":"B"}\n\r\n')
        await writer.drain()
        if await reader.read() == b"":  # never ends the body; the client's close shows as EOF
            client_closed.set()

    transport = KeepAliveTransport()
    async with serving(handler) as (url, _), httpx.AsyncClient(transport=transport) as http:
        async with http.stream("GET", url) as resp:
            lines = resp.aiter_lines()
            assert await anext(lines) == '{"type":"A"}'
            got_first.set()
            assert await anext(lines) == '{"type":"B"}'
        assert transport.connections == 0
        await asyncio.wait_for(client_closed.wait(), 5)


async def test_a_head_over_a_mebibyte_is_refused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (1 << 20) + b"b")  # the head never ends
        await writer.drain()
        await reader.read()  # open until the client gives up

    transport = KeepAliveTransport()
    async with serving(handler) as (url, _), httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="too long"):
            await http.get(url, timeout=10)
        assert transport.connections == 0


async def test_api_client_responses_read_with_their_head_or_decoded() -> None:
    """What ApiClient returns from its own transport: a small body read with the head, a gzip-encoded one
    decoded, a chunked one read to its end, a Status answer raised; every response closed, and all of them
    on one kept connection."""
    obj = b'{"kind":"ConfigMap","metadata":{"name":"a"}}'
    packed = gzip.compress(obj)
    status = b'{"kind":"Status","code":404,"reason":"NotFound","message":"configmaps \\"b\\" not found"}'
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nAudit-Id: x1\r\nContent-Length: %d\r\n\r\n%b"
        % (len(obj), obj),
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%b"
        % (len(packed), packed),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(obj), obj),
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
        % (len(status), status),
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for data in answers:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(data)
            await writer.drain()
        await reader.read()

    async with serving(handler) as (url, accepted):
        transport = KeepAliveTransport()
        async with ApiClient(url, transport=transport) as api:
            plain = await api.request("GET", "/api/v1/namespaces/ns/configmaps/a")
            assert plain.content == obj and plain.json()["metadata"]["name"] == "a"
            assert plain.headers["audit-id"] == "x1" and plain.headers.raw[1] == (b"Audit-Id", b"x1")
            assert plain.is_closed and plain.text == obj.decode() and plain.reason_phrase == "OK"
            assert plain.num_bytes_downloaded == len(obj)
            decoded = await api.get("configmaps", "a", "ns")
            assert decoded == orjson.loads(obj)
            chunked = await api.request("GET", "/api/v1/namespaces/ns/configmaps/a")
            assert chunked.content == obj and chunked.is_closed
            with pytest.raises(StatusError) as err:
                await api.get("configmaps", "b", "ns")
            assert (err.value.code, err.value.reason) == (404, "NotFound")
            assert transport.connections == 1
        assert len(accepted) == 1


async def test_a_streamed_request_body_goes_chunked() -> None:
    """A body of unknown length (httpx sets `Transfer-Encoding: chunked`) is sent in chunks, then the last one."""
    got: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.readuntil(b"\r\n\r\n"))
        got.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    async def parts() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"defgh"

    async with serving(handler) as (url, _), httpx.AsyncClient(transport=KeepAliveTransport()) as http:
        assert (await http.post(url, content=parts())).content == b"ok"
    head, body = got
    assert b"\r\nTransfer-Encoding: chunked\r\n" in head
    assert body == b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"
