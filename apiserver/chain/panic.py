"""Panic recovery (upstream's WithPanicRecovery): a handler that crashes is logged once and
answered with a 500 Status; if it had already started its answer, the exception goes no further,
so the server keeps the connection instead of dropping it."""

from __future__ import annotations

import logging

from apimachinery import errors
from apiserver.chain.respond import ASGIApp, Receive, Scope, Send, send_status
from apiserver.context import context_of

__all__ = ["PanicRecovery"]

log = logging.getLogger("apiserver")


class PanicRecovery:
    """Turns an unhandled exception into a 500 InternalError."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the rest of the chain; answer 500 if it crashes."""
        try:
            await self.app(scope, receive, send)
        except Exception as e:
            log.exception("unhandled error serving %s %s", scope.get("method", "WEBSOCKET"), scope.get("path"))
            if not context_of(scope).has_responded():
                await send_status(scope, receive, send, errors.internal_error(type(e).__name__))
