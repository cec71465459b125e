"""A CRD version's schema as /openapi/v2 publishes it (upstream's ToStructuralOpenAPIV2)."""

from __future__ import annotations

from apiserver.crd.openapi import v2_schema


def test_v2_drops_what_swagger_and_kubectl_cannot_take() -> None:
    schema = {
        "type": "object",
        "required": ["name", "maybe"],
        "properties": {
            "name": {"type": "string", "anyOf": [{"minLength": 1}], "not": {"enum": ["x"]}},
            "maybe": {"type": "object", "nullable": True, "properties": {"a": {"type": "string"}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"b": {}}},
            "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "tags": {"type": "array", "x-kubernetes-preserve-unknown-fields": True, "items": {"type": "string"}},
            "map": {"type": "object", "additionalProperties": {"type": "string", "nullable": True}},
        },
    }
    assert v2_schema(schema) == {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "maybe": {},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "port": {"x-kubernetes-int-or-string": True},
            "tags": {"x-kubernetes-preserve-unknown-fields": True},
            "map": {},
        },
    }
