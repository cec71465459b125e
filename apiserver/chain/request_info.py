"""The chain's first stage: what is asked (upstream's WithRequestInfo + WithAuditInit).

Builds the one `RequestContext` of the request — the parsed path, the Kubernetes verb, the query,
the headers, whether it is long-running, its audit ID and deadline — keeps it in the ASGI scope,
and returns the audit ID to the client as the `Audit-Id` response header. Its `send` marks the context
`responded` once a message went out, which the stages below read (`has_responded()`) instead of wrapping
`send` again; on the apiserver's own server (`apiserver/httpcycle.py`) the response cycle adds the header and
says whether the response started, and `send` is not wrapped at all.
"""

from __future__ import annotations

import functools
import time
from urllib.parse import parse_qsl

from apimachinery.httpcycle import cycle_of
from apimachinery.meta import new_uid
from apimachinery.tlsserving import peer_certificate
from apiserver.chain.respond import ASGIApp, Message, Receive, Scope, Send
from apiserver.context import CONTEXT_KEY, RequestContext
from apiserver.request_info import RequestInfo, parse_path

__all__ = ["LISTENER_KEY", "RequestInfoStage", "is_long_running", "query_pairs", "request_verb"]

# Set by the per-listener wrapper (apiserver.chain.listener) to the name of the port a request came in on.
LISTENER_KEY = "tinykube.listener"
_TRUE_FALSE = ("0", "false")
_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}
# upstream's BasicLongRunningRequestCheck(verbs watch/proxy; subresources attach/exec/proxy/log/portforward)
_LONG_RUNNING_VERBS = frozenset(("watch", "proxy"))
_LONG_RUNNING_SUBRESOURCES = frozenset(("attach", "exec", "proxy", "log", "portforward"))


def query_pairs(raw_query: bytes) -> tuple[tuple[str, str], ...]:
    """The name/value pairs of a raw query string, in order (short ones parsed once: clients repeat theirs)."""
    if len(raw_query) > _CACHED_QUERY_BYTES:
        return _query_pairs(raw_query)
    return _cached_query_pairs(raw_query)


_CACHED_QUERY_BYTES = 256  # longer queries are parsed each time, so the cache's memory stays small


def _query_pairs(raw_query: bytes) -> tuple[tuple[str, str], ...]:
    return tuple(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True))


_cached_query_pairs = functools.lru_cache(maxsize=1024)(_query_pairs)


def request_verb(method: str, info: RequestInfo | None, query: dict[str, str]) -> str:
    """The Kubernetes verb of a request (upstream's RequestInfoFactory): get/list/watch/create/… for
    resources, the lower-cased method for everything else."""
    if info is None or not info.resource:
        return method.lower()
    if method == "GET":
        watch = query.get("watch")
        if info.legacy_watch or (not info.name and watch is not None and watch.lower() not in _TRUE_FALSE):
            return "watch"
        return "get" if info.name else "list"
    if method == "DELETE":
        return "delete" if info.name else "deletecollection"
    return _METHOD_VERBS.get(method, method.lower())


def is_long_running(verb: str, info: RequestInfo | None) -> bool:
    """Watches and streaming subresources: exempt from the in-flight limit and the request deadline."""
    return verb in _LONG_RUNNING_VERBS or (info is not None and info.subresource in _LONG_RUNNING_SUBRESOURCES)


class RequestInfoStage:
    """Builds the request's context and adds the Audit-Id response header."""

    def __init__(self, app: ASGIApp, request_timeout: float = 60.0) -> None:
        self.app = app
        self.request_timeout = request_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Build the context, then run the rest of the chain."""
        ctx = self.context(scope)
        scope[CONTEXT_KEY] = ctx
        audit_header = (b"audit-id", ctx.audit_id.encode())
        cycle = cycle_of(send)
        if cycle is not None:
            # the apiserver's own server: it adds the header and knows when the response started
            cycle.extra_headers = [audit_header]
            ctx.response_cycle = cycle
            await self.app(scope, receive, send)
            return

        async def send_with_audit_id(message: Message) -> None:
            if not ctx.responded:  # the first message: a response start, or a WebSocket's accept
                ctx.responded = True
                if message["type"] in ("http.response.start", "websocket.http.response.start"):
                    message["headers"] = [*message.get("headers", ()), audit_header]
            await send(message)

        await self.app(scope, receive, send_with_audit_id)

    def context(self, scope: Scope) -> RequestContext:
        """The RequestContext of one HTTP or WebSocket request."""
        path = scope["path"]
        method = scope.get("method", "GET")
        raw_query = scope.get("query_string", b"")
        query = dict(query_pairs(raw_query)) if raw_query else {}
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        info = parse_path(path)
        verb = request_verb(method, info, query)
        long_running = is_long_running(verb, info)
        return RequestContext(
            method=method,
            path=path,
            verb=verb,
            info=info,
            query=query,
            headers=headers,
            audit_id=headers.get("audit-id") or new_uid(),
            deadline=None if long_running else time.monotonic() + self.request_timeout,
            insecure=scope.get(LISTENER_KEY) == "insecure",
            peer_cert_der=peer_certificate(scope),  # the TLS client certificate (apimachinery.tlsserving)
            long_running=long_running,
        )
