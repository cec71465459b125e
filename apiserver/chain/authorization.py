"""Authorization: may this user do this (upstream's WithAuthorization).

The authorizers of `apiserver.security.build_authorizers` are asked in order (a union: the first
ALLOW or DENY decides). Anything but ALLOW is a 403 Status in upstream's words; the decision and
its reason become the audit annotations `authorization.k8s.io/decision` and
`authorization.k8s.io/reason`. Requests on the insecure port are not authorized (full access).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from apimachinery import errors
from apiserver.authz import Attributes, Authorizer, Decision, Verdict, messages
from apiserver.authz.decisions import DecisionCache
from apiserver.authz.request import authorization_name, authorization_namespace
from apiserver.chain.respond import ASGIApp, Receive, Scope, Send, send_status
from apiserver.context import RequestContext, context_of

__all__ = ["DECISION_ANNOTATION", "REASON_ANNOTATION", "Authorization", "attributes_of", "forbidden_error"]

log = logging.getLogger("apiserver.authz")

DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"


def attributes_of(ctx: RequestContext) -> Attributes:
    """What the request asks, as the authorizers see it."""
    assert ctx.user is not None
    info = ctx.info
    if info is None or not info.resource:
        return Attributes(user=ctx.user, verb=ctx.verb, resource_request=False, path=ctx.path)
    return Attributes(
        user=ctx.user,
        verb=ctx.verb,
        resource_request=True,
        namespace=authorization_namespace(info),
        api_group=info.group,
        api_version=info.version,
        resource=info.resource,
        subresource=info.subresource,
        name=authorization_name(info, ctx.verb, ctx.query),
        path=ctx.path,
    )


async def authorize(authorizers: Sequence[Authorizer], attrs: Attributes) -> Decision:
    """The union of the authorizers: the first ALLOW or DENY; else NO_OPINION with every reason given."""
    reasons: list[str] = []
    for authorizer in authorizers:
        decision = await authorizer.authorize(attrs)
        if decision.verdict is not Verdict.NO_OPINION:
            return decision
        if decision.reason:
            reasons.append(decision.reason)
    return Decision(Verdict.NO_OPINION, "\n".join(reasons))


def forbidden_error(attrs: Attributes, reason: str = "") -> errors.StatusError:
    """The 403 of a refused request (upstream's responsewriters.Forbidden and forbiddenMessage)."""
    return messages.forbidden(attrs, reason)


class Authorization:
    """Lets allowed requests through; answers everything else with 403."""

    def __init__(self, app: ASGIApp, authorizers: Sequence[Authorizer]) -> None:
        self.app = app
        self.authorizers = tuple(authorizers)
        self.decisions = DecisionCache(self.authorizers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authorize, then run the handler."""
        ctx = context_of(scope)
        if ctx.insecure:
            await self.app(scope, receive, send)
            return
        decision, key, stamp = self.decisions.lookup(ctx)
        if decision is None:
            try:
                decision = await authorize(self.authorizers, attributes_of(ctx))
            except Exception as e:
                log.exception("authorizing %s %s", ctx.verb, ctx.path)
                ctx.annotations[REASON_ANNOTATION] = "internal error"
                await send_status(scope, receive, send, errors.internal_error(str(e) or type(e).__name__))
                return
            if key is not None and stamp is not None:
                self.decisions.keep(key, stamp, decision)
        if decision.verdict is Verdict.ALLOW:
            ctx.annotations[DECISION_ANNOTATION] = "allow"
            ctx.annotations[REASON_ANNOTATION] = decision.reason
            await self.app(scope, receive, send)
            return
        ctx.annotations[DECISION_ANNOTATION] = "forbid"
        ctx.annotations[REASON_ANNOTATION] = decision.reason
        await send_status(scope, receive, send, forbidden_error(attributes_of(ctx), decision.reason))
