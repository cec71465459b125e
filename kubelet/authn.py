"""Who a request to the kubelet's server comes from, as upstream's kubelet (its delegating authenticator)
finds out: the TLS client certificate (`--client-ca-file`; CN the user, each O a group), else a bearer
token the apiserver vouches for in a TokenReview (`--authentication-token-webhook`; answers cached for
`--authentication-token-webhook-cache-ttl`), else `system:anonymous` when `--anonymous-auth` allows it.

A credential that is presented and does not hold is refused even when anonymous requests are allowed
(upstream's fail-on-error union); a request without any is anonymous or refused.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apimachinery.clientcert import ClientCertificates
from apimachinery.tlsserving import peer_certificate
from client.rest import ApiClient
from kubelet.ttlcache import TTLCache

__all__ = ["ANONYMOUS", "AUTHENTICATED", "Authenticator", "TokenReviewer", "Unauthenticated", "User", "bearer_token"]

log = logging.getLogger("kubelet.auth")

AUTHENTICATED = "system:authenticated"
TOKEN_CACHE_TTL = 120.0  # upstream's --authentication-token-webhook-cache-ttl default (2m0s)


@dataclass(frozen=True)
class User:
    """An authenticated (or anonymous) caller, as upstream's user.Info."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    def authenticated(self) -> User:
        """This user in `system:authenticated` (upstream's AuthenticatedGroupAdder)."""
        if AUTHENTICATED in self.groups:
            return self
        return User(self.name, self.uid, (*self.groups, AUTHENTICATED), self.extra)


ANONYMOUS = User("system:anonymous", groups=("system:unauthenticated",))


class Unauthenticated(Exception):
    """A presented credential that does not hold; str() says why (for the log, never the caller)."""


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The bearer token of `Authorization: Bearer <token>`; None without one."""
    parts = (headers.get("authorization") or "").strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


class TokenReviewer:
    """Bearer tokens checked by the apiserver (TokenReview), answers kept `ttl` seconds."""

    def __init__(self, api: ApiClient, ttl: float = TOKEN_CACHE_TTL, cache: TTLCache[User | bool] | None = None):
        self.api = api
        self.ttl = ttl
        self._cache: TTLCache[User | bool] = cache or TTLCache()

    async def user(self, token: str) -> User:
        """The token's user; Unauthenticated when the apiserver does not vouch for it (or cannot be asked)."""
        key = hashlib.sha256(token.encode()).digest()
        hit = self._cache.get(key)
        if isinstance(hit, User):
            return hit
        if hit is False:
            raise Unauthenticated("token not authenticated (cached)")
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            answer = await self.api.create("tokenreviews", review)
        except Exception as e:  # not cached: the next request asks again
            raise Unauthenticated(f"TokenReview failed: {e}") from e
        status: dict[str, Any] = answer.get("status") or {}
        if not status.get("authenticated"):
            self._cache.put(key, False, self.ttl)
            raise Unauthenticated(status.get("error") or "token not authenticated")
        info = status.get("user") or {}
        user = User(
            name=str(info.get("username", "")),
            uid=str(info.get("uid", "")),
            groups=tuple(info.get("groups") or ()),
            extra={k: tuple(v or ()) for k, v in (info.get("extra") or {}).items()},
        ).authenticated()
        self._cache.put(key, user, self.ttl)
        return user


class Authenticator:
    """The kubelet server's authenticator: client certificate, then bearer token, then anonymous."""

    def __init__(
        self,
        *,
        certificates: ClientCertificates | None = None,
        tokens: TokenReviewer | None = None,
        anonymous: bool = True,
    ) -> None:
        self.certificates = certificates
        self.tokens = tokens
        self.anonymous = anonymous

    async def authenticate(self, scope: Mapping[str, Any], headers: Mapping[str, str]) -> User | None:
        """The caller; None when nobody is (401). Raises Unauthenticated for a credential that does not hold."""
        problems: list[str] = []
        der = peer_certificate(dict(scope)) if self.certificates is not None else None
        if der and self.certificates is not None:
            try:
                found = self.certificates.user(der)
            except ValueError as e:
                problems.append(f"verifying certificate: {e}")
            else:
                if found is not None:
                    return User(found[0], groups=found[1]).authenticated()
        token = bearer_token(headers) if self.tokens is not None else None
        if token and self.tokens is not None:
            try:
                return await self.tokens.user(token)
            except Unauthenticated as e:
                problems.append(str(e))
        if problems:
            raise Unauthenticated("; ".join(problems))
        return ANONYMOUS if self.anonymous else None
