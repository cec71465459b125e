"""Impersonation: acting as another user (`Impersonate-User`, `Impersonate-Group`,
`Impersonate-Uid`, `Impersonate-Extra-*` headers; upstream's WithImpersonation), right after
authentication.

The stage runs only when a request carries an impersonation header. Checking the `impersonate`
verb and swapping the user is the `Impersonator` given to it (RBAC's part of the security work
provides one; see `apiserver.security`); without one the headers are ignored, as they have no
effect when every request is allowed anyway.
"""

from __future__ import annotations

from typing import Protocol

from apimachinery.errors import StatusError
from apiserver.chain.respond import ASGIApp, Receive, Scope, Send, send_status
from apiserver.context import RequestContext, UserInfo, context_of

__all__ = ["IMPERSONATION_HEADERS", "Impersonation", "Impersonator", "wants_impersonation"]

IMPERSONATION_HEADERS = ("impersonate-user", "impersonate-group", "impersonate-uid")
_EXTRA_PREFIX = "impersonate-extra-"
_PREFIX = "impersonate-"  # what every impersonation header starts with


class Impersonator(Protocol):
    """Decides whether `ctx.authenticated_user` may act as the user the headers name."""

    async def impersonate(self, ctx: RequestContext) -> UserInfo:
        """The impersonated user; raise a StatusError (403, as upstream) to refuse."""
        ...


def wants_impersonation(ctx: RequestContext) -> bool:
    """Whether the request carries any impersonation header."""
    for name in ctx.headers:  # one pass, no generator: every secure request asks this
        if name.startswith(_PREFIX) and (name in IMPERSONATION_HEADERS or name.startswith(_EXTRA_PREFIX)):
            return True
    return False


class Impersonation:
    """Replaces `ctx.user` by the impersonated user (keeping the real one in `ctx.authenticated_user`)."""

    def __init__(self, app: ASGIApp, impersonator: Impersonator | None = None) -> None:
        self.app = app
        self.impersonator = impersonator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Impersonate when asked to and allowed, then run the rest of the chain."""
        if self.impersonator is not None:
            ctx = context_of(scope)
            if not ctx.insecure and wants_impersonation(ctx):
                try:
                    ctx.user = await self.impersonator.impersonate(ctx)
                except StatusError as e:
                    await send_status(scope, receive, send, e)
                    return
        await self.app(scope, receive, send)
