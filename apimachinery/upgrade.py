"""HTTP upgrades other than WebSocket (SPDY/3.1): the connection handed to the app as a byte stream.

uvicorn passes a request with `Connection: Upgrade` and an `Upgrade` token other than `websocket` to the
app as plain HTTP, and has no way to give the app the connection once it answers. The servers' own
protocol (`apimachinery/httpserver.py`) adds an `UpgradedConnection` to such a request's scope (ASGI
extension `UPGRADE_EXTENSION`). The request goes through the app and its middleware like any other; when
the response the app starts is `101 Switching Protocols`, the protocol writes that head itself and stops
being HTTP: every later byte of the connection is the UpgradedConnection's to read, what the app sends as a
body is dropped. The app's response (`SwitchingProtocols`) runs the new protocol over the connection, then
closes it. Any other answer is sent as usual and the connection is closed after it (the parser cannot
resume after an upgrade request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import httptools
from starlette.responses import JSONResponse, Response

from apimachinery import errors

__all__ = ["UPGRADE_EXTENSION", "SwitchingProtocols", "UpgradedConnection", "upgrade_of"]

log = logging.getLogger("upgrade")

UPGRADE_EXTENSION = "tinykube.upgrade"
READ_CHUNK = 64 * 1024
READ_BUFFER = 256 * 1024  # the transport stops reading while this much is unread
_NOT_FORWARDED = {b"content-length", b"transfer-encoding", b"connection", b"upgrade"}


class Switchable(Protocol):
    """The HTTP protocol of a connection an app may take over (`apimachinery/httpserver.py`'s)."""

    transport: asyncio.Transport
    flow: Any  # uvicorn's FlowControl: `drain()` waits while the transport's buffer is full

    def on_upgraded(self) -> None:
        """The connection has switched protocols."""


class UpgradedConnection:
    """The byte stream of a connection whose request asked to upgrade to `offered` (its `Upgrade` header);
    `token` is that in lower case (`spdy/3.1`)."""

    def __init__(self, protocol: Switchable, offered: str) -> None:
        self.offered = offered
        self.token = offered.lower()
        self.switched = False
        self._protocol = protocol
        self._reader = asyncio.StreamReader(limit=READ_BUFFER)

    async def read(self) -> bytes | None:
        """The next bytes the client sent; None once it closed the connection."""
        return await self._reader.read(READ_CHUNK) or None

    async def write(self, data: bytes) -> None:
        """Send bytes, waiting while the transport's buffer is full."""
        transport = self._protocol.transport
        if transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        transport.write(data)
        await self._protocol.flow.drain()

    def close(self) -> None:
        """Close the connection."""
        self._protocol.transport.close()

    def _feed(self, data: bytes) -> None:
        self._reader.feed_data(data)

    def _feed_after_head(self, data: bytes, upgrade: httptools.HttpParserUpgrade) -> None:
        """What followed the upgrade request's head in the same read: the new protocol's first bytes."""
        offset = int(upgrade.args[0]) if upgrade.args else len(data)
        if data[offset:]:
            self._feed(data[offset:])

    def _eof(self) -> None:
        if not self._reader.at_eof():
            self._reader.feed_eof()

    def _switch(self, headers: list[tuple[bytes, bytes]]) -> None:
        head = [b"HTTP/1.1 101 Switching Protocols\r\n", b"Connection: Upgrade\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in headers if name.lower() not in _NOT_FORWARDED]
        head.append(b"Upgrade: " + self.offered.encode("latin-1") + b"\r\n\r\n")
        self.switched = True
        self._reader.set_transport(self._protocol.transport)  # a full buffer pauses reading
        self._protocol.transport.write(b"".join(head))
        self._protocol.on_upgraded()

    async def _send(self, send: Callable[[Any], Awaitable[None]], cycle: Any, message: Any) -> None:
        """The request's ASGI `send`: a 101 start switches the connection; after it, nothing is HTTP."""
        if self.switched:
            return
        if message["type"] == "http.response.start" and message["status"] == 101:
            cycle.response_started = cycle.response_complete = True  # uvicorn writes nothing more for it
            self._switch(list(message.get("headers") or []))
            return
        await send(message)


def upgrade_of(scope: Any) -> UpgradedConnection | None:
    """The connection a request may take over (None when it asked for no upgrade the server hands over)."""
    return (scope.get("extensions") or {}).get(UPGRADE_EXTENSION)


Session = Callable[[UpgradedConnection], Awaitable[None]]


class SwitchingProtocols(Response):
    """A response that answers `101 Switching Protocols` and runs `session` over the connection.

    `abandon` runs instead when the switch did not happen (a middleware answered, the client went away).
    """

    def __init__(
        self,
        headers: dict[str, str],
        session: Session,
        abandon: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(status_code=101, headers=headers)
        self._session = session
        self._abandon = abandon

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Send the 101, run the session, close the connection."""
        conn = upgrade_of(scope)
        if conn is None:  # a server that cannot hand the connection over: no 101 it cannot keep
            if self._abandon is not None:
                await self._abandon()
            refused = errors.bad_request(f"this server cannot switch {scope.get('path', '')} to another protocol")
            await JSONResponse(refused.to_status(), status_code=400)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 101, "headers": self.raw_headers})
        if not conn.switched:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if self._abandon is not None:
                await self._abandon()
            return
        try:
            await self._session(conn)
        except Exception:
            log.exception("upgraded connection (%s) failed", conn.token)
        finally:
            conn.close()
            # the middleware sees the response end (audit's ResponseComplete); the protocol drops it
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
