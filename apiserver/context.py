"""What one API request is about, built once at the start of the handler chain and carried through
it: the parsed path, the verb, the authenticated user, the audit ID and the deadline.

Upstream keeps these in the request's context (`request.WithRequestInfo`, `request.WithUser`,
`audit.WithAuditID`); here they are one object, so no stage threads loose arguments.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apiserver.request_info import RequestInfo

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from apimachinery.httpcycle import ResponseCycle
    from apimachinery.resources import ResourceInfo
    from apiserver.registry import Registry

__all__ = ["CONTEXT_KEY", "UNDECODED", "RequestContext", "UserInfo", "context_of"]

# Where the chain keeps the request's context in the ASGI scope.
CONTEXT_KEY = "tinykube.context"

UNDECODED: Any = type("Undecoded", (), {"__repr__": lambda self: "UNDECODED"})()
"""`RequestContext.decoded_body` when the body is still to be read and decoded."""


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
    insecure: bool = False  # came in on the insecure port: full access as system:unsecured
    long_running: bool = False  # watch, proxy, exec/attach/log/portforward (no in-flight limit, no deadline)
    responded: bool = False  # a response message went out (set by request_info's send): too late for a Status
    # the apiserver's own server's response cycle (apiserver/httpcycle.py), which says so instead
    response_cycle: ResponseCycle | None = None
    # set by the handler entry point (the app's routes), for the handlers below it:
    conn: HTTPConnection | None = None  # the Starlette Request (or WebSocket): body, headers, client
    registry: Registry | None = None
    resource: ResourceInfo | None = None  # the resolved resource of a resource request
    # set by the layer serving a version by conversion (apiserver/versions.py) for the handler below it:
    body_bytes: bytes | None = None  # the body to read in place of the connection's
    decoded_body: Any = UNDECODED  # a create's body already decoded (and converted): taken as it is
    answer_object: bool = False  # answer an object unencoded (codec.ObjectResponse), for that layer to convert
    fields_checked: bool = False  # that layer checked the body's fields (fieldValidation) in the version written

    def has_responded(self) -> bool:
        """Whether a response message went out: then it is too late to answer with a Status."""
        return self.responded or (self.response_cycle is not None and self.response_cycle.response_started)

    @property
    def is_resource_request(self) -> bool:
        """Whether the path addresses a resource (as opposed to /healthz, /version, discovery…)."""
        return self.info is not None and bool(self.info.resource)

    @property
    def namespace(self) -> str | None:
        """The request's namespace when the resolved resource is namespaced, else None."""
        if self.info is None or self.resource is None or not self.resource.namespaced:
            return None
        return self.info.namespace or None

    @property
    def name(self) -> str:
        """The object name of the path ("" for collections)."""
        return self.info.name if self.info is not None else ""

    @property
    def subresource(self) -> str:
        """The subresource of the path ("" for the main resource)."""
        return self.info.subresource if self.info is not None else ""

    async def body(self) -> bytes:
        """The request body (read once, then cached by Starlette)."""
        from starlette.requests import ClientDisconnect, Request

        if self.body_bytes is not None:
            return self.body_bytes
        conn = self.conn
        if not isinstance(conn, Request):
            return b""
        if hasattr(conn, "_body") or conn._stream_consumed:
            return await conn.body()
        # Starlette's body() reads through an async generator (about 4 µs a write): the messages are read here,
        # and the body kept where Starlette keeps it, so its own body() gives it to any later reader
        chunks: list[bytes] = []
        while True:
            message = await conn.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        conn._stream_consumed = True
        body = conn._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return body

    def header(self, name: str, default: str | None = None) -> str | None:
        """A request header by its lower-case name."""
        return self.headers.get(name, default)


def context_of(scope: MutableMapping[str, Any]) -> RequestContext:
    """The context the chain built for this request (KeyError outside the chain)."""
    ctx: RequestContext = scope[CONTEXT_KEY]
    return ctx
