"""x-kubernetes-validations: CEL rules with self and oldSelf, messages, fieldPath and reason."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.crd_schema import CompiledSchema, SchemaError


def _schema(spec: dict[str, Any]) -> CompiledSchema:
    return CompiledSchema.compile({"type": "object", "properties": {"spec": spec}})


def _errors(compiled: CompiledSchema, spec: Any, old_spec: Any = None) -> list[str]:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}
    old = None if old_spec is None else {**obj, "spec": old_spec}
    return [f"{p}: {body}" for p, _, body in compiled.validate(obj, old)]


def _spec(rules: list[dict[str, Any]], **props: Any) -> dict[str, Any]:
    properties = {
        "replicas": {"type": "integer"},
        "max": {"type": "integer"},
        "name": {"type": "string"},
        "items": {"type": "array", "items": {"type": "integer"}},
        **props,
    }
    return {"type": "object", "properties": properties, "x-kubernetes-validations": rules}


def test_rule_with_message() -> None:
    compiled = _schema(_spec([{"rule": "self.replicas <= self.max", "message": "replicas must not exceed max"}]))
    assert _errors(compiled, {"replicas": 2, "max": 3}) == []
    assert _errors(compiled, {"replicas": 5, "max": 3}) == [
        'spec: Invalid value: "object": replicas must not exceed max'
    ]


def test_rule_without_message_reports_the_rule() -> None:
    compiled = _schema(_spec([{"rule": " self.name.startsWith('a') "}]))
    assert _errors(compiled, {"name": "abc"}) == []
    assert _errors(compiled, {"name": "xyz"}) == [
        "spec: Invalid value: \"object\": failed rule: self.name.startsWith('a')"
    ]


def test_rule_on_a_scalar_names_its_type() -> None:
    compiled = _schema(_spec([], name={"type": "string", "x-kubernetes-validations": [{"rule": "size(self) < 4"}]}))
    assert _errors(compiled, {"name": "abcdef"}) == ['spec.name: Invalid value: "string": failed rule: size(self) < 4']


def test_message_expression() -> None:
    rule = {"rule": "self.replicas <= 3", "messageExpression": "'replicas is ' + string(self.replicas)"}
    compiled = _schema(_spec([rule]))
    assert _errors(compiled, {"replicas": 7}) == ['spec: Invalid value: "object": replicas is 7']


def test_field_path_and_reason() -> None:
    rule = {
        "rule": "self.replicas > 0",
        "message": "must be positive",
        "fieldPath": ".replicas",
        "reason": "FieldValueForbidden",
    }
    compiled = _schema(_spec([rule]))
    assert _errors(compiled, {"replicas": 0}) == ["spec.replicas: Forbidden: must be positive"]
    required = {"rule": "has(self.name)", "message": "name is needed", "reason": "FieldValueRequired"}
    assert _errors(_schema(_spec([required])), {}) == ["spec: Required value: name is needed"]


def test_macros_and_kubernetes_list_functions() -> None:
    rules = [
        {"rule": "self.items.all(i, i > 0)", "message": "all positive"},
        {"rule": "self.items.isSorted()", "message": "sorted"},
        {"rule": "self.items.sum() < 10", "message": "small sum"},
    ]
    compiled = _schema(_spec(rules))
    assert _errors(compiled, {"items": [1, 2, 3]}) == []
    assert _errors(compiled, {"items": [3, -1, 9]}) == [
        'spec: Invalid value: "object": all positive',
        'spec: Invalid value: "object": sorted',
        'spec: Invalid value: "object": small sum',
    ]


def test_evaluation_error() -> None:
    compiled = _schema(_spec([{"rule": "self.name == 'x'"}]))
    assert _errors(compiled, {}) == [
        "spec: Invalid value: \"object\": no such key: name evaluating rule: self.name == 'x'"
    ]
    with_message = _schema(_spec([{"rule": "self.replicas / 0 == 1", "message": "bad ratio"}]))
    assert _errors(with_message, {"replicas": 1}) == [
        'spec: Invalid value: "object": division by zero evaluating rule: bad ratio'
    ]


def test_transition_rule_runs_only_on_update() -> None:
    immutable = {"rule": "self == oldSelf", "message": "name is immutable"}
    compiled = _schema(_spec([], name={"type": "string", "x-kubernetes-validations": [immutable]}))
    assert _errors(compiled, {"name": "a"}) == []  # create: no oldSelf, the rule does not run
    assert _errors(compiled, {"name": "a", "replicas": 2}, old_spec={"name": "a"}) == []
    assert _errors(compiled, {"name": "b"}, old_spec={"name": "a"}) == [
        'spec.name: Invalid value: "string": name is immutable'
    ]


def test_transition_rule_on_the_object_compares_with_old_self() -> None:
    rule = {"rule": "self.replicas >= oldSelf.replicas", "message": "replicas may not go down"}
    compiled = _schema(_spec([rule]))
    assert _errors(compiled, {"replicas": 3}, old_spec={"replicas": 2}) == []
    assert _errors(compiled, {"replicas": 1}, old_spec={"replicas": 2}) == [
        'spec: Invalid value: "object": replicas may not go down'
    ]


def test_transition_rule_in_list_type_map_items_correlates_by_key() -> None:
    item = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.port == oldSelf.port", "message": "port is immutable"}],
    }
    ports = {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"], "items": item}
    compiled = _schema(_spec([], ports=ports))
    old = {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}
    # reordered and a new entry: nothing correlates wrongly, the new entry has no oldSelf
    assert (
        _errors(
            compiled, {"ports": [{"name": "b", "port": 2}, {"name": "a", "port": 1}, {"name": "c", "port": 3}]}, old
        )
        == []
    )
    assert _errors(compiled, {"ports": [{"name": "b", "port": 5}, {"name": "a", "port": 1}]}, old) == [
        'spec.ports[0]: Invalid value: "object": port is immutable'
    ]


def test_rules_are_not_run_when_the_object_has_type_errors() -> None:
    compiled = _schema(_spec([{"rule": "self.replicas < 5"}]))
    assert _errors(compiled, {"replicas": "many"}) == [
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; "
        "correct the existing errors to complete validation",
    ]


def test_a_missing_required_field_blocks_the_rules_even_when_they_would_pass() -> None:
    spec = _spec([{"rule": "true"}])
    spec["required"] = ["name"]
    assert _errors(_schema(spec), {}) == [
        "spec.name: Required value",
        "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; "
        "correct the existing errors to complete validation",
    ]


def test_schemas_without_rules_report_no_blocking_note() -> None:
    compiled = _schema({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})
    assert _errors(compiled, {}) == ["spec.a: Required value"]


def test_formatted_strings_are_cel_timestamps_and_durations() -> None:
    props = {"start": {"type": "string", "format": "date-time"}, "every": {"type": "string", "format": "duration"}}
    rules = [
        {"rule": "self.start < timestamp('2030-01-01T00:00:00Z')", "message": "start too late"},
        {"rule": "self.every >= duration('1m')", "message": "too often"},
    ]
    compiled = _schema({"type": "object", "properties": props, "x-kubernetes-validations": rules})
    assert _errors(compiled, {"start": "2024-05-01T10:00:00Z", "every": "1h30m"}) == []
    assert _errors(compiled, {"start": "2031-05-01T10:00:00Z", "every": "30s"}) == [
        'spec: Invalid value: "object": start too late',
        'spec: Invalid value: "object": too often',
    ]


def test_root_rules_see_only_name_and_generate_name_of_metadata() -> None:
    rules = [{"rule": "self.metadata.name.startsWith('w') && self.kind == 'K'", "message": "meta"}]
    compiled = CompiledSchema.compile({"type": "object", "x-kubernetes-validations": rules})
    obj = {"apiVersion": "v1", "kind": "K", "metadata": {"name": "w", "labels": {"a": "b"}}}
    assert compiled.validate(obj) == []
    labels = [{"rule": "!has(self.metadata.labels)"}]  # upstream's checker: metadata has no such field
    with pytest.raises(SchemaError, match=r"undefined field 'labels'"):
        CompiledSchema.compile({"type": "object", "x-kubernetes-validations": labels})


def test_kubernetes_string_and_regex_functions() -> None:
    rules = [
        {"rule": "self.name.find('[0-9]+') == '42'", "message": "find"},
        {"rule": "self.name.split('-').size() == 2 && self.name.lowerAscii() == self.name", "message": "split"},
        {"rule": "self.items.indexOf(2) == 1 && self.items.max() == 3", "message": "lists"},
    ]
    compiled = _schema(_spec(rules))
    assert _errors(compiled, {"name": "web-42", "items": [1, 2, 3]}) == []
    assert _errors(compiled, {"name": "Web-x-7", "items": [2, 4]}) == [
        'spec: Invalid value: "object": find',
        'spec: Invalid value: "object": split',
        'spec: Invalid value: "object": lists',
    ]


def test_transition_rules_run_on_unchanged_values_too() -> None:
    # a rule that is false even when nothing changed (upstream runs transition rules on every update)
    rule = {"rule": "oldSelf.replicas < 3", "message": "frozen"}
    compiled = _schema(
        _spec(
            [],
            cfg={"type": "object", "properties": {"replicas": {"type": "integer"}}, "x-kubernetes-validations": [rule]},
        )
    )
    assert _errors(compiled, {"cfg": {"replicas": 5}, "name": "b"}, old_spec={"cfg": {"replicas": 5}, "name": "a"}) == [
        'spec.cfg: Invalid value: "object": frozen'
    ]


def test_rules_that_walk_more_than_the_budget_stop_with_upstreams_message() -> None:
    spec = _spec([{"rule": "self.items.all(i, i > 0)", "message": "positive"}, {"rule": "false", "message": "never"}])
    compiled = CompiledSchema.compile({"type": "object", "properties": {"spec": spec}}, cel_budget=100)
    assert _errors(compiled, {"items": list(range(1, 50))}) == ['spec: Invalid value: "object": never']
    assert _errors(compiled, {"items": list(range(1, 500))}) == [
        'spec: Invalid value: "object": validation failed due to running out of cost budget, '
        "no further validation rules will be run"
    ]
