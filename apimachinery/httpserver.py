"""The HTTP/1.1 connections of the apiserver and the kubelets: header size and read-time bounds, and
connection budgets.

uvicorn runs the servers (sockets, TLS, signals, graceful shutdown, the Date header), but each connection is
this module's protocol: httptools parses, as in uvicorn's own, and the request's ASGI calls are
`apimachinery/httpcycle.py`'s. It does what uvicorn's httptools protocol does (keep-alive, pipelining,
100-continue, the WebSocket hand-over, 400 on unparsable requests; tests/unit/test_http_protocol.py holds its
bytes equal to uvicorn's), hands a non-WebSocket upgrade (SPDY) to the app (`apimachinery/upgrade.py`), adds
the ASGI TLS extension on a TLS listener, and has what kube-apiserver's Go http.Server has and uvicorn lacks:
- request headers (request line included) bounded to `max_header_bytes` (Go's MaxHeaderBytes, 1 MiB):
  past it the client gets `431 Request Header Fields Too Large` and the connection is closed, having
  buffered at most the limit plus one read;
- headers that do not arrive within `header_timeout` seconds of the connection opening or of the first
  bytes of a later request (Go's ReadHeaderTimeout, 32 s upstream) close the connection, as Go does, so a
  slowloris client cannot hold one forever (a connection opened and left silent is closed the same way);
- a kept-alive connection waits `idle_timeout` seconds for its next request (Go's IdleTimeout, 90 s
  upstream; uvicorn's keep-alive timer), and only that request's first bytes start its header clock, as
  Go's server peeks for them before reading the next request;
- open connections bounded in total and per client address: one over the bound is answered at once
  with 503 (total) or 429 (per client) and closed, so one greedy host cannot take every socket.
The apiserver bounds request bodies in `apiserver/limits.py`; what arrives of a body after it was refused is read
and dropped (never kept) up to DISCARD_LIMIT, then the connection is closed.

It replaced uvicorn's protocol and the three subclasses that added the above to it (bench/README.md, "Session
22"): a request cost some 40,000 instructions less, most of them uvicorn's per-request machinery (an
`asyncio.Event` per request, a regular expression per response header name, the subclasses' calls). The
kubelets' servers moved onto it from uvicorn's protocol in session 23, under `kubelet/auth.py`'s limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
import logging
import socket
import urllib.parse
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http import flow_control
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, FlowControl
from uvicorn.protocols.utils import get_local_addr, get_remote_addr

from apimachinery.errors import StatusError, service_unavailable, too_many_requests
from apimachinery.httpcycle import STATUS_LINE, ResponseCycle
from apimachinery.tlsreads import thread_buffer
from apimachinery.tlsserving import IDLE_TIMEOUT, TLSWebSocketProtocol, tls_extension
from apimachinery.upgrade import UPGRADE_EXTENSION, UpgradedConnection

__all__ = [
    "BufferedGuardedHttpProtocol",
    "ConnectionBudget",
    "GuardedHttpProtocol",
    "ServingLimits",
    "bind_socket",
    "protocol_factory",
    "raise_open_files_limit",
    "uvicorn_options",
]


@dataclass(frozen=True)
class ServingLimits:
    """Bounds on what one request or client may hold (the apiserver's flags; the kubelets' are fixed)."""

    max_request_body_bytes: int = 3 * 1024 * 1024  # upstream's MaxRequestBodyBytes
    request_body_timeout: float = 60.0  # seconds for a whole body to arrive
    max_header_bytes: int = 1 << 20  # upstream's MaxHeaderBytes (Go's http.DefaultMaxHeaderBytes)
    header_timeout: float = 32.0  # upstream's ReadHeaderTimeout
    idle_timeout: float = IDLE_TIMEOUT  # upstream's IdleTimeout: a kept-alive connection's wait for its next request
    max_open_connections: int = 10_000  # 0: no bound
    max_connections_per_client: int = 1_000  # per client IP address; 0: no bound


# What is read and dropped of a body answered before it arrived (a 413) before the connection is closed.
DISCARD_LIMIT = 16 * 1024 * 1024
LINGER_SECONDS = 0.5  # Go's rstAvoidanceDelay

log = logging.getLogger("uvicorn.error")


class ConnectionBudget:
    """Open connections, in total and per client address."""

    def __init__(self, max_total: int, max_per_client: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.total = 0
        self.per_client: Counter[str] = Counter()

    def admit(self, client: str) -> StatusError | None:
        """Count a new connection from `client`, or say why it is refused."""
        if self.max_total and self.total >= self.max_total:
            return service_unavailable(f"too many open connections (limit {self.max_total})")
        if self.max_per_client and self.per_client[client] >= self.max_per_client:
            return too_many_requests(f"too many open connections from {client} (limit {self.max_per_client})")
        self.total += 1
        self.per_client[client] += 1
        return None

    def release(self, client: str) -> None:
        """Forget a closed connection."""
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]


_REASONS = {408: b"Request Timeout", 429: b"Too Many Requests", 431: b"Request Header Fields Too Large"}


def _raw_response(code: int, body: bytes, retry_after: int | None = None) -> bytes:
    reason = _REASONS.get(code, b"Service Unavailable")
    head = [
        b"HTTP/1.1 %d %s" % (code, reason),
        b"content-type: application/json",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    if retry_after is not None:
        head.append(b"retry-after: %d" % retry_after)
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _header_too_large(limit: int) -> bytes:
    status = StatusError(431, "RequestHeaderFieldsTooLarge", f"Request header fields too large: limit is {limit}")
    return _raw_response(431, orjson.dumps(status.to_status()))


class GuardedHttpProtocol(asyncio.BaseProtocol):
    """One HTTP/1.1 connection of the apiserver or a kubelet: uvicorn's httptools protocol (the same requests,
    scopes, bytes and closes, kept alive, pipelined, upgraded to WebSocket) with header bounds, a header read
    timeout, connection budgets, the non-WebSocket upgrade handed to the app (`apimachinery/upgrade.py`) and,
    on TLS, the ASGI TLS extension (the client certificate) in every request's scope."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ServingLimits,
        budget: ConnectionBudget,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.parser = httptools.HttpRequestParser(self)
        # answer the first of pipelined requests even when the client closes after sending them all
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.ws_protocol_class = config.ws_protocol_class
        self.root_path: str = config.root_path
        self.limit_concurrency: int | None = config.limit_concurrency
        self.app_state = app_state
        self.timeout_keep_alive: float = config.timeout_keep_alive
        self.server_state = server_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self._asgi = {"version": config.asgi_version, "spec_version": "2.3"}
        self._fresh_context = bool(getattr(config, "reset_contextvars", False))
        # the connection
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: FlowControl = None  # type: ignore[assignment]
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        self.pipeline: deque[tuple[ResponseCycle, Any]] = deque()
        self._tls: dict[str, Any] | None = None
        self._upgrade: UpgradedConnection | None = None
        # the request being read
        self.url = b""
        self.scope: dict[str, Any] = None  # type: ignore[assignment]
        self.headers: list[tuple[bytes, bytes]] = []
        self.expect_100_continue = False
        self.cycle: ResponseCycle | None = None
        # the bounds
        self._limits = limits
        self._budget = budget
        self._admitted: str | None = None
        self._reading_head = True
        self._head_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_deadline: float | None = None  # loop time by which the next request's headers must be in
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_deadline: float | None = None  # loop time by which an idle connection's next request must start
        self._discarded = 0
        self._lingering = False

    # --- the connection ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection against its client's budget, or refuse it at once."""
        self.connections.add(self)
        self.transport = transport
        self.flow = FlowControl(transport)
        self.server = get_local_addr(transport)
        self.client = get_remote_addr(transport)
        self._tls = tls_extension(transport)
        self.scheme = "https" if self._tls is not None else "http"
        client = self.client[0] if self.client else ""
        refused = self._budget.admit(client)
        if refused is not None:
            retry = (refused.details or {}).get("retryAfterSeconds")
            self._refuse(_raw_response(refused.code, orjson.dumps(refused.to_status()), retry))
            return
        self._admitted = client
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Give the connection's place back; the request being answered sees the client gone."""
        self._release()
        if self._upgrade is not None:
            self._upgrade._eof()
        self.connections.discard(self)
        cycle = self.cycle
        if cycle is not None:
            if not cycle.response_complete:
                cycle.disconnected = True
            cycle.notify()
        if self.flow is not None:
            self.flow.resume_writing()
        if exc is None:
            self.transport.close()
        self.parser = None  # type: ignore[assignment]

    def eof_received(self) -> None:
        """The client's end of an upgraded connection: its reader sees EOF (HTTP closes on `connection_lost`)."""
        if self._upgrade is not None:
            self._upgrade._eof()

    def pause_writing(self) -> None:
        """The transport's buffer is full: responses wait."""
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        """The transport's buffer has drained."""
        self.flow.resume_writing()

    def shutdown(self) -> None:
        """The server stops: close an idle connection now, a busy one after its response."""
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()
        else:
            self.cycle.keep_alive = False

    def _release(self) -> None:
        self._cancel_header_timer()
        self._idle_deadline = None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._admitted is not None:
            self._budget.release(self._admitted)
            self._admitted = None

    def _refuse(self, response: bytes) -> None:
        """Answer and close, lingering as Go does: half-close, drop what still arrives for a moment, then close.

        Closing at once with unread input makes the kernel send a reset, which destroys the answer before
        a client still sending can read it.
        """
        self._cancel_header_timer()
        if self.transport.is_closing() or self._lingering:
            return
        self._lingering = True
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self._close)

    def _close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _send_400(self, msg: str) -> None:
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content += (name, b": ", value, b"\r\n")
        content += (
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(msg),
            b"connection: close\r\n\r\n",
            msg.encode("ascii"),
        )
        self.transport.write(b"".join(content))
        self.transport.close()

    # --- reading -----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        """Feed the parser, refusing a request whose headers pass the size bound; after an upgrade (not
        WebSocket) the bytes are the upgraded connection's."""
        if self._upgrade is not None:
            self._upgrade._feed(data)
            return
        if self.transport.is_closing():
            return
        if self._lingering:
            self._discarded += len(data)
            if self._discarded > DISCARD_LIMIT:
                self._close()
            return
        self._idle_deadline = None  # bytes arrived: not idle
        if self._reading_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            log.warning(msg)
            self._send_400(msg)
            return
        except httptools.HttpParserUpgrade as e:
            if self._upgrade is not None:
                self._upgrade._feed_after_head(data, e)
            elif self._websocket_wanted():
                self.handle_websocket_upgrade()
            else:
                log.warning("Unsupported upgrade request.")
            return
        if self._reading_head and self._head_bytes > self._limits.max_header_bytes:
            self._refuse(_header_too_large(self._limits.max_header_bytes))

    def _upgrade_token(self) -> bytes | None:
        connection: list[bytes] = []
        upgrade = None
        for name, value in self.headers:
            if name == b"connection":
                connection = [token.lower().strip() for token in value.split(b",")]
            if name == b"upgrade":
                upgrade = value.lower()
        return upgrade if b"upgrade" in connection else None

    def _websocket_wanted(self) -> bool:
        return self.ws_protocol_class is not None and self._upgrade_token() == b"websocket"

    def handle_websocket_upgrade(self) -> None:
        """A WebSocket (exec) leaves this protocol for uvicorn's WebSocket one, and stops counting here."""
        self._release()
        self.connections.discard(self)
        output = [self.scope["method"].encode(), b" ", self.url, b" HTTP/1.1\r\n"]
        for name, value in self.scope["headers"]:
            output += (name, b": ", value, b"\r\n")
        output.append(b"\r\n")
        protocol = self.ws_protocol_class(config=self.config, server_state=self.server_state, app_state=self.app_state)
        protocol.connection_made(self.transport)
        self.transport.set_protocol(protocol)
        protocol.data_received(b"".join(output))

    def on_upgraded(self) -> None:
        """A SPDY upgrade leaves HTTP: no header clock, and it stops counting here (as a WebSocket)."""
        self._release()

    # --- the parser's callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        """A new request starts: its headers are being read, against the header clock (which runs from the
        opening for a connection's first request, and from its first bytes for a kept connection's next)."""
        self._reading_head = True
        self._discarded = 0
        if self._header_deadline is None:
            self._arm_header_timer()
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = {
            "type": "http",
            "asgi": self._asgi,
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}

    def on_url(self, url: bytes) -> None:
        """Part of the request target."""
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        """One request header (llhttp keeps trailing whitespace, which RFC 9110 excludes from the value)."""
        name = name.lower()
        value = value.rstrip(b" \t")
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        """Headers in: stop the header clock and start the app (431 for a header block over the bound)."""
        self._reading_head = False
        self._head_bytes = 0
        self._header_deadline = None
        parser = self.parser
        scope = self.scope
        headers = self.headers
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        upgrading = parser.should_upgrade()
        if upgrading and self._websocket_wanted():
            return  # the WebSocket protocol takes the connection once the parser stops
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path if self.root_path else raw_path
        scope["query_string"] = parsed_url.query or b""

        size = len(self.url) + sum(map(len, itertools.chain.from_iterable(headers))) + 4 * len(headers)
        if size > self._limits.max_header_bytes:
            app: Any = functools.partial(_answer_431, self._limits.max_header_bytes)
        elif self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency or len(self.tasks) >= self.limit_concurrency
        ):
            log.warning("Exceeded concurrency limit.")
            app = flow_control.service_unavailable
        else:
            app = self.app
        previous = self.cycle
        cycle = self.cycle = ResponseCycle(
            scope,
            self.transport,
            self.flow,
            self.server_state.default_headers,
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        if upgrading and self._upgrade_token():
            # an upgrade other than WebSocket (SPDY): the app may take the connection (apimachinery/upgrade.py)
            offered = next((v for n, v in headers if n == b"upgrade"), b"")
            conn = self._upgrade = UpgradedConnection(self, offered.decode("latin-1"))
            scope.setdefault("extensions", {})[UPGRADE_EXTENSION] = conn
            cycle.keep_alive = False
            cycle.upgrade = conn
        if previous is None or previous.response_complete:
            self._start_asgi_task(cycle, app)
        else:  # pipelined: after the response before it
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))

    def _start_asgi_task(self, cycle: ResponseCycle, app: Any) -> None:
        if self._fresh_context:
            task = self.loop.create_task(cycle.run(app), context=contextvars.Context())
        else:
            task = self.loop.create_task(cycle.run(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def on_body(self, body: bytes) -> None:
        """Body bytes; those of a request already answered (a refused body) are dropped, up to a bound."""
        cycle = self.cycle
        if cycle is None or (self.parser.should_upgrade() and self._websocket_wanted()):
            return
        if cycle.response_complete:
            self._discarded += len(body)
            if self._discarded > DISCARD_LIMIT and not self.transport.is_closing():
                self.transport.close()
            return
        cycle.body += body
        if len(cycle.body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.notify()

    def on_message_complete(self) -> None:
        """The request is in whole; if it was already answered, the connection waits for the next one."""
        cycle = self.cycle
        if cycle is None or (self.parser.should_upgrade() and self._websocket_wanted()):
            return
        if not cycle.response_complete:
            cycle.more_body = False
            cycle.notify()
        elif not self.transport.is_closing():
            self._reading_head = True
            self._head_bytes = 0
            self._header_deadline = None
            # the dropped body's bytes stopped the idle clock (any data does): it starts again here
            self._start_idle_clock()

    def on_response_complete(self) -> None:
        """A response is out: the connection waits for the next request (the idle clock), whose first bytes
        start its header clock (`on_message_begin`).

        If the request's body is still arriving (it was refused unread), what is left of it is read and
        dropped first, within DISCARD_LIMIT bytes and the header timeout, so that a client sending its
        whole body before reading the answer still gets it (as Go's server does for small bodies).
        """
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_deadline = None
        self.flow.resume_reading()
        if self.pipeline:
            pipelined, app = self.pipeline.pop()
            self._start_asgi_task(pipelined, app)
        else:
            self._start_idle_clock()
        cycle = self.cycle
        if self.transport.is_closing() or (cycle is not None and not cycle.response_complete):
            return  # closing, or a pipelined request (headers in) has just started
        if cycle is not None and cycle.more_body:
            self._arm_header_timer()
            return  # the rest of the body first: on_message_complete starts the next head
        self._reading_head = True
        self._head_bytes = 0

    # --- idle timeout (uvicorn's keep-alive timeout) ---------------------------------------------
    # uvicorn arms a timer after every response and cancels it when the next request's bytes arrive; here, as
    # for the header clock below, the connection keeps one timer that reads the deadline when it fires.
    def _start_idle_clock(self) -> None:
        self._idle_deadline = self.loop.time() + self.timeout_keep_alive
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_at(self._idle_deadline, self._idle_timer_fired)

    def _idle_timer_fired(self) -> None:
        self._idle_timer = None
        deadline = self._idle_deadline
        if deadline is None:
            return  # not idle now: the next response starts a timer again
        if self.loop.time() < deadline:
            self._idle_timer = self.loop.call_at(deadline, self._idle_timer_fired)  # idle again since
            return
        self._idle_deadline = None
        self.timeout_keep_alive_handler()

    def timeout_keep_alive_handler(self) -> None:
        """The connection stayed idle for the idle timeout: close it."""
        if not self.transport.is_closing():
            self.transport.close()

    # --- header read timeout ------------------------------------------------------------------
    # One timer per connection, not one per request: arming and disarming move a deadline the timer reads
    # when it fires (and re-arms itself for a later one), so a request costs no timer of its own.
    def _arm_header_timer(self) -> None:
        if self._limits.header_timeout <= 0:
            return
        self._header_deadline = self.loop.time() + self._limits.header_timeout
        if self._header_timer is None:
            self._header_timer = self.loop.call_at(self._header_deadline, self._header_timer_fired)

    def _cancel_header_timer(self) -> None:
        self._header_deadline = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timer_fired(self) -> None:
        self._header_timer = None
        deadline = self._header_deadline
        if deadline is None:
            return  # disarmed since: the next arm starts a timer again
        if self.loop.time() < deadline:
            self._header_timer = self.loop.call_at(deadline, self._header_timer_fired)  # re-armed since
            return
        self._header_deadline = None
        self._header_timed_out()

    def _header_timed_out(self) -> None:
        discarding = self.cycle is not None and self.cycle.response_complete and self.cycle.more_body
        if (self._reading_head or discarding) and not self.transport.is_closing():
            # as Go's server on ReadHeaderTimeout: no answer, the connection is closed
            self.transport.close()


class BufferedGuardedHttpProtocol(GuardedHttpProtocol, asyncio.BufferedProtocol):
    """The protocol for a TLS listener: the transport decrypts each read into one buffer per thread (see
    `apimachinery/tlsreads.py`) instead of a fresh 256 KiB bytes object."""

    _view: memoryview

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Take this thread's read buffer for the connection's reads."""
        self._view = thread_buffer()
        super().connection_made(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        """The thread's read buffer (taken in full, whatever the hint)."""
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        """Hand what was read on: copied out first, so the buffer is free again before the parser runs."""
        self.data_received(bytes(self._view[:nbytes]))


async def _answer_431(limit: int, scope: Any, receive: Any, send: Any) -> None:
    status = StatusError(431, "RequestHeaderFieldsTooLarge", f"Request header fields too large: limit is {limit}")
    body = orjson.dumps(status.to_status())
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 431, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def protocol_factory(limits: ServingLimits, *, tls: bool = False) -> Any:
    """The `http=` protocol class for uvicorn.Config, sharing one connection budget across connections;
    `tls`: the listener serves TLS, whose reads then land in one reused buffer (`apimachinery.tlsreads`)."""
    budget = ConnectionBudget(limits.max_open_connections, limits.max_connections_per_client)
    protocol = BufferedGuardedHttpProtocol if tls else GuardedHttpProtocol
    return functools.partial(protocol, limits=limits, budget=budget)


def uvicorn_options(limits: ServingLimits, *, tls: bool = False) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for a server under these limits (every listener of the apiserver and
    the kubelets); `tls`: the listener serves TLS."""
    return {
        "http": protocol_factory(limits, tls=tls),
        "ws": TLSWebSocketProtocol,  # on plain HTTP too: it accepts kubectl's port-forward subprotocol
        # the client address is the socket's: X-Forwarded-For from a local process is not an identity
        "proxy_headers": False,
        "server_header": False,  # kube-apiserver and the kubelet send none (and each header costs uvicorn a check)
        "timeout_keep_alive": limits.idle_timeout,  # uvicorn's idle timer, between a response and the next request
    }


def raise_open_files_limit() -> None:
    """Lift the soft open-files limit to the hard one (as Go's runtime does), so connection bounds are reachable."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound (not yet listening) to host:port; with `reuse_port` (SO_REUSEPORT, upstream's
    --permit-port-sharing) several apiserver processes bind the same port and the kernel spreads the
    connections over those listening. uvicorn starts listening once the app has started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
