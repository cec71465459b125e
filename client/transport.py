"""`KeepAliveTransport`: httpx's transport for an API server, HTTP/1.1 keep-alive over asyncio streams.

httpx's default transport (httpcore) re-checks every pooled connection on every request (a `poll()`
per idle connection in `_assign_requests_to_connections`) and writes TLS through anyio's memory
BIO; in the scheduler that was half of its CPU per bound pod. This transport keeps a stack of idle
connections: a request takes the most recently used one whose stream has not seen EOF (asyncio's
protocol notices a server's close as it happens, so no system call is needed to check), or dials a
new one. A response body read to its end gives the connection back; one closed early (a watch the
caller stops) closes it. At most `max_connections` requests are in flight at once; the others wait
for a slot up to the pool timeout (`httpx.PoolTimeout`). Timeouts and errors are httpx's own
(`ConnectTimeout`, `ReadTimeout`, `ConnectError`, `ReadError`, `RemoteProtocolError`, ...), so callers
see what they saw with httpcore. Plain http and https only (no proxies, no HTTP/2).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx

__all__ = ["KeepAliveTransport"]

Origin = tuple[bytes, bytes, int]
"""(scheme, host, port)"""
_HEAD_LIMIT = 1 << 20  # response headers (and chunk-size lines) larger than this are a protocol error
_NO_BODY_STATUS = (204, 304)
_EAGER_BODY = 1 << 20  # a body of known length up to this is read with the head, under one timeout
_IDEMPOTENT = ("GET", "HEAD", "OPTIONS", "TRACE")  # net/http's isReplayable
_CLOSED_IDLE = "Server disconnected without sending a response."


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
            await _with_timeout(self._slots.acquire(), timeouts.get("pool"))
        except TimeoutError:
            raise httpx.PoolTimeout("no connection slot free within the pool timeout", request=request) from None
        try:
            return await self._send(request, timeouts)
        except BaseException:
            self._slots.release()
            raise

    async def _send(self, request: httpx.Request, timeouts: dict[str, float | None]) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port or (443 if url.raw_scheme == b"https" else 80))
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
                asyncio.open_connection(
                    hostname, port, ssl=tls, server_hostname=hostname if tls else None, limit=_HEAD_LIMIT
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
        for name, value in request.headers.raw:
            if name.lower() == b"transfer-encoding" and value.lower() == b"chunked":
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
        try:
            async with asyncio.timeout(timeout):
                try:
                    response, body = await self._read_response(conn, request, origin, timeout)
                except _READ_ERRORS as e:
                    raise _read_error(e, request, first=True) from e
                if body.length is not None and body.length <= _EAGER_BODY:
                    try:
                        body.preread = await conn.reader.readexactly(body.length) if body.length else b""
                    except _READ_ERRORS as e:
                        raise _read_error(e, request) from e
        except TimeoutError:
            raise httpx.ReadTimeout("reading the response timed out", request=request) from None
        return response

    async def _read_response(
        self, conn: _Connection, request: httpx.Request, origin: Origin, timeout: float | None
    ) -> tuple[httpx.Response, _Body]:
        while True:
            head = await conn.reader.readuntil(b"\r\n\r\n")
            status_line, _, rest = head[:-4].partition(b"\r\n")
            try:
                version, code_s, *reason = status_line.split(b" ", 2)
                status = int(code_s)
            except ValueError:
                msg = f"malformed status line {status_line[:80]!r}"
                raise httpx.RemoteProtocolError(msg, request=request) from None
            if not 100 <= status < 200:
                break  # 1xx answers (none asked for) are skipped
        headers = [tuple(line.split(b":", 1)) for line in rest.split(b"\r\n")] if rest else []
        raw_headers = [(k.strip(), v.strip()) for k, v in headers]  # type: ignore[misc]
        keep_alive = version == b"HTTP/1.1"
        length: int | None = None
        chunked = False
        for name, value in raw_headers:
            lname = name.lower()
            if lname == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise httpx.RemoteProtocolError("malformed Content-Length", request=request) from None
            elif lname == b"transfer-encoding":
                chunked = value.lower().endswith(b"chunked")
            elif lname == b"connection":
                tokens = value.lower()
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
        if request.method == "HEAD" or status in _NO_BODY_STATUS:
            length, chunked = 0, False
        body = _Body(self, conn, origin, request, timeout, length, chunked, keep_alive)
        response = httpx.Response(
            status,
            headers=raw_headers,
            stream=body,
            extensions={"http_version": version, "reason_phrase": reason[0] if reason else b""},
        )
        return response, body

    def release(self, conn: _Connection, origin: Origin, reusable: bool) -> None:
        """A response is done with `conn`: keep it for the next request, or close it."""
        self._slots.release()
        stack = self._idle.setdefault(origin, [])
        if reusable and not self._closed and len(stack) < self._max_idle and conn.usable():
            stack.append(conn)
        else:
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


_READ_ERRORS = (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError)


def _read_error(e: Exception, request: httpx.Request, first: bool = False) -> httpx.TransportError:
    """httpx's error for a failed StreamReader read (`first`: of the response's first bytes)."""
    if isinstance(e, asyncio.IncompleteReadError):
        if first and not e.partial:
            return httpx.RemoteProtocolError(_CLOSED_IDLE, request=request)
        return httpx.RemoteProtocolError("the server closed the connection mid-response", request=request)
    if isinstance(e, asyncio.LimitOverrunError):
        return httpx.RemoteProtocolError("response header or chunk line too long", request=request)
    return httpx.ReadError(str(e) or type(e).__name__, request=request)


async def _read(aw: Any, timeout: float | None, request: httpx.Request) -> bytes:
    """Await a StreamReader read, turning its failures into httpx's errors."""
    try:
        return await _with_timeout(aw, timeout)
    except TimeoutError:
        raise httpx.ReadTimeout("reading the response timed out", request=request) from None
    except _READ_ERRORS as e:
        raise _read_error(e, request) from e


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection: by Content-Length, chunked, or to EOF."""

    def __init__(
        self,
        transport: KeepAliveTransport,
        conn: _Connection,
        origin: Origin,
        request: httpx.Request,
        timeout: float | None,
        length: int | None,
        chunked: bool,
        keep_alive: bool,
    ) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._origin = origin
        self._request = request
        self._timeout = timeout
        self.length = length
        self._chunked = chunked
        self._keep_alive = keep_alive
        self.preread: bytes | None = None
        """The whole body, when it was read with the head."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        if self.preread is not None:
            self._finish(self._keep_alive)
            if self.preread:
                yield self.preread
            return
        reader, timeout, request = conn.reader, self._timeout, self._request
        if self._chunked:
            while True:
                line = await _read(reader.readuntil(b"\r\n"), timeout, request)
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise httpx.RemoteProtocolError("malformed chunk size", request=request) from None
                if size == 0:
                    while await _read(reader.readuntil(b"\r\n"), timeout, request) != b"\r\n":
                        pass  # trailers
                    break
                data = await _read(reader.readexactly(size + 2), timeout, request)
                yield data[:-2]
        elif self.length is not None:
            if self.length:
                yield await _read(reader.readexactly(self.length), timeout, request)
        else:
            self._keep_alive = False
            while data := await _read(reader.read(65536), timeout, request):
                yield data
        self._finish(self._keep_alive)

    def _finish(self, reusable: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._transport.release(conn, self._origin, reusable)

    async def aclose(self) -> None:
        """Give the connection back if the body was read to its end, else close it."""
        self._finish(self.preread is not None and self._keep_alive)
