"""Request bodies in (JSON, YAML, Kubernetes protobuf) and JSON responses out."""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from starlette.responses import Response

from apimachinery.errors import StatusError, bad_request, unsupported_media_type

__all__ = ["decode_body", "json_response", "media_type", "status_response", "wants_table"]

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml")
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header."""
    return (content_type or JSON).split(";", 1)[0].strip().lower() or JSON


def _yaml_load(raw: bytes) -> Any:
    return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def decode_body(raw: bytes, content_type: str | None, allowed: tuple[str, ...] = ()) -> Any:
    """Parse a request body by its media type; 400 when malformed, 415 when unknown."""
    mt = media_type(content_type)
    if allowed and mt not in allowed:
        raise unsupported_media_type(mt)
    if not raw.strip():
        raise bad_request("the request body is empty")
    try:
        if mt == PROTOBUF:
            from apiserver.protobuf import decode_protobuf

            return decode_protobuf(raw)
        if mt in YAML_TYPES:
            return _yaml_load(raw)
        if mt in (JSON, "*/*") or mt in PATCH_TYPES:
            return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise bad_request(f"couldn't decode the request body as JSON: {e}") from e
    except yaml.YAMLError as e:
        raise bad_request(f"couldn't decode the request body as YAML: {e}") from e
    except ValueError as e:
        raise bad_request(f"couldn't decode the request body: {e}") from e
    raise unsupported_media_type(mt)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response encoded with orjson."""
    return Response(orjson.dumps(obj), status_code=status, media_type=JSON, headers=headers)


def status_response(err: StatusError) -> Response:
    """A `Status` error response."""
    headers = {}
    retry = err.details.get("retryAfterSeconds") if err.details else None
    if retry and err.code in (429, 503, 504):
        headers["Retry-After"] = str(retry)
    return json_response(err.to_status(), err.code, headers)


def wants_table(accept: str | None) -> bool:
    """Whether the client asked for a meta.k8s.io Table (`kubectl get`)."""
    if not accept:
        return False
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if "as=Table" in params:
            return True
    return False
