"""x-kubernetes-validations rules checked against the schema when the CRD is written (cel_check)."""

from __future__ import annotations

from typing import Any

import celpy
import pytest

from apiserver.crd_schema.cel_check import check_rule, syntax_error

SPEC: dict[str, Any] = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer"},
        "foo-bar": {"type": "string"},
        "ports": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "size": {"x-kubernetes-int-or-string": True},
    },
}


@pytest.mark.parametrize(
    "rule",
    [
        "self.replicas > 0",
        "has(self.replicas) && self.replicas == oldSelf.replicas",
        "self.foo__dash__bar != ''",
        "self.ports.all(p, p.port > 0) && self.ports.exists(p, has(p.port))",
        "self.ports[0].port == 1",
        "self.labels.anything == 'x' && self.labels.all(k, k.whatever == 1)",
        "self.free.a.b.c == 1",
        "size(self.ports.map(p, p.port)) > 0",
    ],
)
def test_rules_naming_declared_fields_pass(rule: str) -> None:
    assert check_rule(rule, SPEC) is None


def test_an_undefined_field_is_upstreams_compile_error() -> None:
    assert check_rule("self.nope > 0", SPEC) == (
        "compilation failed: ERROR: <input>:1:5: undefined field 'nope'\n | self.nope > 0\n | ....^"
    )
    found = check_rule("has(self.x) || oldSelf.y == 1 || self.ports.all(p, p.prot > 0)", SPEC)
    assert found is not None
    assert [line for line in found.split("\n") if "ERROR" in line] == [
        "compilation failed: ERROR: <input>:1:9: undefined field 'x'",
        "ERROR: <input>:1:23: undefined field 'y'",
        "ERROR: <input>:1:53: undefined field 'prot'",
    ]


def test_object_roots_have_kind_api_version_and_name_only_in_metadata() -> None:
    root = {"type": "object", "properties": {"spec": SPEC}}
    assert check_rule("self.kind == 'K' && self.metadata.name == 'a' && self.spec.replicas > 0", root, True) is None
    assert "undefined field 'labels'" in str(check_rule("has(self.metadata.labels)", root, True))
    assert "undefined field 'kind'" in str(check_rule("self.kind == 'K'", root))


def test_a_syntax_error_is_worded_as_cel_go_does() -> None:
    with pytest.raises(celpy.CELParseError) as e:
        celpy.Environment().compile("self.x >")
    assert syntax_error("self.x >", e.value) == (
        "ERROR: <input>:1:9: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', "
        "'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | self.x >\n | ........^"
    )
