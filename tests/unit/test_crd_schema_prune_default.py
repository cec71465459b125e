"""CompiledSchema.prune and .default: unknown fields dropped, defaults filled as apiextensions does."""

from __future__ import annotations

from typing import Any

from apiserver.crd_schema import CompiledSchema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "default": 1},
                "image": {"type": "string"},
                "resources": {
                    "type": "object",
                    "default": {"limits": {"cpu": "1"}, "unknown": "pruned"},
                    "properties": {
                        "limits": {"type": "object", "additionalProperties": {"type": "string"}},
                        "mode": {"type": "string", "default": "auto"},
                    },
                },
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "protocol": {"type": "string", "default": "TCP"},
                        },
                    },
                },
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "config": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
                },
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
                },
                "note": {"type": "string"},
                "maybe": {"type": "string", "nullable": True},
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def _compiled() -> CompiledSchema:
    return CompiledSchema.compile(SCHEMA)


def test_prune_drops_unknown_fields_at_every_level_and_keeps_type_meta() -> None:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}},
        "top": 1,
        "spec": {"image": "nginx", "bogus": True, "ports": [{"name": "http", "junk": 1}]},
        "status": {"ready": True, "phase": "x"},
    }
    dropped: list[str] = []
    assert _compiled().prune(obj, dropped) is obj
    assert obj == {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}},
        "spec": {"image": "nginx", "ports": [{"name": "http"}]},
        "status": {"ready": True},
    }
    assert sorted(dropped) == ["spec.bogus", "spec.ports[0].junk", "status.phase", "top"]


def test_prune_honours_preserve_unknown_fields_but_prunes_inside_known_fields() -> None:
    obj = {
        "spec": {
            "extra": {"anything": {"deep": [1, 2]}},
            "config": {"free": 1, "known": {"a": "x", "b": "pruned"}},
        }
    }
    _compiled().prune(obj)
    assert obj["spec"]["extra"] == {"anything": {"deep": [1, 2]}}
    assert obj["spec"]["config"] == {"free": 1, "known": {"a": "x"}}


def test_prune_embedded_resource_keeps_its_type_meta() -> None:
    template = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": "1", "y": "2"}, "z": 1}
    obj = {"spec": {"template": template}}
    _compiled().prune(obj)
    assert obj["spec"]["template"] == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": "1"}}


def test_prune_drops_type_meta_of_the_wrong_type_in_embedded_objects() -> None:
    obj = {"spec": {"template": {"apiVersion": 1, "kind": "Pod", "metadata": "x"}}}
    _compiled().prune(obj)
    assert obj["spec"]["template"] == {"kind": "Pod"}


def test_default_fills_nested_objects_and_list_items() -> None:
    obj: dict[str, Any] = {"spec": {"ports": [{"name": "http"}, {"name": "dns", "protocol": "UDP"}]}}
    _compiled().default(obj)
    assert obj["spec"]["replicas"] == 1
    # the default of `resources` was pruned at compile time, then the defaults inside it applied
    assert obj["spec"]["resources"] == {"limits": {"cpu": "1"}, "mode": "auto"}
    assert obj["spec"]["ports"] == [{"name": "http", "protocol": "TCP"}, {"name": "dns", "protocol": "UDP"}]


def test_default_keeps_set_values_and_replaces_non_nullable_nulls() -> None:
    obj: dict[str, Any] = {"spec": {"replicas": 3, "resources": None, "note": None, "maybe": None}}
    _compiled().default(obj)
    assert obj["spec"]["replicas"] == 3
    assert obj["spec"]["resources"] == {"limits": {"cpu": "1"}, "mode": "auto"}
    assert "note" not in obj["spec"]  # non-nullable null without a default is dropped
    assert obj["spec"]["maybe"] is None  # nullable null stays


def test_defaults_are_copies() -> None:
    compiled = _compiled()
    a: dict[str, Any] = {"spec": {}}
    b: dict[str, Any] = {"spec": {}}
    compiled.default(a)
    a["spec"]["resources"]["limits"]["cpu"] = "9"
    compiled.default(b)
    assert b["spec"]["resources"]["limits"] == {"cpu": "1"}


def test_default_does_not_create_absent_parents() -> None:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "K", "metadata": {}}
    _compiled().default(obj)
    assert "spec" not in obj


def test_prune_drops_unknown_metadata_fields_of_embedded_objects_only() -> None:
    template = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}, "bogus": 1}}
    obj = {"metadata": {"name": "w", "extra": "left to the registry"}, "spec": {"template": template}}
    dropped: list[str] = []
    _compiled().prune(obj, dropped)
    assert obj["spec"]["template"]["metadata"] == {"name": "p", "labels": {"a": "b"}}
    assert obj["metadata"] == {"name": "w", "extra": "left to the registry"}
    assert dropped == ["spec.template.metadata.bogus"]
