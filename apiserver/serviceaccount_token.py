"""`POST …/serviceaccounts/NAME/token`: the TokenRequest subresource (`kubectl create token NAME`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from apimachinery import errors
from apimachinery.resources import ResourceInfo
from apiserver.authn.serviceaccount import RegistryGetter
from apiserver.codec import decode_body, json_response
from apiserver.registry import Registry

__all__ = ["TokenSubresource"]


class TokenSubresource:
    """Signs a ServiceAccount token as asked (audiences, expirationSeconds, boundObjectRef); never stored."""

    verbs = ("create",)

    async def serve(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        verb: str,
        params: dict[str, str],
    ) -> Response:
        """Answer a create with 201 and the TokenRequest with its status.token; other verbs 405."""
        if verb != "create":
            raise errors.method_not_allowed()
        issuer = request.app.state.identity.issuer
        if issuer is None:  # no --service-account-signing-key-file: upstream does not serve the subresource
            raise errors.path_not_found()
        body = decode_body(await request.body(), request.headers.get("content-type"))
        answer, warnings = await issuer.request(RegistryGetter(reg), ns or "", name, body)
        response = json_response(answer, 201)
        for w in warnings:
            response.headers.append("Warning", f'299 - "{w}"')
        return response
