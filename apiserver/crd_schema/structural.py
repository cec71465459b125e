"""The checks a CRD's openAPIV3Schema must pass before it is served (apiextensions validation).

In upstream's order: the per-node rules of ValidateCustomResourceDefinitionOpenAPISchema (unsupported
keywords, list and map types, x-kubernetes-validations entries), then ValidateStructural (the
structural invariants and completeness, sorted by message as upstream sorts them), then, only when the
schema is structural, that every `default` is valid against its own schema.
"""

from __future__ import annotations

import copy
from typing import Any

from apimachinery.validation import FieldErrorTuple, forbidden, required
from apiserver.crd_schema import openapi, pruning
from apiserver.crd_schema.cel import SUPPORTED_REASONS, field_path_parts
from apiserver.crd_schema.messages import child, index, invalid, key, not_supported
from apiserver.crd_schema.node import MISSING, Node, compile_pattern

__all__ = ["check"]

_ROOT, _ITEM, _FIELD = 0, 1, 2
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
_JUNCTORS = ("allOf", "anyOf", "oneOf")


def check(raw: dict[str, Any], root: Node | None, path: str) -> list[FieldErrorTuple]:
    """All of the schema's problems, with paths under `path` (the openAPIV3Schema's own path)."""
    errs: list[FieldErrorTuple] = []
    _crd_rules(raw, path, errs, is_root=True, uncorrelatable="")
    structural: list[FieldErrorTuple] = []
    _invariants(raw, _ROOT, path, structural)
    _completeness(raw, path, structural)
    structural.sort(key=lambda e: f"{e[0]}: {e[2]}")
    errs.extend(structural)
    if not errs and root is not None:
        _defaults(root, path, errs)
    return errs


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- ValidateCustomResourceDefinitionOpenAPISchema ----------------------------------------------


def _crd_rules(s: Any, path: str, errs: list[FieldErrorTuple], *, is_root: bool, uncorrelatable: str) -> None:
    if not isinstance(s, dict):
        return
    _unsupported(s, path, errs)
    if s.get("uniqueItems") is True:
        errs.append(
            forbidden(
                child(path, "uniqueItems"),
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    additional = s.get("additionalProperties")
    if additional is not None:
        if s.get("properties") and (additional is False or isinstance(additional, dict)):
            errs.append(
                forbidden(
                    child(path, "additionalProperties"), "additionalProperties and properties are mutual exclusive"
                )
            )
        _crd_rules(additional, child(path, "additionalProperties"), errs, is_root=False, uncorrelatable=uncorrelatable)
    for name, sub in _dict(s.get("properties")).items():
        _crd_rules(sub, key(child(path, "properties"), name), errs, is_root=False, uncorrelatable=uncorrelatable)
    _crd_rules(s.get("not"), child(path, "not"), errs, is_root=False, uncorrelatable=uncorrelatable)
    for word in _JUNCTORS:
        for i, sub in enumerate(_list(s.get(word))):
            _crd_rules(sub, index(child(path, word), i), errs, is_root=False, uncorrelatable=uncorrelatable)
    if isinstance(s.get("items"), dict):
        inner = uncorrelatable
        if s.get("x-kubernetes-list-type") != "map" and not inner:
            inner = path
        _crd_rules(s["items"], child(path, "items"), errs, is_root=False, uncorrelatable=inner)
    _extension_rules(s, path, errs)
    _validation_rules(s, path, errs, uncorrelatable)


def _unsupported(s: dict[str, Any], path: str, errs: list[FieldErrorTuple]) -> None:
    for word, text in (
        ("id", "id is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ):
        if s.get(word):
            errs.append(forbidden(child(path, word), text))
    if s.get("type") == "null":
        errs.append(forbidden(child(path, "type"), "type cannot be set to null, use nullable as an alternative"))
    if isinstance(s.get("items"), list):
        errs.append(forbidden(child(path, "items"), "items must be a schema object and not an array"))


def _extension_rules(s: dict[str, Any], path: str, errs: list[FieldErrorTuple]) -> None:
    type_ = s.get("type") or ""
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        errs.append(invalid(child(path, "x-kubernetes-preserve-unknown-fields"), False, "must be true or undefined"))
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None and type_ != "object":
        _type_must_be(type_, "object if x-kubernetes-map-type is specified", path, errs)
    if map_type is not None and map_type not in ("atomic", "granular"):
        errs.append(not_supported(child(path, "x-kubernetes-map-type"), map_type, ["atomic", "granular"]))
    list_type = s.get("x-kubernetes-list-type")
    if list_type is not None and type_ != "array":
        _type_must_be(type_, "array if x-kubernetes-list-type is specified", path, errs)
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        errs.append(not_supported(child(path, "x-kubernetes-list-type"), list_type, ["atomic", "set", "map"]))
    map_keys = _list(s.get("x-kubernetes-list-map-keys"))
    if map_keys:
        if list_type is None:
            errs.append(
                required(
                    child(path, "x-kubernetes-list-type"), "must be map if x-kubernetes-list-map-keys is non-empty"
                )
            )
        elif list_type != "map":
            errs.append(
                invalid(
                    child(path, "x-kubernetes-list-type"),
                    list_type,
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )
            )
    if list_type == "map":
        _list_map_rules(s, map_keys, path, errs)


def _type_must_be(type_: str, what: str, path: str, errs: list[FieldErrorTuple]) -> None:
    if not type_:
        errs.append(required(child(path, "type"), f"must be {what}"))
    else:
        errs.append(invalid(child(path, "type"), type_, f"must be {what}"))


def _list_map_rules(s: dict[str, Any], map_keys: list[Any], path: str, errs: list[FieldErrorTuple]) -> None:
    if not map_keys:
        errs.append(
            required(child(path, "x-kubernetes-list-map-keys"), "must not be empty if x-kubernetes-list-type is map")
        )
    items = s.get("items")
    if items is None:
        errs.append(required(child(path, "items"), "must have a schema if x-kubernetes-list-type is map"))
        return
    if not isinstance(items, dict):
        return
    item_type = items.get("type") or ""
    if item_type != "object":
        errs.append(
            invalid(
                child(child(path, "items"), "type"),
                item_type,
                "must be object if parent array's x-kubernetes-list-type is map",
            )
        )
        return
    seen: set[str] = set()
    props = _dict(items.get("properties"))
    for k in map_keys:
        if k in props:
            if _dict(props[k]).get("type") in ("array", "object"):
                p = child(key(child(child(path, "items"), "properties"), k), "type")
                errs.append(
                    invalid(p, item_type, "must be a scalar type if parent array's x-kubernetes-list-type is map")
                )
        else:
            errs.append(
                invalid(
                    child(path, "x-kubernetes-list-map-keys"), map_keys, "entries must all be names of item properties"
                )
            )
        if k in seen:
            errs.append(
                invalid(child(path, "x-kubernetes-list-map-keys"), map_keys, "must not contain duplicate entries")
            )
        seen.add(k)


def _validation_rules(s: dict[str, Any], path: str, errs: list[FieldErrorTuple], uncorrelatable: str) -> None:
    from apiserver.crd_schema.cel import _uses_old_self  # the same test the compiler uses

    for i, rule in enumerate(_list(s.get("x-kubernetes-validations"))):
        rule = _dict(rule)
        p = index(child(path, "x-kubernetes-validations"), i)
        text = str(rule.get("rule") or "").strip()
        message = rule.get("message")
        if not text:
            errs.append(required(child(p, "rule"), "rule is not specified"))
        elif message and not str(message).strip():
            errs.append(invalid(child(p, "message"), message, "message must be non-empty if specified"))
        elif message and "\n" in str(message).strip():
            errs.append(invalid(child(p, "message"), message, "message must not contain line breaks"))
        elif "\n" in text and not str(message or "").strip():
            errs.append(required(child(p, "message"), "message must be specified if rule contains line breaks"))
        expr = rule.get("messageExpression")
        if expr is not None and expr != "" and not str(expr).strip():
            errs.append(required(child(p, "messageExpression"), "messageExpression must be non-empty if specified"))
        reason = rule.get("reason")
        if reason is not None and reason not in SUPPORTED_REASONS:
            errs.append(not_supported(child(p, "reason"), reason, list(SUPPORTED_REASONS)))
        fp = rule.get("fieldPath")
        if fp:
            if not str(fp).strip():
                errs.append(invalid(child(p, "fieldPath"), fp, "fieldPath must be non-empty if specified"))
            elif "\n" in str(fp):
                errs.append(invalid(child(p, "fieldPath"), fp, "fieldPath must not contain line breaks"))
            elif field_path_parts(str(fp)) is None:
                errs.append(invalid(child(p, "fieldPath"), fp, "fieldPath must be a valid path"))
        if text and uncorrelatable and _uses_old_self(text):
            detail = f"oldSelf cannot be used on the uncorrelatable portion of the schema within {uncorrelatable}"
            errs.append(invalid(child(p, "rule"), rule.get("rule"), detail))


# --- ValidateStructural: invariants ---------------------------------------------------------------


def _is_int_or_string_any_of(any_of: Any) -> bool:
    return isinstance(any_of, list) and any_of == _INT_OR_STRING_ANY_OF


def _invariants(s: dict[str, Any], lvl: int, path: str, errs: list[FieldErrorTuple]) -> None:
    type_ = s.get("type") or ""
    items = s.get("items")
    if type_ == "array" and items is None:
        errs.append(required(child(path, "items"), "must be specified"))
    if isinstance(items, dict):
        _invariants(items, _ITEM, child(path, "items"), errs)
    for name, sub in _dict(s.get("properties")).items():
        _invariants(_dict(sub), _FIELD, key(child(path, "properties"), name), errs)
    additional = s.get("additionalProperties")
    if additional is not None:
        if lvl == _ROOT:
            errs.append(forbidden(child(path, "additionalProperties"), "must not be used at the root"))
        if isinstance(additional, dict):
            _invariants(additional, _FIELD, child(path, "additionalProperties"), errs)
    int_or_string = s.get("x-kubernetes-int-or-string") is True
    preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = s.get("x-kubernetes-embedded-resource") is True
    if int_or_string and preserve:
        errs.append(
            invalid(
                child(path, "x-kubernetes-preserve-unknown-fields"),
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )
    if int_or_string and embedded:
        errs.append(
            invalid(
                child(path, "x-kubernetes-embedded-resource"),
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )
    skip_any_of = _is_int_or_string_any_of(s.get("anyOf"))
    all_of = _list(s.get("allOf"))
    skip_first_all_of_any_of = bool(all_of) and _is_int_or_string_any_of(_dict(all_of[0]).get("anyOf"))
    _value_validation(s, skip_any_of, skip_first_all_of_any_of, lvl, path, errs)
    if embedded and type_ != "object":
        if not type_:
            errs.append(required(child(path, "type"), "must be object if x-kubernetes-embedded-resource is true"))
        else:
            errs.append(invalid(child(path, "type"), type_, "must be object if x-kubernetes-embedded-resource is true"))
    elif not type_ and not int_or_string and not preserve:
        where = {
            _ROOT: "at the root",
            _ITEM: "for specified array items",
            _FIELD: "for specified object fields",
        }[lvl]
        errs.append(required(child(path, "type"), f"must not be empty {where}"))
    if embedded and additional is not None:
        errs.append(
            forbidden(child(path, "additionalProperties"), "must not be used if x-kubernetes-embedded-resource is set")
        )
    if lvl == _ROOT and type_ and type_ != "object":
        errs.append(invalid(child(path, "type"), type_, "must be object at the root"))
    props = _dict(s.get("properties"))
    check_meta = lvl == _ROOT or embedded
    for name in ("kind", "apiVersion"):
        if name in props and check_meta:
            sub_type = _dict(props[name]).get("type") or ""
            if sub_type != "string":
                errs.append(invalid(child(key(child(path, "properties"), name), "type"), sub_type, "must be string"))
    if "metadata" in props:
        _metadata_invariants(
            _dict(props["metadata"]), check_meta, lvl, key(child(path, "properties"), "metadata"), errs
        )
    if embedded and not preserve and not props:
        detail = (
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"
        )
        errs.append(required(child(path, "properties"), detail))


def _metadata_invariants(s: dict[str, Any], check_meta: bool, lvl: int, path: str, errs: list[FieldErrorTuple]) -> None:
    type_ = s.get("type") or ""
    if check_meta and type_ != "object":
        errs.append(invalid(child(path, "type"), type_, "must be object"))
    if lvl != _ROOT:
        return
    rest = {k: v for k, v in s.items() if k not in ("type", "default")}
    props = rest.get("properties")
    if isinstance(props, dict) and props and set(props) <= {"name", "generateName"}:
        del rest["properties"]
    if rest:
        detail = "must not specify anything other than name and generateName, but metadata is implicitly specified"
        errs.append(forbidden(path, detail))


def _value_validation(
    v: dict[str, Any],
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    lvl: int,
    path: str,
    errs: list[FieldErrorTuple],
) -> None:
    if not skip_any_of:
        for i, sub in enumerate(_list(v.get("anyOf"))):
            _nested(_dict(sub), False, lvl, index(child(path, "anyOf"), i), errs)
    for i, sub in enumerate(_list(v.get("allOf"))):
        _nested(_dict(sub), skip_first_all_of_any_of and i == 0, lvl, index(child(path, "allOf"), i), errs)
    for i, sub in enumerate(_list(v.get("oneOf"))):
        _nested(_dict(sub), False, lvl, index(child(path, "oneOf"), i), errs)
    if isinstance(v.get("not"), dict):
        _nested(v["not"], False, lvl, child(path, "not"), errs)
    pattern = v.get("pattern")
    if isinstance(pattern, str) and pattern:
        compiled, why = compile_pattern(pattern)
        if compiled is None:
            errs.append(
                invalid(child(path, "pattern"), pattern, f"must be a valid regular expression, but isn't: {why}")
            )


_FORBIDDEN_IN_NESTED = (
    ("type", lambda v: bool(v), "must be empty to be structural"),
    ("additionalProperties", lambda v: v is not None, "must be undefined to be structural"),
    ("default", lambda v: v is not None, "must be undefined to be structural"),
    ("title", lambda v: bool(v), "must be empty to be structural"),
    ("description", lambda v: bool(v), "must be empty to be structural"),
    ("nullable", lambda v: v is True, "must be false to be structural"),
    ("externalDocs", lambda v: v is not None, "must be undefined to be structural"),
    ("x-kubernetes-preserve-unknown-fields", lambda v: v is True, "must be false to be structural"),
    ("x-kubernetes-embedded-resource", lambda v: v is True, "must be false to be structural"),
    ("x-kubernetes-int-or-string", lambda v: v is True, "must be false to be structural"),
    ("x-kubernetes-list-map-keys", lambda v: bool(v), "must be empty to be structural"),
    ("x-kubernetes-list-type", lambda v: v is not None, "must be undefined to be structural"),
    ("x-kubernetes-map-type", lambda v: v is not None, "must be undefined to be structural"),
    ("x-kubernetes-validations", lambda v: bool(v), "must be empty to be structural"),
)


def _nested(v: dict[str, Any], skip_any_of: bool, lvl: int, path: str, errs: list[FieldErrorTuple]) -> None:
    _value_validation(v, skip_any_of, False, lvl, path, errs)
    if isinstance(v.get("items"), dict):
        _nested(v["items"], False, lvl, child(path, "items"), errs)
    for name, sub in _dict(v.get("properties")).items():
        _nested(_dict(sub), False, _FIELD, key(child(path, "properties"), name), errs)
    for word, present, text in _FORBIDDEN_IN_NESTED:
        if word in v and present(v[word]):
            errs.append(forbidden(child(path, word), text))
    if "metadata" in _dict(v.get("properties")):
        errs.append(forbidden(key(child(path, "properties"), "metadata"), "must not be specified in a nested context"))


# --- ValidateStructural: completeness -------------------------------------------------------------


def _completeness(s: dict[str, Any], path: str, errs: list[FieldErrorTuple]) -> None:
    _value_completeness(s, s, path, path, errs)
    if isinstance(s.get("items"), dict):
        _completeness(s["items"], child(path, "items"), errs)
    for name, sub in _dict(s.get("properties")).items():
        _completeness(_dict(sub), key(child(path, "properties"), name), errs)
    if isinstance(s.get("additionalProperties"), dict):
        _completeness(s["additionalProperties"], child(path, "additionalProperties"), errs)


def _value_completeness(
    v: dict[str, Any], s: dict[str, Any] | None, s_path: str, v_path: str, errs: list[FieldErrorTuple]
) -> None:
    if isinstance(v.get("not"), dict):
        _nested_completeness(v["not"], s, s_path, child(v_path, "not"), errs)
    for word in _JUNCTORS:
        for i, sub in enumerate(_list(v.get(word))):
            _nested_completeness(_dict(sub), s, s_path, index(child(v_path, word), i), errs)


def _nested_completeness(
    v: dict[str, Any], s: dict[str, Any] | None, s_path: str, v_path: str, errs: list[FieldErrorTuple]
) -> None:
    if s is None:
        errs.append(required(s_path, f"because it is defined in {v_path}"))
        return
    _value_completeness(v, s, s_path, v_path, errs)
    if isinstance(v.get("items"), dict):
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        _nested_completeness(v["items"], items, child(s_path, "items"), child(v_path, "items"), errs)
    s_props = _dict(s.get("properties"))
    for name, sub in _dict(v.get("properties")).items():
        sp = key(child(s_path, "properties"), name)
        vp = key(child(v_path, "properties"), name)
        if name not in s_props:
            errs.append(required(sp, f"because it is defined in {vp}"))
        else:
            _nested_completeness(_dict(sub), _dict(s_props[name]), sp, vp, errs)


# --- defaults -------------------------------------------------------------------------------------


def _defaults(n: Node, path: str, errs: list[FieldErrorTuple]) -> None:
    if n.default is not MISSING:
        value = copy.deepcopy(n.default)
        pruning.prune(value, n, n.embedded, "", [])
        found: list[FieldErrorTuple] = []
        openapi.full(n, value, "", found)
        base = child(path, "default")
        for p, reason, body in found:
            errs.append((child(base, p) if p and p != "<nil>" else base, reason, body))
    for name, sub in n.properties.items():
        _defaults(sub, key(child(path, "properties"), name), errs)
    if n.additional is not None:
        _defaults(n.additional, child(path, "additionalProperties"), errs)
    if n.items is not None:
        _defaults(n.items, child(path, "items"), errs)
