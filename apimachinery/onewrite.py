"""uvicorn's response cycle, writing a response of known length at once.

uvicorn writes a response's status line and headers, then each body message, as writes of their own: for the
usual answer (a JSON object with its Content-Length) two sends, and on TLS two records. `OneWriteCycle` holds
the head of such a response and sends it with the body. It also checks the response's header names and values
in one search each, where uvicorn runs two regular-expression searches per header (a few µs a response). What
it sends, and the errors it raises for a bad response, are uvicorn's, with one difference: when the app fails
between the head and the body, uvicorn has sent the head before it closes the connection, and here nothing is
(the client sees the connection closed either way, with no response it could use). A response it does not hold
(chunked, HEAD, no body, an access log to write) goes through uvicorn's own `send`.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE, RequestResponseCycle

__all__ = ["OneWriteCycle"]


class OneWriteCycle(RequestResponseCycle):
    """A request's response cycle whose fixed-length response leaves in one write."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: bytes | None = None  # the head of a fixed-length response, until its body comes

    async def send(self, message: Any) -> None:  # type: ignore[override]
        """Send one ASGI message of the response."""
        held = self.held
        if held is not None:
            self.held = None
            if message["type"] == "http.response.body" and not self.disconnected and not self.flow.write_paused:
                self._finish(held, message)
                return
            if not self.disconnected:
                self.transport.write(held)
        elif (
            message["type"] == "http.response.start"
            and not self.response_started
            and not self.disconnected
            and not self.flow.write_paused
            and not self.access_log
        ):
            self._start(message)
            return
        await super().send(message)

    def _start(self, message: Any) -> None:
        """The response's head: uvicorn's, held when a body of known length follows."""
        self.response_started = True
        self.waiting_for_100_continue = False
        status = message["status"]
        headers = message.get("headers", ())
        if self.default_headers:
            headers = [*self.default_headers, *headers]
        # uvicorn's checks, header by header, as one search of all names and one of all values (a tab, which
        # the value check allows, between values)
        if HEADER_RE.search(b"".join([name for name, _ in headers])):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(b"\t".join([value for _, value in headers])):
            raise RuntimeError("Invalid HTTP header value.")
        content = [STATUS_LINE[status]]
        closes = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection" and b"close" in [token.lower().strip() for token in value.split(b",")]:
                self.keep_alive = False
                closes = True
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not closes:
            content.append(b"connection: close\r\n")
        head_request = self.scope["method"] == "HEAD"
        if self.chunked_encoding is None and not head_request and status not in (204, 304):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        if self.chunked_encoding is False and self.expected_content_length > 0 and not head_request:
            self.held = b"".join(content)
        else:
            self.transport.write(b"".join(content))

    def _finish(self, head: bytes, message: Any) -> None:
        """The first body message of a held response: uvicorn's body write, the head in front."""
        body = message.get("body", b"")
        if len(body) > self.expected_content_length:
            self.transport.write(head)  # as uvicorn, which had sent it
            raise RuntimeError("Response content longer than Content-Length")
        self.expected_content_length -= len(body)
        self.transport.write(head + body)
        if message.get("more_body", False):
            return
        if self.expected_content_length != 0:
            raise RuntimeError("Response content shorter than Content-Length")
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()
