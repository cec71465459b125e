"""Which port a request came in on: a tiny wrapper per uvicorn server around the one app."""

from __future__ import annotations

from apiserver.chain.request_info import LISTENER_KEY
from apiserver.chain.respond import ASGIApp, Receive, Scope, Send

__all__ = ["INSECURE", "SECURE", "Listener"]

INSECURE = "insecure"  # plain HTTP on --insecure-port: no authentication, no authorization (system:unsecured)
SECURE = "secure"  # TLS on --secure-port: the full chain


class Listener:
    """Marks every request of one server with the listener's name (`scope["tinykube.listener"]`)."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Mark HTTP and WebSocket requests, then pass everything on."""
        if scope["type"] != "lifespan":
            scope[LISTENER_KEY] = self.name
        await self.app(scope, receive, send)

    def __getattr__(self, name: str) -> object:
        # uvicorn and the shutdown handler reach the app's `state` through the wrapper
        return getattr(self.app, name)
