"""Bearer tokens (`Authorization: Bearer <token>`), as upstream's bearertoken authenticator over a union of
token authenticators: the static token file and ServiceAccount JWTs. A request that carries a bearer
token which no token authenticator accepts is a 401 — it never falls through to anonymous.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from apimachinery.errors import StatusError
from apiserver.context import RequestContext, UserInfo

__all__ = [
    "AUTHENTICATED",
    "BearerTokenAuthenticator",
    "TokenAuthenticator",
    "TokenError",
    "TokenResult",
    "TokenUnion",
    "bearer_token",
    "unauthorized",
]

log = logging.getLogger("apiserver.authn")

AUTHENTICATED = "system:authenticated"


def unauthorized() -> StatusError:
    """The 401 every failed authentication gets: no detail for the caller (the log has it)."""
    return StatusError(401, "Unauthorized", "Unauthorized")


class TokenError(Exception):
    """A token that its authenticator recognises and rejects; str() is upstream's reason (for logs and
    TokenReview's `status.error`)."""


@dataclass(frozen=True)
class TokenResult:
    """An accepted token: who it is, and the audiences it was found valid for."""

    user: UserInfo
    audiences: tuple[str, ...] = ()


class TokenAuthenticator(Protocol):
    """One kind of bearer token."""

    async def authenticate_token(self, token: str, audiences: Sequence[str]) -> TokenResult | None:
        """The result, None when the token is not of this kind (or unknown); raise TokenError when it is
        of this kind and invalid. `audiences`: what the caller must be valid for (empty: the API's own)."""
        ...


def bearer_token(ctx: RequestContext) -> str | None:
    """The bearer token of a request; None without one ("" for an empty one)."""
    auth = (ctx.headers.get("authorization") or "").strip()
    if not auth:
        return None
    parts = auth.split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def with_authenticated(user: UserInfo) -> UserInfo:
    """The user with `system:authenticated` added, as upstream's AuthenticatedGroupAdder does."""
    if AUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED), user.extra)


class TokenUnion:
    """Token authenticators tried in order; the first to accept wins (upstream's union)."""

    def __init__(self, authenticators: Sequence[TokenAuthenticator]) -> None:
        self.authenticators = list(authenticators)

    async def authenticate_token(self, token: str, audiences: Sequence[str] = ()) -> TokenResult:
        """The accepted token; TokenError with every authenticator's reason otherwise."""
        reasons: list[str] = []
        if token:
            for a in self.authenticators:
                try:
                    result = await a.authenticate_token(token, audiences)
                except TokenError as e:
                    reasons.append(str(e))
                    continue
                if result is not None:
                    return TokenResult(with_authenticated(result.user), result.audiences)
        reasons.insert(0, "invalid bearer token")
        raise TokenError(reasons[0] if len(reasons) == 1 else "[" + ", ".join(reasons) + "]")


class BearerTokenAuthenticator:
    """The request authenticator for `Authorization: Bearer`."""

    def __init__(self, tokens: TokenUnion) -> None:
        self.tokens = tokens

    async def authenticate(self, ctx: RequestContext) -> UserInfo | None:
        """The token's user; None without a bearer token; 401 for a token nobody accepts."""
        token = bearer_token(ctx)
        if token is None:
            return None
        try:
            return (await self.tokens.authenticate_token(token)).user
        except TokenError as e:
            log.info("unable to authenticate the request: %s", e)
            raise unauthorized() from None
