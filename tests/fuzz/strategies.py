"""Hypothesis strategies for the fuzz suite: objects built from the served OpenAPI schemas, then broken.

`objects(res, name)` draws an object of a kind the way its schema describes it (bounded depth and
sizes, values near the edges: empty strings, huge integers, odd quantities and times), then, half of
the time, mutates it: a subtree replaced by arbitrary JSON of another type, a field deleted, a value
set to null. Hypothesis supplies the randomness (`st.randoms`, derandomized in the suite, so a failure
replays); the walk over the schema is plain Python, because building a strategy per schema node makes
hypothesis spend a tenth of a second per object.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

from apimachinery.resources import ResourceInfo
from apiserver import openapi

MAX_DEPTH = 6
_INTS = [0, 1, -1, 2, 80, 443, 65535, 65536, 2**31 - 1, 2**31, 2**63 - 1, -(2**63), 2**64 - 1]
_STRINGS = [
    "",
    "a",
    "0",
    "true",
    "TCP",
    "Always",
    "None",
    "-1",
    "1.5",
    "ClusterIP",
    "http",
    "a=b",
    "x" * 300,
    "é",
    "\x00",
    "${X}",
    "../..",
]
_QUANTITIES = ["1", "100m", "1Gi", "0", "-1", "-100m", "1e3", "1.5Ki", "abc", "", "1e999999999", "9" * 50, 5, -2, 0.5]
_TIMES = ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456Z", "not-a-time", "", "0001-01-01T00:00:00Z"]


def _string(rnd: random.Random) -> str:
    roll = rnd.random()
    if roll < 0.5:
        return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(rnd.randint(1, 12)))
    if roll < 0.85:
        return rnd.choice(_STRINGS)
    return "".join(chr(rnd.randint(0, 0x2FF)) for _ in range(rnd.randint(0, 10)))


def _integer(rnd: random.Random) -> int | float:
    roll = rnd.random()
    if roll < 0.6:
        return rnd.randint(-5, 70000)
    if roll < 0.9:
        return rnd.choice(_INTS)
    return rnd.uniform(-10, 10)


def junk(rnd: random.Random, depth: int = 0) -> Any:
    """Any JSON value, a few levels deep at most."""
    roll = rnd.random()
    if depth < 3 and roll < 0.2:
        return [junk(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    if depth < 3 and roll < 0.4:
        return {_string(rnd): junk(rnd, depth + 1) for _ in range(rnd.randint(0, 3))}
    return rnd.choice([None, True, False, _integer(rnd), rnd.uniform(-1e9, 1e9), _string(rnd)])


def _ref_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        return _ref_name(all_of[0])
    return ""


def from_schema(schema: dict[str, Any], rnd: random.Random, depth: int = 0) -> Any:
    """A value of an OpenAPI schema; parts deeper than MAX_DEPTH are left out."""
    ref = _ref_name(schema)
    if ref.endswith(".Quantity"):
        return rnd.choice(_QUANTITIES)
    if ref.endswith((".Time", ".MicroTime")):
        return rnd.choice(_TIMES)
    if ref.endswith(".IntOrString"):
        return _integer(rnd) if rnd.random() < 0.5 else _string(rnd)
    resolved = openapi.resolve_schema(schema)
    enum = resolved.get("enum")
    if isinstance(enum, list) and enum and rnd.random() < 0.8:
        return rnd.choice(enum)
    t = resolved.get("type")
    if t == "object" and isinstance(resolved.get("properties"), dict):
        props = resolved["properties"]
        required = [k for k in resolved.get("required") or [] if k in props]
        optional = [k for k in props if k not in required]
        picked = rnd.sample(optional, min(len(optional), rnd.randint(0, 4))) if depth < MAX_DEPTH else []
        return {k: from_schema(props[k], rnd, depth + 1) for k in [*required, *picked]}
    if t == "object":
        extra = resolved.get("additionalProperties")
        n = rnd.randint(0, 3)
        if isinstance(extra, dict):
            return {_string(rnd): from_schema(extra, rnd, depth + 1) for _ in range(n)}
        return {_string(rnd): junk(rnd, 2) for _ in range(n)}
    if t == "array":
        items = resolved.get("items")
        n = rnd.randint(0, 3) if depth < MAX_DEPTH else 0
        return [from_schema(items, rnd, depth + 1) if isinstance(items, dict) else junk(rnd, 2) for _ in range(n)]
    if t == "integer":
        return _integer(rnd)
    if t == "number":
        return _integer(rnd) if rnd.random() < 0.7 else rnd.uniform(-1e6, 1e6)
    if t == "boolean":
        return rnd.random() < 0.5
    if t == "string":
        if resolved.get("format") == "byte" and rnd.random() < 0.7:
            return rnd.choice(["aGVsbG8=", "", "!!notbase64", "YQ", "YQ=="])
        return _string(rnd)
    return junk(rnd, 1)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def mutate(base: Any, rnd: random.Random) -> Any:
    """`base` with 1-3 random parts replaced by junk, removed or set to null."""
    for _ in range(rnd.randint(1, 3)):
        paths = [p for p in _paths(base) if p]
        if not paths:
            return junk(rnd)
        path = rnd.choice(paths)
        parent = base
        for part in path[:-1]:
            parent = parent[part]
        action = rnd.choice(["junk", "delete", "null"])
        if action == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = None if action == "null" else junk(rnd)
    return base


def schema_of(res: ResourceInfo) -> dict[str, Any]:
    """The `$ref` schema of a kind."""
    name = openapi.definition_for(res.group, res.version, res.kind)
    assert name is not None, res.kind
    return {"$ref": f"#/components/schemas/{name}"}


def build_object(res: ResourceInfo, name: str, rnd: random.Random) -> Any:
    """An object of `res` from its schema, named `name`, mutated half of the time."""
    obj = from_schema(schema_of(res), rnd)
    obj["apiVersion"], obj["kind"] = res.api_version, res.kind
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    meta.pop("resourceVersion", None)
    meta["name"] = name
    obj["metadata"] = meta
    if rnd.random() < 0.5:
        obj = mutate(obj, rnd)
    return obj


def objects(res: ResourceInfo, name: str) -> st.SearchStrategy[Any]:
    """Hypothesis-drawn objects of a kind (see build_object)."""
    return st.randoms(use_true_random=False).map(lambda rnd: build_object(res, name, rnd))


json_values = st.randoms(use_true_random=False).map(junk)

_PATHS = ["/metadata", "/metadata/labels", "/metadata/labels/a", "/metadata/name", "/spec", "/status", "/data", "", "/"]


def _json_patch(rnd: random.Random) -> list[Any]:
    ops: list[Any] = []
    for _ in range(rnd.randint(0, 5)):
        if rnd.random() < 0.1:
            ops.append(junk(rnd))
            continue
        path = rnd.choice(_PATHS) if rnd.random() < 0.7 else "/" + _string(rnd)
        op: dict[str, Any] = {
            "op": rnd.choice(["add", "remove", "replace", "move", "copy", "test", "bogus"]),
            "path": path,
        }
        if rnd.random() < 0.8:
            op["value"] = junk(rnd)
        if rnd.random() < 0.3:
            op["from"] = rnd.choice(_PATHS)
        ops.append(op)
    return ops


json_patches = st.randoms(use_true_random=False).map(_json_patch)
