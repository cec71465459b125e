"""Impersonation (`kubectl --as`, `--as-group`, `--as-uid`): acting as another user, when allowed.

As k8s.io/apiserver's filters.WithImpersonation, right after authentication: the headers
`Impersonate-User`, `Impersonate-Group` (repeatable), `Impersonate-Uid` and `Impersonate-Extra-<key>`
each need the `impersonate` verb on users / groups / serviceaccounts (a `system:serviceaccount:ns:name`
user) / uids / userextras/<key>, asked of the apiserver's authorizers as the real user; the first
refusal is a 403 in upstream's words. The impersonated user gets `system:authenticated` (or, for
system:anonymous, `system:unauthenticated`) unless the groups already say, and a ServiceAccount
without explicit groups gets its fixed ones. `ctx.user` becomes the impersonated user and
`ctx.authenticated_user` keeps the real one; the headers are removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import unquote

from apimachinery import errors
from apiserver.authz import Attributes, Authorizer, Verdict
from apiserver.authz.messages import forbidden
from apiserver.authz.union import authorize
from apiserver.context import RequestContext, UserInfo

__all__ = ["ImpersonationCheck", "impersonate", "impersonation_headers"]

USER = "impersonate-user"
GROUP = "impersonate-group"
UID = "impersonate-uid"
EXTRA_PREFIX = "impersonate-extra-"
SA_PREFIX = "system:serviceaccount:"
AUTHENTICATED, UNAUTHENTICATED, ANONYMOUS = "system:authenticated", "system:unauthenticated", "system:anonymous"
AUTHN_GROUP = "authentication.k8s.io"


def _values(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def impersonation_headers(headers: Iterable[tuple[str, str | Sequence[str]]]) -> list[tuple[str, str]]:
    """The impersonation headers among (name, value) pairs, names lower-cased, one pair per value."""
    out: list[tuple[str, str]] = []
    for name, value in headers:
        key = name.lower()
        if key in (USER, GROUP, UID) or key.startswith(EXTRA_PREFIX):
            out += [(key, v) for v in _values(value)]
    return out


def _split_sa(name: str) -> tuple[str, str] | None:
    """serviceaccount.SplitUsername: (namespace, name) of `system:serviceaccount:<ns>:<name>`."""
    if not name.startswith(SA_PREFIX):
        return None
    parts = name[len(SA_PREFIX) :].split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


async def impersonate(
    ctx: RequestContext,
    authorizers: Sequence[Authorizer],
    headers: Iterable[tuple[str, str | Sequence[str]]] | None = None,
) -> None:
    """Switch `ctx.user` to the impersonated user, or raise 403 (not allowed) / 500 (groups without a user).

    `headers` are the request's (name, value) pairs with repeated headers kept (default: `ctx.headers`).
    """
    requests = impersonation_headers(headers if headers is not None else ctx.headers.items())
    if not requests:
        return
    requestor = ctx.user
    if requestor is None:
        raise errors.internal_error("no user found for request")
    user_values = [v for k, v in requests if k == USER and v]
    if not user_values:
        asked = ", ".join(f"{k}={v}" for k, v in requests)
        raise errors.internal_error(f"requested [{asked}] without impersonating a user")
    groups_specified = any(k == GROUP for k, _ in requests)

    username, uid = "", ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    checks: list[Attributes] = []
    requested = user_values[0]
    sa = _split_sa(requested)
    if sa is not None:
        username = requested
        checks.append(Attributes(requestor, "impersonate", True, sa[0], "", "", "serviceaccounts", "", sa[1]))
        if not groups_specified:
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{sa[0]}"]
    else:
        username = requested
        checks.append(Attributes(requestor, "impersonate", True, "", "", "", "users", "", requested))
    for key, value in requests:
        if key == GROUP:
            groups.append(value)
            checks.append(Attributes(requestor, "impersonate", True, "", "", "", "groups", "", value))
        elif key.startswith(EXTRA_PREFIX):
            extra_key = unquote(key[len(EXTRA_PREFIX) :])
            extra.setdefault(extra_key, []).append(value)
            checks.append(
                Attributes(requestor, "impersonate", True, "", AUTHN_GROUP, "v1", "userextras", extra_key, value)
            )
        elif key == UID and value and not uid:
            uid = value
            checks.append(Attributes(requestor, "impersonate", True, "", AUTHN_GROUP, "v1", "uids", "", value))

    for attrs in checks:
        decision = await authorize(authorizers, attrs)
        if decision.verdict is not Verdict.ALLOW:
            raise forbidden(attrs, decision.reason)

    if username != ANONYMOUS:
        if AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups.append(UNAUTHENTICATED)

    ctx.authenticated_user = requestor
    ctx.user = UserInfo(name=username, uid=uid, groups=tuple(groups), extra={k: tuple(v) for k, v in extra.items()})
    for key in [k for k in ctx.headers if k.lower() in (USER, GROUP, UID) or k.lower().startswith(EXTRA_PREFIX)]:
        del ctx.headers[key]


def _request_headers(ctx: RequestContext) -> list[tuple[str, str]]:
    """The request's headers with repeated ones kept: from the connection when the chain has it; from
    `ctx.headers` otherwise, where repeated headers arrive joined by commas (RFC 9110 §5.3)."""
    conn = getattr(ctx, "conn", None)
    if conn is not None:
        return [(k.lower(), v) for k, v in conn.headers.items()]
    out: list[tuple[str, str]] = []
    for name, value in ctx.headers.items():
        if name.lower() == GROUP:
            out += [(name, v.strip()) for v in value.split(",") if v.strip()]
        else:
            out.append((name, value))
    return out


class ImpersonationCheck:
    """The chain's Impersonator: checks the `impersonate` verb with the apiserver's authorizers."""

    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self.authorizers = authorizers

    async def impersonate(self, ctx: RequestContext) -> UserInfo:
        """The impersonated user (also left in `ctx.user`); raise a StatusError to refuse."""
        await impersonate(ctx, self.authorizers, _request_headers(ctx))
        assert ctx.user is not None
        return ctx.user
