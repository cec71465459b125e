"""`--anonymous-auth`: whoever showed no credential is `system:anonymous` in `system:unauthenticated`."""

from __future__ import annotations

from apiserver.authn import ANONYMOUS
from apiserver.context import RequestContext, UserInfo

__all__ = ["AnonymousAuthenticator"]


class AnonymousAuthenticator:
    """Last in the chain: everyone left is anonymous."""

    async def authenticate(self, ctx: RequestContext) -> UserInfo | None:
        """Always the anonymous user."""
        return ANONYMOUS
