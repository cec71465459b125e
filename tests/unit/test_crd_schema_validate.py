"""CompiledSchema.validate: one test per rule family, with upstream's exact messages."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.crd_schema import CompiledSchema


def _errors(spec_schema: dict[str, Any], spec: Any, old_spec: Any = None) -> list[str]:
    """Validate `{"spec": spec}` against a root schema whose `spec` is `spec_schema`; `path: body` lines."""
    schema = {"type": "object", "properties": {"spec": spec_schema}}
    compiled = CompiledSchema.compile(schema)
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}
    old = None
    if old_spec is not None:
        old = {**obj, "spec": old_spec}
    return [f"{path}: {body}" for path, _, body in compiled.validate(obj, old)]


def _obj(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, **extra}


@pytest.mark.parametrize(
    ("prop", "value", "message"),
    [
        ("integer", "string", 'spec.x: Invalid value: "string": spec.x in body must be of type integer: "string"'),
        ("number", True, 'spec.x: Invalid value: "boolean": spec.x in body must be of type number: "boolean"'),
        ("string", 5, 'spec.x: Invalid value: "integer": spec.x in body must be of type string: "integer"'),
        ("boolean", "yes", 'spec.x: Invalid value: "string": spec.x in body must be of type boolean: "string"'),
        ("array", {}, 'spec.x: Invalid value: "object": spec.x in body must be of type array: "object"'),
        ("object", [], 'spec.x: Invalid value: "array": spec.x in body must be of type object: "array"'),
        ("string", None, 'spec.x: Invalid value: "null": spec.x in body must be of type string: "null"'),
    ],
)
def test_types(prop: str, value: Any, message: str) -> None:
    extra: dict[str, Any] = {"items": {"type": "string"}} if prop == "array" else {}
    assert _errors(_obj({"x": {"type": prop, **extra}}), {"x": value}) == [message]


def test_a_fraction_for_an_integer_is_also_out_of_the_integer_range() -> None:
    assert _errors(_obj({"x": {"type": "integer"}}), {"x": 1.5}) == [
        'spec.x: Invalid value: "number": spec.x in body must be of type integer: "number"',
        '<nil>: Invalid value: "": Checked value must be of type integer (default format) in spec.x',
    ]


def test_int32_range_and_numeric_formats() -> None:
    schema = _obj({"x": {"type": "integer", "format": "int32"}})
    assert _errors(schema, {"x": 2**31 - 1}) == []
    assert _errors(schema, {"x": 2**31}) == [
        '<nil>: Invalid value: "": Checked value must be of type integer with format int32 in spec.x'
    ]
    assert _errors(schema, {"x": 2.5}) == [
        'spec.x: Invalid value: "float64": spec.x in body must be of type int32: "float64"',
        '<nil>: Invalid value: "": Checked value must be of type integer with format int32 in spec.x',
    ]


def test_types_accept_their_values_and_integral_numbers() -> None:
    schema = _obj({"i": {"type": "integer"}, "n": {"type": "number"}, "b": {"type": "boolean"}})
    assert _errors(schema, {"i": 3, "n": 2, "b": False}) == []
    assert _errors(schema, {"i": 3.0, "n": 2.5}) == []


def test_nullable() -> None:
    schema = _obj({"x": {"type": "string", "nullable": True}})
    assert _errors(schema, {"x": None}) == []


def test_int_or_string() -> None:
    schema = _obj({"port": {"x-kubernetes-int-or-string": True}})
    assert _errors(schema, {"port": 80}) == []
    assert _errors(schema, {"port": "http"}) == []
    assert _errors(schema, {"port": True}) == [
        'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"'
    ]


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-05-01T10:00:00Z", "yesterday"),
        ("date", "2024-05-01", "2024-13-01"),
        ("byte", "aGVsbG8=", "not base64!"),
        ("uri", "https://example.com/x", "no scheme"),
        ("ipv4", "10.0.0.1", "10.0.0.300"),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", "123"),
        ("email", "a@example.com", "nobody"),
        ("duration", "1h30m", "soon"),
        ("hostname", "example.com", "-bad-"),
    ],
)
def test_formats(fmt: str, good: str, bad: str) -> None:
    schema = _obj({"x": {"type": "string", "format": fmt}})
    assert _errors(schema, {"x": good}) == []
    assert _errors(schema, {"x": bad}) == [
        f'spec.x: Invalid value: "{bad}": spec.x in body must be of type {fmt}: "{bad}"'
    ]


def test_unknown_format_is_ignored() -> None:
    assert _errors(_obj({"x": {"type": "string", "format": "color-of-sky"}}), {"x": "blue"}) == []


def test_enum() -> None:
    schema = _obj({"kind": {"type": "string", "enum": ["a", "b"]}, "n": {"type": "integer", "enum": [1, 2]}})
    assert _errors(schema, {"kind": "a", "n": 2}) == []
    assert _errors(schema, {"kind": "x", "n": 3}) == [
        'spec.kind: Unsupported value: "x": supported values: "a", "b"',
        'spec.n: Unsupported value: 3: supported values: "1", "2"',
    ]


def test_pattern_uses_re2_and_upstream_message() -> None:
    cron = r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"
    schema = _obj({"cronSpec": {"type": "string", "pattern": cron}})
    assert _errors(schema, {"cronSpec": "*/5 * * * *"}) == []
    assert _errors(schema, {"cronSpec": "x"}) == [
        f"spec.cronSpec: Invalid value: \"x\": spec.cronSpec in body should match '{cron}'"
    ]


def test_minimum_maximum_and_exclusive() -> None:
    schema = _obj(
        {
            "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
            "ratio": {
                "type": "number",
                "minimum": 0,
                "exclusiveMinimum": True,
                "maximum": 1.5,
                "exclusiveMaximum": True,
            },
            "step": {"type": "integer", "multipleOf": 5},
        }
    )
    assert _errors(schema, {"replicas": 10, "ratio": 0.5, "step": 15}) == []
    assert _errors(schema, {"replicas": 20}) == [
        "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10"
    ]
    assert _errors(schema, {"replicas": 0}) == [
        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
    ]
    assert _errors(schema, {"ratio": 0}) == [
        "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"
    ]
    assert _errors(schema, {"ratio": 1.5}) == [
        "spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than 1.5"
    ]
    assert _errors(schema, {"step": 7}) == ["spec.step: Invalid value: 7: spec.step in body should be a multiple of 5"]


def test_string_lengths() -> None:
    schema = _obj({"name": {"type": "string", "minLength": 2, "maxLength": 4}})
    assert _errors(schema, {"name": "abcd"}) == []
    assert _errors(schema, {"name": "abcde"}) == ["spec.name: Too long: may not be longer than 4"]
    assert _errors(schema, {"name": "a"}) == [
        'spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long'
    ]


def test_array_sizes_and_unique_items() -> None:
    schema = _obj({"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}})
    assert _errors(schema, {"tags": ["a"]}) == []
    assert _errors(schema, {"tags": []}) == [
        "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"
    ]
    assert _errors(schema, {"tags": ["a", "b", "c"]}) == ["spec.tags: Too many: 3: must have at most 2 items"]
    unique = _obj({"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}})
    assert _errors(unique, {"tags": ["a", "a"]}) == [
        'spec.tags: Invalid value: "": spec.tags in body shouldn\'t contain duplicates'
    ]


def test_item_errors_name_their_index() -> None:
    schema = _obj({"ports": {"type": "array", "items": _obj({"port": {"type": "integer"}}, required=["port"])}})
    assert _errors(schema, {"ports": [{"port": 1}, {}, {"port": "x"}]}) == [
        "spec.ports[1].port: Required value",
        'spec.ports[2].port: Invalid value: "string": spec.ports[2].port in body must be of type integer: "string"',
    ]


def test_object_property_counts() -> None:
    schema = _obj(
        {"m": {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1, "maxProperties": 2}}
    )
    assert _errors(schema, {"m": {"a": "1"}}) == []
    assert _errors(schema, {"m": {}}) == ["spec.m: Invalid value: 0: spec.m in body should have at least 1 properties"]
    assert _errors(schema, {"m": {"a": "1", "b": "2", "c": "3"}}) == ["spec.m: Too many: 3: must have at most 2 items"]


def test_required() -> None:
    schema = _obj({"image": {"type": "string"}, "size": {"type": "integer"}}, required=["image"])
    assert _errors(schema, {"image": "nginx"}) == []
    assert _errors(schema, {"size": 1}) == ["spec.image: Required value"]


def test_required_at_the_root() -> None:
    compiled = CompiledSchema.compile(
        {"type": "object", "properties": {"spec": {"type": "object"}}, "required": ["spec"]}
    )
    assert compiled.validate({"apiVersion": "v1", "kind": "K", "metadata": {}}) == [
        ("spec", "FieldValueRequired", "Required value")
    ]


def test_additional_properties_schema() -> None:
    schema = _obj({"labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}}})
    assert _errors(schema, {"labels": {"a": "x"}}) == []
    assert _errors(schema, {"labels": {"a": 1, "b": "long!"}}) == [
        'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer"',
        "spec.labels.b: Too long: may not be longer than 3",
    ]


def test_additional_properties_false() -> None:
    schema = {"type": "object", "additionalProperties": False}
    assert _errors(schema, {"a": 1}) == ['spec: Invalid value: "a": spec.a in body is a forbidden property']


def test_embedded_resource() -> None:
    schema = _obj(
        {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "x-kubernetes-preserve-unknown-fields": True,
            }
        }
    )
    good = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}
    assert _errors(schema, {"template": good}) == []
    assert _errors(schema, {"template": {"metadata": {"name": "p"}}}) == [
        "spec.template.apiVersion: Required value: must not be empty",
        "spec.template.kind: Required value: must not be empty",
    ]
    bad = {"apiVersion": "a/b/c", "kind": "Not_A_Kind", "metadata": {"labels": {"bad key!": "x"}}}
    assert _errors(schema, {"template": bad}) == [
        'spec.template.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c',
        'spec.template.kind: Invalid value: "Not_A_Kind": may have mixed case, but should otherwise match: '
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
        "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
        "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        'spec.template.metadata.labels: Invalid value: "bad key!": name part must consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
        "'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    ]


def test_list_type_set_duplicates() -> None:
    schema = _obj({"tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}})
    assert _errors(schema, {"tags": ["a", "b"]}) == []
    assert _errors(schema, {"tags": ["a", "b", "a", "a"]}) == ['spec.tags[2]: Duplicate value: "a"']


def test_list_type_map_duplicates() -> None:
    item = _obj({"name": {"type": "string"}, "port": {"type": "integer"}}, required=["name"])
    schema = _obj(
        {
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": item,
            }
        }
    )
    assert _errors(schema, {"ports": [{"name": "a"}, {"name": "b"}]}) == []
    assert _errors(schema, {"ports": [{"name": "a"}, {"name": "a", "port": 2}]}) == [
        'spec.ports[1]: Duplicate value: {"name":"a","port":2}'
    ]


def test_list_type_map_with_two_keys() -> None:
    item = _obj({"name": {"type": "string"}, "protocol": {"type": "string", "default": "TCP"}})
    schema = _obj(
        {
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name", "protocol"],
                "items": item,
            }
        }
    )
    assert _errors(schema, {"ports": [{"name": "a"}, {"name": "a", "protocol": "UDP"}]}) == []
    assert _errors(schema, {"ports": [{"name": "a"}, {"name": "a", "protocol": "TCP"}]}) == [
        'spec.ports[1]: Duplicate value: {"name":"a","protocol":"TCP"}'
    ]


def test_all_of_any_of_one_of_not() -> None:
    any_of = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}
    any_of["anyOf"] = [{"required": ["a"]}, {"required": ["b"]}]
    assert _errors(any_of, {"a": "x"}) == []
    assert _errors(any_of, {}) == [
        '<nil>: Invalid value: "": "spec" must validate at least one schema (anyOf)',
        "spec.a: Required value",
    ]
    one_of = {**any_of, "oneOf": any_of["anyOf"]}
    del one_of["anyOf"]
    assert _errors(one_of, {"a": "x", "b": "y"}) == [
        '<nil>: Invalid value: "": "spec" must validate one and only one schema (oneOf). Found 2 valid alternatives'
    ]
    not_ = {"type": "object", "properties": {"a": {"type": "string"}}, "not": {"required": ["a"]}}
    assert _errors(not_, {"a": "x"}) == ['<nil>: Invalid value: "": "spec" must not validate the schema (not)']
    all_of = {"type": "string", "allOf": [{"minLength": 2}, {"maxLength": 3}]}
    assert _errors(_obj({"s": all_of}), {"s": "abcd"}) == [
        "spec.s: Too long: may not be longer than 3",
        '<nil>: Invalid value: "": "spec.s" must validate all the schemas (allOf)',
    ]


def test_update_ratchets_unchanged_invalid_values() -> None:
    schema = _obj({"a": {"type": "integer", "maximum": 5}, "b": {"type": "integer", "maximum": 5}})
    # a was stored before the schema tightened; an update that leaves it alone is accepted
    assert _errors(schema, {"a": 9, "b": 1}, old_spec={"a": 9, "b": 0}) == []
    assert _errors(schema, {"a": 9, "b": 7}, old_spec={"a": 9, "b": 0}) == [
        "spec.b: Invalid value: 7: spec.b in body should be less than or equal to 5"
    ]
    assert _errors(schema, {"a": 8, "b": 1}, old_spec={"a": 9, "b": 0}) == [
        "spec.a: Invalid value: 8: spec.a in body should be less than or equal to 5"
    ]


def test_update_still_checks_unchanged_embedded_resources() -> None:
    embedded = {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True}
    stored = {"t": {"kind": "Pod"}}
    assert _errors(_obj({"t": embedded}), {"t": {"kind": "Pod"}}, old_spec=stored) == [
        "spec.t.apiVersion: Required value: must not be empty"
    ]
