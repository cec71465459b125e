"""UDP listeners of the userspace proxy: one association per client address, relaying both ways.

The first datagram from a client address opens an association: a socket connected to an endpoint
chosen by the listener's `Balancer`. Datagrams from the client go out through it; whatever the
endpoint sends back is relayed to the client from the listener's own socket (so the reply comes
from the service address the client sent to). An association is closed after a quiet spell, as
upstream's userspace proxy did: `--udp-timeout` (2 s here) while a datagram is still waiting for a
reply, so that a slow answer (a DNS query forwarded upstream) still finds its way back; 250 ms
(upstream's default) once everything sent has been answered, so that clients that use a new port
for every query (glibc's resolver) do not pile up sockets.

An endpoint with nothing listening answers with ICMP port unreachable, which a connected UDP socket
reports as ECONNREFUSED: the association then moves to the next endpoint and resends the datagrams
that had no reply yet (a DNS query is not lost to a dead endpoint). Closing a listener closes its
associations too, since replies could no longer be sent from its address.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket

from kube_proxy.balancer import Balancer
from kube_proxy.metrics import ServiceStats
from kube_proxy.plan import Endpoint, ListenerKey, Route
from kube_proxy.sockets import bind_socket, update_steering

__all__ = ["UdpListener"]

log = logging.getLogger("kube_proxy.udp")

MAX_DATAGRAM = 65535
PENDING = 16  # unanswered datagrams kept for a resend to the next endpoint
READ_BATCH = 64  # datagrams read per wake-up before yielding to the loop
ANSWERED_IDLE = 0.25  # seconds an association whose datagrams were all answered stays open
MAX_QUEUED = 1024 * 1024  # bytes of replies queued for clients before further ones are dropped


class _Association:
    """A client address's socket to its endpoint."""

    __slots__ = ("client", "endpoint", "last", "listener", "pending", "sock", "stats", "tried")

    def __init__(self, listener: UdpListener, client: tuple[str, int], endpoint: Endpoint, stats: ServiceStats):
        self.listener = listener
        self.client = client
        self.stats = stats
        self.pending: collections.deque[bytes] = collections.deque(maxlen=PENDING)
        self.tried: set[Endpoint] = set()
        self.last = listener.loop.time()
        self.sock: socket.socket | None = None
        self.endpoint = endpoint
        self._connect(endpoint)

    def _connect(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.tried.add(endpoint)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((endpoint.ip, endpoint.port))
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.listener.loop.add_reader(sock.fileno(), self._readable)

    def _drop_socket(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            self.listener.loop.remove_reader(sock.fileno())
            sock.close()

    def send(self, data: bytes) -> None:
        """Forward a client datagram to the endpoint."""
        self.last = self.listener.loop.time()
        self.pending.append(data)
        try:
            self.sock.send(data)  # type: ignore[union-attr]
        except BlockingIOError:
            return  # the socket buffer is full: UDP may drop
        except ConnectionRefusedError:
            self._failover()
            return
        except OSError as e:
            log.debug("%s: send to %s failed: %r", self.listener.route.ref, self.endpoint, e)
            self.close()
            return
        self.stats.bytes_in += len(data)

    def _readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        transport = self.listener.transport
        for _ in range(READ_BATCH):
            try:
                data = sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except ConnectionRefusedError:
                self._failover()
                return
            except OSError as e:
                log.debug("%s: receive from %s failed: %r", self.listener.route.ref, self.endpoint, e)
                self.close()
                return
            self.pending.clear()
            self.last = self.listener.loop.time()
            if transport is None or transport.is_closing():
                self.close()
                return
            if transport.get_write_buffer_size() > MAX_QUEUED:
                continue  # the client is not reading: drop, as a full socket buffer would
            transport.sendto(data, self.client)
            self.stats.bytes_out += len(data)

    def _failover(self) -> None:
        """The endpoint refused: move to the next one and resend what had no reply."""
        listener = self.listener
        listener.balancer.failed(self.endpoint)
        self.stats.failures += 1
        self._drop_socket()
        nxt = next((ep for ep in listener.balancer.order(self.client[0]) if ep not in self.tried), None)
        if nxt is None:
            self.stats.rejected += 1
            self.close()
            return
        try:
            self._connect(nxt)
        except OSError:
            self.close()
            return
        listener.balancer.connected(self.client[0], nxt)
        for data in list(self.pending):
            try:
                self.sock.send(data)  # type: ignore[union-attr]
            except OSError:
                break

    def close(self) -> None:
        """Forget this client: close the socket and leave the listener's table."""
        if self.sock is not None:
            self._drop_socket()
            self.stats.active -= 1
        self.listener.associations.pop(self.client, None)


class UdpListener(asyncio.DatagramProtocol):
    """A UDP socket for one (ip, port) relaying each client's datagrams to an endpoint and back."""

    def __init__(
        self, key: ListenerKey, route: Route, balancer: Balancer, stats: ServiceStats, idle_timeout: float
    ) -> None:
        self.key = key
        self.route = route
        self.balancer = balancer
        self.stats = stats
        self.idle_timeout = idle_timeout
        self.answered_idle = min(ANSWERED_IDLE, idle_timeout)
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.associations: dict[tuple[str, int], _Association] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._sock: socket.socket | None = None
        self._steered: bool | None = None

    def set_route(self, route: Route, balancer: Balancer, stats: ServiceStats) -> None:
        """Send new client associations by this route (open ones keep their endpoint)."""
        self.route, self.balancer, self.stats = route, balancer, stats
        if self._sock is not None:
            self._steered = update_steering(self._sock, route, self._steered)

    async def open(self) -> None:
        """Bind and start relaying (OSError when the address cannot be bound)."""
        sock = bind_socket(self.key, self.route.reuse_port, socket.SOCK_DGRAM)
        try:
            await self.loop.create_datagram_endpoint(lambda: self, sock=sock)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._steered = update_steering(sock, self.route, None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assoc = self.associations.get(addr)
        if assoc is None:
            assoc = self._associate(addr)
            if assoc is None:
                return
        assoc.send(data)

    def _associate(self, client: tuple[str, int]) -> _Association | None:
        balancer, stats = self.balancer, self.stats
        for endpoint in balancer.order(client[0]):
            try:
                assoc = _Association(self, client, endpoint, stats)
            except OSError as e:
                balancer.failed(endpoint)
                stats.failures += 1
                log.debug("%s: cannot reach %s: %r", self.route.ref, endpoint, e)
                continue
            balancer.connected(client[0], endpoint)
            stats.connections += 1
            stats.active += 1
            self.associations[client] = assoc
            if self._sweeper is None:
                self._sweeper = self.loop.call_later(self.answered_idle / 2, self._sweep)
            return assoc
        stats.rejected += 1
        return None

    def _sweep(self) -> None:
        self._sweeper = None
        now = self.loop.time()
        waiting, answered = now - self.idle_timeout, now - self.answered_idle
        for assoc in [a for a in self.associations.values() if a.last <= (waiting if a.pending else answered)]:
            assoc.close()
        if self.associations:
            self._sweeper = self.loop.call_later(self.answered_idle / 2, self._sweep)

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: %r", self.route.ref, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._close_associations()

    def _close_associations(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for assoc in list(self.associations.values()):
            assoc.close()

    def close(self) -> None:
        """Stop relaying: close the socket and every association."""
        self._sock = None
        if self.transport is not None:
            self.transport.close()
        self._close_associations()
