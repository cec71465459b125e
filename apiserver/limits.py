"""What one client may cost the apiserver: request body size and read time, and the last-resort 500.

`BoundedRequests` is the outermost ASGI layer of the app (inside uvicorn, around everything else):
- a request body larger than `--max-request-body-bytes` (upstream's 3 MiB) is refused with upstream's
  `413 Request entity too large: limit is 3145728` before it is read whole: at once when the
  Content-Length says so, else as soon as the bytes received pass the limit (chunked bodies);
- a body that does not arrive within `--request-body-timeout` seconds is refused with 408;
- an exception nothing else handled becomes a 500 `Status` on a connection that stays usable (Starlette's
  own error middleware re-raises after answering, which makes uvicorn close the connection), and the
  traceback is logged once.
The header-side limits (size, read timeout, connections per client) live in `apiserver/httpserver.py`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from apimachinery.errors import StatusError, internal_error, request_entity_too_large
from apimachinery.httpcycle import cycle_of
from apimachinery.httpserver import ServingLimits
from apiserver.context import CONTEXT_KEY
from apiserver.memory import LARGE_REQUEST_BYTES, Trimmer

__all__ = ["BoundedRequests"]

log = logging.getLogger("apiserver")

Scope = dict[str, Any]
Message = dict[str, Any]


class _BodyRefused(StatusError):
    """The body was refused while it was read (413, or 408 closing the connection)."""


def _status_bytes(err: StatusError) -> bytes:
    return orjson.dumps(err.to_status())


def body_timeout_error(seconds: float) -> StatusError:
    """408: the client did not send its whole body in time."""
    return _BodyRefused(408, "Timeout", f"Timeout: the request body was not received within {seconds:g}s")


class BoundedRequests:
    """ASGI middleware bounding request bodies and turning unhandled errors into 500s (see the module doc)."""

    def __init__(self, app: Any, limits: ServingLimits) -> None:
        self.app = app
        self.limits = limits
        self.trimmer = Trimmer()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_request_body_bytes
        length, chunked = _body_framing(scope)
        if limit and length is not None and length > limit:
            # answered before a byte of it is read; the server drops what follows (httpserver.DISCARD_LIMIT)
            await _answer(send, request_entity_too_large(f"limit is {limit}"), close=False)
            return
        if not length and not chunked:
            await self._serve_bodiless(scope, receive, send)
            return
        state = _RequestState()
        try:
            await self._serve(scope, receive, send, limit, state)
        finally:
            if state.received >= LARGE_REQUEST_BYTES:
                self.trimmer.soon()  # give the memory of a large body back once it is all freed

    async def _serve_bodiless(self, scope: Scope, receive: Any, send: Any) -> None:
        """A request without a body (no Content-Length, or 0, and not chunked: most GETs): nothing to bound
        or time, so no wrappers; whether an answer has started is the chain's `responded` flag."""
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            ctx = scope.get(CONTEXT_KEY)
            cycle = getattr(receive, "__self__", None)  # the server's response cycle, which knows too
            if (ctx is not None and ctx.has_responded()) or getattr(cycle, "response_started", False):
                raise  # a response is half sent: only closing the connection can end it
            await _answer_failure(send, scope, exc, close=False)

    async def _serve(self, scope: Scope, receive: Any, send: Any, limit: int, state: _RequestState) -> None:
        deadline = asyncio.get_running_loop().time() + self.limits.request_body_timeout
        # the server's response cycle (apiserver/httpcycle.py) says when receive() has something to return at
        # once (body bytes, the body's end): then a timer per call (about as dear as the rest of it) would never fire
        cycle = cycle_of(receive)

        async def bounded_receive() -> Message:
            if state.body_done:
                return await receive()
            if cycle is not None and cycle.has_message():
                message = await receive()
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    state.close = True
                    if cycle is not None:
                        cycle.keep_alive = False  # the server's cycle: `connection: close` on the answer, then closed
                    raise body_timeout_error(self.limits.request_body_timeout) from None
            if message["type"] == "http.request":
                state.received += len(message.get("body", b""))
                if limit and state.received > limit:
                    raise _BodyRefused(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")
                state.body_done = not message.get("more_body", False)
            else:
                state.body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.started = True
                if state.close:
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            # the server's own cycle knows whether a response started and closes after it when told: no wrapper
            await self.app(scope, bounded_receive, send if cycle is not None else tracked_send)
        except Exception as exc:
            if state.started or (cycle is not None and cycle.response_started):
                raise  # a response is half sent: only closing the connection can end it
            await _answer_failure(send, scope, exc, close=state.close)


@dataclass
class _RequestState:
    received: int = 0
    body_done: bool = False
    started: bool = False
    close: bool = False


def _body_framing(scope: Scope) -> tuple[int | None, bool]:
    """The request's Content-Length (None: absent or unreadable) and whether its body is chunked."""
    length: int | None = None
    chunked = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                chunked = True  # not a length the parser could frame by: keep every bound on the body
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


async def _answer_failure(send: Any, scope: Scope, exc: Exception, close: bool) -> None:
    """Answer an error raised before any response: its Status (e.g. the body limits'), else a logged 500."""
    if isinstance(exc, StatusError):
        await _answer(send, exc, close=close)
        return
    log.error("unhandled error serving %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
    await _answer(send, internal_error(type(exc).__name__), close=False)


async def _answer(send: Any, err: StatusError, close: bool) -> None:
    body = _status_bytes(err)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": err.code, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
