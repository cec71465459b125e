"""Field paths and field errors in the forms upstream's CRD validation prints them.

Two path spellings meet here, as upstream: kube-openapi's validator names a value `spec.items[0].name`
and a map entry `spec.labels.foo` (its messages say `spec.replicas in body must be …`), while
`field.Path` (list types, embedded metadata, CEL rules) writes a map entry `spec.labels[foo]`.
Bad values render as field.Error does, except that objects and lists render as compact JSON.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from apimachinery.validation import FieldErrorTuple, error_body, format_value, go_quote

__all__ = [
    "child",
    "duplicate",
    "go_number",
    "index",
    "invalid",
    "json_text",
    "key",
    "not_supported",
    "render_value",
    "too_long_max_length",
    "too_many",
    "type_invalid",
    "with_reason",
]

_OMIT = object()


def child(path: str, name: str) -> str:
    """`field.Path.Child`: `spec` + `replicas` → `spec.replicas` (the root has no dot)."""
    return f"{path}.{name}" if path else name


def key(path: str, name: str) -> str:
    """`field.Path.Key`: `spec.labels` + `a` → `spec.labels[a]`."""
    return f"{path}[{name}]"


def index(path: str, i: int) -> str:
    """`field.Path.Index`: `spec.items` + 0 → `spec.items[0]`."""
    return f"{path}[{i}]"


def go_number(value: float | int) -> str:
    """A number as Go's `%v` prints it (float64 `10` not `10.0`, exponent from 1e21)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exp = text.split("e")
        sign = "-" if exp.startswith("-") else "+"
        digits = exp.lstrip("+-").rjust(2, "0")
        return f"{mantissa}e{sign}{digits}"
    return text


def json_text(value: Any) -> str:
    """Compact JSON with sorted keys, as Go's json.Marshal writes a map."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def render_value(value: Any) -> str:
    """A bad value as a field error shows it: strings quoted, Go numbers, objects and lists as JSON."""
    if isinstance(value, dict | list):
        return json_text(value)
    if isinstance(value, float):
        return go_number(value)
    return format_value(value)


def _body(reason: str, value: Any, detail: str) -> str:
    text = error_body(reason)
    if value is not _OMIT:
        text += ": " + render_value(value)
    return text + (": " + detail if detail else "")


def invalid(path: str, value: Any, detail: str) -> FieldErrorTuple:
    """field.Invalid with upstream's value rendering (objects as JSON)."""
    return (path, "FieldValueInvalid", _body("FieldValueInvalid", value, detail))


def type_invalid(path: str, value: Any, detail: str) -> FieldErrorTuple:
    """field.TypeInvalid: a value of the wrong type or format (`Invalid value: "string": …`)."""
    return (path, "FieldValueTypeInvalid", _body("FieldValueTypeInvalid", value, detail))


def too_long_max_length(path: str, max_length: int) -> FieldErrorTuple:
    """field.TooLongMaxLength (the value is never shown)."""
    detail = f"may not be longer than {max_length}" if max_length >= 0 else "value is too long"
    return (path, "FieldValueTooLong", error_body("FieldValueTooLong", detail=detail))


def too_many(path: str, actual: int, maximum: int) -> FieldErrorTuple:
    """field.TooMany: `Too many: 4: must have at most 3 items`."""
    detail = f"must have at most {maximum} items" if maximum >= 0 else "has too many items"
    value = actual if actual >= 0 else _OMIT
    return (path, "FieldValueTooMany", _body("FieldValueTooMany", value, detail))


def duplicate(path: str, value: Any) -> FieldErrorTuple:
    """field.Duplicate: `Duplicate value: {"name":"a"}`."""
    return (path, "FieldValueDuplicate", _body("FieldValueDuplicate", value, ""))


def not_supported(path: str, value: Any, valid: list[str]) -> FieldErrorTuple:
    """field.NotSupported listing the allowed values, each Go-quoted."""
    detail = "supported values: " + ", ".join(go_quote(v) for v in valid) if valid else ""
    return (path, "FieldValueNotSupported", _body("FieldValueNotSupported", value, detail))


def with_reason(reason: str, path: str, value: Any, detail: str) -> FieldErrorTuple:
    """A field error of any type, as a CEL rule's `reason` picks it."""
    if reason == "FieldValueRequired":
        return (path, reason, error_body(reason, detail=detail))
    if reason == "FieldValueForbidden":
        return (path, reason, error_body(reason, detail=detail))
    if reason == "FieldValueDuplicate":
        return duplicate(path, value)
    return invalid(path, value, detail)
