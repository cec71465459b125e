"""`kubectl port-forward` on the kubelet: the portforward.k8s.io protocol over a SPDY/3.1 session.

The session reaches the kubelet as the apiserver relays it: SPDY/3.1 tunneled in the binary messages
of a WebSocket, as kubectl itself speaks it to the apiserver (subprotocol `SPDY/3.1+portforward.k8s.io`).
Between apiserver and kubelet the subprotocol is `KUBELET_PROTOCOL`, the same tunnel under a name that
is an RFC 7230 token (the `websockets` client refuses to send the other).

For every local connection kubectl opens two streams with the same `requestID` header, `streamType:
error` and `streamType: data`, both with the pod's `port`. Once both are there the kubelet dials the
pod's IP on that port and copies bytes between the socket and the data stream; a failure is written on
the error stream, and both streams are closed when the forwarding ends (as upstream's
pkg/kubelet/cri/streaming/portforward/httpstream.go).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from apimachinery import spdy

__all__ = [
    "KUBELET_PROTOCOL",
    "PROTOCOL",
    "TUNNEL_PROTOCOL",
    "PodTarget",
    "PortForwarder",
    "forward_to_pod",
    "pod_targets",
]

log = logging.getLogger("kubelet.portforward")

PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = "SPDY/3.1+" + PROTOCOL
KUBELET_PROTOCOL = "spdy3.1.portforward.tinykube.io"
STREAM_CREATION_TIMEOUT = 30.0  # upstream's DefaultStreamCreationTimeout
DIAL_TIMEOUT = 5.0
CHUNK = 32 * 1024


@dataclass(frozen=True)
class PodTarget:
    """Where a pod's ports are: its IP, and its UID for messages."""

    ip: str
    uid: str


def pod_targets(runtime: Any) -> Callable[[str, str], PodTarget | None]:
    """Finds a running pod's IP from the runtime's sandboxes (None when the runtime keeps none or has no such pod)."""

    def find(namespace: str, name: str) -> PodTarget | None:
        sandboxes = getattr(runtime, "sandboxes", None)
        if sandboxes is None:
            return None
        found = [s for s in sandboxes() if s.namespace == namespace and s.name == name and s.ip]
        return PodTarget(found[-1].ip, found[-1].uid) if found else None

    return find


def _dial_error(exc: BaseException, host: str, port: int) -> str:
    """A failed dial in Go's words (`dial tcp 10.0.0.5:80: connect: connection refused`)."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, TimeoutError):
        return f"dial tcp {where}: i/o timeout"
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return f"dial tcp {where}: connect: connection refused"
    return f"dial tcp {where}: connect: {getattr(exc, 'strerror', None) or exc}"


@dataclass
class _Pair:
    """The error and data streams of one forwarded connection."""

    request_id: str
    error: spdy.Stream | None = None
    data: spdy.Stream | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)


class PortForwarder:
    """Serves the streams of one port-forward session for one pod."""

    def __init__(
        self,
        pod: str,
        target: PodTarget,
        *,
        dial_timeout: float = DIAL_TIMEOUT,
        stream_creation_timeout: float = STREAM_CREATION_TIMEOUT,
    ) -> None:
        self.pod = pod
        self.target = target
        self.dial_timeout = dial_timeout
        self.stream_creation_timeout = stream_creation_timeout
        self._pairs: dict[str, _Pair] = {}

    async def on_stream(self, stream: spdy.Stream) -> None:
        """A stream kubectl opened: checked and accepted (or reset, as upstream's httpStreamReceived), then paired."""
        problem = _stream_problem(stream)
        if problem:
            log.info("port-forward to %s: stream %d rejected: %s", self.pod, stream.id, problem)
            await stream.reset(spdy.REFUSED_STREAM)
            return
        await stream.reply()
        kind = stream.header("streamType")
        if kind == "error":
            stream.discard()  # kubectl never writes on it
        request_id = self._request_id(stream)
        pair = self._pairs.get(request_id)
        if pair is None:
            pair = self._pairs[request_id] = _Pair(request_id)
        if (kind == "error" and pair.error is not None) or (kind == "data" and pair.data is not None):
            message = f"error processing stream for request {request_id}: {kind} stream already assigned"
            log.info("port-forward to %s: %s", self.pod, message)
            if pair.error is not None:
                await pair.error.write(message.encode())
            await stream.reset()
            return
        if kind == "error":
            pair.error = stream
        else:
            pair.data = stream
        if pair.error is None or pair.data is None:
            # the first stream of a pair waits for the other in its own task (cancelled with the session)
            await self._await_partner(pair)
            return
        pair.complete.set()
        self._pairs.pop(request_id, None)
        await self._forward(pair.data, pair.error)

    def _request_id(self, stream: spdy.Stream) -> str:
        """The pair a stream belongs to; clients too old to send requestID pair by stream ids (error n, data n+2)."""
        request_id = stream.header("requestID")
        if request_id:
            return request_id
        return str(stream.id if stream.header("streamType") == "error" else stream.id - 2)

    async def _await_partner(self, pair: _Pair) -> None:
        """Wait for the pair's other stream; give up after the stream creation timeout, as upstream does."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pair.complete.wait(), self.stream_creation_timeout)
            return
        if self._pairs.get(pair.request_id) is pair:
            del self._pairs[pair.request_id]
        message = f"(conn=tunnel, request={pair.request_id}) timed out waiting for streams"
        log.info("port-forward to %s: %s", self.pod, message)
        if pair.error is not None:
            await pair.error.write(message.encode())
        for stream in (pair.error, pair.data):
            if stream is not None:
                await stream.close()

    async def _forward(self, data: spdy.Stream, error: spdy.Stream) -> None:
        port = int(data.header("port"))
        try:
            problem = await forward_to_pod(
                self.target.ip, port, data.read, data.write, lambda: data.reset_by_peer, self.dial_timeout
            )
            if problem:
                message = f"error forwarding port {port} to pod {self.pod}, uid {self.target.uid}: {problem}"
                log.info("%s", message)
                await error.write(message.encode())
        finally:
            if not data.remote_closed:
                data.discard()
            await data.close()
            await error.close()


async def forward_to_pod(
    ip: str,
    port: int,
    read: Callable[[], Awaitable[bytes]],
    write: Callable[[bytes], Awaitable[None]],
    aborted: Callable[[], bool],
    dial_timeout: float = DIAL_TIMEOUT,
) -> str | None:
    """Dial ip:port and copy bytes both ways until the pod closes its side or the client aborts (`read` gives
    b"" and `aborted()` is true; b"" alone is the client's half-close, passed on). Why the dial failed, or None."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), dial_timeout)
    except (OSError, TimeoutError) as e:
        return _dial_error(e, ip, port)
    try:
        await _pump(read, write, aborted, reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 2)
    return None


async def _pump(
    read: Callable[[], Awaitable[bytes]],
    write: Callable[[bytes], Awaitable[None]],
    aborted: Callable[[], bool],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    async def to_pod() -> None:
        while chunk := await read():
            writer.write(chunk)
            await writer.drain()
        if aborted():
            return
        if writer.can_write_eof():
            writer.write_eof()  # the client's side is done (its local connection closed): pass the half-close on
        await asyncio.Event().wait()  # keep reading the pod's answer

    async def from_pod() -> None:
        while chunk := await reader.read(CHUNK):
            if aborted():
                return
            await write(chunk)

    sending = asyncio.create_task(to_pod())
    receiving = asyncio.create_task(from_pod())
    try:
        await asyncio.wait({sending, receiving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sending, receiving):
            task.cancel()
        for task in (sending, receiving):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task


def _stream_problem(stream: spdy.Stream) -> str | None:
    """Why upstream's kubelet would refuse a new stream (missing or bad port / streamType), or None."""
    port = stream.header("port")
    if not port:
        return '"port" header is required'
    if not port.isdigit() or int(port) > 65535:
        return f'unable to parse "{port}" as a port'
    if int(port) < 1:
        return f'port "{port}" must be > 0'
    kind = stream.header("streamType")
    if not kind:
        return '"streamType" header is required'
    if kind not in ("error", "data"):
        return f'invalid stream type "{kind}"'
    return None
