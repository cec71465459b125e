"""What a request to the kubelet's server asks to do, and whether its caller may, as upstream's kubelet
decides (pkg/kubelet/server/auth.go): every path is the node itself — resource `nodes`, name the node's,
verb from the HTTP method — and the path picks the subresource: `/stats` → stats, `/metrics` → metrics,
`/logs` → log, `/checkpoint` → checkpoint, anything else (containerLogs, exec, attach, portForward,
run…) → proxy; `/pods`, `/runningpods`, `/healthz`, `/configz` and `/statusz` are asked as their own
subresource first, then as proxy (KubeletFineGrainedAuthz). A WebSocket upgrade (exec) is `create`
whatever its method, so `get nodes/proxy` does not open a shell.

`--authorization-mode AlwaysAllow` allows everything; `Webhook` asks the apiserver with a
SubjectAccessReview, caching allowed answers for `--authorization-webhook-cache-authorized-ttl` and
the others for `--authorization-webhook-cache-unauthorized-ttl`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from client.rest import ApiClient
from kubelet.authn import User
from kubelet.ttlcache import TTLCache

__all__ = [
    "AUTHORIZATION_MODES",
    "AlwaysAllow",
    "Attributes",
    "Authorizer",
    "SubjectAccessReviewer",
    "request_attributes",
]

AUTHORIZATION_MODES = ("AlwaysAllow", "Webhook")
ALLOWED_TTL = 300.0  # upstream's --authorization-webhook-cache-authorized-ttl default (5m0s)
DENIED_TTL = 30.0  # upstream's --authorization-webhook-cache-unauthorized-ttl default (30s)

_VERBS = {"POST": "create", "GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# paths asked as their own subresource before proxy (KubeletFineGrainedAuthz, on by default upstream)
_FINE_GRAINED = (("/pods", "pods"), ("/healthz", "healthz"), ("/configz", "configz"), ("/statusz", "statusz"))
_SUBRESOURCES = (("/stats/", "stats"), ("/metrics", "metrics"), ("/logs/", "log"), ("/checkpoint/", "checkpoint"))


@dataclass(frozen=True)
class Attributes:
    """One authorization question about a request to the kubelet: may `user` `verb` nodes/`subresource` `name`?"""

    user: User
    verb: str
    name: str
    subresource: str
    path: str
    resource: str = "nodes"


def _is_subpath(path: str, prefix: str) -> bool:
    """upstream's isSubpath: `path` is `prefix` (without its trailing slash) or below it."""
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def request_attributes(user: User, method: str, path: str, node: str, websocket: bool = False) -> list[Attributes]:
    """The questions a request asks, any one of which allowed lets it through (upstream's GetRequestAttributes)."""
    verb = "create" if websocket else _VERBS.get(method.upper(), "")
    subresources = [sub for prefix, sub in _FINE_GRAINED if _is_subpath(path, prefix)]
    if _is_subpath(path, "/runningpods/"):
        subresources.append("pods")
    subresources.append(next((sub for prefix, sub in _SUBRESOURCES if _is_subpath(path, prefix)), "proxy"))
    return [Attributes(user, verb, node, sub, path) for sub in subresources]


class Authorizer(Protocol):
    """Decides one question."""

    async def allowed(self, attrs: Attributes) -> bool:
        """Whether the caller may; raise when it cannot be decided (the request gets a 500)."""
        ...


class AlwaysAllow:
    """`--authorization-mode AlwaysAllow`: everyone may do everything."""

    async def allowed(self, attrs: Attributes) -> bool:
        """Yes."""
        return True


class SubjectAccessReviewer:
    """`--authorization-mode Webhook`: the apiserver decides (a SubjectAccessReview), answers cached."""

    def __init__(
        self,
        api: ApiClient,
        allowed_ttl: float = ALLOWED_TTL,
        denied_ttl: float = DENIED_TTL,
        cache: TTLCache[bool] | None = None,
    ) -> None:
        self.api = api
        self.allowed_ttl = allowed_ttl
        self.denied_ttl = denied_ttl
        self._cache: TTLCache[bool] = cache or TTLCache()

    @staticmethod
    def review_spec(attrs: Attributes) -> dict[str, object]:
        """The SubjectAccessReview's spec for a question (empty fields left out, as upstream's webhook does)."""
        user = attrs.user
        spec: dict[str, object] = {
            "resourceAttributes": {
                "verb": attrs.verb,
                "version": "v1",
                "resource": attrs.resource,
                "subresource": attrs.subresource,
                "name": attrs.name,
            },
            "user": user.name,
            "groups": list(user.groups),
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra.items()}
        return spec

    async def allowed(self, attrs: Attributes) -> bool:
        """The apiserver's answer (or the cached one)."""
        spec = self.review_spec(attrs)
        key = json.dumps(spec, sort_keys=True)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        answer = await self.api.create("subjectaccessreviews", review)
        allowed = bool((answer.get("status") or {}).get("allowed"))
        self._cache.put(key, allowed, self.allowed_ttl if allowed else self.denied_ttl)
        return allowed
