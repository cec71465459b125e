"""CompiledSchema.check_structural: what upstream's CRD validation says about an openAPIV3Schema."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.crd_schema import CompiledSchema, SchemaError

ROOT = "spec.versions[0].schema.openAPIV3Schema"


def _msgs(schema: dict[str, Any]) -> list[str]:
    return [f"{p}: {body}" for p, _, body in CompiledSchema.compile(schema).check_structural(ROOT)]


def _root(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, **extra}


def test_a_structural_schema_passes() -> None:
    schema = _root(
        {
            "spec": _root(
                {
                    "replicas": {"type": "integer", "default": 1, "minimum": 0},
                    "port": {"x-kubernetes-int-or-string": True},
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "any": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }
            ),
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}},
        }
    )
    assert _msgs(schema) == []


def test_missing_types() -> None:
    schema = {"properties": {"spec": {"properties": {"a": {}}}, "list": {"type": "array", "items": {}}}}
    assert _msgs(schema) == [
        f"{ROOT}.properties[list].items.type: Required value: must not be empty for specified array items",
        f"{ROOT}.properties[spec].properties[a].type: Required value: must not be empty for specified object fields",
        f"{ROOT}.properties[spec].type: Required value: must not be empty for specified object fields",
        f"{ROOT}.type: Required value: must not be empty at the root",
    ]


def test_root_must_be_an_object_and_arrays_need_items() -> None:
    assert _msgs({"type": "array"}) == [
        f"{ROOT}.items: Required value: must be specified",
        f'{ROOT}.type: Invalid value: "array": must be object at the root',
    ]


def test_int_or_string_conflicts() -> None:
    schema = _root({"a": {"x-kubernetes-int-or-string": True, "x-kubernetes-preserve-unknown-fields": True}})
    assert _msgs(schema) == [
        f"{ROOT}.properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: true: "
        "must be false if x-kubernetes-int-or-string is true"
    ]


def test_int_or_string_any_of_pattern_is_allowed_and_other_types_in_any_of_are_not() -> None:
    ok = _root({"a": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}})
    assert _msgs(ok) == []
    bad = _root({"a": {"type": "string", "anyOf": [{"type": "integer"}]}})
    assert _msgs(bad) == [f"{ROOT}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"]


def test_value_validations_must_not_define_what_the_structure_does_not() -> None:
    schema = _root(
        {
            "spec": {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "anyOf": [{"properties": {"b": {"minLength": 1}}, "description": "x", "x-kubernetes-list-type": "set"}],
            }
        }
    )
    assert _msgs(schema) == [
        # the CRD rules come first (a list type needs `type: array`), then the structural ones, sorted
        f"{ROOT}.properties[spec].anyOf[0].type: Required value: must be array if x-kubernetes-list-type is specified",
        f"{ROOT}.properties[spec].anyOf[0].description: Forbidden: must be empty to be structural",
        f"{ROOT}.properties[spec].anyOf[0].x-kubernetes-list-type: Forbidden: must be undefined to be structural",
        f"{ROOT}.properties[spec].properties[b]: Required value: because it is defined in "
        f"{ROOT}.properties[spec].anyOf[0].properties[b]",
    ]


def test_additional_properties_rules() -> None:
    assert _msgs({"type": "object", "additionalProperties": {"type": "string"}}) == [
        f"{ROOT}.additionalProperties: Forbidden: must not be used at the root"
    ]
    both = _root(
        {"m": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}}
    )
    assert _msgs(both) == [
        f"{ROOT}.properties[m].additionalProperties: Forbidden: "
        "additionalProperties and properties are mutual exclusive"
    ]


def test_embedded_resource_invariants() -> None:
    schema = _root({"e": {"x-kubernetes-embedded-resource": True}})
    assert _msgs(schema) == [
        f"{ROOT}.properties[e].properties: Required value: must not be empty if x-kubernetes-embedded-resource is "
        "true without x-kubernetes-preserve-unknown-fields",
        f"{ROOT}.properties[e].type: Required value: must be object if x-kubernetes-embedded-resource is true",
    ]


def test_metadata_may_only_restrict_name_and_generate_name() -> None:
    schema = _root({"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}})
    assert _msgs(schema) == [
        f"{ROOT}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, "
        "but metadata is implicitly specified"
    ]


def test_list_type_rules() -> None:
    schema = _root(
        {
            "a": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "map"},
            "b": {"type": "string", "x-kubernetes-list-type": "set"},
            "c": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "bag"},
            "d": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        }
    )
    assert _msgs(schema) == [
        f"{ROOT}.properties[a].x-kubernetes-list-map-keys: Required value: "
        "must not be empty if x-kubernetes-list-type is map",
        f'{ROOT}.properties[a].items.type: Invalid value: "string": '
        "must be object if parent array's x-kubernetes-list-type is map",
        f'{ROOT}.properties[b].type: Invalid value: "string": must be array if x-kubernetes-list-type is specified',
        f'{ROOT}.properties[c].x-kubernetes-list-type: Unsupported value: "bag": supported values: '
        '"atomic", "set", "map"',
        f"{ROOT}.properties[d].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime "
        "complexity becomes quadratic",
    ]


def test_invalid_pattern() -> None:
    assert _msgs(_root({"a": {"type": "string", "pattern": "(?<=x)y"}})) == [
        f'{ROOT}.properties[a].pattern: Invalid value: "(?<=x)y": must be a valid regular expression, '
        "but isn't: invalid perl operator: (?<="
    ]


def test_defaults_must_validate_against_their_schema() -> None:
    schema = _root({"spec": _root({"replicas": {"type": "integer", "default": "one"}})})
    assert _msgs(schema) == [
        f'{ROOT}.properties[spec].properties[replicas].default: Invalid value: "string":  in body must be of '
        'type integer: "string"'
    ]


def test_transition_rules_on_uncorrelatable_items_are_refused() -> None:
    schema = _root(
        {"l": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}
    )
    assert _msgs(schema) == [
        f'{ROOT}.properties[l].items.x-kubernetes-validations[0].rule: Invalid value: "self == oldSelf": '
        f"oldSelf cannot be used on the uncorrelatable portion of the schema within {ROOT}.properties[l]"
    ]


def test_validation_rule_entries() -> None:
    schema = _root({"a": {"type": "string", "x-kubernetes-validations": [{"rule": "true", "reason": "Nope"}]}})
    assert _msgs(schema) == [
        f'{ROOT}.properties[a].x-kubernetes-validations[0].reason: Unsupported value: "Nope": supported values: '
        '"FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"'
    ]


def test_a_rule_that_does_not_compile_is_a_schema_error() -> None:
    schema = _root({"spec": _root({"a": {"type": "string"}}, **{"x-kubernetes-validations": [{"rule": "self.a =="}]})})
    with pytest.raises(SchemaError) as caught:
        CompiledSchema.compile(schema)
    ((path, reason, body),) = caught.value.errors
    assert path == "properties[spec].x-kubernetes-validations[0].rule"
    assert reason == "FieldValueInvalid"
    assert body.startswith('Invalid value: "self.a ==": compilation failed: ')


def test_a_field_path_outside_the_schema_is_a_schema_error() -> None:
    rule = {"rule": "true", "fieldPath": ".nope"}
    schema = _root({"spec": _root({"a": {"type": "string"}}, **{"x-kubernetes-validations": [rule]})})
    with pytest.raises(SchemaError) as caught:
        CompiledSchema.compile(schema)
    assert caught.value.errors == [
        (
            "properties[spec].x-kubernetes-validations[0].fieldPath",
            "FieldValueInvalid",
            'Invalid value: ".nope": fieldPath must be a valid path',
        )
    ]


def test_a_message_expression_that_does_not_compile_is_a_schema_error() -> None:
    rule = {"rule": "true", "messageExpression": "'a' +"}
    schema = _root({"spec": _root({"a": {"type": "string"}}, **{"x-kubernetes-validations": [rule]})})
    with pytest.raises(SchemaError) as caught:
        CompiledSchema.compile(schema)
    ((path, _, body),) = caught.value.errors
    assert path == "properties[spec].x-kubernetes-validations[0].messageExpression"
    assert body.startswith("Invalid value: \"'a' +\": messageExpression compilation failed: ")


def _controller_gen_style_schema() -> dict[str, Any]:
    """A schema shaped as controller-gen writes them: descriptions, metadata `type: object`, list types."""
    condition = {
        "type": "object",
        "description": "A condition.",
        "required": ["status", "type"],
        "properties": {
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "type": {"type": "string", "description": "The condition type."},
        },
    }
    spec = {
        "type": "object",
        "description": "Desired state.",
        "required": ["issuerRef", "request"],
        "properties": {
            "duration": {"type": "string"},
            "extra": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            "groups": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"},
            "issuerRef": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "group": {"type": "string", "default": "example.io"},
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                },
            },
            "request": {"type": "string", "format": "byte"},
            "usages": {
                "type": "array",
                "x-kubernetes-list-type": "atomic",
                "items": {"type": "string", "enum": ["signing", "server auth", "client auth"]},
            },
        },
    }
    status = {
        "type": "object",
        "properties": {
            "conditions": {
                "type": "array",
                "items": condition,
                "x-kubernetes-list-map-keys": ["type"],
                "x-kubernetes-list-type": "map",
            },
        },
    }
    return _root(
        {
            "apiVersion": {"type": "string", "description": "APIVersion."},
            "kind": {"type": "string", "description": "Kind."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        description="A request.",
    )


def test_a_controller_gen_style_schema_is_structural_and_round_trips_an_object() -> None:
    compiled = CompiledSchema.compile(_controller_gen_style_schema())
    assert compiled.check_structural(ROOT) == []
    obj: dict[str, Any] = {
        "apiVersion": "example.io/v1",
        "kind": "Request",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {"issuerRef": {"name": "ca"}, "request": "aGVsbG8=", "usages": ["signing"], "typo": 1},
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]},
    }
    compiled.default(obj)
    dropped: list[str] = []
    compiled.prune(obj, dropped)
    assert dropped == ["spec.typo"]
    assert obj["spec"]["issuerRef"] == {"name": "ca", "group": "example.io"}
    assert compiled.validate(obj) == []
    obj["status"]["conditions"].append({"type": "Ready", "status": "Maybe"})
    assert [f"{p}: {b}" for p, _, b in compiled.validate(obj)] == [
        'status.conditions[1].status: Unsupported value: "Maybe": supported values: "True", "False", "Unknown"',
        'status.conditions[1]: Duplicate value: {"status":"Maybe","type":"Ready"}',
    ]


def test_problems_gathers_schema_errors_first_then_rule_compile_errors() -> None:
    bad_rule = {"x-kubernetes-validations": [{"rule": "self.a =="}]}
    assert CompiledSchema.problems(_root({"spec": _root({"a": {"type": "string"}}, **bad_rule)}), ROOT) == [
        (
            f"{ROOT}.properties[spec].x-kubernetes-validations[0].rule",
            "FieldValueInvalid",
            CompiledSchema.problems(_root({"spec": _root({}, **bad_rule)}), ROOT)[0][2],
        )
    ]
    both = _root({"spec": _root({"a": {}}, **bad_rule)})
    assert [p for p, _, _ in CompiledSchema.problems(both, ROOT)] == [f"{ROOT}.properties[spec].properties[a].type"]
    assert CompiledSchema.problems(_root({"spec": _root({"a": {"type": "string"}})}), ROOT) == []
