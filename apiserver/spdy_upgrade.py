"""kubectl's SPDY/3.1 fallback (and client-go's SPDY executors) on pods/exec, pods/attach and pods/portforward.

A client that cannot use the WebSocket protocols sends `Connection: Upgrade`, `Upgrade: SPDY/3.1` and the
stream protocols it speaks (`X-Stream-Protocol-Version`, one header each), and after `101 Switching
Protocols` speaks raw SPDY/3.1 frames on the connection (`apimachinery/upgrade.py` hands it over). The
request has passed the handler chain as a plain request (authenticated, audited, authorized, admitted);
the handlers resolve the pod and dial its kubelet as the WebSocket path does, then bridge:

- exec and attach (`v4.channel.k8s.io`; `v5.channel.k8s.io` is the same over SPDY): the client's streams
  (`streamType` error, stdin, stdout, stderr, resize) become the channels of the kubelet's WebSocket
  (v5): stdin data is channel 0 and its FIN the v5 close of channel 0, resize lines channel 4; channels
  1, 2 and 3 go to the stdout, stderr and error streams (the error stream carries the v1 Status with
  the exit code, as upstream), which are closed when the kubelet ends the session;
- portforward (`portforward.k8s.io`): the SPDY bytes as they are, in the binary messages of the kubelet's
  SPDY-over-WebSocket tunnel (`kubelet/portforward.py` serves the session).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from apimachinery import errors, spdy
from apimachinery.upgrade import SwitchingProtocols, UpgradedConnection, upgrade_of
from apiserver.context import RequestContext

__all__ = [
    "EXEC_PROTOCOLS",
    "PORTFORWARD_PROTOCOL",
    "bridge_exec",
    "negotiate",
    "spdy_requested",
    "switching_protocols",
    "tunnel",
]

log = logging.getLogger("apiserver.spdy")

SPDY = "spdy/3.1"
PROTOCOL_HEADER = "X-Stream-Protocol-Version"
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
STREAM_CREATION_TIMEOUT = 30.0  # upstream's DefaultStreamCreationTimeout
CLIENT_CLOSE_TIMEOUT = 10.0  # after the streams end, how long the client has to close the connection
STDIN, RESIZE, CLOSE = 0, 4, 255
_OUTPUT_CHANNELS = {1: "stdout", 2: "stderr", 3: "error"}
_STREAM_TYPES = ("error", "stdin", "stdout", "stderr", "resize")


def spdy_requested(ctx: RequestContext) -> UpgradedConnection | None:
    """The connection of a request that asks to upgrade to SPDY/3.1 (None for any other request)."""
    conn = upgrade_of(ctx.conn.scope) if ctx.conn is not None else None
    return conn if conn is not None and conn.token == SPDY else None


def negotiate(ctx: RequestContext, supported: tuple[str, ...]) -> str:
    """The first stream protocol the client offers that the server speaks (httpstream.Handshake), else 403."""
    assert ctx.conn is not None
    offered = [p.strip() for value in ctx.conn.headers.getlist(PROTOCOL_HEADER) for p in value.split(",")]
    offered = [p for p in offered if p]
    if not offered:
        raise errors.bad_request(f"unable to upgrade: {PROTOCOL_HEADER} is required")
    chosen = next((p for p in offered if p in supported), None)
    if chosen is None:
        message = (
            f"unable to upgrade: unable to negotiate protocol: client supports [{' '.join(offered)}], "
            f"server supports [{' '.join(supported)}]"
        )
        raise errors.StatusError(403, "Forbidden", message)
    return chosen


def switching_protocols(
    protocol: str, session: Callable[[UpgradedConnection], Awaitable[None]], upstream: ClientConnection
) -> SwitchingProtocols:
    """The 101 answer naming `protocol`; `session` runs over the connection, the kubelet's socket is closed
    after it (or at once when the switch does not happen)."""

    async def close_upstream() -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(upstream.close(), 2)

    async def run(conn: UpgradedConnection) -> None:
        try:
            await session(conn)
        finally:
            await close_upstream()

    headers = {PROTOCOL_HEADER: protocol}
    return SwitchingProtocols(headers, run, abandon=close_upstream)


async def tunnel(conn: UpgradedConnection, upstream: ClientConnection) -> None:
    """Copy bytes between the client's connection and the kubelet's WebSocket until either side ends."""

    async def client_to_kubelet() -> None:
        while (data := await conn.read()) is not None:
            await upstream.send(data)

    async def kubelet_to_client() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in upstream:
                await conn.write(message if isinstance(message, bytes) else message.encode())

    await _first_of(client_to_kubelet(), kubelet_to_client())


async def _first_of(*coros: Awaitable[None]) -> None:
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class _ExecBridge:
    """One exec/attach session: the client's SPDY streams on one side, the kubelet's v5 channels on the other."""

    def __init__(self, upstream: ClientConnection) -> None:
        self.upstream = upstream
        loop = asyncio.get_running_loop()
        self.outputs: dict[str, asyncio.Future[spdy.Stream]] = {
            k: loop.create_future() for k in _OUTPUT_CHANNELS.values()
        }
        self.seen: set[str] = set()

    async def on_stream(self, stream: spdy.Stream) -> None:
        """A stream the client opened: accepted once per type (as upstream's stream handler), else reset."""
        kind = stream.header("streamType")
        if kind not in _STREAM_TYPES or kind in self.seen:
            await stream.reset(spdy.REFUSED_STREAM)
            return
        self.seen.add(kind)
        await stream.reply()
        if kind in self.outputs:
            stream.discard()  # the client never writes on them
            self.outputs[kind].set_result(stream)
        elif kind == "stdin":
            await self._stdin(stream)
        else:
            await self._resize(stream)

    async def _stdin(self, stream: spdy.Stream) -> None:
        with contextlib.suppress(ConnectionClosed):
            while data := await stream.read():
                await self.upstream.send(bytes([STDIN]) + data)
            await self.upstream.send(bytes([CLOSE, STDIN]))  # the client's stdin ended (v5)

    async def _resize(self, stream: spdy.Stream) -> None:
        pending = b""
        with contextlib.suppress(ConnectionClosed):
            while data := await stream.read():
                *sizes, pending = (pending + data).split(b"\n")  # one JSON TerminalSize a line (json.Encoder)
                for size in sizes:
                    if size.strip():
                        await self.upstream.send(bytes([RESIZE]) + size)

    async def _output(self, kind: str) -> spdy.Stream | None:
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self.outputs[kind]), STREAM_CREATION_TIMEOUT)
        return None

    async def kubelet_to_client(self) -> None:
        """Relay the kubelet's output channels; end the session as the kubelet ends it."""
        saw_status = False
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.upstream:
                data = frame if isinstance(frame, bytes) else frame.encode()
                kind = _OUTPUT_CHANNELS.get(data[0]) if data else None
                if kind is None or len(data) < 2:
                    continue  # the hello frame, or a channel the client has no stream for
                stream = await self._output(kind)
                if stream is not None:
                    saw_status = saw_status or kind == "error"
                    await stream.write(data[1:])
        code = self.upstream.close_code
        if not saw_status and code != 1000:
            why = f"the kubelet closed the stream ({code} {self.upstream.close_reason or ''})".replace(" )", ")")
            stream = await self._output("error")
            if stream is not None:
                await stream.write(json.dumps(errors.internal_error(why).to_status(), separators=(",", ":")).encode())
        for future in self.outputs.values():
            if future.done():
                await future.result().close()


async def bridge_exec(conn: UpgradedConnection, upstream: ClientConnection) -> None:
    """Serve the client's SPDY session of an exec or attach, relayed to the kubelet's WebSocket (v5)."""
    bridge = _ExecBridge(upstream)
    session = spdy.Session(conn.read, conn.write)
    client = asyncio.create_task(session.serve(bridge.on_stream))
    relay = asyncio.create_task(bridge.kubelet_to_client())
    try:
        done, _ = await asyncio.wait({client, relay}, return_when=asyncio.FIRST_COMPLETED)
        if relay in done:  # the streams have ended: the client closes the connection once it has read them
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(client), CLIENT_CLOSE_TIMEOUT)
    finally:
        for task in (client, relay):
            task.cancel()
        for task in (client, relay):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
