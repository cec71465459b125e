"""What upstream's CEL compiler refuses in an x-kubernetes-validations rule when a CRD is written, as far as
resolving field selections against the schema goes (not a full CEL type checker).

`check_rule` walks cel-python's parse tree: `self` and `oldSelf` are the value the rule sits on; a
field selection (`self.a.b`, inside `has(...)` too) on an object whose schema lists its properties must
name one of them (CEL-escaped names such as `foo__dash__bar` count), else it is upstream's
`undefined field 'x'`; at the object root and in embedded resources `apiVersion`, `kind` and
`metadata.name`/`metadata.generateName` exist as upstream declares them; indexing a list or map and the
variable of `all`/`exists`/`exists_one`/`map`/`filter` over a list follow the schema's `items` and
`additionalProperties`. Anything else (maps' keys, preserve-unknown-fields or int-or-string values,
other variables, function results) is not checked. `syntax_error` words a parse failure as cel-go does:
`ERROR: <input>:1:9: Syntax error: mismatched input '<EOF>' expecting {...}`, with the source line and a
caret under the column.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import celpy
from lark import Token, Tree, UnexpectedCharacters, UnexpectedToken

__all__ = ["check_rule", "environment", "syntax_error"]

Schema = Mapping[str, Any]
_STRING: Schema = {"type": "string"}
_OBJECT_META: Schema = {"type": "object", "properties": {"name": _STRING, "generateName": _STRING}}
_MACROS = ("all", "exists", "exists_one", "map", "filter")
_RESERVED = frozenset(
    "true false null in as break const continue else for function if import let loop package namespace return var "
    "void while".split()
)
# ANTLR's names for the tokens, in the order cel-go lists what it expected
_TOKEN_NAMES = {
    "LSQB": "'['",
    "LBRACE": "'{'",
    "LPAR": "'('",
    "DOT": "'.'",
    "MINUS": "'-'",
    "BANG": "'!'",
    "BOOL_LIT": "'true', 'false'",
    "NULL_LIT": "'null'",
    "FLOAT_LIT": "NUM_FLOAT",
    "INT_LIT": "NUM_INT",
    "UINT_LIT": "NUM_UINT",
    "STRING_LIT": "STRING",
    "BYTES_LIT": "BYTES",
    "IDENT": "IDENTIFIER",
}


@functools.cache
def environment() -> celpy.Environment:
    """The CEL environment rules compile in, made on first use: building its parser costs about 0.1 s, which
    an apiserver that meets no CEL rule should not pay at start."""
    return celpy.Environment()


def _escape(name: str) -> str | None:
    """A property's name as CEL sees it (upstream's escaping), or None when CEL cannot name it."""
    if name in _RESERVED:
        return f"__{name}__"
    out = name.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__")
    out = out.replace("/", "__slash__")
    if not out or not (out[0].isalpha() or out[0] == "_") or not all(c.isalnum() or c == "_" for c in out):
        return None
    return out


def _with_type_and_meta(schema: Schema) -> Schema:
    """An object root or embedded resource: apiVersion, kind and metadata (name, generateName) as upstream adds."""
    declared = schema.get("properties")
    props = dict(declared) if isinstance(declared, Mapping) else {}
    props.update(apiVersion=_STRING, kind=_STRING, metadata=_OBJECT_META)
    return {**schema, "type": "object", "properties": props}


def _unchecked(schema: Schema | None) -> bool:
    return (
        schema is None
        or schema.get("x-kubernetes-preserve-unknown-fields") is True
        or schema.get("x-kubernetes-int-or-string") is True
    )


def _field(schema: Schema | None, name: str) -> tuple[bool, Schema | None]:
    """(whether `name` may be selected, its schema when known)."""
    if _unchecked(schema):
        return True, None
    assert schema is not None
    if schema.get("x-kubernetes-embedded-resource") is True:
        schema = _with_type_and_meta(schema)
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):  # a map: any key
        return True, extra
    props = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(props, Mapping):
        return True, None  # not an object with declared fields: not checked here
    for prop, sub in props.items():
        if name in (prop, _escape(prop)):
            return True, sub if isinstance(sub, Mapping) else None
    return False, None


def _element(schema: Schema | None) -> Schema | None:
    """The schema of a list's items or a map's values."""
    if _unchecked(schema):
        return None
    assert schema is not None
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), Mapping):
            return schema[key]
    return None


class _Checker:
    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.errors: list[tuple[int, str]] = []  # (offset, message)

    def resolve(self, tree: Any, env: Mapping[str, Schema | None]) -> Schema | None:
        """The schema of a member expression's value, None when unknown (nothing reported here)."""
        if not isinstance(tree, Tree):
            return None
        kind = tree.data
        if kind == "ident":
            return env.get(str(tree.children[0]))
        if kind == "member_dot":
            return _field(self.resolve(tree.children[0], env), str(tree.children[1]))[1]
        if kind == "member_index":
            return _element(self.resolve(tree.children[0], env))
        trees = [c for c in tree.children if isinstance(c, Tree)]
        if len(trees) == 1 and len(tree.children) == 1:
            return self.resolve(trees[0], env)  # expr → … → member → primary: one child each
        return None

    def visit(self, tree: Any, env: Mapping[str, Schema | None]) -> None:
        if not isinstance(tree, Tree):
            return
        if tree.data == "member_dot":
            target, name = tree.children[0], tree.children[1]
            known, _ = _field(self.resolve(target, env), str(name))
            if not known and isinstance(name, Token):
                self.errors.append((self._dot_before(name), f"undefined field '{name}'"))
            self.visit(target, env)
            return
        if tree.data == "member_dot_arg" and str(tree.children[1]) in _MACROS:
            target, args = tree.children[0], tree.children[2] if len(tree.children) > 2 else None
            self.visit(target, env)
            exprs = [c for c in args.children if isinstance(c, Tree)] if isinstance(args, Tree) else []
            var = self._variable(exprs[0]) if exprs else None
            inner = dict(env)
            if var is not None:
                target_schema = self.resolve(target, env)
                is_list = target_schema is not None and isinstance(target_schema.get("items"), Mapping)
                inner[var] = _element(target_schema) if is_list else None  # a map's keys are strings
            for expr in exprs[1:]:
                self.visit(expr, inner)
            return
        for c in tree.children:
            self.visit(c, env)

    def _variable(self, expr: Tree) -> str | None:
        idents = list(expr.find_data("ident"))
        return str(idents[0].children[0]) if len(idents) == 1 else None

    def _dot_before(self, name: Token) -> int:
        at = int(name.start_pos or 0)
        dot = self.rule.rfind(".", 0, at)
        return dot if dot >= 0 else at


def _display(rule: str, offset: int, message: str) -> str:
    """cel-go's error text: location, message, the source line and a caret under the column."""
    line_no = rule.count("\n", 0, offset) + 1
    start = rule.rfind("\n", 0, offset) + 1
    end = rule.find("\n", offset)
    line = rule[start : end if end >= 0 else len(rule)]
    column = offset - start
    return f"ERROR: <input>:{line_no}:{column + 1}: {message}\n | {line}\n | {'.' * column}^"


def check_rule(rule: str, schema: Schema, object_root: bool = False, tree: Any = None) -> str | None:
    """Upstream's compile error for the undefined fields `rule` selects on `schema` (the value it sits on;
    `object_root` for the CRD's whole object), or None when it finds none. The rule must parse; `tree` is
    its parse tree when the caller has it already."""
    if not isinstance(tree, Tree):
        tree = environment().compile(rule)
    own: Schema | None = _with_type_and_meta(schema) if object_root else schema
    checker = _Checker(rule)
    checker.visit(tree, {"self": own, "oldSelf": own})
    if not checker.errors:
        return None
    shown = "\n".join(_display(rule, offset, message) for offset, message in sorted(checker.errors))
    return f"compilation failed: {shown}"


def syntax_error(rule: str, error: BaseException) -> str:
    """cel-go's text for a rule that does not parse (from cel-python's parse error)."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, UnexpectedCharacters):
        offset = int(cause.pos_in_stream or 0)
        return _display(rule, offset, f"Syntax error: token recognition error at: '{rule[offset : offset + 1]}'")
    if isinstance(cause, UnexpectedToken):
        token = cause.token
        at_end = token.type == "$END"
        offset = len(rule) if at_end else int(token.start_pos or 0)
        shown = "<EOF>" if at_end else str(token)
        expected = [name for key, name in _TOKEN_NAMES.items() if key in (cause.expected or ())]
        wanted = f" expecting {{{', '.join(expected)}}}" if expected else ""
        return _display(rule, offset, f"Syntax error: mismatched input '{shown}'{wanted}")
    line, column = getattr(error, "line", None), getattr(error, "column", None)
    if isinstance(line, int) and isinstance(column, int):
        lines = rule.split("\n")
        offset = sum(len(text) + 1 for text in lines[: line - 1]) + column - 1
        return _display(rule, max(offset, 0), "Syntax error: " + str(error).splitlines()[0] if str(error) else "")
    return f"ERROR: <input>: Syntax error: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
