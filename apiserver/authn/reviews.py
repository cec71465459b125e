"""TokenReview and SelfSubjectReview (authentication.k8s.io/v1): who a token is, who the caller is.
Both are create-only and never stored."""

from __future__ import annotations

from typing import Any

from apimachinery import errors
from apiserver.authn.bearer import TokenError, TokenUnion
from apiserver.context import UserInfo

__all__ = ["self_subject_review", "token_review"]

API_VERSION = "authentication.k8s.io/v1"


def _metadata(body: dict[str, Any]) -> dict[str, Any]:
    meta = dict(body.get("metadata") or {})
    meta["creationTimestamp"] = None
    return meta


async def token_review(tokens: TokenUnion, body: Any) -> dict[str, Any]:
    """Answer a TokenReview: whether `spec.token` authenticates, as whom and for which audiences."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body of a TokenReview must be a JSON object")
    spec = body.get("spec") or {}
    token = spec.get("token") or ""
    if not token:
        raise errors.bad_request("token is required for TokenReview in authentication")
    audiences = [str(a) for a in spec.get("audiences") or []]
    status: dict[str, Any] = {"user": {}}
    try:
        result = await tokens.authenticate_token(str(token), audiences)
    except TokenError as e:
        status["error"] = str(e)
    else:
        status = {"authenticated": True, "user": result.user.to_api(), "audiences": list(result.audiences)}
    meta = _metadata(body)
    return {"kind": "TokenReview", "apiVersion": API_VERSION, "metadata": meta, "spec": spec, "status": status}


def self_subject_review(user: UserInfo, body: Any = None) -> dict[str, Any]:
    """Answer a SelfSubjectReview: the caller's own user info (`kubectl auth whoami`)."""
    body = body if isinstance(body, dict) else {}
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": API_VERSION,
        "metadata": _metadata(body),
        "status": {"userInfo": user.to_api()},
    }
