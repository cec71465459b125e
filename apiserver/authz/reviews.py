"""authorization.k8s.io/v1 access reviews: create-only kinds answered in the response, never stored.

As pkg/registry/authorization: a SubjectAccessReview asks whether any user/groups may do something,
a LocalSubjectAccessReview the same inside the namespace of its URL, a SelfSubjectAccessReview
whether the requesting user may (`kubectl auth can-i`), and a SelfSubjectRulesReview lists what the
requesting user may do in a namespace (`kubectl auth can-i --list`). The answer comes from the
apiserver's own authorizers, so it is exactly what a real request would meet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apimachinery import errors
from apimachinery.errors import Cause
from apimachinery.validation import format_value, go_quote
from apiserver.authz import Attributes, Authorizer, Verdict
from apiserver.authz.rbac import aggregate_errors
from apiserver.authz.rules import Rule
from apiserver.authz.union import authorize, rules_for
from apiserver.context import RequestContext, UserInfo

__all__ = ["REVIEW_KINDS", "create_review", "serve_access_review"]

GROUP = "authorization.k8s.io"
REVIEW_KINDS = ("SubjectAccessReview", "LocalSubjectAccessReview", "SelfSubjectAccessReview", "SelfSubjectRulesReview")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _go_struct(name: str, value: dict[str, Any], fields: Sequence[str]) -> str:
    parts = ", ".join(f"{f[0].upper()}{f[1:]}:{go_quote(str(value.get(f) or ''))}" for f in fields)
    return f"authorization.{name}{{{parts}}}"


def _spec_causes(spec: dict[str, Any], subject: bool) -> list[Cause]:
    """ValidateSubjectAccessReviewSpec / ValidateSelfSubjectAccessReviewSpec."""
    causes: list[Cause] = []
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if res is not None and non is not None:
        shown = _go_struct("NonResourceAttributes", _dict(non), ("path", "verb"))
        causes.append(
            Cause(
                "spec.nonResourceAttributes",
                f"Invalid value: {shown}: cannot be specified in combination with resourceAttributes",
            )
        )
    if res is None and non is None:
        causes.append(
            Cause(
                "spec.resourceAttributes",
                'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
            )
        )
    if subject and not spec.get("user") and not spec.get("groups"):
        user = format_value(spec.get("user") or "")
        causes.append(Cause("spec.user", f"Invalid value: {user}: at least one of user or group must be specified"))
    return causes


def _attributes(user: UserInfo, spec: dict[str, Any]) -> Attributes:
    """ResourceAttributesFrom / NonResourceAttributesFrom (an empty version matches all: `*`)."""
    res = spec.get("resourceAttributes")
    if isinstance(res, dict):
        return Attributes(
            user=user,
            verb=str(res.get("verb") or ""),
            resource_request=True,
            namespace=str(res.get("namespace") or ""),
            api_group=str(res.get("group") or ""),
            api_version=str(res.get("version") or "*"),
            resource=str(res.get("resource") or ""),
            subresource=str(res.get("subresource") or ""),
            name=str(res.get("name") or ""),
        )
    non = _dict(spec.get("nonResourceAttributes"))
    return Attributes(
        user=user, verb=str(non.get("verb") or ""), resource_request=False, path=str(non.get("path") or "")
    )


def _subject(spec: dict[str, Any]) -> UserInfo:
    extra = {str(k): tuple(str(x) for x in v) for k, v in _dict(spec.get("extra")).items() if isinstance(v, list)}
    groups = tuple(str(g) for g in spec.get("groups") or [] if isinstance(g, str))
    return UserInfo(name=str(spec.get("user") or ""), uid=str(spec.get("uid") or ""), groups=groups, extra=extra)


def _response(body: dict[str, Any], kind: str, status: dict[str, Any]) -> dict[str, Any]:
    meta = dict(_dict(body.get("metadata")))
    meta.setdefault("creationTimestamp", None)
    return {
        "kind": kind,
        "apiVersion": f"{GROUP}/v1",
        "metadata": meta,
        "spec": _dict(body.get("spec")),
        "status": status,
    }


async def _access_status(authorizers: Sequence[Authorizer], attrs: Attributes) -> dict[str, Any]:
    decision = await authorize(authorizers, attrs)
    status: dict[str, Any] = {"allowed": decision.verdict is Verdict.ALLOW}
    if decision.verdict is Verdict.DENY:
        status["denied"] = True
    if decision.reason:
        status["reason"] = decision.reason
    return status


def _resource_rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"verbs": list(rule.verbs)}
    for key, value in (
        ("apiGroups", rule.api_groups),
        ("resources", rule.resources),
        ("resourceNames", rule.resource_names),
    ):
        if value:
            out[key] = list(value)
    return out


def _non_resource_rule(rule: Rule) -> dict[str, Any]:
    return {"verbs": list(rule.verbs), "nonResourceURLs": list(rule.non_resource_urls)}


async def create_review(
    kind: str,
    body: Any,
    *,
    user: UserInfo | None,
    namespace: str,
    authorizers: Sequence[Authorizer],
) -> dict[str, Any]:
    """Answer one review (`kind` one of REVIEW_KINDS) for `user`, created in `namespace` (Local only)."""
    if not isinstance(body, dict):
        raise errors.bad_request(f"not a {kind}: {body!r}")
    spec = _dict(body.get("spec"))
    meta = _dict(body.get("metadata"))
    if kind == "SelfSubjectRulesReview":
        if user is None:
            raise errors.bad_request("no user present on request")
        target = str(spec.get("namespace") or "")
        if not target:
            raise errors.bad_request("no namespace on request")
        answer = rules_for(authorizers, user, target)
        status: dict[str, Any] = {
            "resourceRules": [_resource_rule(r) for r in answer.rules if r.resources],
            "nonResourceRules": [_non_resource_rule(r) for r in answer.rules if r.non_resource_urls],
            "incomplete": answer.incomplete,
        }
        if answer.errors:
            status["evaluationError"] = aggregate_errors(answer.errors)
        return _response(body, kind, status)

    if kind == "LocalSubjectAccessReview":
        if not namespace:
            raise errors.bad_request(f"namespace is required on this type: {namespace}")
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta = {**meta, "namespace": namespace}
        body = {**body, "metadata": meta}
    causes = _spec_causes(spec, subject=kind != "SelfSubjectAccessReview")
    if kind == "LocalSubjectAccessReview":
        res = spec.get("resourceAttributes")
        if isinstance(res, dict) and (res.get("namespace") or "") != namespace:
            causes.append(
                Cause(
                    "spec.resourceAttributes.namespace",
                    f"Invalid value: {go_quote(str(res.get('namespace') or ''))}: must match metadata.namespace",
                )
            )
        if spec.get("nonResourceAttributes") is not None:
            shown = _go_struct("NonResourceAttributes", _dict(spec["nonResourceAttributes"]), ("path", "verb"))
            causes.append(
                Cause("spec.nonResourceAttributes", f"Invalid value: {shown}: disallowed on this kind of request")
            )
    elif any(k not in ("managedFields", "creationTimestamp") and v for k, v in meta.items()):
        causes.append(Cause("metadata", "Invalid value: must be empty"))
    if causes:
        raise errors.invalid(kind, "", causes, GROUP)

    if kind == "SelfSubjectAccessReview":
        if user is None:
            raise errors.bad_request("no user present on request")
        subject = user
    else:
        subject = _subject(spec)
    return _response(body, kind, await _access_status(authorizers, _attributes(subject, spec)))


async def serve_access_review(ctx: RequestContext, body: Any) -> dict[str, Any]:
    """The create handler of the four review kinds: answered by the apiserver's own authorizers."""
    from apiserver.security import authorizers_of

    assert ctx.resource is not None and ctx.registry is not None
    namespace = ctx.info.namespace if ctx.info is not None else ""
    authorizers = authorizers_of(ctx.registry)
    return await create_review(ctx.resource.kind, body, user=ctx.user, namespace=namespace, authorizers=authorizers)
