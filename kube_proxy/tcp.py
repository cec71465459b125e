"""TCP listeners of the userspace proxy: accept, connect to an endpoint, copy bytes both ways.

Each accepted connection gets a connection to an endpoint chosen by the listener's `Balancer`; an
endpoint that refuses or does not answer within the dial timeout (upstream's 250 ms, 500 ms, 1 s,
2 s, then 2 s) is skipped and the next one tried. When none can be reached the client's connection
is reset. Bytes are copied by two `asyncio.Protocol`s, each writing what it receives into the
other's transport; when a transport's write buffer passes its high-water mark the other side stops
reading until it drains (flow control). An EOF one way is passed on as a half-close (`write_eof`)
and the connection pair ends once both ways have ended. Closing a listener stops new connections
only: accepted ones run on until either end closes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

from prometheus_client import Counter

from kube_proxy.balancer import Balancer
from kube_proxy.metrics import ServiceStats
from kube_proxy.plan import ListenerKey, Route
from kube_proxy.sockets import bind_socket

__all__ = ["DIAL_TIMEOUTS", "TcpListener"]

log = logging.getLogger("kube_proxy.tcp")

DIAL_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)  # upstream userspace endpointDialTimeout; the last repeats
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024
_LINGER_RESET = struct.pack("ii", 1, 0)


class _Side(asyncio.Protocol):
    """One end of a proxied connection: what it receives is written to the other end.

    Until the two ends are joined, what arrives is held (uvloop starts reading right after
    `connection_made` even when the protocol paused there) and reading is paused."""

    __slots__ = ("closed", "counter", "eof", "held", "peer", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.counter: Counter | None = None  # bytes arriving on this side
        self.held: list[bytes] | None = None
        self.eof = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None:  # not joined yet
            if self.held is None:
                self.held = []
            self.held.append(data)
            self.transport.pause_reading()  # type: ignore[union-attr]
        elif not peer.closed:
            peer.transport.write(data)  # type: ignore[union-attr]
            self.counter.inc(len(data))  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None:
            return True  # passed on when joined
        if peer.closed:
            return False
        if peer.eof:  # both ways are done
            peer.transport.close()  # type: ignore[union-attr]
            return False
        peer.transport.write_eof()  # type: ignore[union-attr]
        return True  # keep our transport open: the other way may still carry data

    def pause_writing(self) -> None:
        peer = self.peer
        if peer is not None and not peer.closed:
            peer.transport.pause_reading()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        peer = self.peer
        if peer is not None and not peer.closed and not peer.transport.is_closing():  # type: ignore[union-attr]
            peer.transport.resume_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        peer = self.peer
        if peer is not None and not peer.closed:
            if exc is None:
                peer.transport.close()  # type: ignore[union-attr]  # flushes what is buffered first
            else:
                peer.transport.abort()  # type: ignore[union-attr]
        self.peer = None

    def flush_held(self, counter: Counter) -> None:
        """Join time: pass on what arrived before the other end was there."""
        self.counter = counter
        held, self.held = self.held, None
        peer = self.peer
        assert peer is not None
        for data in held or ():
            peer.transport.write(data)  # type: ignore[union-attr]
            counter.inc(len(data))


class _Backend(_Side):
    """The end connected to the endpoint; it owns the pair's place in the active-connections gauge."""

    __slots__ = ("stats",)

    def __init__(self) -> None:
        super().__init__()
        self.stats: ServiceStats | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # type: ignore[attr-defined]  # until joined (asyncio honours it; uvloop may not)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stats is not None:
            self.stats.active.dec()
            self.stats = None
        super().connection_lost(exc)


class _Client(_Side):
    """The accepted end: connects to an endpoint, then copies."""

    __slots__ = ("listener", "task")

    def __init__(self, listener: TcpListener) -> None:
        super().__init__()
        self.listener = listener
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # type: ignore[attr-defined]  # nothing to send it to yet
        self.task = asyncio.get_running_loop().create_task(self._connect())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        super().connection_lost(exc)

    async def _connect(self) -> None:
        listener = self.listener
        balancer, stats = listener.balancer, listener.stats
        transport = self.transport
        assert transport is not None
        peername = transport.get_extra_info("peername")
        client_ip = peername[0] if peername else ""
        loop = asyncio.get_running_loop()
        for attempt, endpoint in enumerate(balancer.order(client_ip)):
            backend = _Backend()
            try:
                async with asyncio.timeout(DIAL_TIMEOUTS[min(attempt, len(DIAL_TIMEOUTS) - 1)]):
                    await loop.create_connection(lambda b=backend: b, endpoint.ip, endpoint.port)
            except (OSError, TimeoutError) as e:
                balancer.failed(endpoint)
                stats.failures.inc()
                log.debug("%s: endpoint %s:%s failed: %r", listener.route.ref, endpoint.ip, endpoint.port, e)
                continue
            if self.closed:  # the client went away while we connected
                backend.transport.close()  # type: ignore[union-attr]
                return
            balancer.connected(client_ip, endpoint)
            self._join(backend, stats)
            return
        stats.rejected.inc()
        log.debug("%s: no endpoint reachable; resetting %s", listener.route.ref, peername)
        sock = transport.get_extra_info("socket")
        try:
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
        transport.abort()

    def _join(self, backend: _Backend, stats: ServiceStats) -> None:
        stats.connections.inc()
        self.peer, backend.peer = backend, self
        self.flush_held(stats.bytes_in)
        backend.flush_held(stats.bytes_out)
        client_t, backend_t = self.transport, backend.transport
        assert client_t is not None and backend_t is not None
        if backend.closed:  # the endpoint answered and hung up before we got here
            self.peer = None
            client_t.close()
            return
        stats.active.inc()
        backend.stats = stats
        if self.eof and backend.eof:
            client_t.close()
            backend_t.close()
            return
        if self.eof:
            backend_t.write_eof()
        else:
            client_t.resume_reading()
        if backend.eof:
            client_t.write_eof()
        else:
            backend_t.resume_reading()


class TcpListener:
    """A TCP listening socket for one (ip, port) forwarding to the current route's endpoints."""

    def __init__(self, key: ListenerKey, route: Route, balancer: Balancer, stats: ServiceStats) -> None:
        self.key = key
        self.route = route
        self.balancer = balancer
        self.stats = stats
        self._server: asyncio.AbstractServer | None = None

    def set_route(self, route: Route, balancer: Balancer, stats: ServiceStats) -> None:
        """Send new connections by this route (connections already open are left alone)."""
        self.route, self.balancer, self.stats = route, balancer, stats

    async def open(self, backlog: int = socket.SOMAXCONN) -> None:
        """Bind and start accepting (OSError when the address cannot be bound)."""
        sock = bind_socket(self.key, self.route.reuse_port)
        try:
            self._server = await asyncio.get_running_loop().create_server(
                lambda: _Client(self), sock=sock, backlog=backlog
            )
        except BaseException:
            sock.close()
            raise

    def close(self) -> None:
        """Stop accepting; accepted connections are not touched."""
        if self._server is not None:
            self._server.close()
            self._server = None
