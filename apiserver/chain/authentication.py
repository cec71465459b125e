"""Authentication: who is asking (upstream's WithAuthentication).

The authenticators of `apiserver.security.build_authenticators` are tried in order; the first that
recognises the request's credential decides. None recognising it makes the request anonymous
(`system:anonymous`, unless anonymous requests are turned off: then 401). A credential that is
recognised but rejected is a 401 Status. Requests on the insecure port skip all this and run as
upstream's insecure-port superuser `system:unsecured` (group `system:masters`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from apimachinery.errors import StatusError
from apiserver.authn import ANONYMOUS, Authenticator
from apiserver.chain.respond import ASGIApp, Receive, Scope, Send, send_status
from apiserver.context import RequestContext, UserInfo, context_of

__all__ = ["AUTHENTICATED_GROUP", "UNSECURED", "Authentication", "unauthorized"]

log = logging.getLogger("apiserver.authn")

AUTHENTICATED_GROUP = "system:authenticated"
UNSECURED = UserInfo(name="system:unsecured", groups=("system:masters", AUTHENTICATED_GROUP))


def unauthorized() -> StatusError:
    """401 Unauthorized, as upstream answers any failed authentication (no detail leaks)."""
    return StatusError(401, "Unauthorized", "Unauthorized")


def _with_authenticated_group(user: UserInfo) -> UserInfo:
    """Every authenticated user is in system:authenticated (upstream's AuthenticatedGroupAdder)."""
    if AUTHENTICATED_GROUP in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED_GROUP), user.extra)


class Authentication:
    """Sets `ctx.user` (and `ctx.authenticated_user`) or answers 401."""

    def __init__(self, app: ASGIApp, authenticators: Sequence[Authenticator], anonymous: bool = True) -> None:
        self.app = app
        self.authenticators = tuple(authenticators)
        self.anonymous = anonymous

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate, then run the rest of the chain as that user."""
        ctx = context_of(scope)
        if ctx.insecure:
            user: UserInfo | None = UNSECURED
        else:
            try:
                user = await self.authenticate(ctx)
            except StatusError as e:
                await send_status(scope, receive, send, e)
                return
            if user is None:
                await send_status(scope, receive, send, unauthorized())
                return
        ctx.user = ctx.authenticated_user = user
        await self.app(scope, receive, send)

    async def authenticate(self, ctx: RequestContext) -> UserInfo | None:
        """The user of the first authenticator that recognises the request; anonymous (or None) else."""
        for authenticator in self.authenticators:
            try:
                user = await authenticator.authenticate(ctx)
            except StatusError:
                raise
            except Exception:
                log.exception("authenticator %s failed", type(authenticator).__name__)
                raise unauthorized() from None
            if user is not None:
                return _with_authenticated_group(user)
        return ANONYMOUS if self.anonymous else None
