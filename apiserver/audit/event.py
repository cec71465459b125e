"""One request's audit record: the audit.k8s.io/v1 Events of its stages, as upstream builds them
(staging/src/k8s.io/apiserver/pkg/audit/request.go)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from apiserver.audit.policy import RuleResult
from apiserver.codec import decode_body
from apiserver.context import RequestContext

__all__ = ["AuditRecord", "micro_time"]

_MAX_CAPTURE = 16 * 1024 * 1024  # bodies larger than this are left out of requestObject/responseObject


def micro_time(ts: float) -> str:
    """A metav1.MicroTime: RFC 3339 with microseconds, UTC."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def source_ips(ctx: RequestContext, client: tuple[str, int] | None) -> list[str]:
    """X-Forwarded-For, then X-Real-Ip, then the peer address, without repeats (utilnet.SourceIPs)."""
    ips: list[str] = []
    forwarded = ctx.headers.get("x-forwarded-for", "")
    for part in forwarded.split(","):
        if part.strip():
            ips.append(part.strip())
    real = ctx.headers.get("x-real-ip", "").strip()
    if real:
        ips.append(real)
    if client:
        ips.append(client[0])
    return list(dict.fromkeys(ips))


def _object_ref(ctx: RequestContext) -> dict[str, str] | None:
    info = ctx.info
    if info is None or not info.resource:
        return None
    ref = {
        "resource": info.resource,
        "namespace": info.namespace,
        "name": info.name,
        "apiGroup": info.group,
        "apiVersion": info.version,
        "subresource": info.subresource,
    }
    return {k: v for k, v in ref.items() if v}


def _without_managed_fields(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    m = obj.get("metadata")
    if isinstance(m, dict) and "managedFields" in m:
        obj = {**obj, "metadata": {k: v for k, v in m.items() if k != "managedFields"}}
    items = obj.get("items")
    if isinstance(items, list):
        obj = {**obj, "items": [_without_managed_fields(i) for i in items]}
    return obj


class AuditRecord:
    """Collects what one request's audit events say, and emits them stage by stage."""

    def __init__(
        self,
        ctx: RequestContext,
        rule: RuleResult,
        scope: dict[str, Any] | Any,
        emit: Callable[[dict[str, Any]], None],
        received: float,
    ) -> None:
        self.ctx = ctx
        self.rule = rule
        self.emit_event = emit
        self.received = micro_time(received)
        query = scope.get("query_string", b"")
        self.uri = scope.get("path", "") + ("?" + query.decode("latin-1") if query else "")
        self.source_ips = source_ips(ctx, scope.get("client"))
        self.code = 0
        self.request_body = bytearray()
        self.response_body = bytearray()

    @property
    def wants_request_body(self) -> bool:
        """The request body is needed: for requestObject, or for the name a create gives in it."""
        return self.rule.at_least("Request") or (self.ctx.verb == "create" and not self.ctx.name)

    def wants_response_body(self, code: int) -> bool:
        """The response body is needed: a Status explaining an error, or responseObject."""
        return code >= 400 or (self.rule.at_least("RequestResponse") and not self.ctx.long_running)

    def capture_request(self, chunk: bytes) -> None:
        """Keep (part of) the request body."""
        if len(self.request_body) + len(chunk) <= _MAX_CAPTURE:
            self.request_body += chunk

    def capture_response(self, chunk: bytes) -> None:
        """Keep (part of) the response body."""
        if len(self.response_body) + len(chunk) <= _MAX_CAPTURE:
            self.response_body += chunk

    def emit(self, stage: str, now: float, status: dict[str, Any] | None = None) -> None:
        """Emit the event of `stage` unless the policy omits that stage."""
        if stage in self.rule.omit_stages:
            return
        self.emit_event(self.event(stage, now, status))

    def event(self, stage: str, now: float, status: dict[str, Any] | None = None) -> dict[str, Any]:
        """The audit.k8s.io/v1 Event of one stage."""
        ctx = self.ctx
        user = ctx.authenticated_user or ctx.user
        ev: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": self.rule.level,
            "auditID": ctx.audit_id,
            "stage": stage,
            "requestURI": self.uri,
            "verb": ctx.verb,
            "user": user.to_api() if user is not None else {},
        }
        if ctx.user is not None and user is not None and ctx.user is not user:
            ev["impersonatedUser"] = ctx.user.to_api()
        ev["sourceIPs"] = self.source_ips
        if "user-agent" in ctx.headers:
            ev["userAgent"] = ctx.headers["user-agent"]
        ref = _object_ref(ctx)
        request_object = self._request_object() if stage in ("ResponseComplete", "Panic") else None
        if ref is not None:
            if not ref.get("name") and isinstance(request_object, dict):
                name = (request_object.get("metadata") or {}).get("name")
                if isinstance(name, str) and name:
                    ref["name"] = name
            ev["objectRef"] = ref
        if status is None and stage != "RequestReceived":
            status = self._response_status()
        if status is not None:
            ev["responseStatus"] = status
        if request_object is not None and self.rule.at_least("Request"):
            ev["requestObject"] = self._trim(request_object)
        if stage == "ResponseComplete" and self.rule.at_least("RequestResponse"):
            response_object = self._response_object()
            if response_object is not None:
                ev["responseObject"] = self._trim(response_object)
        ev["requestReceivedTimestamp"] = self.received
        ev["stageTimestamp"] = micro_time(now)
        if ctx.annotations:
            ev["annotations"] = dict(ctx.annotations)
        return ev

    def _trim(self, obj: Any) -> Any:
        return _without_managed_fields(obj) if self.rule.omit_managed_fields else obj

    def _request_object(self) -> Any:
        if not self.request_body.strip():
            return None
        try:
            return decode_body(bytes(self.request_body), self.ctx.headers.get("content-type"))
        except Exception:
            return None  # undecodable: the handler answered 400 and the status says why

    def _response_object(self) -> Any:
        if not self.response_body:
            return None
        try:
            return orjson.loads(self.response_body)
        except orjson.JSONDecodeError:
            return None  # not JSON (logs, protobuf): left out

    def _response_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"metadata": {}}
        if self.code >= 400:
            obj = self._response_object()
            if isinstance(obj, dict) and obj.get("kind") == "Status":
                for key in ("status", "message", "reason", "details"):
                    if obj.get(key):
                        status[key] = obj[key]
        status["code"] = self.code
        return status
