"""Create-only kinds: a POST answered in the response and never stored (upstream's REST storages that
are only a `rest.Creater`: the access reviews, TokenReview, SelfSubjectReview).

The generic create handler looks the kind up here; each answer gets the request's context (its user,
namespace, registry) and the decoded body, and returns the object to send back with 201.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from apimachinery.resources import ResourceInfo
from apiserver.authz.reviews import serve_access_review
from apiserver.context import RequestContext

__all__ = ["ANSWERS", "Answer", "answer_for"]

Answer = Callable[[RequestContext, Any], Awaitable[dict[str, Any]]]

ANSWERS: dict[tuple[str, str], Answer] = {
    ("authorization.k8s.io", "SubjectAccessReview"): serve_access_review,
    ("authorization.k8s.io", "LocalSubjectAccessReview"): serve_access_review,
    ("authorization.k8s.io", "SelfSubjectAccessReview"): serve_access_review,
    ("authorization.k8s.io", "SelfSubjectRulesReview"): serve_access_review,
}


def answer_for(res: ResourceInfo) -> Answer | None:
    """How a create of this kind is answered, when the kind is create-only."""
    return ANSWERS.get((res.group, res.kind))
