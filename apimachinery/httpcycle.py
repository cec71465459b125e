"""One HTTP/1.1 request's ASGI `receive` and `send` on its connection (the servers' protocol, `httpserver.py`).

The same bytes and the same closes as uvicorn's httptools `RequestResponseCycle` (tests/unit/test_http_protocol.py
holds them equal), at less cost per request: a response of known length leaves in one write (head and body
together: one send, on TLS one record); the wait for body bytes is an `asyncio.Event` made only when a
`receive` has to wait; a response header name is checked against the token rule once per process (a bounded
set of names seen good), not on every response.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl

from apimachinery.upgrade import UpgradedConnection

__all__ = ["STATUS_LINE", "ResponseCycle", "cycle_of"]

log = logging.getLogger("uvicorn.error")

_BAD_NAME = re.compile(b'[\x00-\x1f\x7f()<>@,;:\\[\\]={} \t\\\\"]').search
_BAD_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]").search
_GOOD_NAMES: set[bytes] = set()
_GOOD_NAMES_LIMIT = 1024  # names are the apps' and proxied servers': past this many, each is checked every time
_DISCONNECT = {"type": "http.disconnect"}


def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (code, phrase)


STATUS_LINE = {code: _status_line(code) for code in range(100, 600)}
_INTERNAL_ERROR = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", b"21"),
    (b"connection", b"close"),
]


def _check_name(name: bytes) -> None:
    if name in _GOOD_NAMES:
        return
    if _BAD_NAME(name):
        raise RuntimeError("Invalid HTTP header name.")
    if len(_GOOD_NAMES) < _GOOD_NAMES_LIMIT:
        _GOOD_NAMES.add(name)


def cycle_of(call: Any) -> ResponseCycle | None:
    """The response cycle a request's `receive` or `send` belongs to, when the server is this protocol's
    (None under any other, or once a layer wrapped it): what the layers above ask instead of wrapping `send`."""
    cycle = getattr(call, "__self__", None)
    return cycle if isinstance(cycle, ResponseCycle) else None


class ResponseCycle:
    """One request: its scope, the body as it arrives (`receive`) and the response as the app sends it."""

    __slots__ = (
        "_event",
        "_held",
        "_ready",
        "body",
        "chunked_encoding",
        "default_headers",
        "disconnected",
        "expected_content_length",
        "extra_headers",
        "flow",
        "is_head",
        "keep_alive",
        "more_body",
        "on_response",
        "response_complete",
        "response_started",
        "scope",
        "transport",
        "upgrade",
        "waiting_for_100_continue",
    )

    def __init__(
        self,
        scope: dict[str, Any],
        transport: asyncio.Transport,
        flow: FlowControl,
        default_headers: list[tuple[bytes, bytes]],
        *,
        expect_100_continue: bool,
        keep_alive: bool,
        on_response: Callable[[], None],
    ) -> None:
        self.scope = scope
        self.transport = transport
        self.flow = flow
        self.default_headers = default_headers
        self.on_response: Callable[[], None] | None = on_response
        # headers a layer of the app adds to every response start (the audit ID), instead of wrapping `send`
        self.extra_headers: list[tuple[bytes, bytes]] | None = None
        self.upgrade: UpgradedConnection | None = None
        self.is_head = scope["method"] == "HEAD"
        self.disconnected = False
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        self.body = bytearray()
        self.more_body = True
        self._ready = False  # body bytes, the body's end, the response's end or the client gone: receive answers
        self._event: asyncio.Event | None = None  # made by the first receive that has to wait
        self.response_started = False
        self.response_complete = False
        self.chunked_encoding: bool | None = None
        self.expected_content_length = 0
        self._held: bytes | None = None  # the head of a fixed-length response, sent with its first body bytes

    def notify(self) -> None:
        """Something for `receive` has happened."""
        self._ready = True
        if self._event is not None:
            self._event.set()

    def has_message(self) -> bool:
        """Whether `receive` returns at once (body bytes or the body's end are in, or the exchange is over)."""
        return self._ready or self.disconnected or self.response_complete

    def close(self) -> None:
        """Close the connection, after a head still held."""
        if self._held is not None:
            held, self._held = self._held, None
            self.transport.write(held)
        self.transport.close()

    async def run(self, app: Any) -> None:
        """Run the app for this request, answering 500 or closing when it fails or answers wrongly."""
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            log.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                await self._send_500()
            else:
                self.close()
        else:
            if result is not None:
                log.error("ASGI callable should return None, but returned '%s'.", result)
                self.close()
            elif not self.response_started and not self.disconnected:
                log.error("ASGI callable returned without starting response.")
                await self._send_500()
            elif not self.response_complete and not self.disconnected:
                log.error("ASGI callable returned without completing response.")
                self.close()
        finally:
            self.on_response = None

    async def _send_500(self) -> None:
        await self.send({"type": "http.response.start", "status": 500, "headers": _INTERNAL_ERROR})
        await self.send({"type": "http.response.body", "body": b"Internal Server Error", "more_body": False})

    async def receive(self) -> dict[str, Any]:
        """The next part of the request's body; `http.disconnect` once the client is gone or the response sent."""
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            flow = self.flow
            if flow.read_paused:
                flow.resume_reading()
            if not self._ready:
                event = self._event
                if event is None:
                    event = self._event = asyncio.Event()
                await event.wait()
            self._ready = False
            if self._event is not None:
                self._event.clear()
        if self.disconnected or self.response_complete:
            return _DISCONNECT
        message = {"type": "http.request", "body": bytes(self.body), "more_body": self.more_body}
        self.body = bytearray()
        return message

    async def send(self, message: dict[str, Any]) -> None:
        """Write the response as the app sends it."""
        if self.upgrade is not None:
            await self.upgrade._send(self._send, self, message)
        else:
            await self._send(message)

    async def _send(self, message: dict[str, Any]) -> None:
        flow = self.flow
        if flow.write_paused and not self.disconnected:
            await flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{message['type']}'.")
            self._start(message)
        elif not self.response_complete:
            if message["type"] != "http.response.body":
                raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{message['type']}'.")
            self._body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"Unexpected ASGI message '{message['type']}' sent, after response already completed.")

    def _start(self, message: dict[str, Any]) -> None:
        self.response_started = True
        self.waiting_for_100_continue = False
        status = message["status"]
        content = [STATUS_LINE[status]]
        for name, value in self.default_headers:
            content += (name, b": ", value, b"\r\n")
        has_connection_close = False
        headers = message.get("headers", ())
        if self.extra_headers:
            headers = [*headers, *self.extra_headers]
        for name, value in headers:
            _check_name(name)
            if _BAD_VALUE(value):
                raise RuntimeError("Invalid HTTP header value.")
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection" and b"close" in [token.lower().strip() for token in value.split(b",")]:
                self.keep_alive = False
                has_connection_close = True
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if self.chunked_encoding is None and not self.is_head and status not in (204, 304):
            self.chunked_encoding = True  # neither a length nor a transfer encoding
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        head = b"".join(content)
        if self.chunked_encoding is False and self.expected_content_length > 0 and not self.is_head:
            self._held = head  # goes out with the body
        else:
            self.transport.write(head)

    def _body(self, body: bytes, more_body: bool) -> None:
        if self.is_head:
            self.expected_content_length = 0
        elif self.chunked_encoding:
            if body:
                self.transport.write(b"%x\r\n%s\r\n%s" % (len(body), body, b"" if more_body else b"0\r\n\r\n"))
            elif not more_body:
                self.transport.write(b"0\r\n\r\n")
        else:
            size = len(body)
            if size > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= size
            if self._held is not None:
                body, self._held = self._held + body, None
            if body:
                self.transport.write(body)
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.notify()
            if not self.keep_alive:
                self.close()
            if self.on_response is not None:
                self.on_response()
