"""apiserver.openapi.duplicate_fields: its shortcuts (the body orjson would write, the key count) answer as the
full search of every object does, on clean bodies and on bodies that repeat keys."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest

from apiserver import openapi

# the token pattern as it was written first (an alternation per character); the unrolled one must match alike
_ALTERNATING = re.compile(rb'"(?:[^"\\]|\\.)*"(\s*:)?')


def reference(raw: bytes) -> list[str]:
    """Every repeated key's path, by a full decode that keeps each object's pairs (no shortcut)."""
    if not raw.lstrip().startswith(b"{"):
        return []
    out: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        node = dict(items)
        node["\0dups"] = [k for k, _ in items if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
        return node

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            out.extend(f"{path}.{k}" if path else k for k in node.pop("\0dups"))
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(json.loads(raw, object_pairs_hook=pairs), "")
    return out


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"app": "bench", "shard": "1"}},
    "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}]},
}

BODIES = [
    orjson.dumps(POD),  # compact, as orjson (and the apiserver's own clients) write it
    json.dumps(POD).encode(),  # spaces after ':' and ','
    json.dumps(POD, indent=2).encode(),
    orjson.dumps({**POD, "metadata": {"name": "p", "annotations": {"a": 'x": {"y": 1, "y": 2}'}}}),  # keys in a value
    orjson.dumps({**POD, "metadata": {"name": "p", "annotations": {'q"k': "\\", "b\\": '"'}}}),  # escapes
    orjson.dumps({**POD, "metadata": {"name": "p", "annotations": {"u": "é ✓ <&>"}}}),
    json.dumps({**POD, "metadata": {"name": "p", "annotations": {"u": "é ✓ <&>"}}}).encode(),  # \u escapes
    b'{"kind":"Pod","metadata":{"name":"p","annotations":{"h":"\\u003cb\\u003e"}}}',  # Go's HTML escapes
    orjson.dumps({**POD, "spec": {"replicas": 1.5, "x": 1e21, "y": -0.0, "z": None, "t": True, "e": {}, "l": []}}),
    b'{"kind":"Pod","spec":{"a":1.0,"b":1E2}}',  # numbers orjson writes otherwise
    b'{"kind":"Pod","kind":"Pod"}',
    b'{"kind":"Pod","metadata":{"name":"a","name":"b"}}',
    b'{"kind":"Pod","spec":{"containers":[{"name":"a"},{"name":"b","image":"x","image":"y"}]}}',
    b'{"kind":"Pod","spec":{"containers":[{"name":"a"}]} , "spec" : {"containers":[]}}',
    b'{"a":{"b":{"c":{"d":1,"d":2}}},"a":{"b":3}}',
    b'{"a":"\\"","a":"b"}',
    b'{"a\\"":1,"a\\"":2,"a":3}',
    b'{"x":[[{"k":1}],[{"k":1,"k":2}]]}',
    b'{"":1,"":2}',
    b"{}",
    b' {"a": 1}',
    b'{"a": "b\\\\", "c": "d"}',
    b'{"a": "b\\\\", "a": "d"}',
]


@pytest.mark.parametrize("raw", BODIES, ids=range(len(BODIES)))
def test_duplicate_fields_agree_with_the_full_search(raw: bytes) -> None:
    """With and without the request's own decode, the answer is the full search's."""
    expected = reference(raw)
    assert openapi.duplicate_fields(raw) == expected
    assert openapi.duplicate_fields(raw, orjson.loads(raw)) == expected
    assert openapi.duplicate_fields(raw, json.loads(raw)) == expected


@pytest.mark.parametrize("raw", BODIES, ids=range(len(BODIES)))
def test_unrolled_token_pattern_matches_the_first(raw: bytes) -> None:
    """The unrolled string pattern finds the same tokens (and keys) as the alternation it replaced."""
    assert [m.span() + m.groups() for m in openapi._STRING_TOKEN.finditer(raw)] == [
        m.span() + m.groups() for m in _ALTERNATING.finditer(raw)
    ]


def test_not_json_has_no_duplicates() -> None:
    """YAML bodies, and bodies that are not objects, are not searched."""
    assert openapi.duplicate_fields(b"kind: Pod\nkind: Pod\n") == []
    assert openapi.duplicate_fields(b'[{"a":1,"a":2}]') == []
