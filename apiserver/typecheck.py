"""JSON types checked against the kind's schema, as decoding into upstream's Go structs checks them.

kube-apiserver decodes every body into the kind's Go struct first, so a string where a list belongs
never reaches defaulting, admission or validation: the client gets
`400 Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct
field PodSpec.spec.containers of type []v1.Container` for a create or update, and
`422 … patch: Invalid value: "…": json: cannot unmarshal …` when a patch produced the wrong type.
`first_type_error` walks a decoded object along the served OpenAPI schema and words the first mismatch
the way encoding/json does. JSON null is accepted anywhere (Go leaves the zero value), and a declared
field given as null is dropped on the way, as decoding into the struct and encoding it again would.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from typing import Any

import orjson

from apimachinery import errors
from apimachinery.resources import ResourceInfo
from apiserver import openapi
from apiserver.codec import MAX_DEPTH, TooDeep, check_depth

__all__ = ["SchemaNode", "check_body", "check_patched", "first_type_error", "schema_node"]

# Types whose JSON is free-form: runtime.RawExtension and apiextensions' JSON hold any value.
_ANY = (
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
)
_INT_RANGES = {"int32": (-(1 << 31), (1 << 31) - 1), "int64": (-(1 << 63), (1 << 63) - 1)}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array"


def _ref_name(schema: dict[str, Any]) -> str | None:
    for _ in range(3):
        if "$ref" in schema:
            return str(schema["$ref"]).rsplit("/", 1)[-1]
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
            schema = all_of[0]
        else:
            return None
    return None


def _go_name(definition: str) -> str:
    """`io.k8s.api.core.v1.Container` → `v1.Container` (package and type, as reflect prints it)."""
    parts = definition.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 else definition


def _go_type(schema: dict[str, Any]) -> str:
    ref = _ref_name(schema)
    if ref is not None:
        return _go_name(ref)
    t = schema.get("type")
    if t == "array":
        return "[]" + _go_type(schema.get("items") or {})
    if t == "object":
        extra = schema.get("additionalProperties")
        return "map[string]" + (_go_type(extra) if isinstance(extra, dict) else "interface {}")
    if t == "integer":
        return str(schema.get("format") or "int")
    if t == "number":
        return "float64"
    if t == "boolean":
        return "bool"
    if t == "string":
        return "[]uint8" if schema.get("format") == "byte" else "string"
    return "interface {}"


class _Mismatch(Exception):
    """The first mismatch. For a value of the wrong JSON type (`struct` given) `path` collects the field names
    on the way out, innermost first: a walk that finds nothing wrong builds no paths."""

    def __init__(self, message: str, struct: str | None = None, go_type: str = "") -> None:
        super().__init__(message)
        self.detail = message  # the whole message, or with `struct` what the value is ("string", "number 1.5")
        self.struct, self.go_type = struct, go_type
        self.path: list[str] = []

    @property
    def message(self) -> str:
        """encoding/json's wording, naming the Go struct field of the value when it has one."""
        if self.struct is None:
            return self.detail
        target = f"Go struct field {self.struct}.{'.'.join(reversed(self.path))}" if self.path else "Go value"
        return f"json: cannot unmarshal {self.detail} into {target} of type {self.go_type}"


def _fail(value: Any, schema: dict[str, Any], struct: str, literal: bool = False) -> _Mismatch:
    kind = _json_kind(value)
    if literal:
        kind = f"number {orjson.dumps(value).decode()}"
    return _Mismatch(kind, struct, _go_type(schema))


class SchemaNode:
    """What `_check` reads of one schema, worked out once (its `$ref`, the resolved type, fields, items).

    The nodes of its fields, map values, items and alternatives are linked on its first check (not at once:
    schemas are recursive)."""

    __slots__ = ("alternatives", "byte", "extra", "fast", "free", "int_or_string", "int_range", "items", "linked")
    __slots__ += ("props", "resolved", "schema", "skip", "struct", "type")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema  # also keeps its id, the cache's key, from being reused
        ref = _ref_name(schema)
        self.skip = ref in _ANY
        resolved = self.resolved = openapi.resolve_schema(schema)
        self.struct = None
        if ref is not None and resolved.get("type") == "object" and "properties" in resolved:
            self.struct = ref.rsplit(".", 1)[-1]
        self.int_or_string = resolved.get("format") == "int-or-string"
        self.free = bool(resolved.get("x-kubernetes-preserve-unknown-fields")) and "type" not in resolved
        self.type = resolved.get("type")
        self.byte = resolved.get("format") == "byte"
        self.int_range = _INT_RANGES.get(str(resolved.get("format")), _INT_RANGES["int64"])
        # the classes of scalars `_check` would pass without a look at the value: its caller skips the call
        alternatives = resolved.get("oneOf") or resolved.get("anyOf")
        has_alternatives = isinstance(alternatives, list) and bool(alternatives)
        self.fast: frozenset[type] = frozenset()
        if self.int_or_string and has_alternatives:
            self.fast = frozenset((str, int))
        elif not has_alternatives and not self.free:
            self.fast = _FAST.get(self.type, frozenset()) if not self.byte else frozenset()
        self.linked = False
        self.alternatives: list[SchemaNode] | None = None
        self.props: dict[str, SchemaNode] | None = None
        self.extra: SchemaNode | None = None
        self.items: SchemaNode | None = None

    def link(self) -> None:
        """Find the nodes of the schemas this one contains."""
        resolved = self.resolved
        alternatives = resolved.get("oneOf") or resolved.get("anyOf")
        if isinstance(alternatives, list) and alternatives:
            self.alternatives = [schema_node(alt) for alt in alternatives]
        props, extra, items = resolved.get("properties"), resolved.get("additionalProperties"), resolved.get("items")
        self.props = {key: schema_node(sub) for key, sub in props.items()} if isinstance(props, dict) else None
        self.extra = schema_node(extra) if isinstance(extra, dict) else None
        self.items = schema_node(items) if isinstance(items, dict) else None
        self.linked = True


_FAST = {"string": frozenset((str,)), "boolean": frozenset((bool,)), "number": frozenset((int, float))}
_NODES: dict[int, SchemaNode] = {}
_ROOTS: dict[str, dict[str, Any]] = {}


def schema_node(schema: dict[str, Any]) -> SchemaNode:
    """The type check's reading of `schema` (one per schema object, kept)."""
    node = _NODES.get(id(schema))
    if node is None or node.schema is not schema:
        node = _NODES[id(schema)] = SchemaNode(schema)
    return node


def _check(node: SchemaNode, value: Any, struct: str) -> None:
    if value is None or node.skip:
        return
    if not node.linked:
        node.link()
    if node.struct is not None:
        struct = node.struct
    if node.alternatives is not None:
        if node.int_or_string:
            if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
                return
            if isinstance(value, float):
                literal = orjson.dumps(value).decode()
                raise _Mismatch(f"json: cannot unmarshal number {literal} into Go value of type int32")
            raise _fail(value, node.schema, struct)
        for alt in node.alternatives:
            try:
                _check(alt, value, struct)
                return
            except _Mismatch:
                continue
        raise _fail(value, node.schema, struct)
    if node.free:
        return
    t = node.type
    if t == "object":
        if not isinstance(value, dict):
            raise _fail(value, node.schema, struct)
        props, extra = node.props, node.extra
        for key, sub in list(value.items()):
            child = props.get(key) if props is not None else None
            if child is not None:
                if sub is None:  # Go leaves a field given as null at its zero value: as if not given
                    del value[key]
                    continue
            elif extra is None:
                continue
            else:
                child = extra
            if sub.__class__ in child.fast or child.skip:
                continue
            try:
                _check(child, sub, struct)
            except _Mismatch as e:
                e.path.append(key)
                raise
    elif t == "array":
        if not isinstance(value, list):
            raise _fail(value, node.schema, struct)
        items = node.items
        if items is not None:
            fast = items.fast
            for sub in value:
                if sub.__class__ not in fast:
                    _check(items, sub, struct)
    elif t == "string":
        if not isinstance(value, str):
            raise _fail(value, node.schema, struct)
        if node.byte:
            _check_base64(value)
    elif t == "integer":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _fail(value, node.schema, struct)
        low, high = node.int_range
        if isinstance(value, float) or not low <= value <= high:
            raise _fail(value, node.schema, struct, literal=True)
    elif t == "number":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _fail(value, node.schema, struct)
    elif t == "boolean" and not isinstance(value, bool):
        raise _fail(value, node.schema, struct)


def _check_base64(value: str) -> None:
    """encoding/json decodes a []byte field with base64.StdEncoding (line breaks ignored)."""
    text = value.replace("\r", "").replace("\n", "")
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        at = next((i for i, c in enumerate(text) if not (c.isalnum() and c.isascii()) and c not in "+/="), None)
        where = at if at is not None else max(len(text) - len(text) % 4, 0)
        raise _Mismatch(f"illegal base64 data at input byte {where}") from e


def first_type_error(
    res: ResourceInfo, obj: Any, *, depth_known: bool = False, only: Collection[str] | None = None
) -> str | None:
    """encoding/json's error for the first value of `obj` whose JSON type the kind's schema forbids, if any.

    Declared fields set to null are removed from `obj` in place (see the module doc). `depth_known`: the
    caller knows `obj` nests at most MAX_DEPTH levels, so the depth walk is left out. `only`: the top-level
    fields of (an object) `obj` to check; the others are known to pass (the stored object's, unpatched).
    """
    name = openapi.definition_for(res.group, res.version, res.kind)
    if name is None:
        return None
    try:
        if not depth_known:
            check_depth(obj, None, MAX_DEPTH)
        root = _ROOTS.get(name)
        if root is None:  # one schema object per kind, so its compiled node is found again
            root = _ROOTS[name] = {"$ref": f"#/components/schemas/{name}"}
        if only is None or not isinstance(obj, dict):
            _check(schema_node(root), obj, res.kind)
        else:
            part = {k: v for k, v in obj.items() if k in only}
            try:
                _check(schema_node(root), part, res.kind)
            finally:
                for k in [k for k in obj if k in only and k not in part]:  # a top-level null, removed
                    del obj[k]
    except _Mismatch as e:
        return e.message
    except TooDeep as e:
        return str(e)
    return None


def check_body(res: ResourceInfo, obj: Any, *, depth_known: bool = False) -> None:
    """400 `<Kind> in version … cannot be handled as a <Kind>: json: …` for a create or update body (`depth_known`:
    as `first_type_error`'s)."""
    message = first_type_error(res, obj, depth_known=depth_known)
    if message is not None:
        raise errors.bad_request(openapi.decode_prefix(res) + message)


def check_patched(
    res: ResourceInfo, obj: Any, *, depth_known: bool = False, only: Collection[str] | None = None
) -> None:
    """422 with a `patch` cause for an object a patch turned into something the kind cannot decode (`only`: as
    `first_type_error`'s)."""
    message = first_type_error(res, obj, depth_known=depth_known, only=only)
    if message is None:
        return
    try:
        shown = orjson.dumps(obj).decode()
    except (TypeError, orjson.JSONEncodeError):
        shown = "<object>"
    if len(shown) > 4096:
        shown = shown[:4096] + "…"
    cause = errors.Cause("patch", f'Invalid value: "{shown}": {message}')
    raise errors.invalid("", "", [cause])
