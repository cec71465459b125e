"""CEL rules compiled to Python closures over plain JSON values, for the common subset of CEL.

cel-python's interpreter walks the parse tree per evaluation and wraps every value in a `celtypes`
object first; most x-kubernetes-validations rules are field selections, comparisons, arithmetic,
logic, has(), size(), `in`, string and list functions, and those are compiled here once into nested
closures that read the decoded JSON directly. A closure answers only when its answer is certain:
on anything else (a missing field, an int overflow, mixed int/double, division by zero, a value of
an unexpected type, an error that `&&`/`||` might absorb) it raises `Fallback` and the caller runs
the interpreter, so results, errors and messages are the interpreter's. A rule using anything not
compiled here (macros beyond all/exists/exists_one/filter/map, conversions, timestamps, uints,
bytes, …) is not compiled at all (`compile_fast` returns None).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import re2
from celpy.evaluation import celstr

__all__ = ["Fallback", "FastRule", "compile_fast"]

Env = dict[str, Any]
FastRule = Callable[[Env], Any]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_NUMBER = (int, float)


class Fallback(Exception):
    """The compiled rule cannot answer for this value with certainty: run the interpreter."""


class _Unsupported(Exception):
    """A construct this compiler does not translate."""


def _tag(v: Any) -> type:
    t = type(v)
    if t not in _PLAIN:
        raise Fallback
    return t


_PLAIN = frozenset({bool, int, float, str, list, dict, type(None)})


def _int(v: int) -> int:
    if _INT_MIN <= v <= _INT_MAX:
        return v
    raise Fallback  # CEL's int overflow error


def _same_number(a: Any, b: Any) -> type:
    t = type(a)
    if t is not type(b) or t not in _NUMBER:
        raise Fallback
    return t


def _lt(a: Any, b: Any) -> bool:
    t = type(a)
    if t is not type(b) or t not in (int, float, str):
        raise Fallback
    return a < b


def _le(a: Any, b: Any) -> bool:
    t = type(a)
    if t is not type(b) or t not in (int, float, str):
        raise Fallback
    return a <= b


def _eq(a: Any, b: Any) -> bool:
    t = _tag(a)
    if t is not _tag(b):
        raise Fallback  # heterogeneous equality: the interpreter's rules
    if t is list:
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    if t is dict:
        return a.keys() == b.keys() and all(_eq(v, b[k]) for k, v in a.items())
    return a == b


def _add(a: Any, b: Any) -> Any:
    t = type(a)
    if t is not type(b):
        raise Fallback
    if t is int:
        return _int(a + b)
    if t in (float, str, list):
        return a + b
    raise Fallback


def _sub(a: Any, b: Any) -> Any:
    return _int(a - b) if _same_number(a, b) is int else a - b


def _mul(a: Any, b: Any) -> Any:
    return _int(a * b) if _same_number(a, b) is int else a * b


def _div(a: Any, b: Any) -> Any:
    t = _same_number(a, b)
    if b == 0 or (t is int and (a < 0 or b < 0)):
        raise Fallback  # division by zero; truncation of negatives: the interpreter's
    return a // b if t is int else a / b


def _mod(a: Any, b: Any) -> Any:
    if type(a) is not int or type(b) is not int or b <= 0 or a < 0:
        raise Fallback
    return a % b


def _in(a: Any, b: Any) -> bool:
    t = type(b)
    if t is list:
        return any(_eq(a, x) for x in b)
    if t is dict and type(a) is str:
        return a in b
    raise Fallback


def _bool(v: Any) -> bool:
    if type(v) is not bool:
        raise Fallback
    return v


def _str(v: Any) -> str:
    if type(v) is not str:
        raise Fallback
    return v


def _list(v: Any) -> list[Any]:
    if type(v) is not list:
        raise Fallback
    return v


def _size(v: Any) -> int:
    if type(v) not in (str, list, dict):
        raise Fallback
    return len(v)


def _uniform(items: list[Any], allowed: tuple[type, ...]) -> list[Any]:
    """The list when all its items have one type among `allowed` (CEL's comparisons need one type)."""
    _list(items)
    if items:
        t = type(items[0])
        if t not in allowed or any(type(x) is not t for x in items):
            raise Fallback
    return items


def _sum(items: Any) -> Any:
    items = _uniform(items, _NUMBER)
    if not items:
        return 0
    total = items[0]
    for x in items[1:]:
        total = _int(total + x) if type(x) is int else total + x
    return total


def _extreme(pick: Callable[..., Any]) -> Callable[[Any], Any]:
    def call(items: Any) -> Any:
        items = _uniform(items, (int, float, str))
        if not items:
            raise Fallback
        return pick(items)

    return call


def _is_sorted(items: Any) -> bool:
    items = _uniform(items, (int, float, str))
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def _simple(v: Any) -> Any:
    if type(v) not in (int, float, str, bool):
        raise Fallback
    return v


def _index_of(target: Any, item: Any) -> int:
    if type(target) is str:
        return target.find(_str(item))
    items = _uniform(target, (int, float, str, bool))
    if items and type(_simple(item)) is not type(items[0]):
        raise Fallback
    return items.index(item) if item in items else -1


def _last_index_of(target: Any, item: Any) -> int:
    if type(target) is str:
        return target.rfind(_str(item))
    items = _uniform(target, (int, float, str, bool))
    if items and type(_simple(item)) is not type(items[0]):
        raise Fallback
    for i in range(len(items) - 1, -1, -1):
        if items[i] == item:
            return i
    return -1


def _split(s: Any, sep: Any, limit: Any = None) -> list[str]:
    s, sep = _str(s), _str(sep)
    if limit is None:
        return s.split(sep)
    if type(limit) is not int or limit == 0 or not sep:
        raise Fallback
    return s.split(sep) if limit < 0 else s.split(sep, limit - 1)


def _join(items: Any, sep: Any = "") -> str:
    return _str(sep).join(_uniform(items, (str,)))


def _matches(s: Any, pattern: Any) -> bool:
    try:
        return re2.search(_str(pattern), _str(s)) is not None
    except re2.error as e:
        raise Fallback from e


def _find(s: Any, pattern: Any) -> str:
    try:
        m = re2.search(_str(pattern), _str(s))
    except re2.error as e:
        raise Fallback from e
    return m.group(0) if m else ""


def _replace(s: Any, old: Any, new: Any, n: Any = -1) -> str:
    if type(n) is not int:
        raise Fallback
    return _str(s).replace(_str(old), _str(new), n)


# receiver-first functions: name -> (callable, allowed argument counts including the receiver)
_METHODS: dict[str, tuple[Callable[..., Any], tuple[int, ...]]] = {
    "size": (_size, (1,)),
    "startsWith": (lambda s, p: _str(s).startswith(_str(p)), (2,)),
    "endsWith": (lambda s, p: _str(s).endswith(_str(p)), (2,)),
    "contains": (lambda s, p: _str(p) in _str(s), (2,)),
    "matches": (_matches, (2,)),
    "lowerAscii": (lambda s: _str(s).lower(), (1,)),
    "upperAscii": (lambda s: _str(s).upper(), (1,)),
    "trim": (lambda s: _str(s).strip(), (1,)),
    "split": (_split, (2, 3)),
    "join": (_join, (1, 2)),
    "find": (_find, (2,)),
    "replace": (_replace, (3, 4)),
    "indexOf": (_index_of, (2,)),
    "lastIndexOf": (_last_index_of, (2,)),
    "isSorted": (_is_sorted, (1,)),
    "sum": (_sum, (1,)),
    "min": (_extreme(min), (1,)),
    "max": (_extreme(max), (1,)),
}
_FUNCTIONS = {"size": (_size, (1,)), "matches": (_matches, (2,))}

_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "relation_lt": _lt,
    "relation_le": _le,
    "relation_gt": lambda a, b: _lt(b, a),
    "relation_ge": lambda a, b: _le(b, a),
    "relation_eq": _eq,
    "relation_ne": lambda a, b: not _eq(a, b),
    "relation_in": _in,
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "addition_add": _add,
    "addition_sub": _sub,
    "multiplication_mul": _mul,
    "multiplication_div": _div,
    "multiplication_mod": _mod,
}


def compile_fast(tree: Any, variables: frozenset[str] = frozenset({"self", "oldSelf"})) -> FastRule | None:
    """Compile a parsed rule into a closure over `{name: plain JSON value}`; None when not in the subset."""
    try:
        return _Compiler().expr(tree, variables)
    except (_Unsupported, AttributeError, IndexError, TypeError, ValueError, RecursionError):
        return None  # a tree shape this compiler does not know: the interpreter runs the rule


class _Compiler:
    """Translates celpy's lark tree (grammar celpy/cel.lark) node by node."""

    def expr(self, t: Any, scope: frozenset[str]) -> FastRule:
        if not _is_tree(t):
            raise _Unsupported
        kids = t.children
        name = t.data
        if name == "expr":
            if len(kids) == 1:
                return self.expr(kids[0], scope)
            cond, yes, no = (self.expr(k, scope) for k in kids)
            return lambda env: yes(env) if _bool(cond(env)) else no(env)
        if name in ("conditionalor", "conditionaland"):
            if len(kids) == 1:
                return self.expr(kids[0], scope)
            left, right = self.expr(kids[0], scope), self.expr(kids[1], scope)
            if name == "conditionalor":
                return lambda env: _bool(left(env)) or _bool(right(env))
            return lambda env: _bool(left(env)) and _bool(right(env))
        if name in ("relation", "addition", "multiplication"):
            if len(kids) == 1:
                return self.expr(kids[0], scope)
            op_tree, rhs = kids
            op = _RELATIONS.get(op_tree.data) or _ARITHMETIC.get(op_tree.data)
            if op is None:
                raise _Unsupported
            left, right = self.expr(op_tree.children[0], scope), self.expr(rhs, scope)
            return lambda env: op(left(env), right(env))
        if name == "unary":
            if len(kids) == 1:
                return self.expr(kids[0], scope)
            operand = self.expr(kids[1], scope)
            if kids[0].data == "unary_not":
                return lambda env: not _bool(operand(env))
            return _negate(operand)
        if name in ("member", "primary", "paren_expr"):
            if len(kids) != 1:
                raise _Unsupported
            return self.expr(kids[0], scope)
        if name == "member_dot":
            base, field = self.expr(kids[0], scope), str(kids[1])
            return _select(base, field)
        if name == "member_index":
            base, idx = self.expr(kids[0], scope), self.expr(kids[1], scope)
            return _index(base, idx)
        if name == "member_dot_arg":
            return self.method(kids, scope)
        if name == "ident_arg":
            return self.function(kids, scope)
        if name == "ident":
            ident = str(kids[0])
            if ident not in scope:
                raise _Unsupported
            return lambda env: env[ident]
        if name == "literal":
            value = _literal(kids[0])
            return lambda env: value
        if name == "list_lit":
            items = [self.expr(k, scope) for k in self.args(kids)]
            return lambda env: [f(env) for f in items]
        if name == "map_lit":
            inits = kids[0].children if kids and _is_tree(kids[0]) else []
            pairs = [(self.expr(k, scope), self.expr(v, scope)) for k, v in zip(inits[::2], inits[1::2], strict=True)]
            return _map(pairs)
        raise _Unsupported

    def args(self, kids: list[Any]) -> list[Any]:
        if not kids or kids[0] is None:
            return []
        exprlist = kids[0]
        if not _is_tree(exprlist) or exprlist.data != "exprlist":
            raise _Unsupported
        return list(exprlist.children)

    def function(self, kids: list[Any], scope: frozenset[str]) -> FastRule:
        name, args = str(kids[0]), self.args(kids[1:])
        if name == "has":
            if len(args) != 1:
                raise _Unsupported
            target = _unwrap(args[0])
            if target.data != "member_dot":
                raise _Unsupported
            base, field = self.expr(target.children[0], scope), str(target.children[1])
            return _has(base, field)
        fn, counts = _FUNCTIONS.get(name, (None, ()))
        if fn is None or len(args) not in counts:
            raise _Unsupported
        return _call(fn, [self.expr(a, scope) for a in args])

    def method(self, kids: list[Any], scope: frozenset[str]) -> FastRule:
        receiver, name, args = kids[0], str(kids[1]), self.args(kids[2:])
        if name in ("all", "exists", "exists_one", "filter", "map"):
            if len(args) != 2:
                raise _Unsupported
            var = _unwrap(args[0])
            if var.data != "ident":
                raise _Unsupported
            bound = str(var.children[0])
            return _macro(name, self.expr(receiver, scope), bound, self.expr(args[1], scope | {bound}))
        fn, counts = _METHODS.get(name, (None, ()))
        if fn is None or len(args) + 1 not in counts:
            raise _Unsupported
        return _call(fn, [self.expr(receiver, scope), *(self.expr(a, scope) for a in args)])


def _is_tree(t: Any) -> bool:
    """A node of celpy's lark parse tree (its leaves are lark Tokens, strings with a `type`)."""
    return hasattr(t, "data") and hasattr(t, "children")


def _unwrap(t: Any) -> Any:
    """The innermost tree below single-child wrappers (expr → … → primary)."""
    while _is_tree(t) and len(t.children) == 1 and _is_tree(t.children[0]):
        t = t.children[0]
    if not _is_tree(t):
        raise _Unsupported
    return t


def _literal(token: Any) -> Any:
    kind = getattr(token, "type", None)
    if kind == "INT_LIT":
        value = int(token.value, 0) if "x" in token.value.lower() else int(token.value)
        if not _INT_MIN <= value <= _INT_MAX:
            raise _Unsupported  # the interpreter's error
        return value
    if kind == "FLOAT_LIT":
        return float(token.value)
    if kind in ("STRING_LIT", "MLSTRING_LIT"):
        return str(celstr(token))
    if kind == "BOOL_LIT":
        return token.value == "true"
    if kind == "NULL_LIT":
        return None
    raise _Unsupported  # uint, bytes


def _negate(operand: FastRule) -> FastRule:
    def run(env: Env) -> Any:
        v = operand(env)
        t = type(v)
        if t is int:
            return _int(-v)
        if t is float:
            return -v
        raise Fallback

    return run


def _select(base: FastRule, field: str) -> FastRule:
    def run(env: Env) -> Any:
        v = base(env)
        if type(v) is not dict or field not in v:
            raise Fallback
        return v[field]

    return run


def _has(base: FastRule, field: str) -> FastRule:
    def run(env: Env) -> bool:
        v = base(env)
        if type(v) is not dict:
            raise Fallback
        return field in v

    return run


def _index(base: FastRule, idx: FastRule) -> FastRule:
    def run(env: Env) -> Any:
        v, i = base(env), idx(env)
        if type(v) is list and type(i) is int and 0 <= i < len(v):
            return v[i]
        if type(v) is dict and type(i) is str and i in v:
            return v[i]
        raise Fallback

    return run


def _map(pairs: list[tuple[FastRule, FastRule]]) -> FastRule:
    def run(env: Env) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            key = _str(k(env))  # JSON maps have string keys; other keys are the interpreter's
            if key in out:
                raise Fallback  # a repeated key is an error
            out[key] = v(env)
        return out

    return run


def _call(fn: Callable[..., Any], args: list[FastRule]) -> FastRule:
    if len(args) == 1:
        (a,) = args
        return lambda env: fn(a(env))
    if len(args) == 2:
        a, b = args
        return lambda env: fn(a(env), b(env))
    return lambda env: fn(*(f(env) for f in args))


def _macro(name: str, receiver: FastRule, var: str, body: FastRule) -> FastRule:
    def items(env: Env) -> list[Any]:
        v = receiver(env)
        if type(v) is list:
            return v
        if type(v) is dict:
            return list(v)
        raise Fallback

    def each(env: Env) -> list[tuple[Any, Any]]:
        scoped = dict(env)
        out = []
        for item in items(env):
            scoped[var] = item
            out.append((item, body(scoped)))
        return out

    if name == "map":
        return lambda env: [r for _, r in each(env)]
    if name == "filter":
        return lambda env: [item for item, r in each(env) if _bool(r)]
    if name == "all":
        return lambda env: all([_bool(r) for _, r in each(env)])
    if name == "exists":
        return lambda env: any([_bool(r) for _, r in each(env)])
    return lambda env: sum(1 for _, r in each(env) if _bool(r)) == 1
