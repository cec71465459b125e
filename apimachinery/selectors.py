"""Label and field selectors: parsing, matching and canonical strings, as Kubernetes does them.

A label selector (`?labelSelector=`, `spec.selector`) is an AND of requirements on an object's
labels: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (does not
exist), and `k>n` / `k<n` (integer comparison). `parse_label_selector` is a faithful port of
apimachinery `pkg/labels/selector.go` (lexer, parser, validation and error texts).

A field selector (`?fieldSelector=`) is an AND of `field=value` / `field!=value` terms over a
small per-kind set of "selectable fields" (`field_set_for`), ported from `pkg/fields/selector.go`
and the apiserver's field-label conversion functions (`check_field_selector`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apimachinery.validation import go_quote, is_qualified_name, is_valid_label_value

__all__ = [
    "EVERYTHING",
    "NOTHING",
    "SUPPORTED_FIELDS",
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectableFields",
    "SelectorError",
    "builtin_selectable_fields",
    "check_field_selector",
    "convert_field_selector",
    "escape_field_value",
    "field_set_for",
    "new_requirement",
    "parse_field_selector",
    "parse_label_selector",
    "selector_from_label_selector",
    "selector_from_map",
    "unescape_field_value",
]


class SelectorError(ValueError):
    """A selector that cannot be parsed, built or used; the message is upstream's error text."""


# --- label selectors -----------------------------------------------------------------------

# selection.Operator values.
IN = "in"
NOT_IN = "notin"
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_UNARY_OPERATORS = (EXISTS, DOES_NOT_EXIST)
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_VALID_OPERATORS = _BINARY_OPERATORS + _UNARY_OPERATORS
_INT64_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(s: str) -> int | None:
    # strconv.ParseInt(s, 10, 64): optional sign, ASCII digits only, int64 range.
    if not _INT64_RE.fullmatch(s):
        return None
    n = int(s)
    return n if -(1 << 63) <= n < (1 << 63) else None


@dataclass(frozen=True)
class Requirement:
    """One label requirement: `op` is a selection.Operator ("=", "in", "exists", "!", ...)."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the labels satisfy this requirement (upstream Requirement.Matches)."""
        if self.op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if self.op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if self.op == EXISTS:
            return self.key in labels
        if self.op == DOES_NOT_EXIST:
            return self.key not in labels
        if self.op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            have = _parse_int64(labels[self.key])
            want = _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if self.op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        """Render as upstream Requirement.String(), e.g. `k in (a,b)` or `!k`."""
        if self.op == DOES_NOT_EXIST:
            return "!" + self.key
        if self.op == EXISTS:
            return self.key
        sep = {
            EQUALS: "=",
            DOUBLE_EQUALS: "==",
            NOT_EQUALS: "!=",
            IN: " in ",
            NOT_IN: " notin ",
            GREATER_THAN: ">",
            LESS_THAN: "<",
        }.get(self.op, "")
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.op in (IN, NOT_IN):
            vals = f"({vals})"
        return f"{self.key}{sep}{vals}"


def _aggregate(messages: Iterable[str]) -> str:
    # field.ErrorList.ToAggregate() + utilerrors.aggregate.Error(): dedupe, "[a, b]" if several.
    unique = list(dict.fromkeys(messages))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


def _go_strings(values: Sequence[str] | None) -> str:
    # %#v of a []string; an empty slice from a decoded LabelSelector is nil in Go.
    if not values:
        return "[]string(nil)" if values is None else "[]string{}"
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def _child(path: str | None, name: str) -> str:
    return f"{path}.{name}" if path else name


def new_requirement(key: str, op: str, values: Sequence[str] | None = (), *, path: str | None = None) -> Requirement:
    """Build a validated Requirement (upstream NewRequirement); raises SelectorError."""
    errs: list[str] = []
    key_msgs = is_qualified_name(key)
    if key_msgs:
        errs.append(f"{_child(path, 'key')}: Invalid value: {go_quote(key)}: {'; '.join(key_msgs)}")
    value_path = _child(path, "values")
    vals = list(values) if values is not None else []
    if op in (IN, NOT_IN):
        if not vals:
            errs.append(
                f"{value_path}: Invalid value: {_go_strings(values)}: "
                "for 'in', 'notin' operators, values set can't be empty"
            )
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(
                f"{value_path}: Invalid value: {_go_strings(values)}: "
                "exact-match compatibility requires one single value"
            )
    elif op in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(
                f"{value_path}: Invalid value: {_go_strings(values)}: "
                "values set must be empty for exists and does not exist"
            )
    elif op in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(
                f"{value_path}: Invalid value: {_go_strings(values)}: "
                "for 'Gt', 'Lt' operators, exactly one value is required"
            )
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(
                    f"{value_path}[{i}]: Invalid value: {go_quote(v)}: "
                    "for 'Gt', 'Lt' operators, the value must be an integer"
                )
    else:
        supported = ", ".join(go_quote(o) for o in _VALID_OPERATORS)
        errs.append(f"{_child(path, 'operator')}: Unsupported value: {go_quote(op)}: supported values: {supported}")
    for i, v in enumerate(vals):
        msgs = is_valid_label_value(v)
        if msgs:
            errs.append(f"{value_path}[{i}][{key}]: Invalid value: {go_quote(v)}: {'; '.join(msgs)}")
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, op, tuple(vals))


@dataclass(frozen=True)
class LabelSelector:
    """An AND of label requirements, kept sorted by key; no requirements matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether every requirement matches the labels (None counts as no labels)."""
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (matches everything)."""
        return not self.requirements

    def add(self, *requirements: Requirement) -> LabelSelector:
        """Return a new selector with the extra requirements, re-sorted by key."""
        reqs = sorted((*self.requirements, *requirements), key=lambda r: r.key)
        return LabelSelector(tuple(reqs))

    def requires_exact_match(self, label: str) -> str | None:
        """The single value the selector requires for `label`, if any (RequiresExactMatch)."""
        for r in self.requirements:
            if r.key == label:
                if r.op in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        """Canonical form, e.g. `a=b,c in (d,e),!f` (upstream Selector.String())."""
        return ",".join(str(r) for r in self.requirements)


@dataclass(frozen=True)
class _NothingSelector(LabelSelector):
    """A selector that matches no object at all (upstream labels.Nothing())."""

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Never matches."""
        return False

    @property
    def empty(self) -> bool:
        """Not empty: it restricts everything away."""
        return False

    def add(self, *requirements: Requirement) -> LabelSelector:
        """Adding requirements to Nothing is still Nothing."""
        return self

    def requires_exact_match(self, label: str) -> str | None:
        """Nothing requires no exact match."""
        return None

    def __str__(self) -> str:
        """Renders as the empty string, like upstream."""
        return ""


EVERYTHING = LabelSelector()
"""The selector that matches every label set."""

NOTHING: LabelSelector = _NothingSelector()
"""The selector that matches nothing (a nil metav1.LabelSelector)."""


# Lexer tokens.
_ERROR = 0
_EOS = 1
_CLOSED_PAR = 2
_COMMA = 3
_DOES_NOT_EXIST = 4
_DOUBLE_EQUALS = 5
_EQUALS = 6
_GREATER_THAN = 7
_IDENTIFIER = 8
_IN = 9
_LESS_THAN = 10
_NOT_EQUALS = 11
_NOT_IN = 12
_OPEN_PAR = 13

_STRING2TOKEN = {
    ")": _CLOSED_PAR,
    ",": _COMMA,
    "!": _DOES_NOT_EXIST,
    "==": _DOUBLE_EQUALS,
    "=": _EQUALS,
    ">": _GREATER_THAN,
    "in": _IN,
    "<": _LESS_THAN,
    "!=": _NOT_EQUALS,
    "notin": _NOT_IN,
    "(": _OPEN_PAR,
}
_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL = frozenset("=!(),><")


class _Lexer:
    """Byte-for-byte port of the upstream selector lexer (NUL reads as end of input)."""

    def __init__(self, s: str) -> None:
        self.s = s
        self.pos = 0

    def read(self) -> str:
        ch = "\0"
        if self.pos < len(self.s):
            ch = self.s[self.pos]
            self.pos += 1
        return ch

    def unread(self) -> None:
        self.pos -= 1

    def scan_id_or_keyword(self) -> tuple[int, str]:
        buf: list[str] = []
        while True:
            ch = self.read()
            if ch == "\0":
                break
            if ch in _SPECIAL or ch in _WHITESPACE:
                self.unread()
                break
            buf.append(ch)
        s = "".join(buf)
        tok = _STRING2TOKEN.get(s)
        return (tok, s) if tok is not None else (_IDENTIFIER, s)

    def scan_special_symbol(self) -> tuple[int, str]:
        last_tok, last_lit = _ERROR, ""
        buf = ""
        while True:
            ch = self.read()
            if ch == "\0":
                break
            if ch in _SPECIAL:
                buf += ch
                tok = _STRING2TOKEN.get(buf)
                if tok is not None:
                    last_tok, last_lit = tok, buf
                elif last_tok != _ERROR:
                    self.unread()
                    break
            else:
                self.unread()
                break
        if last_tok == _ERROR:
            return _ERROR, f"error expected: keyword found '{buf}'"
        return last_tok, last_lit

    def lex(self) -> tuple[int, str]:
        ch = self.read()
        while ch in _WHITESPACE:
            ch = self.read()
        if ch == "\0":
            return _EOS, ""
        self.unread()
        if ch in _SPECIAL:
            return self.scan_special_symbol()
        return self.scan_id_or_keyword()


_KEY_AND_OPERATOR = 0
_VALUES = 1


class _Parser:
    """Recursive-descent port of the upstream label selector parser."""

    def __init__(self, s: str) -> None:
        lexer = _Lexer(s)
        self.items: list[tuple[int, str]] = []
        while True:
            tok, lit = lexer.lex()
            self.items.append((tok, lit))
            if tok == _EOS:
                break
        self.position = 0

    def _item(self, index: int, context: int) -> tuple[int, str]:
        tok, lit = self.items[min(index, len(self.items) - 1)]
        if context == _VALUES and tok in (_IN, _NOT_IN):
            tok = _IDENTIFIER
        return tok, lit

    def lookahead(self, context: int) -> tuple[int, str]:
        return self._item(self.position, context)

    def consume(self, context: int) -> tuple[int, str]:
        self.position += 1
        return self._item(self.position - 1, context)

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.lookahead(_VALUES)
            if tok in (_IDENTIFIER, _DOES_NOT_EXIST):
                try:
                    requirements.append(self.parse_requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e}") from None
                t, lit2 = self.consume(_VALUES)
                if t == _EOS:
                    return requirements
                if t == _COMMA:
                    t2, lit3 = self.lookahead(_VALUES)
                    if t2 not in (_IDENTIFIER, _DOES_NOT_EXIST):
                        raise SelectorError(f"found '{lit3}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit2}', expected: ',' or 'end of string'")
            elif tok == _EOS:
                return requirements
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> Requirement:
        key, op = self.parse_key_and_infer_operator()
        if op in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, op, [])
        op = self.parse_operator()
        if op in (IN, NOT_IN):
            values = self.parse_values()
        else:
            values = self.parse_exact_value()
        return new_requirement(key, op, sorted(values))

    def parse_key_and_infer_operator(self) -> tuple[str, str]:
        op = ""
        tok, lit = self.consume(_VALUES)
        if tok == _DOES_NOT_EXIST:
            op = DOES_NOT_EXIST
            tok, lit = self.consume(_VALUES)
        if tok != _IDENTIFIER:
            raise SelectorError(f"found '{lit}', expected: identifier")
        msgs = is_qualified_name(lit)
        if msgs:
            # The parser validates with a nil field path, which Go renders as "<nil>".
            raise SelectorError(f"<nil>: Invalid value: {go_quote(lit)}: {'; '.join(msgs)}")
        t, _ = self.lookahead(_VALUES)
        if t in (_EOS, _COMMA) and op != DOES_NOT_EXIST:
            op = EXISTS
        return lit, op

    def parse_operator(self) -> str:
        tok, lit = self.consume(_KEY_AND_OPERATOR)
        op = {
            _IN: IN,
            _EQUALS: EQUALS,
            _DOUBLE_EQUALS: DOUBLE_EQUALS,
            _GREATER_THAN: GREATER_THAN,
            _LESS_THAN: LESS_THAN,
            _NOT_IN: NOT_IN,
            _NOT_EQUALS: NOT_EQUALS,
        }.get(tok)
        if op is None:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return op

    def parse_values(self) -> set[str]:
        tok, lit = self.consume(_VALUES)
        if tok != _OPEN_PAR:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(_VALUES)
        if tok in (_IDENTIFIER, _COMMA):
            values = self.parse_identifiers_list()
            tok, _ = self.consume(_VALUES)
            if tok != _CLOSED_PAR:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSED_PAR:
            self.consume(_VALUES)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume(_VALUES)
            if tok == _IDENTIFIER:
                values.add(lit)
                tok2, lit2 = self.lookahead(_VALUES)
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSED_PAR:
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not values:
                    values.add("")  # handles "(,"
                tok2, _ = self.lookahead(_VALUES)
                if tok2 == _CLOSED_PAR:
                    values.add("")  # handles ",)"
                    return values
                if tok2 == _COMMA:
                    values.add("")  # handles ",,"
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        tok, _ = self.lookahead(_VALUES)
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self.consume(_VALUES)
        if tok == _IDENTIFIER:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(s: str) -> LabelSelector:
    """Parse a label selector string (upstream labels.Parse); raises SelectorError."""
    requirements = _Parser(s).parse()
    requirements.sort(key=lambda r: r.key)
    return LabelSelector(tuple(requirements))


_LABEL_SELECTOR_OPERATORS = {
    "In": IN,
    "NotIn": NOT_IN,
    "Exists": EXISTS,
    "DoesNotExist": DOES_NOT_EXIST,
}


def selector_from_label_selector(obj: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a metav1.LabelSelector dict (upstream LabelSelectorAsSelector).

    None gives NOTHING; a selector without matchLabels/matchExpressions gives EVERYTHING.
    """
    if obj is None:
        return NOTHING
    match_labels: Mapping[str, str] = obj.get("matchLabels") or {}
    match_expressions: Sequence[Mapping[str, Any]] = obj.get("matchExpressions") or []
    if not match_labels and not match_expressions:
        return EVERYTHING
    requirements = [new_requirement(k, EQUALS, [v]) for k, v in match_labels.items()]
    for expr in match_expressions:
        operator = expr.get("operator")
        op = _LABEL_SELECTOR_OPERATORS.get(operator) if isinstance(operator, str) else None
        if op is None:
            raise SelectorError(f"{go_quote(str(operator or ''))} is not a valid label selector operator")
        values = expr.get("values")
        requirements.append(new_requirement(expr.get("key") or "", op, list(values) if values else None))
    return EVERYTHING.add(*requirements)


def selector_from_map(m: Mapping[str, str] | None) -> LabelSelector:
    """Equality on every key of a plain map (upstream SelectorFromSet); empty matches all."""
    if not m:
        return EVERYTHING
    return EVERYTHING.add(*(Requirement(k, EQUALS, (v,)) for k, v in m.items()))


# --- field selectors -----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    """One field term: `field=value` or `field!=value` ("==" is parsed as "=")."""

    field: str
    op: str
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Compare against the object's field set; an absent field compares as ""."""
        have = fields.get(self.field, "")
        return have != self.value if self.op == NOT_EQUALS else have == self.value

    def __str__(self) -> str:
        """Render with the value escaped, e.g. `metadata.name=a\\,b`."""
        return f"{self.field}{self.op}{escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """An AND of field terms; no terms matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Whether every term matches the field set."""
        return all(r.matches(fields) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything."""
        return not self.requirements

    def fields_used(self) -> set[str]:
        """The field names the selector refers to."""
        return {r.field for r in self.requirements}

    def requires_exact_match(self, field: str) -> str | None:
        """The value an `=` term requires for `field`, if any (RequiresExactMatch)."""
        for r in self.requirements:
            if r.field == field and r.op == EQUALS:
                return r.value
        return None

    def __str__(self) -> str:
        """Canonical string, terms joined with commas (upstream Selector.String())."""
        return ",".join(str(r) for r in self.requirements)


def escape_field_value(value: str) -> str:
    """Escape `\\`, `,` and `=` in a field selector value (upstream EscapeValue)."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(s: str) -> str:
    """Undo escape_field_value, rejecting bad escapes (upstream UnescapeValue)."""
    if not any(c in s for c in "\\,="):
        return s
    out: list[str] = []
    in_slash = False
    for c in s:
        if in_slash:
            if c not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            # Go prints the offending rune with %v, i.e. as its code point number.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(selector: str) -> list[str]:
    if not selector:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, c in enumerate(selector):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in (NOT_EQUALS, DOUBLE_EQUALS, EQUALS):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def parse_field_selector(s: str) -> FieldSelector:
    """Parse a field selector string (upstream fields.ParseSelector); raises SelectorError."""
    requirements: list[FieldRequirement] = []
    for part in sorted(_split_terms(s)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
        lhs, op, rhs = split
        value = unescape_field_value(rhs)
        requirements.append(FieldRequirement(lhs, NOT_EQUALS if op == NOT_EQUALS else EQUALS, value))
    return FieldSelector(tuple(requirements))


_META_FIELDS = frozenset({"metadata.name", "metadata.namespace"})

SUPPORTED_FIELDS: dict[str, frozenset[str]] = {
    "Pod": _META_FIELDS
    | {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    },
    "Event": _META_FIELDS
    | {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "Secret": _META_FIELDS | {"type"},
    "Node": frozenset({"metadata.name", "spec.unschedulable"}),
    "Namespace": frozenset({"metadata.name", "status.phase"}),
    "ReplicationController": _META_FIELDS | {"status.replicas"},
    "ReplicaSet": _META_FIELDS | {"status.replicas"},
    "Job": _META_FIELDS | {"status.successful"},
    "Service": _META_FIELDS | {"spec.clusterIP", "spec.type"},
}
"""Field labels the apiserver accepts per kind; unlisted kinds accept metadata.name/namespace."""

# Deprecated labels the apiserver rewrites before matching.
_FIELD_ALIASES: dict[str, dict[str, str]] = {"Pod": {"spec.host": "spec.nodeName"}}


def _unsupported_message(kind: str, label: str) -> str:
    if kind == "Job":
        return f"field label {go_quote(label)} not supported for batchv1.Job"
    if kind in SUPPORTED_FIELDS:
        return f"field label not supported: {label}"
    return f'{go_quote(label)} is not a known field selector: only "metadata.name", "metadata.namespace"'


def convert_field_selector(kind: str, sel: FieldSelector) -> FieldSelector:
    """Apply the kind's field-label conversion (aliases, support check); raises SelectorError."""
    supported = SUPPORTED_FIELDS.get(kind, _META_FIELDS)
    aliases = _FIELD_ALIASES.get(kind, {})
    out: list[FieldRequirement] = []
    for r in sel.requirements:
        field = aliases.get(r.field, r.field)
        if field not in supported:
            raise SelectorError(_unsupported_message(kind, r.field))
        out.append(FieldRequirement(field, r.op, r.value))
    return FieldSelector(tuple(out))


def check_field_selector(kind: str, sel: FieldSelector) -> None:
    """Raise SelectorError (upstream's 400 message) if `sel` uses a field `kind` can't select."""
    convert_field_selector(kind, sel)


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _bool(value: Any) -> str:
    return "true" if value is True else "false"


def _int(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"


def field_set_for(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable fields of an object (upstream per-registry GetAttrs / ToSelectableFields)."""
    fields = {
        "metadata.name": _s(_get(obj, "metadata", "name")),
        "metadata.namespace": _s(_get(obj, "metadata", "namespace")),
    }
    if kind == "Pod":
        pod_ips = _get(obj, "status", "podIPs")
        pod_ip = _get(obj, "status", "podIP")
        if isinstance(pod_ips, list) and pod_ips and isinstance(pod_ips[0], Mapping):
            pod_ip = pod_ips[0].get("ip")
        fields.update(
            {
                "spec.nodeName": _s(_get(obj, "spec", "nodeName")),
                "spec.restartPolicy": _s(_get(obj, "spec", "restartPolicy")),
                "spec.schedulerName": _s(_get(obj, "spec", "schedulerName")),
                "spec.serviceAccountName": _s(_get(obj, "spec", "serviceAccountName")),
                "spec.hostNetwork": _bool(_get(obj, "spec", "hostNetwork")),
                "status.phase": _s(_get(obj, "status", "phase")),
                "status.podIP": _s(pod_ip),
                "status.nominatedNodeName": _s(_get(obj, "status", "nominatedNodeName")),
            }
        )
    elif kind == "Event":
        source = _get(obj, "source", "component") or _get(obj, "reportingComponent")
        involved = {
            f"involvedObject.{f}": _s(_get(obj, "involvedObject", f))
            for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion")
        }
        fields.update(involved)
        fields.update(
            {
                "involvedObject.fieldPath": _s(_get(obj, "involvedObject", "fieldPath")),
                "reason": _s(obj.get("reason")),
                "reportingComponent": _s(obj.get("reportingComponent")),
                "source": _s(source),
                "type": _s(obj.get("type")),
            }
        )
    elif kind == "Secret":
        fields["type"] = _s(obj.get("type"))
    elif kind == "Node":
        fields["spec.unschedulable"] = _bool(_get(obj, "spec", "unschedulable"))
    elif kind == "Namespace":
        fields["status.phase"] = _s(_get(obj, "status", "phase"))
    elif kind in ("ReplicaSet", "ReplicationController"):
        fields["status.replicas"] = _int(_get(obj, "status", "replicas"))
    elif kind == "Job":
        fields["status.successful"] = _int(_get(obj, "status", "succeeded"))
    elif kind == "Service":
        fields["spec.clusterIP"] = _s(_get(obj, "spec", "clusterIP"))
        fields["spec.type"] = _s(_get(obj, "spec", "type"))
    return fields


@dataclass(frozen=True)
class SelectableFields:
    """One kind's field selection: the labels a selector may name and an object's values for them
    (upstream's field-label conversion and GetAttrs, side by side)."""

    supported: frozenset[str]
    values: Callable[[Mapping[str, Any]], dict[str, str]]
    unsupported: Callable[[str], str]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def convert(self, sel: FieldSelector) -> FieldSelector:
        """The selector with aliases resolved; raises SelectorError on a label this kind cannot select."""
        out: list[FieldRequirement] = []
        for r in sel.requirements:
            label = self.aliases.get(r.field, r.field)
            if label not in self.supported:
                raise SelectorError(self.unsupported(r.field))
            out.append(FieldRequirement(label, r.op, r.value))
        return FieldSelector(tuple(out))


def builtin_selectable_fields(kind: str) -> SelectableFields:
    """The field selection of a built-in kind (metadata.name and metadata.namespace for most)."""
    return SelectableFields(
        supported=SUPPORTED_FIELDS.get(kind, _META_FIELDS),
        values=lambda obj: field_set_for(kind, obj),
        unsupported=lambda label: _unsupported_message(kind, label),
        aliases=_FIELD_ALIASES.get(kind, {}),
    )
