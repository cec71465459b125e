"""TLS reads into one reused buffer, for the servers' and the client's plain protocols.

Below a plain `asyncio.Protocol`, uvloop's (and asyncio's) TLS transport decrypts each read with
`SSLObject.read(256 KiB)`: a fresh 256 KiB bytes object per call (two calls per read event, the second
one to learn that nothing is left), cut down to what arrived. glibc serves such a block with a fresh
mapping (mmap, then mremap to shrink it, munmap), so each read also costs page faults and zeroed pages
(bench/README.md, "TLS reads into one reused buffer"). Behind a `BufferedProtocol` the
transport decrypts into the buffer the protocol hands it instead. `BufferedReads` is that face for a
plain protocol: it lends one buffer per thread (a read is decrypted and handed on before the next read
starts, so one buffer serves every connection of an event loop) and passes each read on as bytes.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Any

__all__ = ["BUFFER_SIZE", "BufferedReads", "open_connection", "thread_buffer"]

BUFFER_SIZE = 64 * 1024  # the most one decryption pass hands on; more is read in the next pass

_local = threading.local()


def thread_buffer() -> memoryview:
    """This thread's read buffer (one serves every connection of an event loop: see the module's doc)."""
    view = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(BUFFER_SIZE))
    return view


class BufferedReads(asyncio.BufferedProtocol):
    """A plain protocol seen by its transport as a buffered one: reads land in this thread's buffer and
    go on to the protocol's `data_received` as bytes. Everything else is the protocol's own."""

    def __init__(self, inner: asyncio.Protocol) -> None:
        self.inner = inner

    def get_buffer(self, sizehint: int) -> memoryview:
        """The thread's read buffer (taken in full, whatever the hint)."""
        self._view = thread_buffer()
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        """Hand what was read on: copied out first, so the buffer is free again before the protocol runs."""
        self.inner.data_received(bytes(self._view[:nbytes]))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The protocol's own."""
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """The protocol's own."""
        self.inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        """The protocol's own."""
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        """The protocol's own."""
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        """The protocol's own."""
        self.inner.resume_writing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def open_connection(
    host: str, port: int, *, tls: ssl.SSLContext | None, server_hostname: str | None, limit: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """`asyncio.open_connection` (`tls`: its `ssl=`), TLS reads through `BufferedReads`."""
    if tls is None:
        return await asyncio.open_connection(host, port, limit=limit)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(
        lambda: BufferedReads(protocol), host, port, ssl=tls, server_hostname=server_hostname
    )
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)
