"""TCP listeners of the userspace proxy: accept, connect to an endpoint, copy bytes both ways.

Each accepted connection gets a connection to an endpoint chosen by the listener's `Balancer`; an
endpoint that refuses or does not answer within the dial timeout is skipped and the next one tried.
As upstream's userspace proxy, there are at least four attempts (every endpoint at least once, in
turn) with the dial timeouts 250 ms, 500 ms, 1 s, 2 s, 2 s...; when all fail the client's
connection is reset. A dial timeout is only acted on after the event loop has polled for I/O past
the deadline, so a stalled loop does not turn a connection that completed into a timeout.

Bytes are copied by two protocols, each writing what it receives into the other's transport; when
a transport's write buffer passes its high-water mark the other side stops reading until it drains
(flow control). An EOF one way is passed on as a half-close (`write_eof`) and the
pair ends once both ways have ended (or either end resets). Closing a listener stops new
connections only: accepted ones run on until either end closes.

The protocols are `BufferedProtocol`s reading into one scratch buffer shared by every connection of
the process (callbacks run one at a time on the event loop). A chunk is written to the other
transport straight from it; when that transport could not send it all and keeps a view of the
scratch buffer in its queue, the scratch buffer is handed over to it and a new one allocated. So a
chunk costs no copy in Python, and a connection costs no buffer of its own.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

from kube_proxy.balancer import Balancer
from kube_proxy.metrics import ServiceStats
from kube_proxy.plan import ListenerKey, Route
from kube_proxy.sockets import bind_socket, update_steering

__all__ = ["DIAL_TIMEOUTS", "TcpListener"]

log = logging.getLogger("kube_proxy.tcp")

DIAL_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)  # upstream userspace endpointDialTimeout; the last repeats
MIN_ATTEMPTS = len(DIAL_TIMEOUTS)
SWEEP_INTERVAL = 0.05  # how often connects past their dial timeout are cancelled
SCRATCH_SIZE = 1024 * 1024
HOLD_LIMIT = 256 * 1024  # bytes kept for an endpoint still being connected before reading pauses
HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1024 * 1024
_LINGER_RESET = struct.pack("ii", 1, 0)

_scratch = memoryview(bytearray(SCRATCH_SIZE))


class _Side(asyncio.BufferedProtocol):
    """One end of a proxied connection: what it receives is written to the other end.

    Until the two ends are joined, what arrives is kept (uvloop starts reading right after
    `connection_made` even when the protocol paused there)."""

    __slots__ = ("closed", "eof", "held", "held_size", "is_client", "peer", "stats", "transport")

    def __init__(self, stats: ServiceStats, is_client: bool) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.stats = stats
        self.is_client = is_client  # bytes arriving here count as "in" (client to endpoint)
        self.held: list[bytes] | None = None
        self.held_size = 0
        self.eof = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)  # type: ignore[attr-defined]

    def get_buffer(self, sizehint: int) -> memoryview:
        return _scratch

    def buffer_updated(self, nbytes: int) -> None:
        global _scratch
        peer = self.peer
        if peer is None:  # not joined yet
            if self.held is None:
                self.held = []
            self.held.append(bytes(_scratch[:nbytes]))
            self.held_size += nbytes
            if self.held_size > HOLD_LIMIT:
                self.transport.pause_reading()  # type: ignore[union-attr]
            return
        if peer.closed:
            return
        out = peer.transport
        out.write(_scratch[:nbytes])  # type: ignore[union-attr]
        if out.get_write_buffer_size():  # type: ignore[union-attr]
            _scratch = memoryview(bytearray(SCRATCH_SIZE))  # the transport's queue holds the old one
        if self.is_client:
            self.stats.bytes_in += nbytes
        else:
            self.stats.bytes_out += nbytes

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
        if peer is not None and not peer.closed:
            peer.transport.resume_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        peer = self.peer
        if peer is not None:
            self.peer = None
            if not self.is_client:
                self.stats.active -= 1  # the endpoint side is joined exactly once
            if not peer.closed:
                if exc is None:
                    peer.transport.close()  # type: ignore[union-attr]  # flushes what is buffered first
                else:
                    peer.transport.abort()  # type: ignore[union-attr]

    def pass_held(self) -> None:
        """Join time: pass on what arrived before the other end was there."""
        held, self.held = self.held, None
        if held:
            out = self.peer.transport  # type: ignore[union-attr]
            for data in held:
                out.write(data)  # type: ignore[union-attr]
            if self.is_client:
                self.stats.bytes_in += self.held_size
            else:
                self.stats.bytes_out += self.held_size
            if self.held_size > HOLD_LIMIT:
                self.transport.resume_reading()  # type: ignore[union-attr]
        self.held_size = 0


class _Client(_Side):
    """The accepted end: connects to an endpoint, then copies."""

    __slots__ = ("deadline", "expiring", "listener", "task", "timed_out")

    def __init__(self, listener: TcpListener) -> None:
        super().__init__(listener.stats, True)
        self.listener = listener
        self.task: asyncio.Task[None] | None = None
        self.deadline = 0.0
        self.expiring = False
        self.timed_out = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.task = asyncio.get_running_loop().create_task(self._connect())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        super().connection_lost(exc)

    async def _connect(self) -> None:
        listener = self.listener
        balancer, stats = listener.balancer, self.stats
        transport = self.transport
        assert transport is not None and self.task is not None
        client_ip = ""
        if balancer.affinity_timeout is not None:
            peername = transport.get_extra_info("peername")
            client_ip = peername[0] if peername else ""
        loop = asyncio.get_running_loop()
        order = balancer.order(client_ip)
        for attempt in range(max(MIN_ATTEMPTS, len(order)) if order else 0):
            endpoint = order[attempt % len(order)]
            backend = _Side(stats, False)
            self.deadline = loop.time() + DIAL_TIMEOUTS[min(attempt, len(DIAL_TIMEOUTS) - 1)]
            self.expiring = False
            listener.dialing(self)
            try:
                await loop.create_connection(lambda b=backend: b, endpoint.ip, endpoint.port)
            except asyncio.CancelledError:
                if not self.timed_out:
                    raise  # the client went away
                self.timed_out = False
                self.task.uncancel()
                if backend.transport is not None:  # connected just as the timeout hit
                    backend.transport.close()
                error: BaseException = TimeoutError("dial timeout")
            except OSError as e:
                error = e
            else:
                listener.dialed(self)
                if self.closed:  # the client went away as the connection completed
                    backend.transport.close()  # type: ignore[union-attr]
                    return
                balancer.connected(client_ip, endpoint)
                self._join(backend)
                return
            listener.dialed(self)
            balancer.failed(endpoint)
            stats.failures += 1
            log.debug("%s: endpoint %s:%s failed: %r", listener.route.ref, endpoint.ip, endpoint.port, error)
        stats.rejected += 1
        log.debug("%s: no endpoint reachable; resetting the client", listener.route.ref)
        sock = transport.get_extra_info("socket")
        try:
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
        transport.abort()

    def _join(self, backend: _Side) -> None:
        stats = self.stats
        stats.connections += 1
        self.peer, backend.peer = backend, self
        self.pass_held()
        backend.pass_held()
        client_t, backend_t = self.transport, backend.transport
        assert client_t is not None and backend_t is not None
        if backend.closed:  # the endpoint answered and hung up before we got here
            self.peer = None
            client_t.close()
            return
        stats.active += 1
        if self.eof and backend.eof:
            client_t.close()
            backend_t.close()
        elif self.eof:
            backend_t.write_eof()
        elif backend.eof:
            client_t.write_eof()


class TcpListener:
    """A TCP listening socket for one (ip, port) forwarding to the current route's endpoints."""

    def __init__(self, key: ListenerKey, route: Route, balancer: Balancer, stats: ServiceStats) -> None:
        self.key = key
        self.route = route
        self.balancer = balancer
        self.stats = stats
        self._server: asyncio.AbstractServer | None = None
        self._sock: socket.socket | None = None
        self._steered: bool | None = None
        self._dialing: set[_Client] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def set_route(self, route: Route, balancer: Balancer, stats: ServiceStats) -> None:
        """Send new connections by this route (connections already open are left alone)."""
        self.route, self.balancer, self.stats = route, balancer, stats
        if self._sock is not None:
            self._steered = update_steering(self._sock, route, self._steered)

    def dialing(self, client: _Client) -> None:
        """`client` is connecting to an endpoint until `client.deadline`."""
        self._dialing.add(client)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self._sweep)

    def dialed(self, client: _Client) -> None:
        """`client`'s connection attempt ended."""
        self._dialing.discard(client)

    def _sweep(self) -> None:
        # one timer for every attempt in flight rather than a timer per attempt; an attempt past its
        # deadline is cancelled at the next sweep, so that the loop polls for I/O in between
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        for client in [c for c in self._dialing if c.deadline <= now]:
            if not client.expiring:
                client.expiring = True
                continue
            self._dialing.discard(client)
            if client.task is not None and not client.task.done():
                client.timed_out = True
                client.task.cancel()
        if self._dialing:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self._sweep)

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
        self._sock = sock
        self._steered = update_steering(sock, self.route, None)  # now that it listens, it is in its group

    def close(self) -> None:
        """Stop accepting; accepted connections are not touched (their connects still time out)."""
        if self._server is not None:
            self._server.close()
            self._server = None
            self._sock = None
