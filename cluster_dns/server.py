"""UDP and TCP listeners in front of a `DnsHandler`.

UDP: datagrams are read in batches straight off the socket and answered inline from the cache when
they can be; otherwise a task takes the full path, with at most `max_pending` such tasks at once
(further queries needing it are dropped, as a busy server drops datagrams; clients retry).
TCP (RFC 7766): length-prefixed messages, several in flight per connection (answered as they
complete), connections closed after `idle_timeout` seconds without a query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from bisect import bisect_left

from cluster_dns.handler import TCP, UDP, DnsHandler
from cluster_dns.metrics import BUCKETS

__all__ = ["DnsServer"]

log = logging.getLogger("cluster_dns.server")

RCVBUF = 4 * 1024 * 1024
MAX_DATAGRAM = 4096


class _UdpReader:
    """Reads datagrams straight off a non-blocking socket, many per wake-up, answering inline.

    An asyncio DatagramProtocol costs a callback and transport bookkeeping per datagram; reading
    the socket in a loop when it is readable (at most `batch` datagrams, so other work still runs)
    and writing answers with `sendto` does the same job with less interpreter time per datagram.
    A reply the kernel will not take at once (full send buffer) is dropped, as UDP allows.
    """

    def __init__(self, sock: socket.socket, handler: DnsHandler, max_pending: int, batch: int = 256) -> None:
        self.sock = sock
        self.handler = handler
        self.max_pending = max_pending
        self.batch = batch
        self.pending: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def on_readable(self) -> None:
        """Answer the datagrams waiting on the socket (at most `batch` of them)."""
        recvfrom, sendto, fast, exact = self.sock.recvfrom, self.sock.sendto, self.handler.fast, self.handler.exact
        clock = time.perf_counter
        for _ in range(self.batch):
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. an ICMP error queued on the socket
                log.debug("UDP receive error: %r", e)
                continue
            start = clock()
            hit = exact.get(data[2:])
            if hit is not None:
                out = data[:2] + hit[0]
                row = hit[1]
                seconds = clock() - start
                row[bisect_left(BUCKETS, seconds)] += 1
                row[-1] += seconds
            else:
                out = fast(data, UDP)
                if out is None:
                    self._spawn(data, addr)
                    continue
            try:
                sendto(out, addr)
            except OSError:
                self.dropped += 1

    def _spawn(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(self.pending) >= self.max_pending:
            self.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._slow(data, addr))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _slow(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            out = await self.handler.answer(data, UDP)
        except Exception:
            log.exception("answering a UDP query from %s failed", addr)
            return
        if out is not None and self.sock.fileno() >= 0:
            try:
                self.sock.sendto(out, addr)
            except OSError:
                self.dropped += 1


class DnsServer:
    """A DNS handler served on UDP and TCP at one address and port."""

    def __init__(
        self,
        handler: DnsHandler,
        host: str,
        port: int,
        *,
        max_pending: int = 1024,
        idle_timeout: float = 10.0,
        max_tcp_inflight: int = 64,
    ) -> None:
        self.handler = handler
        self.host, self.port = host, port
        self.max_pending = max_pending
        self.idle_timeout = idle_timeout
        self.max_tcp_inflight = max_tcp_inflight
        self._udp: _UdpReader | None = None
        self._tcp: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind both sockets (raises OSError when the address is taken)."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            sock.bind((self.host, self.port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        try:
            self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port, reuse_address=True)
        except OSError:
            sock.close()
            raise
        self._udp = _UdpReader(sock, self.handler, self.max_pending)
        loop.add_reader(sock.fileno(), self._udp.on_readable)
        log.info("serving DNS on %s:%d (udp, tcp)", self.host, self.port)

    async def stop(self) -> None:
        """Close the listeners and every open TCP connection."""
        if self._udp is not None:
            asyncio.get_running_loop().remove_reader(self._udp.sock.fileno())
            for t in list(self._udp.pending):
                t.cancel()
            self._udp.sock.close()
        if self._tcp is not None:
            self._tcp.close()
        for t in list(self._conns):
            t.cancel()
        for t in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._tcp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        if me is not None:
            self._conns.add(me)
        inflight: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self.max_tcp_inflight)

        async def slow(data: bytes) -> None:
            try:
                out = await self.handler.answer(data, TCP)
                if out is not None:
                    writer.write(struct.pack("!H", len(out)) + out)
            except Exception:
                log.exception("answering a TCP query failed")
            finally:
                slots.release()

        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        (size,) = struct.unpack("!H", await reader.readexactly(2))
                        data = await reader.readexactly(size)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    break
                out = self.handler.fast(data, TCP)
                if out is not None:
                    writer.write(struct.pack("!H", len(out)) + out)
                    await writer.drain()
                    continue
                await slots.acquire()
                task = asyncio.get_running_loop().create_task(slow(data))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            if inflight:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.idle_timeout):
                        await asyncio.gather(*inflight, return_exceptions=True)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
        finally:
            for t in inflight:
                t.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if me is not None:
                self._conns.discard(me)
