"""The apiserver's request pipeline, one stage per module, in the order every request passes them
(upstream's DefaultBuildHandlerChain):

1. `request_info`   — what is asked: the one `RequestContext` (path, verb, audit ID, deadline)
2. `panic`          — a crash below is a 500 Status, not a dropped connection
3. `authentication` — who is asking (x509, tokens, …; anonymous; the insecure port's superuser)
4. `impersonation`  — acting as another user, when asked and allowed
5. `max_inflight`   — overload protection: 429 past --max-requests-inflight
6. `audit`          — the audit log, as --audit-policy-file says
7. `authorization`  — may this user do this (403 otherwise)
8. the handler      — the FastAPI app: discovery, health, and every resource verb

Every route passes through it: resource and non-resource paths, watches, pods/log, and the exec
WebSocket. Admission and the write path's steps come after, in the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from apiserver.audit.policy import Policy
from apiserver.authn import Authenticator
from apiserver.authz import Authorizer
from apiserver.chain.audit import Audit
from apiserver.chain.authentication import Authentication
from apiserver.chain.authorization import Authorization
from apiserver.chain.impersonation import Impersonation, Impersonator
from apiserver.chain.max_inflight import MaxInFlight
from apiserver.chain.panic import PanicRecovery
from apiserver.chain.request_info import RequestInfoStage
from apiserver.chain.respond import ASGIApp, Receive, Scope, Send

__all__ = ["ChainOptions", "HandlerChain", "build_handler_chain"]


@dataclass(frozen=True)
class ChainOptions:
    """What the chain's stages are built with."""

    authenticators: Sequence[Authenticator] = ()
    anonymous: bool = True
    impersonator: Impersonator | None = None
    max_requests_inflight: int = 400
    max_mutating_requests_inflight: int = 200
    audit_policy: Policy | None = None
    audit_emit: Callable[[dict[str, Any]], None] | None = None
    authorizers: Sequence[Authorizer] = field(default_factory=tuple)
    request_timeout: float = 60.0


def build_handler_chain(handler: ASGIApp, options: ChainOptions) -> ASGIApp:
    """Wrap `handler` in the stages, innermost first (so a request meets them in the order above)."""
    app: ASGIApp = Authorization(handler, options.authorizers)
    if options.audit_policy is not None and options.audit_emit is not None:
        app = Audit(app, options.audit_policy, options.audit_emit)
    app = MaxInFlight(app, options.max_requests_inflight, options.max_mutating_requests_inflight)
    app = Impersonation(app, options.impersonator)
    app = Authentication(app, options.authenticators, options.anonymous)
    app = PanicRecovery(app)
    return RequestInfoStage(app, options.request_timeout)


class HandlerChain:
    """The chain as a Starlette middleware (`app.add_middleware(HandlerChain, options=...)`):
    HTTP and WebSocket requests go through it, the lifespan goes straight to the app."""

    def __init__(self, app: ASGIApp, options: ChainOptions) -> None:
        self.app = app
        self.chain = build_handler_chain(app, options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send requests through the chain."""
        if scope["type"] in ("http", "websocket"):
            await self.chain(scope, receive, send)
        else:
            await self.app(scope, receive, send)
