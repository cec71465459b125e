"""The kubelet server's front door (upstream's InstallAuthFilter): every request is authenticated
(`kubelet/authn.py`) and authorized (`kubelet/authz.py`) before it reaches a handler; and the TLS the
server listens with.

Refusals are upstream's plain text: `401 Unauthorized` when nobody is authenticated, `403 Forbidden
(user=<user>, verb=<verb>, resource=nodes, subresource(s)=[<sub> …])` when no question is allowed, a
500 `Authorization error (…)` when the authorizer cannot be asked. A refused WebSocket upgrade gets the
same answer as an HTTP response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from apimachinery.clientcert import ClientCertificates, load_ca_bundle
from apimachinery.httpserver import ServingLimits, uvicorn_options
from apimachinery.tlsserving import tls_options
from client.rest import ApiClient
from kubelet.authn import TOKEN_CACHE_TTL, Authenticator, TokenReviewer, Unauthenticated
from kubelet.authz import (
    ALLOWED_TTL,
    AUTHORIZATION_MODES,
    DENIED_TTL,
    AlwaysAllow,
    Authorizer,
    SubjectAccessReviewer,
    request_attributes,
)

__all__ = ["KUBELET_LIMITS", "AuthFilter", "AuthOptions", "KubeletAuth", "ServingTLS", "serving_options"]

log = logging.getLogger("kubelet.auth")


@dataclass(frozen=True)
class ServingTLS:
    """`--tls-cert-file`, `--tls-private-key-file` and `--client-ca-file` of a kubelet server."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""

    def uvicorn_options(self) -> dict[str, Any]:
        """uvicorn.Config settings: HTTPS, client certificates asked for (the protocol shows them to the app)."""
        return tls_options(self.cert_file, self.key_file, self.client_ca_file)


# Upstream's kubelet server (ListenAndServeKubeletServer): MaxHeaderBytes 1 MiB, IdleTimeout 90 s, and a
# ReadTimeout of 4 hours, which is also its header timeout (no ReadHeaderTimeout); no bound on connections.
KUBELET_LIMITS = ServingLimits(header_timeout=4 * 3600.0, max_open_connections=0, max_connections_per_client=0)


def serving_options(tls: ServingTLS | None, limits: ServingLimits = KUBELET_LIMITS) -> dict[str, Any]:
    """uvicorn.Config settings of a kubelet server: the apiserver's HTTP protocol (`apimachinery/httpserver.py`)
    under `limits`, HTTPS given `tls`, no access log, lifespan or log configuration of uvicorn's own."""
    options = uvicorn_options(limits, tls=tls is not None) | (tls.uvicorn_options() if tls is not None else {})
    return options | {"log_config": None, "access_log": False, "lifespan": "off"}


@dataclass
class KubeletAuth:
    """Who may use a kubelet server: its authenticator and authorizer, and the node a request is about
    (by the address it came in on: one process may serve several simulated nodes)."""

    node_name: Callable[[str], str]
    authenticator: Authenticator = field(default_factory=Authenticator)
    authorizer: Authorizer = field(default_factory=AlwaysAllow)

    def filter(self, app: ASGIApp) -> AuthFilter:
        """`app` behind this authentication and authorization."""
        return AuthFilter(app, self)


@dataclass(frozen=True)
class AuthOptions:
    """The kubelet's serving and auth flags, upstream's names and defaults."""

    tls_cert_file: str = ""  # --tls-cert-file (none: plain HTTP)
    tls_private_key_file: str = ""  # --tls-private-key-file
    client_ca_file: str = ""  # --client-ca-file
    anonymous_auth: bool = True  # --anonymous-auth
    authentication_token_webhook: bool = False  # --authentication-token-webhook
    token_webhook_cache_ttl: float = TOKEN_CACHE_TTL  # --authentication-token-webhook-cache-ttl
    authorization_mode: str = "AlwaysAllow"  # --authorization-mode
    authorized_ttl: float = ALLOWED_TTL  # --authorization-webhook-cache-authorized-ttl
    unauthorized_ttl: float = DENIED_TTL  # --authorization-webhook-cache-unauthorized-ttl

    def check(self) -> None:
        """ValueError (naming the flag) for settings that cannot work; reads the client CA."""
        if bool(self.tls_cert_file) != bool(self.tls_private_key_file):
            raise ValueError("--tls-cert-file and --tls-private-key-file go together")
        if self.authorization_mode not in AUTHORIZATION_MODES:
            modes = ", ".join(AUTHORIZATION_MODES)
            raise ValueError(f"--authorization-mode: unknown mode {self.authorization_mode!r} (one of {modes})")
        if self.client_ca_file:
            load_ca_bundle(self.client_ca_file)

    def tls(self) -> ServingTLS | None:
        """How the server listens: TLS with the given certificate, None for plain HTTP."""
        if not self.tls_cert_file:
            return None
        return ServingTLS(self.tls_cert_file, self.tls_private_key_file, self.client_ca_file)

    def build(self, api: ApiClient, node_name: Callable[[str], str]) -> KubeletAuth:
        """The authenticator and authorizer these flags ask for, asking the apiserver through `api`."""
        certificates = ClientCertificates(load_ca_bundle(self.client_ca_file)) if self.client_ca_file else None
        tokens = TokenReviewer(api, self.token_webhook_cache_ttl) if self.authentication_token_webhook else None
        authorizer: Authorizer = AlwaysAllow()
        if self.authorization_mode == "Webhook":
            authorizer = SubjectAccessReviewer(api, self.authorized_ttl, self.unauthorized_ttl)
        authenticator = Authenticator(certificates=certificates, tokens=tokens, anonymous=self.anonymous_auth)
        return KubeletAuth(node_name, authenticator, authorizer)


def _text(message: str, code: int) -> Response:
    return Response(message, status_code=code, media_type="text/plain; charset=utf-8")


class AuthFilter:
    """ASGI middleware: authenticate, authorize, then the app."""

    def __init__(self, app: ASGIApp, auth: KubeletAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = await self._check(scope)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await refusal(scope, receive, send)
        else:
            ws = WebSocket(scope, receive, send)
            if "websocket.http.response" in (scope.get("extensions") or {}):
                await ws.send_denial_response(refusal)
            else:
                await ws.close()

    async def _check(self, scope: Scope) -> Response | None:
        """None when the request may go on, else the answer refusing it."""
        try:
            user = await self.auth.authenticator.authenticate(scope, Headers(scope=scope))
        except Unauthenticated as e:
            log.info("unable to authenticate the request: %s", e)
            user = None
        if user is None:
            return _text("Unauthorized", 401)
        server = scope.get("server")
        node = self.auth.node_name(str(server[0]) if server else "")
        method = scope.get("method", "GET")
        attrs = request_attributes(user, method, scope["path"], node, websocket=scope["type"] == "websocket")
        for a in attrs:
            try:
                if await self.auth.authorizer.allowed(a):
                    return None
            except Exception as e:
                what = f"user={user.name}, verb={a.verb}, resource={a.resource}, subresource={a.subresource}"
                msg = f"Authorization error ({what})"
                log.error("%s: %s", msg, e)
                return _text(msg, 500)
        subs = " ".join(a.subresource for a in attrs)
        log.info("Forbidden: user=%s verb=%s resource=nodes subresource(s)=[%s]", user.name, attrs[0].verb, subs)
        what = f"user={user.name}, verb={attrs[0].verb}, resource={attrs[0].resource}, subresource(s)=[{subs}]"
        return _text(f"Forbidden ({what})\n", 403)
