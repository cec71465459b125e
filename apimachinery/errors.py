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
    "generic_server_response",
    "gone",
    "internal_error",
    "invalid",
    "method_not_allowed",
    "method_not_supported",
    "not_acceptable",
    "not_found",
    "path_not_found",
    "service_unavailable",
    "status_details",
    "timeout",
    "too_large_resource_version",
    "too_many_requests",
    "unsupported_media_type",
]


# metav1.StatusDetails' fields in the order Go writes them (every one `omitempty`)
_DETAIL_ORDER = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")


@dataclass(frozen=True)
class Cause:
    """One field-level cause inside `details.causes` (a metav1.StatusCause)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        """Render as a StatusCause: `reason` (Go's `Type`), `message`, `field`, each left out when empty."""
        out = {"reason": self.reason, "message": self.message, "field": self.field}
        return {k: v for k, v in out.items() if v}

    def error(self) -> str:
        """The cause as field.Error's Error(): `<field>: <message>`."""
        return f"{self.field}: {self.message}"


@dataclass
class StatusError(Exception):
    """An error that the apiserver answers with a `Status` body and HTTP code."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    # upstream's generic answers (unknown path, method not allowed) carry `"details":{}` even when empty
    empty_details: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def to_status(self) -> dict[str, Any]:
        """Render as a metav1.Status dict, with the fields in Go's order and Go's `omitempty`."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
        }
        if self.message:
            status["message"] = self.message
        if self.reason:
            status["reason"] = self.reason
        details = status_details(self.details)
        if details or self.empty_details:
            status["details"] = details
        if self.code:
            status["code"] = self.code
        return status


def status_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """A StatusDetails dict in Go's field order, without empty fields."""
    if not details:
        return {}
    out = {k: details[k] for k in _DETAIL_ORDER if details.get(k)}
    out.update((k, v) for k, v in details.items() if k not in out and k not in _DETAIL_ORDER and v)
    return out


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "group": group, "kind": kind, **extra}


def _aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message as is, several deduplicated inside `[...]`."""
    if len(messages) == 1:
        return messages[0]
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    """404 NotFound (NewNotFound): `pods "x" not found`."""
    msg = f'{_qualified(resource, group)} "{name}" not found'
    return StatusError(404, "NotFound", msg, _details(name, group, resource))


def path_not_found() -> StatusError:
    """404 for an unknown path or group version, with empty details (NewGenericServerResponse)."""
    return StatusError(404, "NotFound", "the server could not find the requested resource", empty_details=True)


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    """409 AlreadyExists (NewAlreadyExists): `deployments.apps "x" already exists`."""
    msg = f'{_qualified(resource, group)} "{name}" already exists'
    return StatusError(409, "AlreadyExists", msg, _details(name, group, resource))


def conflict(resource: str, name: str, group: str = "", why: str = "") -> StatusError:
    """409 Conflict (NewConflict) on a stale resourceVersion (or another precondition)."""
    why = why or ("the object has been modified; please apply your changes to the latest version and try again")
    msg = f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}'
    return StatusError(409, "Conflict", msg, _details(name, group, resource))


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> StatusError:
    """422 Invalid (NewInvalid) with one cause per field problem; `kind` is the Kind (`Deployment`)."""
    msg = f'{_qualified(kind, group)} "{name}" is invalid'
    if causes:
        msg += ": " + _aggregate([c.error() for c in causes])
    details = _details(name, group, kind, causes=[c.to_dict() for c in causes])
    return StatusError(422, "Invalid", msg, details)


def bad_request(message: str) -> StatusError:
    """400 BadRequest (NewBadRequest)."""
    return StatusError(400, "BadRequest", message)


def forbidden(resource: str, name: str, why: str, group: str = "") -> StatusError:
    """403 Forbidden (NewForbidden): `namespaces "default" is forbidden: <why>`."""
    if not resource:
        msg = f"forbidden: {why}"
    elif not name:
        msg = f"{_qualified(resource, group)} is forbidden: {why}"
    else:
        msg = f'{_qualified(resource, group)} "{name}" is forbidden: {why}'
    return StatusError(403, "Forbidden", msg, _details(name, group, resource))


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> StatusError:
    """405 for a verb no route serves, with empty details (NewGenericServerResponse)."""
    return StatusError(405, "MethodNotAllowed", message, empty_details=True)


def method_not_supported(resource: str, action: str, group: str = "") -> StatusError:
    """405 MethodNotAllowed (NewMethodNotSupported): `create is not supported on resources of kind "x"`."""
    msg = f'{action} is not supported on resources of kind "{_qualified(resource, group)}"'
    return StatusError(405, "MethodNotAllowed", msg, {"group": group, "kind": resource})


def not_acceptable(message: str) -> StatusError:
    """406 NotAcceptable."""
    return StatusError(406, "NotAcceptable", message)


def unsupported_media_type(content_type: str, accepted: tuple[str, ...] = ()) -> StatusError:
    """415 UnsupportedMediaType; with `accepted`, upstream's NewUnsupportedMediaTypeError message."""
    if accepted:
        types = ", ".join(accepted)
        message = f"the body of the request was in an unknown format - accepted media types include: {types}"
    else:
        message = f"the body of the request was in an unknown format: {content_type}"
    return StatusError(415, "UnsupportedMediaType", message)


def expired(message: str) -> StatusError:
    """410 Gone, reason Expired (NewResourceExpired: too old resourceVersion or continue token)."""
    return StatusError(410, "Expired", message)


def gone(message: str) -> StatusError:
    """410 Gone, reason Gone (NewGone)."""
    return StatusError(410, "Gone", message)


def too_many_requests(message: str, retry_after: int = 1) -> StatusError:
    """429 TooManyRequests (NewTooManyRequests), telling the client when to retry."""
    return StatusError(429, "TooManyRequests", message, {"retryAfterSeconds": retry_after})


def internal_error(message: str) -> StatusError:
    """500 InternalError (NewInternalError): the error also as the one cause."""
    return StatusError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def service_unavailable(message: str) -> StatusError:
    """503 ServiceUnavailable (etcd unreachable); tinykube adds a retry hint."""
    return StatusError(503, "ServiceUnavailable", message, {"retryAfterSeconds": 1})


def timeout(message: str, retry_after: int) -> StatusError:
    """504 Timeout (NewTimeoutError): `Timeout: <message>`."""
    return StatusError(504, "Timeout", f"Timeout: {message}", {"retryAfterSeconds": retry_after})


def too_large_resource_version(wanted: int, current: int) -> StatusError:
    """504: a read or watch asked for a resourceVersion the store has not reached (after waiting)."""
    err = timeout(f"Too large resource version: {wanted}, current: {current}", 1)
    err.details["causes"] = [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
    return err


_GENERIC = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be processing the request",
    ),
}


def generic_server_response(code: int, resource: str, name: str, server_message: str, group: str = "") -> StatusError:
    """NewGenericServerResponse: a backend's (the kubelet's) non-2xx answer in the apiserver's words."""
    reason, message = _GENERIC.get(code, ("", ""))
    if code in (403, 406, 415):
        reason = {403: "Forbidden", 406: "NotAcceptable", 415: "UnsupportedMediaType"}[code]
        message = server_message
    elif not reason and code >= 500:
        reason = "InternalError"
        message = f'an error on the server ("{server_message}") has prevented the request from succeeding'
    elif not reason:
        reason, message = (
            "Unknown",
            f"the server responded with the status code {code} but did not return more information",
        )
    if resource and name:
        message = f"{message} ( {_qualified(resource, group)} {name})"
    elif resource:
        message = f"{message} ( {_qualified(resource, group)})"
    return StatusError(code, reason, message, _details(name, group, resource), empty_details=True)


def request_entity_too_large(message: str) -> StatusError:
    """413 RequestEntityTooLarge (NewRequestEntityTooLargeError): `Request entity too large: <message>`."""
    return StatusError(413, "RequestEntityTooLarge", f"Request entity too large: {message}")
