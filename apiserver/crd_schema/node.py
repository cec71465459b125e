"""One openAPIV3Schema node compiled into what validation, pruning and defaulting read.

Compiling does the costly parts once: regexes (RE2, as Go's regexp), CEL programs, format checkers,
pruned copies of defaults, and per-subtree flags that let the per-object walks skip whole branches
(no defaults below, no CEL rules below, …).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import re2

from apimachinery.validation import FieldErrorTuple, invalid
from apiserver.crd_schema import formats
from apiserver.crd_schema.cel import CelCompileError, CelRule, compile_rule, field_path_parts
from apiserver.crd_schema.cel_check import check_rule
from apiserver.crd_schema.messages import child, index, key

__all__ = ["MISSING", "Node", "SchemaError", "compile_node"]

MISSING: Any = object()
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


class SchemaError(ValueError):
    """A schema that cannot be compiled; `errors` holds the field errors (paths relative to the schema)."""

    def __init__(self, message: str, errors: list[FieldErrorTuple] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def compile_pattern(pattern: str) -> tuple[Any | None, str]:
    """(compiled RE2 regex, "") or (None, why it is not a valid regular expression)."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS), ""
    except re2.error as e:
        text = e.args[0] if e.args else str(e)
        return None, text.decode() if isinstance(text, bytes) else str(text)


@dataclass(eq=False, slots=True)
class Node:
    """A compiled schema node; `raw` is the dict it came from."""

    raw: dict[str, Any]
    type: str = ""
    types: tuple[str, ...] = ()
    format: str = ""
    format_check: Any = None
    nullable: bool = False
    enum: list[Any] | None = None
    pattern: str = ""
    pattern_re: Any = None
    pattern_error: str = ""
    maximum: float | None = None
    exclusive_maximum: bool = False
    minimum: float | None = None
    exclusive_minimum: bool = False
    multiple_of: float | None = None
    max_length: int | None = None
    min_length: int | None = None
    max_items: int | None = None
    min_items: int | None = None
    unique_items: bool = False
    max_properties: int | None = None
    min_properties: int | None = None
    required: tuple[str, ...] = ()
    properties: dict[str, Node] = field(default_factory=dict)
    additional: Node | None = None
    additional_allows: bool | None = None  # None: no additionalProperties; False: `false`; True: `true`/a schema
    items: Node | None = None
    all_of: list[Node] = field(default_factory=list)
    any_of: list[Node] = field(default_factory=list)
    one_of: list[Node] = field(default_factory=list)
    not_: Node | None = None
    preserve_unknown: bool = False
    embedded: bool = False
    int_or_string: bool = False
    list_type: str = ""
    list_map_keys: tuple[str, ...] = ()
    default: Any = MISSING
    rules: list[CelRule] = field(default_factory=list)
    # subtree flags
    has_defaults: bool = False
    has_rules: bool = False
    has_checks: bool = False  # list types or embedded resources below (or here)
    has_embedded: bool = False  # embedded resources below (or here)
    has_transition: bool = False  # transition rules (oldSelf) below (or here)
    cel_typed: bool = False  # a string format that CEL sees as its own type below (or here)


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def compile_node(raw: Any, path: str, errors: list[FieldErrorTuple], nested: bool = False) -> Node:
    """Compile `raw` (a JSONSchemaProps dict) at schema path `path`; CEL compile errors go to `errors`."""
    if not isinstance(raw, dict):
        raw = {}
    n = Node(raw=raw)
    n.type = raw.get("type") if isinstance(raw.get("type"), str) else ""
    n.int_or_string = raw.get("x-kubernetes-int-or-string") is True
    n.types = ("integer", "string") if n.int_or_string else ((n.type,) if n.type else ())
    n.format = formats.effective(n.type, str(raw.get("format") or ""))
    n.format_check = formats.checker_for(n.type, n.format)
    n.nullable = raw.get("nullable") is True
    if isinstance(raw.get("enum"), list):
        n.enum = raw["enum"]
    if isinstance(raw.get("pattern"), str) and raw["pattern"]:
        n.pattern = raw["pattern"]
        n.pattern_re, n.pattern_error = compile_pattern(n.pattern)
    n.maximum = _number(raw.get("maximum"))
    n.exclusive_maximum = raw.get("exclusiveMaximum") is True
    n.minimum = _number(raw.get("minimum"))
    n.exclusive_minimum = raw.get("exclusiveMinimum") is True
    n.multiple_of = _number(raw.get("multipleOf"))
    n.max_length = _int(raw.get("maxLength"))
    n.min_length = _int(raw.get("minLength"))
    n.max_items = _int(raw.get("maxItems"))
    n.min_items = _int(raw.get("minItems"))
    n.unique_items = raw.get("uniqueItems") is True
    n.max_properties = _int(raw.get("maxProperties"))
    n.min_properties = _int(raw.get("minProperties"))
    if isinstance(raw.get("required"), list):
        n.required = tuple(str(r) for r in raw["required"])
    for name, sub in _mapping(raw.get("properties")).items():
        n.properties[name] = compile_node(sub, key(child(path, "properties"), name), errors, nested)
    additional = raw.get("additionalProperties")
    if additional is False:
        n.additional_allows = False
    elif additional is True:
        n.additional_allows = True
    elif isinstance(additional, dict):
        n.additional_allows = True
        n.additional = compile_node(additional, child(path, "additionalProperties"), errors, nested)
    items = raw.get("items")
    if isinstance(items, dict):
        n.items = compile_node(items, child(path, "items"), errors, nested)
    for word, target in (("allOf", n.all_of), ("anyOf", n.any_of), ("oneOf", n.one_of)):
        for i, sub in enumerate(_sequence(raw.get(word))):
            target.append(compile_node(sub, index(child(path, word), i), errors, True))
    if isinstance(raw.get("not"), dict):
        n.not_ = compile_node(raw["not"], child(path, "not"), errors, True)
    n.preserve_unknown = raw.get("x-kubernetes-preserve-unknown-fields") is True
    n.embedded = raw.get("x-kubernetes-embedded-resource") is True
    n.list_type = str(raw.get("x-kubernetes-list-type") or "")
    if isinstance(raw.get("x-kubernetes-list-map-keys"), list):
        n.list_map_keys = tuple(str(k) for k in raw["x-kubernetes-list-map-keys"])
    if "default" in raw:
        n.default = raw["default"]
    if not nested:
        _compile_rules(n, path, errors)
    subs = [*n.properties.values(), *([n.additional] if n.additional else []), *([n.items] if n.items else [])]
    n.has_defaults = n.default is not MISSING or any(s.has_defaults for s in subs)
    n.has_rules = bool(n.rules) or any(s.has_rules for s in subs)
    typed = n.type == "string" and n.format.replace("-", "") in ("datetime", "date", "duration", "byte")
    n.cel_typed = typed or any(s.cel_typed for s in subs)
    n.has_embedded = n.embedded or any(s.has_embedded for s in subs)
    n.has_transition = any(r.transition for r in n.rules) or any(s.has_transition for s in subs)
    n.has_checks = n.embedded or n.list_type in ("set", "map") or any(s.has_checks for s in subs)
    return n


def _compile_rules(n: Node, path: str, errors: list[FieldErrorTuple]) -> None:
    for i, entry in enumerate(_sequence(n.raw.get("x-kubernetes-validations"))):
        if not isinstance(entry, dict):
            continue
        rule_path = index(child(path, "x-kubernetes-validations"), i)
        rendered = ""
        if entry.get("fieldPath"):
            parts = field_path_parts(str(entry["fieldPath"]))
            if parts is None or not _path_in_schema(n.raw, parts):
                errors.append(
                    invalid(child(rule_path, "fieldPath"), entry["fieldPath"], "fieldPath must be a valid path")
                )
                continue
            rendered = "".join(f".{name}" if kind == "field" else f"[{name}]" for kind, name in parts)
        try:
            n.rules.append(compile_rule(entry, rendered))
        except CelCompileError as e:
            errors.append(invalid(child(rule_path, e.field), e.expression, str(e)))
            continue
        rule = str(entry.get("rule") or "")
        parsed = getattr(n.rules[-1].program, "ast", None)  # cel-python keeps the parse tree: not parsed twice
        if problem := check_rule(rule, n.raw, object_root=not path or n.embedded, tree=parsed):
            errors.append(invalid(child(rule_path, "rule"), rule, problem))


def _path_in_schema(raw: dict[str, Any], parts: list[tuple[str, str]]) -> bool:
    node: Any = raw
    for kind, name in parts:
        if not isinstance(node, dict):
            return False
        if kind in ("field", "key"):
            props = _mapping(node.get("properties"))
            if name in props:
                node = props[name]
            elif isinstance(node.get("additionalProperties"), dict):
                node = node["additionalProperties"]
            else:
                return False
        else:
            if not isinstance(node.get("items"), dict):
                return False
            node = node["items"]
    return True
