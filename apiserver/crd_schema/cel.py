"""x-kubernetes-validations: CEL rules compiled once with cel-python, evaluated per value.

As upstream's apiextensions `schema/cel`: `self` is the value the rule sits on, `oldSelf` its
correlated old value; a rule that names `oldSelf` is a transition rule and runs only on an update
that has an old value. A false rule reports `message`, the string `messageExpression` yields, or
`failed rule: <rule>`; `reason` picks the error type and `fieldPath` where it points. Besides CEL's
standard functions, the Kubernetes list and string library functions rules commonly use are present.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import celpy
import re2
from celpy import celtypes

from apiserver.crd_schema import celfast
from apiserver.crd_schema.cel_check import environment, syntax_error

__all__ = ["CelRule", "compile_rule", "evaluate", "evaluate_plain"]

_OLD_SELF = re.compile(r"\boldSelf\b")
# calls that walk a whole list or map (their cost grows with the value; the others' does not)
_ITERATES = re.compile(r"\.\s*(all|exists|exists_one|map|filter|sum|min|max|isSorted|indexOf|lastIndexOf|join)\s*\(")
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_FIELD_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*(\d+)\s*\]")
SUPPORTED_REASONS = ("FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired")


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("no such overload")
    return value


def _is_sorted(value: Any) -> celtypes.BoolType:
    items = _list(value)
    return celtypes.BoolType(all(items[i] <= items[i + 1] for i in range(len(items) - 1)))


def _sum(value: Any) -> Any:
    items = _list(value)
    if not items:
        return celtypes.IntType(0)
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


def _min(value: Any) -> Any:
    items = _list(value)
    if not items:
        raise ValueError("min called on empty list")
    return min(items)


def _max(value: Any) -> Any:
    items = _list(value)
    if not items:
        raise ValueError("max called on empty list")
    return max(items)


def _index_of(target: Any, item: Any) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(target.find(item))
    items = _list(target)
    return celtypes.IntType(items.index(item) if item in items else -1)


def _last_index_of(target: Any, item: Any) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(target.rfind(item))
    items = _list(target)
    for i in range(len(items) - 1, -1, -1):
        if items[i] == item:
            return celtypes.IntType(i)
    return celtypes.IntType(-1)


def _split(value: Any, sep: Any, limit: Any = None) -> celtypes.ListType:
    parts = (
        str(value).split(str(sep)) if limit is None or int(limit) < 0 else str(value).split(str(sep), int(limit) - 1)
    )
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _join(value: Any, sep: Any = "") -> celtypes.StringType:
    return celtypes.StringType(str(sep).join(str(v) for v in _list(value)))


def _find(value: Any, pattern: Any) -> celtypes.StringType:
    m = re2.search(str(pattern), str(value))
    return celtypes.StringType(m.group(0) if m else "")


def _find_all(value: Any, pattern: Any, limit: Any = -1) -> celtypes.ListType:
    found = [m.group(0) for m in re2.finditer(str(pattern), str(value))]
    if int(limit) >= 0:
        found = found[: int(limit)]
    return celtypes.ListType([celtypes.StringType(f) for f in found])


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "isSorted": _is_sorted,
    "sum": _sum,
    "min": _min,
    "max": _max,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": lambda s: celtypes.StringType(str(s).lower()),
    "upperAscii": lambda s: celtypes.StringType(str(s).upper()),
    "trim": lambda s: celtypes.StringType(str(s).strip()),
    "replace": lambda s, old, new, n=-1: celtypes.StringType(str(s).replace(str(old), str(new), int(n))),
    "split": _split,
    "join": _join,
    "find": _find,
    "findAll": _find_all,
}


class CelCompileError(Exception):
    """A rule or messageExpression that does not compile; the text is the detail upstream prints."""

    def __init__(self, detail: str, field: str = "rule", expression: str = "") -> None:
        super().__init__(detail)
        self.field = field
        self.expression = expression


@dataclass(frozen=True, slots=True)
class CelRule:
    """One compiled x-kubernetes-validations entry."""

    rule: str
    program: Any
    message: str
    message_program: Any | None
    reason: str | None
    field_path: str  # already in field.Path spelling relative to the value: `.spec.x`, `[key]`, `[0]`
    transition: bool
    iterates: bool  # walks the value, so it costs the value's size rather than one step
    fast: celfast.FastRule | None = None  # the rule as Python closures over plain values (celfast)


def _compile_expression(expression: str) -> Any:
    """The interpreter's program for `expression` (CelCompileError when it does not compile)."""
    return _compile_with_tree(expression)[0]


def _compile_with_tree(expression: str) -> tuple[Any, Any]:
    """The interpreter's program for `expression` and its parse tree."""
    try:
        env = environment()
        tree = env.compile(expression)
        return env.program(tree, functions=_FUNCTIONS), tree
    except (celpy.CELParseError, celpy.CELEvalError, ValueError, TypeError) as e:
        raise CelCompileError(f"compilation failed: {syntax_error(expression, e)}") from e


def _uses_old_self(expression: str) -> bool:
    return bool(_OLD_SELF.search(_STRINGS.sub("''", expression)))


def field_path_parts(field_path: str) -> list[tuple[str, str]] | None:
    """Split a rule's fieldPath (`.a['b'][0]`) into (kind, name) parts; None when it is not a path."""
    text = field_path.strip()
    parts: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _FIELD_PATH_PART.match(text, pos)
        if not m:
            return None
        if m.group(1) is not None:
            parts.append(("field", m.group(1)))
        elif m.group(2) is not None:
            parts.append(("key", m.group(2).replace("\\'", "'")))
        else:
            parts.append(("index", m.group(3)))
        pos = m.end()
    return parts


def compile_rule(entry: dict[str, Any], rendered_field_path: str) -> CelRule:
    """Compile one x-kubernetes-validations entry (CelCompileError when rule or messageExpression fails)."""
    rule = str(entry.get("rule") or "")
    try:
        program, tree = _compile_with_tree(rule)
    except CelCompileError as e:
        raise CelCompileError(str(e), "rule", rule) from e
    message_expression = str(entry.get("messageExpression") or "").strip()
    message_program = None
    if message_expression:
        try:
            message_program = _compile_expression(message_expression)
        except CelCompileError as e:
            detail = "messageExpression " + str(e)
            raise CelCompileError(detail, "messageExpression", message_expression) from e
    return CelRule(
        rule=rule,
        program=program,
        message=str(entry.get("message") or "").strip(),
        message_program=message_program,
        reason=entry.get("reason") or None,
        field_path=rendered_field_path,
        transition=_uses_old_self(rule),
        iterates=bool(_ITERATES.search(_STRINGS.sub("''", rule + " " + message_expression))),
        fast=celfast.compile_fast(tree),
    )


def _eval_error_text(err: BaseException) -> str:
    args = getattr(err, "args", ())
    text = str(args[0]) if args else str(err)
    cause = args[1] if len(args) > 1 else None
    if cause is KeyError or text.startswith("no such member"):
        name = text.rsplit(":", 1)[-1].strip().strip("'")
        return f"no such key: {name}"
    if cause is ZeroDivisionError or "divide by zero" in text:
        return "division by zero"
    if cause is IndexError:
        return "index out of bounds"
    if "no such overload" in text or cause is TypeError:
        return "no such overload"
    return text


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one rule said about one value: ok, or the failure's detail (and whether it is an eval error)."""

    ok: bool
    detail: str = ""
    eval_error: bool = False


def evaluate(rule: CelRule, activation: dict[str, Any]) -> Outcome:
    """Run one rule over `self` (and `oldSelf`); a failure carries upstream's detail text."""
    try:
        result = rule.program.evaluate(activation)
    except (celpy.CELEvalError, TypeError, ValueError, KeyError, ZeroDivisionError) as e:
        return Outcome(False, _eval_failure(rule, _eval_error_text(e)), True)
    if isinstance(result, celpy.CELEvalError):
        return Outcome(False, _eval_failure(rule, _eval_error_text(result)), True)
    if result is True or (isinstance(result, celtypes.BoolType) and bool(result)):
        return Outcome(True)
    return Outcome(False, _message(rule, activation))


# what a compiled rule may raise besides Fallback on a value it did not foresee: the interpreter decides
_FAST_GIVES_UP = (celfast.Fallback, TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, RecursionError)


def evaluate_plain(rule: CelRule, values: dict[str, Any], activation: Callable[[], dict[str, Any]]) -> Outcome:
    """Run one rule over plain JSON `values` (`self`, `oldSelf`) through its compiled closures.

    Where the rule is not compiled, or its closures cannot answer for these values, the interpreter
    runs on `activation()` (the values converted for CEL), so the outcome is always the interpreter's.
    """
    if rule.fast is not None:
        try:
            result = rule.fast(values)
        except _FAST_GIVES_UP:
            result = None
        if result is True:
            return Outcome(True)
        if result is False:
            return Outcome(False, _message(rule, activation()))
    return evaluate(rule, activation())


def _eval_failure(rule: CelRule, text: str) -> str:
    shown = rule.message or rule.rule.strip()  # upstream's ruleErrorString
    if text == "no such overload":
        return (
            f"'{text}': call arguments did not match a supported operator, function or macro signature "
            f"for rule: {shown}"
        )
    return f"{text} evaluating rule: {shown}"


def _message(rule: CelRule, activation: dict[str, Any]) -> str:
    if rule.message_program is not None:
        try:
            text = rule.message_program.evaluate(activation)
        except (celpy.CELEvalError, TypeError, ValueError, KeyError, ZeroDivisionError):
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text:
            return str(text)
    return rule.message or f"failed rule: {rule.rule.strip()}"
