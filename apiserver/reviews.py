"""Create-only kinds (the reviews): answered in the response, never stored, as upstream's rest.Creater
storages of authentication.k8s.io and authorization.k8s.io. Each kind registers one answer function here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response

from apimachinery import errors
from apiserver import typecheck
from apiserver.authn.reviews import self_subject_review, token_review
from apiserver.authz.reviews import serve_access_review
from apiserver.codec import decode_body, json_response
from apiserver.context import RequestContext

__all__ = ["REVIEWS", "serve_review"]

Answer = Callable[[RequestContext, Any], Awaitable[dict[str, Any]]]


async def _token_review(ctx: RequestContext, body: Any) -> dict[str, Any]:
    assert ctx.conn is not None
    return await token_review(ctx.conn.app.state.identity.tokens, body)


async def _self_subject_review(ctx: RequestContext, body: Any) -> dict[str, Any]:
    assert ctx.user is not None
    return self_subject_review(ctx.user, body)


REVIEWS: dict[tuple[str, str], Answer] = {
    ("authentication.k8s.io", "tokenreviews"): _token_review,
    ("authentication.k8s.io", "selfsubjectreviews"): _self_subject_review,
    ("authorization.k8s.io", "subjectaccessreviews"): serve_access_review,
    ("authorization.k8s.io", "localsubjectaccessreviews"): serve_access_review,
    ("authorization.k8s.io", "selfsubjectaccessreviews"): serve_access_review,
    ("authorization.k8s.io", "selfsubjectrulesreviews"): serve_access_review,
}


async def serve_review(ctx: RequestContext) -> Response:
    """Answer a create of a review kind with 201 and the review with its status; other verbs 405."""
    res = ctx.resource
    assert res is not None
    answer = REVIEWS.get((res.group, res.plural))
    if answer is None:
        raise errors.path_not_found()
    if ctx.verb != "create" or ctx.name:
        raise errors.method_not_allowed()
    body = decode_body(await ctx.body(), ctx.header("content-type"))
    typecheck.check_body(res, body)  # wrong JSON types are Go's decoder's 400, as for any create
    return json_response(await answer(ctx, body), 201)
