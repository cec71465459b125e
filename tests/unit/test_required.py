"""The compiled required-field fillers: Go's zero values, only inside objects that exist."""

from __future__ import annotations

import copy

from apimachinery.resources import by_plural
from apiserver.required import Filler, compile_schema, filler_for

JSON_SCHEMA_PROPS = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"


def _filler(group: str, plural: str) -> Filler:
    res = by_plural(group, plural)
    assert res is not None
    return filler_for(res)


def test_daemonset_status_zeros_and_nothing_else() -> None:
    ds = {"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}, "status": {}}
    _filler("apps", "daemonsets").fill(ds)
    assert ds["status"] == {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    }
    # inside the existing template the container gets its name; the spec's required selector is an empty object
    assert ds["spec"]["template"]["spec"]["containers"] == [{"image": "x", "name": ""}]
    assert ds["spec"]["selector"] == {}
    assert ds["metadata"] == {"name": "d"}


def test_no_status_is_invented_and_nulls_become_zeros() -> None:
    cm = {"metadata": {"name": "c"}}
    _filler("", "configmaps").fill(cm)
    assert cm == {"metadata": {"name": "c"}}
    rc = {"spec": {}, "status": {"replicas": None, "conditions": [{"type": "X"}]}}
    _filler("", "replicationcontrollers").fill(rc)
    assert rc["status"] == {"replicas": 0, "conditions": [{"type": "X", "status": ""}]}


def test_zero_values_by_type() -> None:
    svc = {"status": {"conditions": [{}], "loadBalancer": {"ingress": [{"ports": [{}]}]}}}
    _filler("", "services").fill(svc)
    # metav1.Condition: a zero time is written as null, like Go's metav1.Time
    assert svc["status"]["conditions"] == [
        {"type": "", "status": "", "lastTransitionTime": None, "reason": "", "message": ""}
    ]
    assert svc["status"]["loadBalancer"]["ingress"][0]["ports"] == [{"port": 0, "protocol": ""}]
    slice_ = {}
    _filler("discovery.k8s.io", "endpointslices").fill(slice_)
    assert slice_ == {"addressType": "", "endpoints": []}


def test_fill_is_idempotent_and_leaves_set_values() -> None:
    node = {"status": {"nodeInfo": {"kubeletVersion": "v1"}}}
    f = _filler("", "nodes")
    f.fill(node)
    once = copy.deepcopy(node)
    f.fill(node)
    assert node == once and node["status"]["nodeInfo"]["kubeletVersion"] == "v1"
    assert node["status"]["nodeInfo"]["kubeProxyVersion"] == ""


def test_inline_and_recursive_schemas_compile() -> None:
    tree = {
        "type": "object",
        "required": ["name", "count", "on", "tags", "child"],
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer"},
            "on": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "child": {"type": "object", "required": ["leaf"], "properties": {"leaf": {"type": "number"}}},
            "map": {
                "type": "object",
                "additionalProperties": {"type": "object", "required": ["v"], "properties": {"v": {"type": "string"}}},
            },
        },
    }
    f = compile_schema(tree)
    obj = f.fill({"map": {"a": {}}})
    assert obj == {"map": {"a": {"v": ""}}, "name": "", "count": 0, "on": False, "tags": [], "child": {"leaf": 0}}
    a, b = f.fill({}), f.fill({})
    assert a["tags"] is not b["tags"] and a["child"] is not b["child"]
    # a CRD's JSONSchemaProps refers to itself: compiling terminates, and the walk follows the nesting
    props = compile_schema({"$ref": f"#/components/schemas/{JSON_SCHEMA_PROPS}"})
    nested = props.fill({"properties": {"a": {"items": {"schema": {}}}}})
    assert nested == {"properties": {"a": {"items": {"schema": {}}}}}
