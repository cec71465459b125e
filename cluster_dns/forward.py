"""Forwarding names outside the cluster zone to the host's resolvers (CoreDNS's `forward . /etc/resolv.conf`).

The query goes out as the client sent it, under a fresh random ID, over UDP to each nameserver in
turn; a truncated UDP answer is asked again over TCP. One overall deadline bounds the whole
exchange; a server that refuses or does not answer in its share of the time is skipped. `None`
means no server answered, and the caller answers SERVFAIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Forwarder", "Upstream", "read_resolv_conf"]

log = logging.getLogger("cluster_dns.forward")

TC = 0x02
QR = 0x80


@dataclass(frozen=True)
class Upstream:
    """One resolver: address and port."""

    host: str
    port: int = 53


def read_resolv_conf(path: str | Path) -> list[Upstream]:
    """The `nameserver` entries of a resolv.conf (port 53); none if the file is missing."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        log.warning("cannot read %s: %s; names outside the cluster will get SERVFAIL", path, e)
        return []
    out: list[Upstream] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            host = fields[1].split("%", 1)[0]  # drop an IPv6 zone index
            out.append(Upstream(host))
    return out


class _UdpExchange(asyncio.DatagramProtocol):
    """Waits for the one datagram that answers our query ID."""

    def __init__(self, qid: bytes) -> None:
        self.qid = qid
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) >= 12 and data[:2] == self.qid and data[2] & QR and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("socket closed"))


class Forwarder:
    """Sends queries to upstream resolvers within a deadline."""

    def __init__(self, upstreams: Sequence[Upstream], timeout: float = 2.0) -> None:
        self.upstreams = tuple(upstreams)
        self.timeout = timeout

    async def query(self, wire: bytes) -> bytes | None:
        """The upstream answer to `wire` (with the client's ID), or None when none answered in time."""
        if len(wire) < 12 or not self.upstreams:
            return None
        client_id, qid = wire[:2], os.urandom(2)
        out = qid + wire[2:]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        for i, up in enumerate(self.upstreams):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining / (len(self.upstreams) - i)):
                    answer = await self._udp(up, out, qid)
                if answer[2] & TC:
                    async with asyncio.timeout(max(deadline - loop.time(), 0.001)):
                        answer = await self._tcp(up, out, qid)
                return client_id + answer[2:]
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                log.debug("upstream %s:%d failed: %r", up.host, up.port, e)
        return None

    async def _udp(self, up: Upstream, out: bytes, qid: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _UdpExchange(qid), remote_addr=(up.host, up.port)
        )
        try:
            transport.sendto(out)
            return await proto.answer
        finally:
            transport.close()

    async def _tcp(self, up: Upstream, out: bytes, qid: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(up.host, up.port)
        try:
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
            while True:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                answer = await reader.readexactly(size)
                if len(answer) >= 12 and answer[:2] == qid:
                    return answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
