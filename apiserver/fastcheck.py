"""A compiled first look at a body: does it surely pass the type check and have no unknown fields?

`typecheck._check` and `openapi._walk` walk an object along the kind's OpenAPI schema in Python, one for the
JSON types (with encoding/json's wording for the first mismatch), one for undeclared fields (with their
paths). Nearly every body passes both, and for those the walks only cost time. `surely_clean` asks a
pydantic-core validator built from the same schema first. It is at least as strict as both walks: a value
whose type the walk would refuse, an undeclared field, a declared field given as null (which the type check
removes in place), a base64 field (checked by the walk) or a schema shape this module does not translate,
all fail it. A body that passes needs neither walk; one that fails takes them, which word the error.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from apimachinery.resources import ResourceInfo
from apiserver import openapi, typecheck

__all__ = ["prepare", "surely_clean"]

# by group, version and kind; None for a kind without a schema
_VALIDATORS: dict[tuple[str, str, str], SchemaValidator | None] = {}
_lock = threading.Lock()
# any JSON value but null
_SOME = cs.union_schema(
    [
        cs.dict_schema(strict=True),
        cs.list_schema(strict=True),
        cs.str_schema(strict=True),
        cs.bool_schema(strict=True),
        cs.int_schema(strict=True),
        cs.float_schema(strict=True),
    ]
)
_NEVER = cs.int_schema(strict=True, gt=0, lt=0)  # what nothing passes: the walks take it


def surely_clean(res: ResourceInfo, obj: Any) -> bool:
    """True when `obj` surely passes the kind's type check unchanged and has no unknown fields; False when it
    may not (ask the walks), and before `prepare` built the kind's validator. `obj` must be known to nest at
    most MAX_DEPTH levels."""
    validator = _VALIDATORS.get((res.group, res.version, res.kind))
    if validator is None:
        return False
    try:
        validator.validate_python(obj)
    except (ValidationError, RecursionError):
        return False
    return True


async def prepare(res: ResourceInfo) -> None:
    """Build the kind's validator in a worker thread (once: a few ms, ~1 MiB for a kind with a pod template);
    the schemas must be loaded."""
    if res.custom or (res.group, res.version, res.kind) in _VALIDATORS:
        return
    await asyncio.to_thread(_build, res)


def _build(res: ResourceInfo) -> None:
    with _lock:
        key = (res.group, res.version, res.kind)
        if key in _VALIDATORS:
            return
        name = openapi.definition_for(*key)
        _VALIDATORS[key] = _Translation().validator(name) if name is not None else None


class _Translation:
    """The OpenAPI schemas a kind reaches, as one pydantic-core schema. A translated schema refuses null: a
    declared field given as null is removed by the type check, so the walk has to see it; where null passes
    untouched (list items, map values), it is made nullable."""

    def __init__(self) -> None:
        self.done: dict[int, cs.CoreSchema] = {}
        self.definitions: list[cs.CoreSchema] = []
        self.kept: list[dict[str, Any]] = []  # the schema objects whose ids are keys here

    def validator(self, name: str) -> SchemaValidator:
        """The validator of the kind whose definition is `name`."""
        root = self.schema({"$ref": f"#/components/schemas/{name}"})
        return SchemaValidator(cs.definitions_schema(root, self.definitions))

    def schema(self, schema: dict[str, Any]) -> cs.CoreSchema:
        """The core schema of `schema`: a struct's (an object with fields) is a definition, referred to wherever
        it is used (one copy of a PodSpec for a Deployment's template and a Pod alike); others are inline."""
        node = typecheck.schema_node(schema)  # the type check's own reading of the schema
        key = id(node.resolved)
        found = self.done.get(key)
        if found is not None:
            return found
        self.kept.append(node.resolved)
        if node.struct is None or node.skip:
            core = self.done[key] = self._translate(node)
            return core
        ref = f"s{key}"
        self.done[key] = cs.definition_reference_schema(ref)  # before its fields: they may contain it
        self.definitions.append({**self._translate(node), "ref": ref})  # type: ignore[typeddict-item]
        return self.done[key]

    def _translate(self, node: typecheck.SchemaNode) -> cs.CoreSchema:
        resolved = node.resolved
        if node.skip:
            return _SOME
        alternatives = resolved.get("oneOf") or resolved.get("anyOf")
        if isinstance(alternatives, list) and alternatives:
            if node.int_or_string:
                return cs.union_schema([cs.str_schema(strict=True), cs.int_schema(strict=True)])
            # the type check takes a value one of them takes (a Quantity: a string or a number)
            return cs.union_schema([self.schema(alt) for alt in alternatives if isinstance(alt, dict)] or [_NEVER])
        if node.free:
            return _SOME
        t = node.type
        if t == "object":
            return self._object(resolved)
        if t == "array":
            items = resolved.get("items")
            item = cs.nullable_schema(self.schema(items)) if isinstance(items, dict) else _ANY
            return cs.list_schema(item, strict=True)
        if t == "string":
            return _NEVER if node.byte else cs.str_schema(strict=True)
        if t == "integer":
            low, high = node.int_range
            return cs.int_schema(strict=True, ge=low, le=high)
        if t == "number":
            return cs.float_schema(strict=True, allow_inf_nan=False)
        if t == "boolean":
            return cs.bool_schema(strict=True)
        if t is None and not any(k in resolved for k in ("properties", "additionalProperties", "items")):
            return _SOME  # no type: the type check takes anything, and there are no fields to know
        return _NEVER

    def _object(self, resolved: dict[str, Any]) -> cs.CoreSchema:
        props, extra = resolved.get("properties"), resolved.get("additionalProperties")
        if isinstance(props, dict):
            fields = {
                key: cs.typed_dict_field(self.schema(sub) if isinstance(sub, dict) else _SOME, required=False)
                for key, sub in props.items()
            }
            keep = bool(resolved.get("x-kubernetes-preserve-unknown-fields"))
            return cs.typed_dict_schema(fields, extra_behavior="allow" if keep else "forbid", strict=True)
        values = cs.nullable_schema(self.schema(extra)) if isinstance(extra, dict) else _ANY
        return cs.dict_schema(cs.str_schema(strict=True), values, strict=True)


_ANY = cs.any_schema()  # where null passes too
