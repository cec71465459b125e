"""`POST …/serviceaccounts/NAME/token`: the TokenRequest subresource (`kubectl create token NAME`)."""

from __future__ import annotations

from starlette.responses import Response

from apimachinery import errors
from apiserver.admission import AdmissionAttributes
from apiserver.authn.serviceaccount import RegistryGetter
from apiserver.codec import decode_body, json_response
from apiserver.context import RequestContext

__all__ = ["TokenSubresource"]


class TokenSubresource:
    """Signs a ServiceAccount token as asked (audiences, expirationSeconds, boundObjectRef); never stored.

    The TokenRequest goes through admission as a create of `serviceaccounts/token`, as upstream's
    (NodeRestriction lets a kubelet ask only for tokens bound to its own pods)."""

    verbs = ("create",)
    response_kind = ("authentication.k8s.io", "v1", "TokenRequest")

    async def serve(self, ctx: RequestContext) -> Response:
        """Answer a create with 201 and the TokenRequest with its status.token; other verbs 405."""
        if ctx.verb != "create":
            raise errors.method_not_allowed()
        assert ctx.conn is not None and ctx.registry is not None and ctx.resource is not None
        issuer = ctx.conn.app.state.identity.issuer
        if issuer is None:  # no --service-account-signing-key-file: upstream does not serve the subresource
            raise errors.path_not_found()
        reg, namespace = ctx.registry, ctx.namespace or ""
        body = decode_body(await ctx.body(), ctx.header("content-type"))
        if not isinstance(body, dict):
            raise errors.bad_request("the body of a TokenRequest must be a JSON object")
        attrs = AdmissionAttributes("CREATE", ctx.resource, "token", namespace, ctx.name, body, None, ctx.user)
        await reg.admission.admit(attrs, reg)
        await reg.admission.validate(attrs, reg)
        answer, warnings = await issuer.request(RegistryGetter(reg), namespace, ctx.name, body)
        response = json_response(answer, 201)
        for w in warnings:
            response.headers.append("Warning", f'299 - "{w}"')
        return response
