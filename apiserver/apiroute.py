"""The resource API's route: `/api/…` and `/apis/…` served straight from the handler chain.

FastAPI stays the app (discovery, health, metrics, OpenAPI, the exec WebSocket), but its route for the
API paths took a request through its exception and exit-stack middlewares, route matching against every
route, and the dependency machinery (`solve_dependencies`), for an endpoint that takes the Request and
nothing else. That was about a seventh of a create's CPU (bench/README.md). `ApiRoute` sits innermost in the
middleware stack and calls the endpoint directly for the paths FastAPI would give it anyway, answering
a `StatusError` with its Status as the app's exception handler does; everything else goes on to FastAPI.
A write's admission warnings and audit annotations (`apiserver/admission/feedback.py`) are delivered here,
on the response before it starts, instead of by a layer of their own wrapping `send`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from apimachinery.errors import StatusError
from apiserver import negotiation, protobuf
from apiserver.admission import feedback
from apiserver.chain.respond import ASGIApp, Receive, Scope, Send
from apiserver.codec import status_response
from apiserver.context import context_of
from apiserver.kindregistry import KindRegistry

__all__ = ["API_METHODS", "ApiRoute", "fastapi_options", "is_api_path", "is_api_request", "user_middleware_entry"]

API_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})  # the catch-all route's methods

Endpoint = Callable[[Request], Awaitable[Response]]


def fastapi_options() -> dict[str, Any]:
    """The FastAPI app's settings for the apiserver: without FastAPI's native OpenTelemetry where it has it.

    FastAPI 0.16x asks OpenTelemetry's global providers on every request whether tracing, metrics or
    logs are wanted (a few percent of a create's CPU, bench/README.md); the apiserver serves its own
    Prometheus metrics and audit log, and no provider is ever configured.
    """
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def is_api_path(path: str) -> bool:
    """A path under /api/ or /apis/ that no route before the app's catch-all claims (those are
    /api/ and /apis/ themselves: discovery)."""
    return (path.startswith("/api/") and len(path) > 5) or (path.startswith("/apis/") and len(path) > 6)


def is_api_request(scope: Scope) -> bool:
    """An HTTP request that `ApiRoute` serves itself (an API path with one of the catch-all route's methods)."""
    return scope["type"] == "http" and scope["method"] in API_METHODS and is_api_path(scope["path"])


# FastAPI's layers outside the app's own middlewares that do nothing for an API request: the last-resort
# 500 (the outermost user middleware, limits.BoundedRequests, answers every exception first), exception
# telemetry (off: fastapi_options) and FastAPI's body limit (no max_body_size: it passes the call on).
_PASS_THROUGH = frozenset({"ServerErrorMiddleware", "ExceptionTelemetryMiddleware", "AppBodyLimitMiddleware"})


def user_middleware_entry(app: FastAPI, outermost: type) -> ASGIApp | None:
    """The app's outermost own middleware (an instance of `outermost`) in its built middleware stack, when
    every layer FastAPI puts before it passes an API request on untouched; None otherwise (not built yet,
    a root path, a body limit, or a layer this does not know), and then requests take the whole stack."""
    if getattr(app, "root_path", "") or getattr(app, "max_body_size", None) is not None:
        return None
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, outermost):
        if type(layer).__name__ not in _PASS_THROUGH:
            return None
        layer = getattr(layer, "app", None)
    return layer  # type: ignore[no-any-return]


class ApiRoute:
    """Serves HTTP requests to the API paths with `endpoint`; passes everything else to `app`."""

    def __init__(self, app: ASGIApp, endpoint: Endpoint, kinds: KindRegistry) -> None:
        self.app = app
        self.endpoint = endpoint
        self.kinds = kinds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI call; a write gets a Feedback for admission's warnings and audit annotations."""
        if not is_api_request(scope):
            await self.app(scope, receive, send)
            return
        opened = feedback.open_feedback(scope["method"])
        wanted: list[negotiation.Output] = []
        try:
            wanted = _wanted(scope, self.kinds)
            response = await self.endpoint(Request(scope, receive, send))
            if not wanted:
                pass  # answered by another server (an aggregated API): its own negotiation stands
            elif isinstance(response, StreamingResponse):
                if context_of(scope).verb == "watch" and response.media_type == negotiation.JSON:
                    response = negotiation.render_watch(response, wanted)
            else:
                response = await negotiation.render(response, wanted)
            if opened is not None:
                _deliver(scope, opened[0], response)
            await response(scope, receive, send)
        except StatusError as e:
            # half a response is out (request_info's send marks it): only the connection's end can tell the client
            if context_of(scope).has_responded():
                raise
            rendered = (negotiation.render_status(e, wanted) if wanted else None) or status_response(e)
            if opened is not None:
                _deliver(scope, opened[0], rendered)
            await rendered(scope, receive, send)
        finally:
            if opened is not None:
                feedback.close_feedback(scope, opened)


def _deliver(scope: Scope, fed_back: feedback.Feedback, response: Response) -> None:
    if warnings := feedback.deliver(scope, fed_back):
        response.raw_headers = [*response.raw_headers, *warnings]  # a new list: a response may be shared


def _wanted(scope: Scope, kinds: KindRegistry) -> list[negotiation.Output]:
    """The answer forms the client accepts for this request (406 before anything runs when none);
    empty for requests this server does not answer itself (aggregated APIs). Custom resources are
    negotiated as the built-in kinds are (they have no protobuf form)."""
    ctx = context_of(scope)
    info = ctx.info
    served = kinds.get(info.group, info.resource) if info is not None and info.resource else None
    res = served.resource if served is not None else None
    if info is None or (info.resource and res is None):
        return []
    wanted = negotiation.outputs(ctx.header("accept"), watch=ctx.verb == "watch")
    if res is not None and not info.subresource:  # a served kind without a protobuf message: skip protobuf
        api_version = f"{info.group}/{info.version}" if info.group else info.version
        if protobuf.kind_message(api_version, res.kind) is None:
            wanted = [o for o in wanted if o.media_type != negotiation.PROTOBUF]
    if not wanted:
        raise negotiation.not_acceptable()
    return wanted
