"""Required fields as kube-apiserver writes them: present, with Go's zero value when nothing set them.

kube-apiserver serializes Go structs, so a field without `omitempty` is always in the JSON it writes:
`0`, `""` or `false` when nothing set it. The OpenAPI `required` lists of the schemas (kubernetes-validate's
definitions, the ones `/openapi/v3` serves) are exactly those fields, and typed clients (the official
Python client's models) reject an object that lacks one.

Each kind's schema is compiled once into a `Filler`: per object, the required keys with their zero
values and the nested objects, arrays and maps below it that hold more required keys. Applying it walks
only the parts of an object the tree names; it never creates an optional object, so `status` stays
absent on a kind that has none, and it fills inside an object only where that object exists.

Zero values: strings `""`, numbers `0`, booleans `false`, IntOrString `0`, Quantity `"0"`, times
(`metav1.Time`) `null` as Go writes a zero time, objects `{}` with their own required fields filled.
Lists and maps are `[]` and `{}`: Go writes a nil slice or map as `null`, which the typed clients reject for
a required field, so tinykube writes the empty value instead.
"""

from __future__ import annotations

import threading
from typing import Any

from apimachinery.resources import ResourceInfo
from apiserver import openapi

__all__ = ["Filler", "compile_all", "compile_schema", "filler_for"]

_OBJECT, _ARRAY, _MAP = 0, 1, 2
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_REF_PREFIX = "#/components/schemas/"
_lock = threading.Lock()


class Filler:
    """Fills the required fields of one object shape (and, through its children, of what it contains)."""

    __slots__ = ("child_keys", "children", "zeros")

    def __init__(self) -> None:
        # (key, zero value or a factory of one); factories make containers, so no two objects share one
        self.zeros: tuple[tuple[str, Any], ...] = ()
        # key -> (_OBJECT | _ARRAY | _MAP, the filler of the object, of each item, of each value)
        self.children: dict[str, tuple[int, Filler]] = {}
        self.child_keys: frozenset[str] = frozenset()

    def fill(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Add every missing (or null) required field with its zero value, in place; returns obj."""
        for key, zero in self.zeros:
            if obj.get(key) is None:
                obj[key] = zero() if callable(zero) else zero
        # only the children the object has (a pod spec's filler names 14, a pod sets two or three of them)
        for key in self.child_keys.intersection(obj) if self.child_keys else ():
            value = obj[key]
            if value is None:
                continue
            shape, sub = self.children[key]
            if shape == _OBJECT:
                if type(value) is dict:
                    sub.fill(value)
            elif shape == _ARRAY:
                if type(value) is list:
                    for item in value:
                        if type(item) is dict:
                            sub.fill(item)
            elif type(value) is dict:
                for item in value.values():
                    if type(item) is dict:
                        sub.fill(item)
        return obj

    @property
    def empty(self) -> bool:
        """Whether this filler never changes anything."""
        return not self.zeros and not self.children


_NOOP = Filler()


def _target(schema: Any) -> tuple[str | None, dict[str, Any]]:
    """The definition a schema names (following `$ref` and one-element `allOf`), and the schema itself."""
    name = None
    defs = openapi.definitions()
    for _ in range(20):
        if not isinstance(schema, dict):
            return name, {}
        if "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            schema = defs.get(name, {})
        elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1 and "properties" not in schema:
            schema = schema["allOf"][0]
        else:
            break
    return name, schema


class _Compiler:
    """Compiles schemas into fillers, once per definition (cycles resolved through the memo)."""

    def __init__(self) -> None:
        self.memo: dict[str, Filler] = {}
        # every filler made, with its zeros and (not yet pruned) children
        self.made: list[tuple[Filler, list[tuple[str, Any]], list[tuple[str, int, Filler]]]] = []

    def compile(self, schema: Any) -> Filler:
        name, schema = _target(schema)
        if name is not None and name in self.memo:
            return self.memo[name]
        filler = Filler()
        if name is not None:
            self.memo[name] = filler
        zeros: list[tuple[str, Any]] = []
        children: list[tuple[str, int, Filler]] = []
        self.made.append((filler, zeros, children))
        props = schema.get("properties")
        if schema.get("x-kubernetes-preserve-unknown-fields") or not isinstance(props, dict):
            return filler
        for key in schema.get("required") or ():
            if key in props:
                zeros.append((key, self.zero(props[key])))
        for key, sub in props.items():
            shape, inner = _container(sub)
            if shape is not None:
                children.append((key, shape, self.compile(inner)))
        return filler

    def zero(self, schema: Any) -> Any:
        """Go's zero value of a schema's type, or a factory making a fresh one."""
        name, s = _target(schema)
        if name == _QUANTITY:
            return "0"
        if name == _INT_OR_STRING or s.get("format") == "int-or-string":
            return 0
        kind = s.get("type")
        if kind == "string":
            return None if s.get("format") in ("date-time", "byte") else ""
        if kind in ("integer", "number"):
            return 0
        if kind == "boolean":
            return False
        if kind == "array":
            return list
        if isinstance(s.get("properties"), dict):
            filler = self.compile(schema)
            return lambda: filler.fill({})
        if kind == "object":
            return dict
        return None

    def finish(self) -> None:
        """Freeze every filler made, keeping only children that can change something (a fixpoint)."""
        live = {id(f) for f, zeros, _ in self.made if zeros}
        changed = True
        while changed:
            changed = False
            for f, _, children in self.made:
                if id(f) not in live and any(id(sub) in live for _, _, sub in children):
                    live.add(id(f))
                    changed = True
        for f, zeros, children in self.made:
            f.zeros = tuple(zeros)
            f.children = {key: (shape, sub) for key, shape, sub in children if id(sub) in live}
            f.child_keys = frozenset(f.children)
        self.made.clear()


def _container(schema: Any) -> tuple[int | None, Any]:
    """Whether a property holds an object, an array of objects or a map of objects, and of what."""
    _, s = _target(schema)
    if s.get("type") == "array" and isinstance(s.get("items"), dict):
        return (_ARRAY, s["items"]) if _is_object(s["items"]) else (None, None)
    if isinstance(s.get("additionalProperties"), dict) and not isinstance(s.get("properties"), dict):
        extra = s["additionalProperties"]
        return (_MAP, extra) if _is_object(extra) else (None, None)
    if isinstance(s.get("properties"), dict):
        return _OBJECT, schema
    return None, None


def _is_object(schema: Any) -> bool:
    _, s = _target(schema)
    return isinstance(s.get("properties"), dict)


def compile_schema(schema: dict[str, Any]) -> Filler:
    """A filler for any OpenAPI v3 schema (a kind's definition, or a CustomResourceDefinition's schema)."""
    compiler = _Compiler()
    filler = compiler.compile(schema)
    compiler.finish()
    return filler if not filler.empty else _NOOP


_FILLERS: dict[tuple[str, str, str], Filler] = {}


def filler_for(res: ResourceInfo) -> Filler:
    """The compiled filler of a served kind (compiled on first use; `compile_all` does it at start-up)."""
    key = (res.group, res.version, res.kind)
    filler = _FILLERS.get(key)
    if filler is None:
        with _lock:
            filler = _FILLERS.get(key)
            if filler is None:
                name = openapi.definition_for(res.group, res.version, res.kind)
                filler = compile_schema({"$ref": _REF_PREFIX + name}) if name else _NOOP
                _FILLERS[key] = filler
    return filler


def compile_all(resources: tuple[ResourceInfo, ...] | list[ResourceInfo]) -> None:
    """Compile the fillers of every resource (call off the event loop: it loads the schemas)."""
    for res in resources:
        filler_for(res)
