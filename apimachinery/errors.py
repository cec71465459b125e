"""API errors as Kubernetes `Status` objects (metav1.Status), raised as exceptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Cause",
    "StatusError",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "forbidden",
    "internal_error",
    "invalid",
    "method_not_allowed",
    "not_acceptable",
    "not_found",
    "path_not_found",
    "service_unavailable",
    "too_large_resource_version",
    "too_many_requests",
    "unsupported_media_type",
]


@dataclass(frozen=True)
class Cause:
    """One field-level cause inside `details.causes`."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        """Render as a StatusCause (`type` serializes as `reason`)."""
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class StatusError(Exception):
    """An error that the apiserver answers with a `Status` body and HTTP code."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def to_status(self) -> dict[str, Any]:
        """Render as a metav1.Status dict."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name} if name else {}
    if group:
        details["group"] = group
    details["kind"] = kind
    details.update(extra)
    return details


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    """404 NotFound: `pods "x" not found`."""
    msg = f'{_qualified(resource, group)} "{name}" not found'
    return StatusError(404, "NotFound", msg, _details(name, group, resource))


def path_not_found() -> StatusError:
    """404 for an unknown path or group version, with empty details."""
    return StatusError(404, "NotFound", "the server could not find the requested resource")


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    """409 AlreadyExists."""
    msg = f'{_qualified(resource, group)} "{name}" already exists'
    return StatusError(409, "AlreadyExists", msg, _details(name, group, resource))


def conflict(resource: str, name: str, group: str = "", why: str = "") -> StatusError:
    """409 Conflict on a stale resourceVersion (or another precondition)."""
    why = why or ("the object has been modified; please apply your changes to the latest version and try again")
    msg = f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}'
    return StatusError(409, "Conflict", msg, _details(name, group, resource))


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> StatusError:
    """422 Invalid with one cause per field problem."""
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    msg = f'{_qualified(kind, group)} "{name}" is invalid: {summary}'
    details = _details(name, group, kind, causes=[c.to_dict() for c in causes])
    return StatusError(422, "Invalid", msg, details)


def bad_request(message: str) -> StatusError:
    """400 BadRequest."""
    return StatusError(400, "BadRequest", message)


def forbidden(message: str) -> StatusError:
    """403 Forbidden."""
    return StatusError(403, "Forbidden", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> StatusError:
    """405 MethodNotAllowed."""
    return StatusError(405, "MethodNotAllowed", message)


def not_acceptable(message: str) -> StatusError:
    """406 NotAcceptable."""
    return StatusError(406, "NotAcceptable", message)


def unsupported_media_type(content_type: str) -> StatusError:
    """415 UnsupportedMediaType."""
    return StatusError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format: {content_type}",
    )


def expired(message: str) -> StatusError:
    """410 Gone, reason Expired (too old resourceVersion or continue token)."""
    return StatusError(410, "Expired", message)


def too_many_requests(message: str, retry_after: int = 1) -> StatusError:
    """429 TooManyRequests."""
    return StatusError(429, "TooManyRequests", message, {"retryAfterSeconds": retry_after})


def internal_error(message: str) -> StatusError:
    """500 InternalError."""
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def service_unavailable(message: str) -> StatusError:
    """503 ServiceUnavailable (etcd unreachable)."""
    return StatusError(503, "ServiceUnavailable", message, {"retryAfterSeconds": 1})


def too_large_resource_version(wanted: int, current: int) -> StatusError:
    """504: a read or watch asked for a resourceVersion the store has not reached (after waiting)."""
    return StatusError(
        504,
        "Timeout",
        f"Too large resource version: {wanted}, current: {current}",
        {
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
    )
