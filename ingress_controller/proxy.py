"""The data plane: an ASGI app (served by uvicorn on httptools) that routes each request by the
route table and forwards it to a ready endpoint of the backend Service over a pooled httpx
transport, streaming both bodies.

Answers as ingress-nginx does: 404 when no rule or default backend matches, 503 when the backend
has no ready endpoint (or no such Service or port), 502 when every endpoint refuses the
connection (each is tried once, round-robin start), 504 on a connect or response-header timeout.
The upstream request carries the client's headers minus hop-by-hop ones, the original Host, and
X-Forwarded-For (appended), X-Forwarded-Host/-Proto/-Port, X-Real-IP, X-Scheme and X-Request-ID.
A client that goes away stops the upstream response; an upstream that fails mid-response makes
the client connection close (the response cannot be completed honestly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpx
from prometheus_client import Counter, Histogram

from ingress_controller.backends import Target
from ingress_controller.routes import Backend
from ingress_controller.state import RoutingState

__all__ = ["IngressProxy", "ProxyOptions", "QuietAborts", "error_page"]

log = logging.getLogger("ingress.proxy")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REQUESTS = Counter(
    "nginx_ingress_controller_requests",
    "HTTP requests answered, by Ingress, backend Service and status code.",
    ["namespace", "ingress", "service", "status"],
)
DURATION = Histogram(
    "nginx_ingress_controller_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by Ingress and backend Service.",
    ["namespace", "ingress", "service"],
)
UPSTREAM_FAILURES = Counter(
    "tinykube_ingress_upstream_connect_failures_total",
    "Endpoints that refused or timed out a connection (the request moved on to the next one).",
    ["namespace", "service"],
)

# RFC 9110 §7.6.1 connection-specific fields, plus the legacy Proxy-Connection; Expect is answered
# here (uvicorn sends 100 Continue when the body is read) and not passed on
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_SET_BY_PROXY = frozenset(
    {b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port", b"x-real-ip", b"x-scheme"}
)


class ClientGone(Exception):
    """The client disconnected before its request body was read."""


class UpstreamAborted(Exception):
    """The upstream failed after the response had started: the client connection must be closed."""


class QuietAborts(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" record for an UpstreamAborted (the proxy has
    logged it in a line; raising it is only how the client connection gets closed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but that one."""
        return not (record.exc_info and isinstance(record.exc_info[1], UpstreamAborted))


@dataclass(frozen=True)
class ProxyOptions:
    """How requests are forwarded (timeouts as ingress-nginx's proxy-*-timeout settings)."""

    port: int = 80
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    send_timeout: float = 60.0
    max_connections: int = 1024
    max_keepalive: int = 320
    keepalive_expiry: float = 60.0

    def timeout(self) -> dict[str, float]:
        """The httpx timeout extension for an upstream request."""
        return httpx.Timeout(
            connect=self.connect_timeout, read=self.read_timeout, write=self.send_timeout, pool=self.connect_timeout
        ).as_dict()

    def transport(self) -> httpx.AsyncHTTPTransport:
        """A pooled keep-alive transport to the endpoints."""
        limits = httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=self.max_keepalive,
            keepalive_expiry=self.keepalive_expiry,
        )
        return httpx.AsyncHTTPTransport(limits=limits, retries=0)


# nginx's own wording where it differs from the RFC's reason phrase
_NGINX_TITLES = {503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


def error_page(code: int) -> bytes:
    """The HTML body of a response the controller makes itself, as nginx words it."""
    title = f"{code} {_NGINX_TITLES.get(code) or HTTPStatus(code).phrase}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>tinykube-ingress</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class IngressProxy:
    """The ASGI application: route, pick an endpoint, forward, stream back."""

    def __init__(self, state: RoutingState, opts: ProxyOptions, transport: httpx.AsyncHTTPTransport) -> None:
        self.state = state
        self.opts = opts
        self.transport = transport
        self._timeout = opts.timeout()
        self._port = str(opts.port).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        host = b""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
                break
        backend = self.state.table.match(host.decode("latin-1"), scope["path"])
        if backend is None:
            await self._answer(send, 404)
            self._record(None, 404, started)
            return
        resolution = self.state.resolve(backend)
        if not resolution.targets:
            log.debug("%s/%s: %s", backend.namespace, backend.service, resolution.reason)
            await self._answer(send, 503)
            self._record(backend, 503, started)
            return
        try:
            status = await self._forward(scope, receive, send, backend, resolution.targets, host)
        except UpstreamAborted as e:
            log.warning("%s/%s: %s", backend.namespace, backend.service, e)
            self._record(backend, 502, started)
            raise
        self._record(backend, status, started)

    # --- answers made here ---------------------------------------------------------------

    @staticmethod
    async def _answer(send: Send, code: int) -> None:
        body = error_page(code)
        headers = [(b"content-type", b"text/html"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    @staticmethod
    def _record(backend: Backend | None, status: int, started: float) -> None:
        labels = (backend.namespace, backend.ingress, backend.service) if backend else ("", "", "")
        REQUESTS.labels(*labels, str(status)).inc()
        DURATION.labels(*labels).observe(time.perf_counter() - started)

    # --- forwarding ----------------------------------------------------------------------

    def _upstream_headers(self, scope: Scope, host: bytes) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        drop = set(_HOP_BY_HOP)
        forwarded_for: list[bytes] = []
        request_id = b""
        for name, value in headers:
            if name == b"connection":
                drop.update(t.strip().lower() for t in value.split(b","))
            elif name == b"x-forwarded-for":
                forwarded_for.append(value)
            elif name == b"x-request-id":
                request_id = value
        out = [(n, v) for n, v in headers if n not in drop and n not in _SET_BY_PROXY and n != b"expect"]
        client = (scope.get("client") or ("",))[0].encode()
        scheme = scope.get("scheme", "http").encode()
        out += [
            (b"x-forwarded-for", b", ".join([*forwarded_for, client]) if client else b", ".join(forwarded_for)),
            (b"x-forwarded-host", host),
            (b"x-forwarded-proto", scheme),
            (b"x-forwarded-port", self._port),
            (b"x-real-ip", client),
            (b"x-scheme", scheme),
        ]
        if not request_id:
            out.append((b"x-request-id", uuid.uuid4().hex.encode()))
        return out

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, backend: Backend, targets: tuple[Target, ...], host: bytes
    ) -> int:
        body_read = asyncio.Event()
        content: AsyncIterator[bytes] | None = None
        if _has_body(scope["headers"]):
            content = _request_body(receive, body_read)
        else:
            body_read.set()
        headers = self._upstream_headers(scope, host)
        if not host:
            headers.append((b"host", targets[0].authority.encode()))
        try:
            return await self._send_upstream(scope, receive, send, backend, targets, headers, content, body_read)
        finally:
            if isinstance(content, AsyncGenerator):
                await content.aclose()

    async def _send_upstream(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        backend: Backend,
        targets: tuple[Target, ...],
        headers: list[tuple[bytes, bytes]],
        content: AsyncIterator[bytes] | None,
        body_read: asyncio.Event,
    ) -> int:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            raw_path += b"?" + scope["query_string"]
        failure = 502
        resp: httpx.Response | None = None
        for target in self.state.balancer.order(backend, targets):
            url = httpx.URL(scheme="http", host=target.host, port=target.port, raw_path=raw_path)
            req = httpx.Request(
                scope["method"], url, headers=headers, content=content, extensions={"timeout": self._timeout}
            )
            try:
                resp = await self.transport.handle_async_request(req)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                # nothing was sent: the next endpoint gets the request (nginx's proxy_next_upstream)
                UPSTREAM_FAILURES.labels(backend.namespace, backend.service).inc()
                failure = 504 if isinstance(e, httpx.ConnectTimeout) else 502
                log.debug("endpoint %s of %s/%s: %r", target.authority, backend.namespace, backend.service, e)
            except ClientGone:
                return 499  # nginx's "client closed request"
            except httpx.TimeoutException as e:
                log.warning(
                    "endpoint %s of %s/%s timed out: %r", target.authority, backend.namespace, backend.service, e
                )
                failure = 504
                break
            except httpx.TransportError as e:
                log.warning("endpoint %s of %s/%s failed: %r", target.authority, backend.namespace, backend.service, e)
                break
        if resp is None:
            await self._answer(send, failure)
            return failure
        resp.request = req
        try:
            await self._respond(resp, receive, send, body_read)
        finally:
            await resp.aclose()
        return resp.status_code

    async def _respond(self, resp: httpx.Response, receive: Receive, send: Send, body_read: asyncio.Event) -> None:
        drop = set(_HOP_BY_HOP)
        for value in resp.headers.get_list("connection"):
            drop.update(t.strip().lower().encode() for t in value.split(","))
        headers = [(n.lower(), v) for n, v in resp.headers.raw if n.lower() not in drop]
        await send({"type": "http.response.start", "status": resp.status_code, "headers": headers})
        pump = asyncio.create_task(_pump(resp, send))
        watch = asyncio.create_task(_until_disconnect(receive, body_read))
        try:
            await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            with contextlib.suppress(asyncio.CancelledError):
                await pump  # re-raises UpstreamAborted: uvicorn then closes the client connection


async def _request_body(receive: Receive, done: asyncio.Event) -> AsyncIterator[bytes]:
    """The client's request body, chunk by chunk as it arrives."""
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
    finally:
        done.set()


async def _until_disconnect(receive: Receive, body_read: asyncio.Event) -> None:
    """Return when the client has gone away (or the response is complete)."""
    await body_read.wait()
    while (await receive())["type"] != "http.disconnect":
        pass


async def _pump(resp: httpx.Response, send: Send) -> None:
    """Copy the upstream body to the client as it arrives (still encoded as the upstream sent it)."""
    try:
        async for chunk in resp.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except httpx.TransportError as e:
        raise UpstreamAborted(f"upstream response broke off: {e!r}") from e
    await send({"type": "http.response.body", "body": b"", "more_body": False})
