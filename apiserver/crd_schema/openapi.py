"""Value validation as kube-openapi's SchemaValidator does it for a CRD, with its exact messages.

The checks of one node run in upstream's order (type, allOf/anyOf/oneOf/not, string, format,
number, array, enum, object); each applies by the kind of the value, not the schema's type, as
upstream's validators do. Messages name the value by kube-openapi's path (`spec.items[0].name`) and
turn into field errors as apiextensions' `kubeOpenAPIResultToFieldErrors` turns them.
"""

from __future__ import annotations

from typing import Any

from apimachinery.validation import FieldErrorTuple, go_quote, required
from apiserver.crd_schema.messages import (
    go_number,
    invalid,
    json_text,
    not_supported,
    too_long_max_length,
    too_many,
    type_invalid,
)
from apiserver.crd_schema.node import Node
from apiserver.crd_schema.values import json_equal, json_type

__all__ = ["field_path", "full", "local"]

_ROOT = "<nil>"  # a nil field.Path prints so; upstream puts allOf/anyOf/oneOf/not failures there


def field_path(opath: str) -> str:
    """kube-openapi's value name as a field path (`.foo` at the root becomes `foo`)."""
    return opath[1:] if opath.startswith(".") else opath


def _type_error(opath: str, type_name: str, got: str) -> FieldErrorTuple:
    return type_invalid(field_path(opath), got, f"{opath} in body must be of type {type_name}: {go_quote(got)}")


def _go_format(value: Any) -> str:
    # the format kube-openapi infers from a decoded Go value: JSON integers are int64, numbers float64
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return ""


def _check_type(n: Node, value: Any, opath: str, out: list[FieldErrorTuple]) -> None:
    if not n.types and not n.format:
        return
    got = json_type(value)
    float_int = got == "number" and "integer" in n.types and float(value).is_integer()
    int_float = got == "integer" and "number" in n.types
    ok = got in n.types or float_int or int_float
    stringish = isinstance(value, str | list)
    if n.format and not stringish and not ok and _go_format(value) != n.format:
        out.append(_type_error(opath, n.format, _go_format(value)))
        return
    if n.format and stringish and "number" not in n.types and "integer" not in n.types:
        return  # upstream lets any string or array pass the type check of a formatted non-numeric schema
    if not ok:
        out.append(_type_error(opath, ",".join(n.types), got))


_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "": (-(2**63), 2**63 - 1), "int64": (-(2**63), 2**63 - 1)}
_FLOAT32_MAX = 3.4028234663852886e38


def _in_range(n: Node, value: Any) -> tuple[bool, str, str]:
    """kube-openapi's IsValueValidAgainstRange for a single-typed numeric schema: (ok, type, format)."""
    if len(n.types) != 1:
        return True, "", ""
    if n.types[0] == "integer":
        fmt = n.format if n.format in ("int32", "int64") else ""
        if isinstance(value, float) and not value.is_integer():
            return False, "integer", fmt
        low, high = _INT_RANGES[fmt]
        return low <= value <= high, "integer", fmt
    if n.types[0] == "number" and n.format == "float":
        return abs(value) <= _FLOAT32_MAX, "number", "float"
    return True, "", ""


def _check_string(n: Node, value: str, opath: str, out: list[FieldErrorTuple]) -> None:
    fp = field_path(opath)
    if n.max_length is not None and len(value) > n.max_length:
        out.append(too_long_max_length(fp, n.max_length))
    elif n.min_length is not None and len(value) < n.min_length:
        out.append(invalid(fp, value, f"{opath} in body should be at least {n.min_length} chars long"))
    elif n.pattern:
        if n.pattern_re is None:
            shown = f"{n.pattern}, but pattern is invalid: {n.pattern_error}"
            out.append(invalid(fp, value, f"{opath} in body should match '{shown}'"))
        elif n.pattern_re.search(value) is None:
            out.append(invalid(fp, value, f"{opath} in body should match '{n.pattern}'"))
    if n.format_check is not None and not n.format_check(value):
        out.append(type_invalid(fp, value, f"{opath} in body must be of type {n.format}: {go_quote(value)}"))


def _bound(limit: float, value: Any) -> str:
    # an integer value is compared with int64(limit), so the message shows the truncated limit
    return str(int(limit)) if isinstance(value, int) else go_number(limit)


def _check_number(n: Node, value: Any, opath: str, out: list[FieldErrorTuple]) -> None:
    fp = field_path(opath)
    ok, type_name, fmt = _in_range(n, value)
    if not ok:
        kind = f"with format {fmt}" if fmt else "(default format)"
        out.append(invalid(_ROOT, "", f"Checked value must be of type {type_name} {kind} in {opath}"))
    if n.multiple_of is not None:
        factor = n.multiple_of
        if factor <= 0:
            out.append(
                invalid(fp, factor, f"factor MultipleOf declared for {opath} must be positive: {go_number(factor)}")
            )
        elif not float(value / factor).is_integer():
            out.append(invalid(fp, value, f"{opath} in body should be a multiple of {go_number(factor)}"))
    if n.minimum is not None:
        lim = int(n.minimum) if isinstance(value, int) else n.minimum
        if (n.exclusive_minimum and value <= lim) or (not n.exclusive_minimum and value < lim):
            how = "greater than" if n.exclusive_minimum else "greater than or equal to"
            out.append(invalid(fp, value, f"{opath} in body should be {how} {_bound(n.minimum, value)}"))
    if n.maximum is not None:
        lim = int(n.maximum) if isinstance(value, int) else n.maximum
        if (n.exclusive_maximum and value >= lim) or (not n.exclusive_maximum and value > lim):
            how = "less than" if n.exclusive_maximum else "less than or equal to"
            out.append(invalid(fp, value, f"{opath} in body should be {how} {_bound(n.maximum, value)}"))


def _check_array(n: Node, value: list[Any], opath: str, out: list[FieldErrorTuple]) -> None:
    fp = field_path(opath)
    size = len(value)
    if n.min_items is not None and size < n.min_items:
        out.append(invalid(fp, size, f"{opath} in body should have at least {n.min_items} items"))
    if n.max_items is not None and size > n.max_items:
        out.append(too_many(fp, size, n.max_items))
    if n.unique_items and size > 1:
        seen: set[str] = set()
        for item in value:
            text = json_text(item)
            if text in seen:
                out.append(invalid(fp, "", f"{opath} in body shouldn't contain duplicates"))
                break
            seen.add(text)


def _enum_match(value: Any, candidate: Any) -> bool:
    numbers = (int, float)
    if isinstance(value, numbers) and isinstance(candidate, numbers):
        if isinstance(value, bool) or isinstance(candidate, bool):
            return value is candidate
        return value == candidate
    return json_equal(value, candidate)


def _check_enum(n: Node, value: Any, opath: str, out: list[FieldErrorTuple]) -> None:
    if not n.enum or any(_enum_match(value, c) for c in n.enum):
        return
    allowed = [c if isinstance(c, str) else json_text(c) for c in n.enum]
    out.append(not_supported(field_path(opath), value, allowed))


def _check_object(n: Node, value: dict[str, Any], opath: str, out: list[FieldErrorTuple]) -> None:
    fp = field_path(opath)
    size = len(value)
    if n.min_properties is not None and size < n.min_properties:
        out.append(invalid(fp, size, f"{opath} in body should have at least {n.min_properties} properties"))
    if n.max_properties is not None and size > n.max_properties:
        out.append(too_many(fp, size, n.max_properties))
    if n.additional_allows is False:
        for k in value:
            if k not in n.properties:
                out.append(invalid(fp, k, f"{opath}.{k} in body is a forbidden property"))


def _check_junctors(n: Node, value: Any, opath: str, out: list[FieldErrorTuple]) -> None:
    if n.any_of:
        best: list[FieldErrorTuple] | None = None
        for sub in n.any_of:
            errs: list[FieldErrorTuple] = []
            full(sub, value, opath, errs)
            if not errs:
                best = None
                break
            if best is None:
                best = errs
        else:
            out.append(invalid(_ROOT, "", f"{go_quote(opath)} must validate at least one schema (anyOf)"))
        if best:
            out.extend(best)
    if n.one_of:
        valid = 0
        first_failure: list[FieldErrorTuple] | None = None
        for sub in n.one_of:
            errs = []
            full(sub, value, opath, errs)
            if not errs:
                valid += 1
            elif first_failure is None:
                first_failure = errs
        if valid != 1:
            extra = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            out.append(invalid(_ROOT, "", f"{go_quote(opath)} must validate one and only one schema (oneOf). {extra}"))
            if valid == 0 and first_failure:
                out.extend(first_failure)
    if n.all_of:
        valid = 0
        for sub in n.all_of:
            errs = []
            full(sub, value, opath, errs)
            valid += not errs
            out.extend(errs)
        if valid != len(n.all_of):
            extra = ". None validated" if valid == 0 else ""
            out.append(invalid(_ROOT, "", f"{go_quote(opath)} must validate all the schemas (allOf){extra}"))
    if n.not_ is not None:
        errs = []
        full(n.not_, value, opath, errs)
        if not errs:
            out.append(invalid(_ROOT, "", f"{go_quote(opath)} must not validate the schema (not)"))


def local(n: Node, value: Any, opath: str, out: list[FieldErrorTuple]) -> None:
    """The checks of node `n` on `value` itself, without descending into properties or items."""
    if value is None:
        if n.types and not n.nullable:
            out.append(_type_error(opath, ",".join(n.types), "null"))
        if n.enum and not any(c is None for c in n.enum):
            _check_enum(n, value, opath, out)
        return
    _check_type(n, value, opath, out)
    if n.any_of or n.one_of or n.all_of or n.not_ is not None:
        _check_junctors(n, value, opath, out)
    if isinstance(value, str):
        _check_string(n, value, opath, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(n, value, opath, out)
    elif isinstance(value, list):
        _check_array(n, value, opath, out)
    if n.enum:
        _check_enum(n, value, opath, out)
    if isinstance(value, dict):
        _check_object(n, value, opath, out)


def check_required(n: Node, value: Any, opath: str, out: list[FieldErrorTuple]) -> None:
    """The `required` properties missing from object `value` (upstream checks them after the properties)."""
    if n.required and isinstance(value, dict):
        for k in n.required:
            if k not in value:
                out.append(required(field_path(f"{opath}.{k}")))


def child_opath(opath: str, name: str) -> str:
    """kube-openapi's name for a property of `opath` (no dot at the root)."""
    return f"{opath}.{name}" if opath else name


def full(n: Node, value: Any, opath: str, out: list[FieldErrorTuple]) -> None:
    """All of kube-openapi's checks of `value` against `n`, descending into what it holds."""
    local(n, value, opath, out)
    if isinstance(value, dict):
        for k, v in value.items():
            sub = n.properties.get(k)
            if sub is not None:
                full(sub, v, child_opath(opath, k), out)
            elif n.additional is not None:
                full(n.additional, v, f"{opath}.{k}", out)
        check_required(n, value, opath, out)
    elif isinstance(value, list) and n.items is not None:
        for i, v in enumerate(value):
            full(n.items, v, f"{opath}[{i}]", out)
