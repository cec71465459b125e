"""Request bodies in (JSON, YAML, Kubernetes protobuf) and JSON responses out."""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from starlette.responses import Response

from apimachinery.errors import StatusError, bad_request, request_entity_too_large, unsupported_media_type
from apiserver import yamlcodec

__all__ = [
    "MAX_DEPTH",
    "ObjectResponse",
    "TooDeep",
    "check_depth",
    "decode_body",
    "encoded_response",
    "json_response",
    "media_type",
    "nests_within",
    "status_response",
    "wants_table",
]

JSON = "application/json"
_JSON_CONTENT_TYPE = (b"content-type", JSON.encode())
PROTOBUF = "application/vnd.kubernetes.protobuf"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml")
JSON_PATCH = "application/json-patch+json"
BODY_TYPES_WITHOUT_PROTOBUF = ("application/json", "application/yaml")
MAX_DEPTH = yamlcodec.MAX_DEPTH  # nested objects/arrays in a body (orjson writes at most 254)
MAX_JSON_PATCH_OPERATIONS = 10_000  # upstream's maxJSONPatchOperations
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header."""
    return (content_type or JSON).split(";", 1)[0].strip().lower() or JSON


def decode_body(raw: bytes, content_type: str | None, allowed: tuple[str, ...] = ()) -> Any:
    """Parse a request body by its media type; 400 when malformed, 415 when unknown.

    Bounded as upstream's decoders are: YAML aliasing as go-yaml counts it, nesting to MAX_DEPTH levels
    (orjson, which writes etcd and every response, cannot nest much deeper), JSON patches to
    MAX_JSON_PATCH_OPERATIONS operations (413).
    """
    mt = media_type(content_type)
    if allowed and mt not in allowed:
        raise unsupported_media_type(mt)
    if not raw.strip():
        raise bad_request("the request body is empty")
    try:
        if mt == PROTOBUF:
            from apiserver.protobuf import NoMessage, decode_protobuf

            try:
                return check_depth(decode_protobuf(raw))
            except NoMessage as e:  # a kind without a protobuf form: the media type, not the body, is wrong
                raise unsupported_media_type(mt, BODY_TYPES_WITHOUT_PROTOBUF) from e
        if mt in YAML_TYPES:
            return yamlcodec.load(raw, MAX_DEPTH)
        if mt in (JSON, "*/*") or mt in PATCH_TYPES:
            body = check_depth(orjson.loads(raw), raw)
            if mt == JSON_PATCH and isinstance(body, list) and len(body) > MAX_JSON_PATCH_OPERATIONS:
                raise request_entity_too_large(
                    f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(body)}"
                )
            return body
    except orjson.JSONDecodeError as e:
        if "depth limit exceeded" in str(e):  # orjson's own bound (1024) is deeper than ours
            raise bad_request(f"couldn't decode the request body: {_too_deep()}") from e
        raise bad_request(f"couldn't decode the request body as JSON: {e}") from e
    except (yaml.YAMLError, yamlcodec.YAMLBodyError) as e:
        raise bad_request(f"couldn't decode the request body as YAML: {e}") from e
    except (ValueError, RecursionError) as e:
        raise bad_request(f"couldn't decode the request body: {e}") from e
    raise unsupported_media_type(mt)


def _too_deep(max_depth: int = MAX_DEPTH) -> str:
    return f"exceeded max depth of {max_depth} nested objects and arrays"


class TooDeep(ValueError):
    """A decoded body nests more than MAX_DEPTH levels."""


def nests_within(raw: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether the JSON `raw` surely nests at most `max_depth` objects/arrays: it has no more brackets than that."""
    return raw.count(b"[") + raw.count(b"{") <= max_depth


def check_depth(value: Any, raw: bytes | None = None, max_depth: int = MAX_DEPTH) -> Any:
    """`value` itself, after checking it nests at most `max_depth` objects/arrays (TooDeep otherwise)."""
    if raw is not None and nests_within(raw, max_depth):
        return value  # cannot nest deeper than it has brackets
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth > max_depth:
            raise TooDeep(_too_deep(max_depth))
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))
    return value


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response encoded with orjson."""
    return encoded_response(orjson.dumps(obj), status, headers)


def encoded_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response of bytes already encoded."""
    if headers or status < 200 or status in (204, 304):
        return Response(body, status_code=status, media_type=JSON, headers=headers)
    # what Response.__init__ makes of it (the same attributes, headers in the same order), without its
    # general header handling: every API answer is one of these
    response = Response.__new__(Response)
    response.status_code = status
    response.media_type = JSON
    response.background = None
    response.body = body
    response.raw_headers = [(b"content-length", b"%d" % len(body)), _JSON_CONTENT_TYPE]
    return response


class ObjectResponse(Response):
    """A JSON answer not encoded yet: its object (`doc`), for the layer that asked for it to change before encoding
    it (a converted version's, apiserver/versions.py). Headers added to it (warnings) are kept; sent as it is, it
    is encoded then."""

    def __init__(self, doc: Any, status_code: int = 200) -> None:
        self.doc = doc
        self.status_code = status_code
        self.media_type = JSON
        self.background = None
        self.body = b""
        self.raw_headers: list[tuple[bytes, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Send it encoded, with the headers added to it."""
        encoded = json_response(self.doc, self.status_code)
        encoded.raw_headers.extend(self.raw_headers)
        await encoded(scope, receive, send)


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
