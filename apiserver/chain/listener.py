"""Which port a request came in on: a tiny wrapper per uvicorn server around the one app.

It also sends the API's requests (`apiroute.is_api_request`) straight to the app's own outermost
middleware once the app has built its middleware stack, past FastAPI's outer layers that pass them on
untouched (`apiroute.user_middleware_entry`): three coroutines and a `send` wrapper fewer per request.
"""

from __future__ import annotations

from typing import Any

from apiserver.apiroute import is_api_request, user_middleware_entry
from apiserver.chain.request_info import LISTENER_KEY
from apiserver.chain.respond import ASGIApp, Receive, Scope, Send
from apiserver.context import CONTEXT_KEY
from apiserver.limits import BoundedRequests

__all__ = ["INSECURE", "SECURE", "Listener"]

INSECURE = "insecure"  # plain HTTP on --insecure-port: no authentication, no authorization (system:unsecured)
SECURE = "secure"  # TLS on --secure-port: the full chain


class Listener:
    """Marks every request of one server with the listener's name (`scope["tinykube.listener"]`)."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name
        self._api: ASGIApp | None = None  # the app's own outermost middleware, once the stack is built
        self._looked = False  # whether _api was looked for in a built stack (None then: the whole stack)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Mark HTTP and WebSocket requests, then pass everything on."""
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        scope[LISTENER_KEY] = self.name
        try:
            if is_api_request(scope) and (api := self._api if self._looked else self._find_api()) is not None:
                scope["app"] = self.app  # as Starlette sets it: `request.app` is the app
                await api(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            # The references back to the request's own objects (the scope's to the context; the context's to
            # the Request, whose `send` may be the chain's closures over the context) make reference cycles:
            # dropped here, a finished request is freed at once instead of left for the cyclic collector, whose
            # young collections it would otherwise trigger (about 25 objects a request).
            if (ctx := scope.pop(CONTEXT_KEY, None)) is not None:
                ctx.conn = None

    def _find_api(self) -> ASGIApp | None:
        app: Any = self.app
        if getattr(app, "middleware_stack", None) is not None:
            self._api = user_middleware_entry(app, BoundedRequests)
            self._looked = True
        return self._api

    def __getattr__(self, name: str) -> object:
        # uvicorn and the shutdown handler reach the app's `state` through the wrapper
        return getattr(self.app, name)
