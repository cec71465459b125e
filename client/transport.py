"""`KeepAliveTransport`: httpx's transport for an API server, HTTP/1.1 keep-alive over asyncio streams.

httpx's default transport (httpcore) re-checks every pooled connection on every request (a `poll()`
per idle connection in `_assign_requests_to_connections`) and writes TLS through anyio's memory
BIO; in the scheduler that was half of its CPU per bound pod. This transport keeps a stack of idle
connections: a request takes the most recently used one whose stream has not seen EOF (asyncio's
protocol notices a server's close as it happens, so no system call is needed to check), or dials a
new one. A response body read to its end gives the connection back; one closed early (a watch the
caller stops) closes it. Responses are parsed by httptools (llhttp), which owns their framing: status
line, headers, Content-Length, chunked bodies and their trailers, keep-alive. At most `max_connections`
requests are in flight at once; the others wait for a slot up to the pool timeout (`httpx.PoolTimeout`).
Timeouts and errors are httpx's own (`ConnectTimeout`, `ReadTimeout`, `ConnectError`, `ReadError`,
`RemoteProtocolError`, ...), so callers see what they saw with httpcore. Plain http and https only (no
proxies, no HTTP/2).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections.abc import AsyncIterator, Collection
from typing import Any

import httptools
import httpx

from apimachinery import tlsreads

__all__ = ["KeepAliveTransport", "Origin", "headers_of", "origin_of", "read_with_head"]

Origin = tuple[bytes, bytes, int]
"""(scheme, host, port)"""
_HEAD_LIMIT = 1 << 20  # response headers larger than this are a protocol error
_READ_SIZE = 1 << 20
_EAGER_BODY = 1 << 20  # a body of known length up to this is read with the head, under one timeout
_IDEMPOTENT = ("GET", "HEAD", "OPTIONS", "TRACE")  # net/http's isReplayable
_CLOSED_IDLE = "Server disconnected without sending a response."
_CLOSED_MID = "the server closed the connection mid-response"


HeaderTriple = tuple[bytes, bytes, bytes]
"""(name as sent, name lowered, value): how httpx.Headers keeps one header."""


def _check_headers_internals() -> bool:
    """Whether httpx.Headers keeps (name, lowered name, value) triples in `_list` as this module assumes."""
    try:
        made = httpx.Headers.__new__(httpx.Headers)
        made._list = [(b"X-A", b"x-a", b"1"), (b"B", b"b", b"2")]
        made._encoding = None
        want = httpx.Headers([(b"X-A", b"1"), (b"B", b"2")])
        return made._list == want._list and made.raw == want.raw and made.get("x-a") == "1"
    except Exception:  # another httpx: its own way
        return False


_HEADERS_AS_TRIPLES = _check_headers_internals()


def headers_of(triples: list[HeaderTriple]) -> httpx.Headers:
    """httpx.Headers holding these headers (and `triples` itself), without normalising each one again:
    names and values are bytes and the lowered names given, which is all httpx.Headers' constructor works out."""
    if not _HEADERS_AS_TRIPLES:
        return httpx.Headers([(name, value) for name, _, value in triples])
    headers = httpx.Headers.__new__(httpx.Headers)
    headers._list = triples
    headers._encoding = None
    return headers


def _triples(headers: httpx.Headers) -> list[HeaderTriple]:
    """The headers as (name, lowered name, value), as httpx.Headers keeps them."""
    if _HEADERS_AS_TRIPLES:
        return headers._list
    return [(name, name.lower(), value) for name, value in headers.raw]


@functools.lru_cache(maxsize=8)
def _http_version(version: str) -> bytes:
    """`HTTP/1.1` for httptools' `1.1`."""
    return b"HTTP/" + version.encode()


class _Connection:
    """One HTTP/1.1 connection."""

    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        """Whether an idle connection can carry another request (the server has not closed it)."""
        return not (self.reader.at_eof() or self.writer.is_closing() or self.reader._buffer)

    def close(self) -> None:
        """Close without waiting."""
        self.writer.close()


def _timeouts(request: httpx.Request) -> dict[str, float | None]:
    return request.extensions.get("timeout") or {}


def origin_of(url: httpx.URL) -> Origin:
    """The (scheme, host, port) a URL's connections are kept under."""
    return (url.raw_scheme, url.raw_host, url.port or (443 if url.raw_scheme == b"https" else 80))


async def _with_timeout(aw: Any, seconds: float | None) -> Any:
    if seconds is None:
        return await aw
    async with asyncio.timeout(seconds):
        return await aw


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 to one or more origins with a LIFO stack of idle keep-alive connections per origin."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        max_connections: int = 100,
        max_idle_connections: int = 20,
    ) -> None:
        self._ssl = ssl_context
        self._max_idle = max_idle_connections
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._closed = False

    @property
    def connections(self) -> int:
        """Open connections, idle or carrying a response."""
        return len(self._open)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on an idle or new connection; the response body streams from it."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        timeouts = _timeouts(request)
        try:
            if self._slots.locked():  # else it is taken at once: no timer to arm
                await _with_timeout(self._slots.acquire(), timeouts.get("pool"))
            else:
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection slot free within the pool timeout", request=request) from None
        try:
            return await self._send(request, timeouts)
        except BaseException:
            self._slots.release()
            raise

    async def _send(self, request: httpx.Request, timeouts: dict[str, float | None]) -> httpx.Response:
        origin = origin_of(request.url)
        conn = self._take_idle(origin)
        if conn is not None:
            try:
                return await self._exchange(conn, request, origin, timeouts)
            except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError) as e:
                # the server closed the kept-alive connection as we reused it (net/http's
                # errServerClosedIdle): a replayable request goes again on a new connection
                if request.method not in _IDEMPOTENT or not isinstance(request.stream, httpx.ByteStream):
                    raise
                if isinstance(e, httpx.RemoteProtocolError) and not str(e).startswith(_CLOSED_IDLE):
                    raise
        conn = await self._dial(request, origin, timeouts.get("connect"))
        return await self._exchange(conn, request, origin, timeouts)

    async def _exchange(
        self, conn: _Connection, request: httpx.Request, origin: Origin, timeouts: dict[str, Any]
    ) -> httpx.Response:
        try:
            await self._write_request(conn, request, timeouts.get("write"))
            return await self._read_head(conn, request, origin, timeouts.get("read"))
        except BaseException:
            self._discard(conn)
            raise

    def _take_idle(self, origin: Origin) -> _Connection | None:
        stack = self._idle.get(origin)
        while stack:
            conn = stack.pop()
            if conn.usable():
                return conn
            self._discard(conn)
        return None

    async def _dial(self, request: httpx.Request, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        tls: ssl.SSLContext | None = None
        if scheme == b"https":
            tls = self._ssl or ssl.create_default_context()
        hostname = host.decode("ascii")
        try:
            reader, writer = await _with_timeout(
                tlsreads.open_connection(
                    hostname, port, tls=tls, server_hostname=hostname if tls else None, limit=_HEAD_LIMIT
                ),
                timeout,
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {hostname}:{port} timed out", request=request) from None
        except (OSError, ssl.SSLError) as e:
            raise httpx.ConnectError(str(e) or type(e).__name__, request=request) from e
        conn = _Connection(reader, writer)
        self._open.add(conn)
        return conn

    async def _write_request(self, conn: _Connection, request: httpx.Request, timeout: float | None) -> None:
        url = request.url
        target = url.raw_path
        lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
        chunked = False
        for name, low, value in _triples(request.headers):
            if low == b"transfer-encoding" and value.lower() == b"chunked":
                chunked = True
            lines += (name, b": ", value, b"\r\n")
        lines.append(b"\r\n")
        stream = request.stream
        if isinstance(stream, httpx.ByteStream):
            body = bytes(stream._stream)  # the whole body, already in memory
            lines.append(body if not chunked else _chunk(body) + b"0\r\n\r\n")
            conn.writer.write(b"".join(lines))
        else:
            conn.writer.write(b"".join(lines))
            async for part in stream:  # type: ignore[union-attr]
                if part:
                    conn.writer.write(_chunk(part) if chunked else part)
            if chunked:
                conn.writer.write(b"0\r\n\r\n")
        if not conn.writer.transport.get_write_buffer_size():
            return  # all handed to the socket: nothing to wait for (a broken connection shows on the read)
        try:
            await _with_timeout(conn.writer.drain(), timeout)
        except TimeoutError:
            raise httpx.WriteTimeout("writing the request timed out", request=request) from None
        except OSError as e:
            raise httpx.WriteError(str(e) or type(e).__name__, request=request) from e

    async def _read_head(
        self,
        conn: _Connection,
        request: httpx.Request,
        origin: Origin,
        timeout: float | None,
    ) -> httpx.Response:
        """Read the response's head (and a body of known, small length: one timeout for both)."""
        msg = _Message(request.method == "HEAD")
        reader = conn.reader
        try:
            async with asyncio.timeout(timeout):
                try:
                    seen = 0
                    while not msg.headers_done:
                        data = await reader.read(_READ_SIZE)
                        if not data:
                            raise httpx.RemoteProtocolError(_CLOSED_MID if seen else _CLOSED_IDLE, request=request)
                        seen += len(data)
                        msg.feed(data, request)
                        if seen > _HEAD_LIMIT and not msg.headers_done:
                            raise httpx.RemoteProtocolError("response header too long", request=request)
                    if msg.length is not None and msg.length <= _EAGER_BODY:
                        while not msg.complete:
                            if not (data := await reader.read(_READ_SIZE)):
                                raise httpx.RemoteProtocolError(_CLOSED_MID, request=request)
                            msg.feed(data, request)
                except OSError as e:
                    raise httpx.ReadError(str(e) or type(e).__name__, request=request) from e
        except TimeoutError:
            raise httpx.ReadTimeout("reading the response timed out", request=request) from None
        return httpx.Response(
            msg.status,
            headers=headers_of(msg.headers),
            stream=_Body(self, conn, origin, request, timeout, msg),
            extensions={"http_version": _http_version(msg.parser.get_http_version()), "reason_phrase": msg.reason},
        )

    def release(self, conn: _Connection, origin: Origin, reusable: bool) -> None:
        """A response is done with `conn`: keep it for the next request, or close it."""
        self._slots.release()
        stack = self._idle.setdefault(origin, [])
        if reusable and not self._closed and len(stack) < self._max_idle and conn.usable():
            stack.append(conn)
        else:
            self._discard(conn)

    def close_idle_except(self, origins: Collection[Origin]) -> None:
        """Close the idle connections to every origin not in `origins` (servers that are gone)."""
        for origin in [o for o in self._idle if o not in origins]:
            for conn in self._idle.pop(origin):
                self._discard(conn)

    def _discard(self, conn: _Connection) -> None:
        self._open.discard(conn)
        conn.close()

    async def aclose(self) -> None:
        """Close every connection, idle or carrying a response."""
        self._closed = True
        conns = list(self._open)
        self._open.clear()
        self._idle.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.writer.wait_closed(), 1.0)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class _Message:
    """One response as httptools' parser (llhttp) reports it: its head, body parts not yet handed on, and
    whether it is complete. llhttp owns the framing (Content-Length, chunked, trailers, a body up to EOF,
    no body for 1xx/204/304, keep-alive); a HEAD's answer ends with its head, which llhttp cannot be told."""

    __slots__ = (
        "body",
        "complete",
        "encoded",
        "extra",
        "framed",
        "head_only",
        "headers",
        "headers_done",
        "interim",
        "keep_alive",
        "length",
        "parser",
        "reason",
        "status",
    )

    def __init__(self, head_only: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = head_only
        self.status = 0
        self.reason = b""
        self.headers: list[HeaderTriple] = []
        self.length: int | None = None
        """Content-Length, when given: a small body is read with the head."""
        self.framed = False
        """Content-Length or chunked: the body must not end at EOF."""
        self.encoded = False
        """A Content-Encoding header: httpx decodes the body (gzip, deflate, ...)."""
        self.interim = False
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.extra = False
        """Bytes came after the response: the connection is not reused."""
        self.body: list[bytes] = []

    @property
    def reusable(self) -> bool:
        """Whether the connection can carry another request once this response is read."""
        return self.complete and self.keep_alive and not self.extra

    def feed(self, data: bytes, request: httpx.Request) -> None:
        """Parse `data`; a malformed response raises httpx.RemoteProtocolError."""
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as e:
            if not self.complete:
                raise httpx.RemoteProtocolError(f"malformed response: {e}", request=request) from e
            self.extra = True  # after the response: a 101's other protocol, or junk

    def eof(self, request: httpx.Request) -> None:
        """The server closed the connection: the end of a body read to EOF, else an error."""
        if self.framed or not self.headers_done:
            raise httpx.RemoteProtocolError(_CLOSED_MID, request=request)
        self.complete = True

    # httptools' callbacks; a response's bytes after the one asked for (complete) are only noted

    def on_status(self, data: bytes) -> None:
        """Part of the reason phrase."""
        if not self.complete:
            self.reason += data

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header (after the head: a trailer, dropped as httpcore does)."""
        if self.headers_done:
            return
        low = name.lower()
        self.headers.append((name, low, value))
        if low == b"content-length":
            self.framed = True
            with contextlib.suppress(ValueError):
                self.length = int(value)
        elif low == b"transfer-encoding":
            self.framed = self.framed or value.rstrip().lower().endswith(b"chunked")
        elif low == b"content-encoding":
            self.encoded = True

    def on_headers_complete(self) -> None:
        """The head is in: 1xx answers (none asked for) are skipped, a 101 or a HEAD's answer ends here."""
        if self.complete:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.interim = True
            self.reason, self.headers, self.length, self.framed, self.encoded = b"", [], None, False, False
            return
        self.status = status
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive() and status != 101
        if self.head_only or status == 101:
            self.complete = True

    def on_body(self, data: bytes) -> None:
        """Part of the body."""
        if self.complete:
            self.extra = True
        else:
            self.body.append(data)

    def on_message_complete(self) -> None:
        """The end of a response."""
        if self.interim:
            self.interim = False
        elif not self.complete:
            self.complete = True
            self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
        else:
            self.extra = True


async def _read(reader: asyncio.StreamReader, timeout: float | None, request: httpx.Request) -> bytes:
    """The next bytes from `reader` (b"" at EOF), with httpx's errors."""
    try:
        return await _with_timeout(reader.read(_READ_SIZE), timeout)
    except TimeoutError:
        raise httpx.ReadTimeout("reading the response timed out", request=request) from None
    except OSError as e:
        raise httpx.ReadError(str(e) or type(e).__name__, request=request) from e


class _Body(httpx.AsyncByteStream):
    """A response body: what came with the head, then parts read from the connection as they arrive."""

    def __init__(
        self,
        transport: KeepAliveTransport,
        conn: _Connection,
        origin: Origin,
        request: httpx.Request,
        timeout: float | None,
        msg: _Message,
    ) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._origin = origin
        self._request = request
        self._timeout = timeout
        self._msg = msg

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn, msg = self._conn, self._msg
        if conn is None:
            return
        while True:
            if msg.complete:
                self._finish(msg.reusable)  # the connection goes back before the last part is handed on
            if msg.body:
                data = b"".join(msg.body) if len(msg.body) > 1 else msg.body[0]
                msg.body.clear()
                yield data
            if msg.complete:
                return
            if data := await _read(conn.reader, self._timeout, self._request):
                msg.feed(data, self._request)
            else:
                msg.eof(self._request)

    def whole(self) -> bytes | None:
        """The whole body if it came with the head and is not content-encoded (its connection is given back
        now), else None: then it is read by iterating."""
        msg = self._msg
        if self._conn is None or not msg.complete or msg.encoded:
            return None
        self._finish(msg.reusable)
        body = b"".join(msg.body) if len(msg.body) != 1 else msg.body[0]
        msg.body.clear()
        return body

    def _finish(self, reusable: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._transport.release(conn, self._origin, reusable)

    async def aclose(self) -> None:
        """Give the connection back if the body was read to its end, else close it."""
        self._finish(self._msg.reusable)


def _mark_read(resp: httpx.Response, content: bytes) -> None:
    # the state httpx's aread() and aclose() leave a response in
    resp._content = content
    resp._num_bytes_downloaded = len(content)
    resp.is_stream_consumed = resp.is_closed = True


def _check_response_internals() -> bool:
    """Whether a response marked read by `_mark_read` answers as one httpx read itself."""
    try:
        want = httpx.Response(200, content=b'{"a":1}')
        made = httpx.Response(200)
        _mark_read(made, b'{"a":1}')
        return (
            made.content == want.content
            and made.read() == want.read()
            and made.json() == want.json()
            and made.num_bytes_downloaded == len(want.content)  # given, not downloaded, in `want`
            and made.is_stream_consumed == want.is_stream_consumed
            and made.is_closed == want.is_closed
        )
    except Exception:  # another httpx: its own way
        return False


_READ_AS_MARKED = _check_response_internals()


def read_with_head(resp: httpx.Response) -> bool:
    """Mark the response read when this transport read its whole body with the head and it needs no decoding:
    what `aread()` and `aclose()` leave, without httpx's decoding and chunking layers (the connection is given
    back). False for a body still to be read (large, chunked, content-encoded) or from another transport."""
    stream = resp.stream
    if not _READ_AS_MARKED or type(stream) is not _Body:
        return False
    content = stream.whole()
    if content is None:
        return False
    _mark_read(resp, content)
    return True
