"""What one API request is about, built once at the start of the handler chain and carried through
it: the parsed path, the verb, the authenticated user, the audit ID and the deadline.

Upstream keeps these in the request's context (`request.WithRequestInfo`, `request.WithUser`,
`audit.WithAuditID`); here they are one object, so no stage threads loose arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apiserver.request_info import RequestInfo

__all__ = ["RequestContext", "UserInfo"]


@dataclass(frozen=True)
class UserInfo:
    """An authenticated (or anonymous) identity, as upstream's `user.Info`."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The `UserInfo` object of the authentication API (TokenReview, SelfSubjectReview, audit)."""
        out: dict[str, Any] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


@dataclass
class RequestContext:
    """One request's facts, filled in by the chain's stages in order.

    `info` is None for non-resource paths (`/healthz`, `/version`, discovery); `verb` is the
    Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection, or the
    lower-cased HTTP method for non-resource paths); `user` is set by authentication (the
    impersonated user once impersonation has run, with the real one in `authenticated_user`).
    """

    method: str
    path: str
    verb: str
    info: RequestInfo | None
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    peer_cert_der: bytes | None = None  # the TLS client certificate, when the client sent one
    user: UserInfo | None = None
    authenticated_user: UserInfo | None = None
    audit_id: str = ""
    deadline: float | None = None  # time.monotonic() by which the request must be done
    annotations: dict[str, str] = field(default_factory=dict)  # e.g. authorization.k8s.io/decision

    @property
    def is_resource_request(self) -> bool:
        """Whether the path addresses a resource (as opposed to /healthz, /version, discovery…)."""
        return self.info is not None and bool(self.info.resource)
