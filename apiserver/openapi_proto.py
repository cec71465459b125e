"""The OpenAPI v2 document as gnostic's `openapi.v2.Document` protobuf message, as kube-openapi serves it.

kubectl asks `/openapi/v2` for `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (the
client-side validator and `kubectl explain`'s fallback). Field numbers are those of
github.com/google/gnostic-models `openapiv2/OpenAPIv2.proto`. JSON objects keyed by name
(paths, definitions, properties, responses) are repeated `Named*` pairs in document order;
`x-` keys are `NamedAny` vendor extensions whose `Any` carries the value as YAML text, which is
how gnostic parses a document and how kube-openapi's readers take extensions back.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any

import orjson
import yaml

from apimachinery.protowire import length_delimited, varint

__all__ = ["MEDIA_TYPE", "document_bytes", "encode_document", "wants_protobuf"]

MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"  # what kube-openapi answers with
# kubectl asks for the deprecated `@v1.0` form, which Go's mime.ParseMediaType cannot parse as a Content-Type
ACCEPTED = (MEDIA_TYPE, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")


def wants_protobuf(accept: str | None) -> bool:
    """Whether the client asks for the protobuf document before (or instead of) JSON."""
    for part in (accept or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ACCEPTED:
            return True
        if media in ("application/json", "*/*", "application/*"):
            return False
    return False


# --------------------------------------------------------------------------- wire writer


def _bytes(number: int, payload: bytes) -> bytes:
    return length_delimited(number, payload)


def _str(number: int, value: Any) -> bytes:
    return _bytes(number, str(value).encode()) if value not in (None, "") else b""


def _bool(number: int, value: Any) -> bytes:
    return varint(number << 3) + b"\x01" if value is True else b""


def _int(number: int, value: Any) -> bytes:
    return varint(number << 3) + varint(int(value)) if isinstance(value, int) and not isinstance(value, bool) else b""


def _double(number: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return b""
    return varint(number << 3 | 1) + struct.pack("<d", float(value))


def _strs(number: int, values: Any) -> bytes:
    return b"".join(_bytes(number, str(v).encode()) for v in values or ())


def _any(value: Any) -> bytes:
    """gnostic Any: the value as YAML text (field 2)."""
    return _bytes(2, yaml.safe_dump(value, default_flow_style=False, allow_unicode=True).encode())


def _named_any(number: int, name: str, value: Any) -> bytes:
    return _bytes(number, _str(1, name) + _bytes(2, _any(value)))


def _extensions(number: int, node: dict[str, Any]) -> bytes:
    return b"".join(_named_any(number, k, v) for k, v in node.items() if k.startswith("x-"))


# --------------------------------------------------------------------------- messages


def _schema(node: dict[str, Any]) -> bytes:
    """openapi.v2.Schema."""
    out = _str(1, node.get("$ref")) + _str(2, node.get("format")) + _str(3, node.get("title"))
    out += _str(4, node.get("description"))
    if "default" in node:
        out += _bytes(5, _any(node["default"]))
    out += _double(6, node.get("multipleOf")) + _double(7, node.get("maximum"))
    out += _bool(8, node.get("exclusiveMaximum")) + _double(9, node.get("minimum"))
    out += _bool(10, node.get("exclusiveMinimum")) + _int(11, node.get("maxLength")) + _int(12, node.get("minLength"))
    out += _str(13, node.get("pattern")) + _int(14, node.get("maxItems")) + _int(15, node.get("minItems"))
    out += _bool(16, node.get("uniqueItems")) + _int(17, node.get("maxProperties"))
    out += _int(18, node.get("minProperties")) + _strs(19, node.get("required"))
    out += b"".join(_bytes(20, _any(v)) for v in node.get("enum") or ())
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out += _bytes(21, _bytes(1, _schema(extra)))
    elif isinstance(extra, bool):
        out += _bytes(21, varint(2 << 3) + varint(int(extra)))
    kind = node.get("type")
    if kind:
        out += _bytes(22, _strs(1, kind if isinstance(kind, list) else [kind]))
    items = node.get("items")
    if isinstance(items, dict):
        items = [items]
    if isinstance(items, list):
        out += _bytes(23, b"".join(_bytes(1, _schema(i)) for i in items if isinstance(i, dict)))
    out += b"".join(_bytes(24, _schema(s)) for s in node.get("allOf") or () if isinstance(s, dict))
    props = node.get("properties")
    if isinstance(props, dict):
        out += _bytes(25, b"".join(_bytes(1, _str(1, k) + _bytes(2, _schema(v))) for k, v in props.items()))
    out += _str(26, node.get("discriminator")) + _bool(27, node.get("readOnly"))
    if "example" in node:
        out += _bytes(30, _any(node["example"]))
    return out + _extensions(31, node)


def _non_body_parameter(node: dict[str, Any]) -> bytes:
    """openapi.v2.NonBodyParameter: query (3) or path (4) parameters (header 1 and formData 2 alike)."""
    where = node.get("in")
    common = _bool(1, node.get("required")) + _str(2, where) + _str(3, node.get("description"))
    common += _str(4, node.get("name"))
    if where == "query" or where == "formData":
        sub = common + _bool(5, node.get("allowEmptyValue")) + _str(6, node.get("type")) + _str(7, node.get("format"))
        if "uniqueItems" in node:
            sub += _bool(20, node.get("uniqueItems"))
        sub += _extensions(23, node)
        return _bytes(3 if where == "query" else 2, sub)
    sub = common + _str(5, node.get("type")) + _str(6, node.get("format")) + _extensions(22, node)
    return _bytes(4 if where == "path" else 1, sub)


def _parameters_item(node: dict[str, Any]) -> bytes:
    """openapi.v2.ParametersItem: a parameter or a $ref."""
    if "$ref" in node:
        return _bytes(2, _str(1, node["$ref"]) + _str(2, node.get("description")))
    if node.get("in") == "body":
        body = _str(1, node.get("description")) + _str(2, node.get("name")) + _str(3, "body")
        body += _bool(4, node.get("required"))
        if isinstance(node.get("schema"), dict):
            body += _bytes(5, _schema(node["schema"]))
        return _bytes(1, _bytes(1, body + _extensions(6, node)))
    return _bytes(1, _bytes(2, _non_body_parameter(node)))


def _responses(node: dict[str, Any]) -> bytes:
    """openapi.v2.Responses."""
    out = b""
    for code, resp in node.items():
        if code.startswith("x-") or not isinstance(resp, dict):
            continue
        if "$ref" in resp:
            value = _bytes(2, _str(1, resp["$ref"]))
        else:
            body = _str(1, resp.get("description"))
            if isinstance(resp.get("schema"), dict):
                body += _bytes(2, _bytes(1, _schema(resp["schema"])))
            value = _bytes(1, body + _extensions(5, resp))
        out += _bytes(1, _str(1, code) + _bytes(2, value))
    return out + _extensions(2, node)


def _operation(node: dict[str, Any]) -> bytes:
    """openapi.v2.Operation."""
    out = _strs(1, node.get("tags")) + _str(2, node.get("summary")) + _str(3, node.get("description"))
    out += _str(5, node.get("operationId")) + _strs(6, node.get("produces")) + _strs(7, node.get("consumes"))
    out += b"".join(_bytes(8, _parameters_item(p)) for p in node.get("parameters") or () if isinstance(p, dict))
    if isinstance(node.get("responses"), dict):
        out += _bytes(9, _responses(node["responses"]))
    out += _strs(10, node.get("schemes")) + _bool(11, node.get("deprecated"))
    return out + _extensions(13, node)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(node: dict[str, Any]) -> bytes:
    """openapi.v2.PathItem."""
    out = _str(1, node.get("$ref"))
    for method, number in _METHODS.items():
        if isinstance(node.get(method), dict):
            out += _bytes(number, _operation(node[method]))
    out += b"".join(_bytes(9, _parameters_item(p)) for p in node.get("parameters") or () if isinstance(p, dict))
    return out + _extensions(10, node)


def encode_document(doc: dict[str, Any]) -> bytes:
    """openapi.v2.Document from the JSON form of a Swagger 2.0 document."""
    out = _str(1, doc.get("swagger"))
    info = doc.get("info") or {}
    out += _bytes(2, _str(1, info.get("title")) + _str(2, info.get("version")) + _str(3, info.get("description")))
    out += _str(3, doc.get("host")) + _str(4, doc.get("basePath")) + _strs(5, doc.get("schemes"))
    out += _strs(6, doc.get("consumes")) + _strs(7, doc.get("produces"))
    paths = doc.get("paths") or {}
    body = _extensions(1, paths)
    body += b"".join(
        _bytes(2, _str(1, p) + _bytes(2, _path_item(item)))
        for p, item in paths.items()
        if not p.startswith("x-") and isinstance(item, dict)
    )
    out += _bytes(8, body)
    definitions = doc.get("definitions") or {}
    out += _bytes(9, b"".join(_bytes(1, _str(1, k) + _bytes(2, _schema(v))) for k, v in definitions.items()))
    return out + _extensions(16, doc)


_cache: dict[str, bytes] = {}


def document_bytes(build_json: Callable[[], bytes]) -> bytes:
    """The protobuf form of the JSON document `build_json` gives, encoded once per distinct document."""
    body = build_json()
    key = hashlib.sha256(body).hexdigest()
    if key not in _cache:
        _cache.clear()
        _cache[key] = encode_document(orjson.loads(body))
    return _cache[key]
