"""`KeepAliveTransport`: httpx's transport for an API server, HTTP/1.1 keep-alive in an asyncio protocol.

httpx's default transport (httpcore) re-checks every pooled connection on every request (a `poll()`
per idle connection in `_assign_requests_to_connections`) and writes TLS through anyio's memory
BIO; in the scheduler that was half of its CPU per bound pod. This transport keeps a stack of idle
connections: a request takes the most recently used one whose stream has not seen EOF (asyncio's
protocol notices a server's close as it happens, so no system call is needed to check), or dials a
new one. A response body read to its end gives the connection back; one closed early (a watch the
caller stops) closes it. Responses are parsed by httptools (llhttp), which owns their framing: status
line, headers, Content-Length, chunked bodies and their trailers, keep-alive. The parser is fed in the
connection's own protocol as bytes arrive (no stream buffer in between); the reader awaits one future
until the head, a small body or a body's next part is in, and a lagging consumer pauses the socket's reads.
At most `max_connections` requests are in flight at once; the others wait for a slot up to the pool
timeout (`httpx.PoolTimeout`).
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


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, its protocol: the response being read is parsed as its bytes arrive, and the
    reader waits on one future until what it waits for (the head, a small body, the next part) is in."""

    __slots__ = (
        "_drained",
        "_lost",
        "_paused",
        "_waiter",
        "_want",
        "closed",
        "eof",
        "error",
        "msg",
        "request",
        "seen",
        "stray",
        "transport",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.msg: _Message | None = None
        self.request: httpx.Request | None = None
        self.seen = 0
        self.eof = False
        self.closed = False
        self.stray = False
        """Bytes came while no response was being read: the connection is not reused."""
        self.error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._want = _WANT_HEAD
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] = loop.create_future()

    def usable(self) -> bool:
        """Whether an idle connection can carry another request (the server has not closed it)."""
        return not (self.eof or self.closed or self.stray or self.transport.is_closing())

    def close(self) -> None:
        """Close without waiting."""
        self.transport.close()

    def begin(self, msg: _Message, request: httpx.Request) -> None:
        """The response to `request` is read into `msg` from now on (set before the request is written: an
        early answer is this response's)."""
        self.msg, self.request, self.seen, self.error = msg, request, 0, None
        if self.eof:  # the server closed it after it was taken
            self._ended()

    def end(self) -> None:
        """No response is being read."""
        if self.msg is not None:
            self.msg.release()
        self.msg = self.request = None
        if self._paused:
            self._paused = False
            self.transport.resume_reading()

    # the protocol's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The connection is up."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Parse what arrived into the response being read, and wake its reader when it has what it waits for."""
        msg = self.msg
        if msg is None or self.error is not None:
            self.stray = True
            return
        self.seen += len(data)
        try:
            msg.feed(data, self.request)  # type: ignore[arg-type]
            if self.seen > _HEAD_LIMIT and not msg.headers_done:
                raise httpx.RemoteProtocolError("response header too long", request=self.request)
        except httpx.HTTPError as e:
            self.error = e
        if msg.size > _PAUSE_AT and not msg.complete and not self._paused:
            self._paused = True  # the consumer lags: the socket holds the rest
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        """The server closed its side: the end of a body read to EOF, else an error for the response read."""
        self.eof = True
        self._ended()
        return None  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: an error for the response being read (a reset), else as EOF."""
        self.closed = True
        if not self._lost.done():
            self._lost.set_result(None)
        if exc is not None and self.msg is not None and self.error is None and not self.msg.complete:
            self.error = httpx.ReadError(str(exc) or type(exc).__name__, request=self.request)
        if not self.eof:
            self.eof = True
            self._ended()
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)  # drain() sees `closed`

    def pause_writing(self) -> None:
        """The transport's write buffer is full."""
        if self._drained is None or self._drained.done():
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        """The transport's write buffer drained."""
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _ended(self) -> None:
        msg = self.msg
        if msg is None or self.error is not None or msg.complete:
            return
        if not msg.headers_done:
            self.error = httpx.RemoteProtocolError(_CLOSED_MID if self.seen else _CLOSED_IDLE, request=self.request)
        else:
            try:
                msg.eof(self.request)  # type: ignore[arg-type]
            except httpx.HTTPError as e:
                self.error = e
        self._wake()

    def _ready(self) -> bool:
        msg = self.msg
        if msg is None:
            return True
        if self._want == _WANT_HEAD:
            return msg.headers_done and (msg.complete or msg.length is None or msg.length > _EAGER_BODY)
        return msg.complete or bool(msg.body)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (self.error is not None or self._ready()):
            waiter.set_result(None)

    async def wait(self, want: int, timeout: float | None) -> None:
        """Until the response's head (and a small body) or its next body part is in; httpx's errors."""
        self._want = want
        if self._ready():
            return
        if self.error is not None:
            raise self.error
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _time_out, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if not self._ready():
            raise self.error  # type: ignore[misc]

    async def drain(self) -> None:
        """Until the transport's write buffer has room again."""
        if self.closed:
            raise ConnectionResetError("connection lost")
        if self._drained is not None:
            await self._drained
            if self.closed:
                raise ConnectionResetError("connection lost")

    async def wait_closed(self) -> None:
        """Until the connection is gone."""
        await self._lost


_WANT_HEAD = 0
_WANT_BODY = 1
_PAUSE_AT = 1 << 21  # body bytes not yet handed on at which reading pauses (a StreamReader's, twice its limit)


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


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
        conn.begin(_Message(request.method == "HEAD"), request)
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
        loop = asyncio.get_running_loop()
        conn = _Connection(loop)
        try:
            await _with_timeout(
                loop.create_connection(
                    (lambda: tlsreads.BufferedReads(conn)) if tls else (lambda: conn),
                    hostname,
                    port,
                    ssl=tls,
                    server_hostname=hostname if tls else None,
                ),
                timeout,
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {hostname}:{port} timed out", request=request) from None
        except (OSError, ssl.SSLError) as e:
            raise httpx.ConnectError(str(e) or type(e).__name__, request=request) from e
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
            conn.transport.write(b"".join(lines))
        else:
            conn.transport.write(b"".join(lines))
            async for part in stream:  # type: ignore[union-attr]
                if part:
                    conn.transport.write(_chunk(part) if chunked else part)
            if chunked:
                conn.transport.write(b"0\r\n\r\n")
        if not conn.transport.get_write_buffer_size():
            return  # all handed to the socket: nothing to wait for (a broken connection shows on the read)
        try:
            await _with_timeout(conn.drain(), timeout)
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
        msg = conn.msg
        assert msg is not None
        try:
            await conn.wait(_WANT_HEAD, timeout)
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
        conn.end()
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
                await asyncio.wait_for(conn.wait_closed(), 1.0)


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
        "size",
        "status",
    )

    def __init__(self, head_only: bool) -> None:
        self.parser: Any = httptools.HttpResponseParser(self)
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
        self.size = 0
        """The length of `body`."""

    def release(self) -> None:
        """Drop the parser, once the connection reads no more into this message: its callbacks are this
        message's methods, a reference cycle that would otherwise wait for the cyclic collector."""
        self.parser = None

    def take(self) -> bytes:
        """The body bytes not yet handed on."""
        body = self.body
        data = b"".join(body) if len(body) != 1 else body[0]
        body.clear()
        self.size = 0
        return data

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
            self.size += len(data)

    def on_message_complete(self) -> None:
        """The end of a response."""
        if self.interim:
            self.interim = False
        elif not self.complete:
            self.complete = True
            self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
        else:
            self.extra = True


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
                yield msg.take()
            if msg.complete:
                return
            try:
                await conn.wait(_WANT_BODY, self._timeout)
            except TimeoutError:
                raise httpx.ReadTimeout("reading the response timed out", request=self._request) from None

    def whole(self) -> bytes | None:
        """The whole body if it came with the head and is not content-encoded (its connection is given back
        now), else None: then it is read by iterating."""
        msg = self._msg
        if self._conn is None or not msg.complete or msg.encoded:
            return None
        self._finish(msg.reusable)
        return msg.take()

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
