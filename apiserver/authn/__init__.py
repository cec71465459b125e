"""Authentication: who is asking. Authenticators are tried in order; the first that recognises the
request's credential decides. A credential that an authenticator recognises but rejects (bad
signature, expired token) is a 401, never a fall-through to anonymous.
"""

from __future__ import annotations

from typing import Protocol

from apiserver.context import RequestContext, UserInfo

__all__ = ["ANONYMOUS", "Authenticator"]

ANONYMOUS = UserInfo(name="system:anonymous", groups=("system:unauthenticated",))


class Authenticator(Protocol):
    """One way of proving identity (x509 client certificates, bearer tokens, ServiceAccount JWTs)."""

    async def authenticate(self, ctx: RequestContext) -> UserInfo | None:
        """The user, None when the request carries no credential of this kind; raise
        `apimachinery.errors.StatusError(401, "Unauthorized", …)` for a credential of this kind that fails."""
        ...
