"""The words of an authorization denial, as k8s.io/apiserver's responsewriters.Forbidden writes them.

`forbidden_message` is forbiddenMessage (`User "x" cannot list resource "pods" in API group "" in the
namespace "ns"`, the cluster-scope, subresource and non-resource-path forms); `forbidden` wraps it the
way Forbidden does: the authorizers' reason after a colon, inside apierrors.NewForbidden for the
request's group and resource (so a named request reads `pods "p" is forbidden: …`).
"""

from __future__ import annotations

from apimachinery import errors
from apimachinery.validation import go_quote
from apiserver.authz import Attributes

__all__ = ["forbidden", "forbidden_message"]


def forbidden_message(attrs: Attributes) -> str:
    """forbiddenMessage: who cannot do what, where."""
    user = go_quote(attrs.user.name if attrs.user else "")
    if not attrs.resource_request:
        return f"User {user} cannot {attrs.verb} path {go_quote(attrs.path)}"
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    what = f"User {user} cannot {attrs.verb} resource {go_quote(resource)} in API group {go_quote(attrs.api_group)}"
    if attrs.namespace:
        return f"{what} in the namespace {go_quote(attrs.namespace)}"
    return f"{what} at the cluster scope"


def _sanitize(text: str) -> str:
    """responsewriters' sanitizer: the request's own words are HTML-escaped (&, <, >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def forbidden(attrs: Attributes, reason: str = "") -> errors.StatusError:
    """The 403 Status of a denied request; `reason` is what the authorizers said (may be empty)."""
    message = _sanitize(forbidden_message(attrs))
    if reason:
        message = f"{message}: {reason}"
    err = errors.forbidden(attrs.resource, attrs.name, message, attrs.api_group)
    err.empty_details = True  # NewForbidden always sets details, so an empty one is written as {}
    return err
