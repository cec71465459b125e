"""managedFields on a create: the creating manager's FieldsV1 is the object's field set, with its keys in order at
every level (as kube-apiserver writes it), however the request ordered its keys and list elements."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from apimachinery.resources import by_plural
from apiserver.managedfields import fields_of, set_on_create, to_fields_v1

PODS = by_plural("", "pods")
DEPLOYMENTS = by_plural("apps", "deployments")
assert PODS is not None and DEPLOYMENTS is not None

CONTAINER_B = {"name": "b", "image": "busybox", "ports": [{"containerPort": 90}, {"containerPort": 80, "name": "w"}]}
CONTAINER_A = {"image": "nginx", "name": "a", "env": [{"name": "Z", "value": "1"}, {"value": "2", "name": "A"}]}
POD: dict[str, Any] = {
    "spec": {"restartPolicy": "Never", "containers": [CONTAINER_B, CONTAINER_A]},
    "metadata": {"labels": {"z": "1", "a": "2"}, "name": "p", "finalizers": ["x.io/b", "x.io/a"]},
    "kind": "Pod",
    "apiVersion": "v1",
}


def _created(res: Any, obj: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(obj)
    set_on_create(res, body, "client")
    [entry] = body["metadata"]["managedFields"]
    return entry["fieldsV1"]


def _keys_in_order(trie: dict[str, Any]) -> bool:
    return list(trie) == sorted(trie) and all(_keys_in_order(sub) for sub in trie.values())


@pytest.mark.parametrize(
    "obj",
    [
        POD,
        # a list-map element given twice: both copies' fields are the element's
        {**POD, "spec": {"containers": [CONTAINER_B, CONTAINER_A, {"name": "b", "args": ["x"], "image": "busybox"}]}},
    ],
    ids=["out-of-order", "element-twice"],
)
def test_a_created_pods_fields_are_its_field_set_in_order(obj: dict[str, Any]) -> None:
    trie = _created(PODS, obj)
    assert _keys_in_order(trie)
    # the same bytes as the trie of the object's field set (paths sorted, then nested)
    assert orjson.dumps(trie) == orjson.dumps(to_fields_v1(fields_of(PODS, obj)))
    containers = trie["f:spec"]["f:containers"]
    assert list(containers) == ['k:{"name":"a"}', 'k:{"name":"b"}']
    assert list(containers['k:{"name":"a"}']) == [".", "f:env", "f:image", "f:name"]
    assert list(trie["f:metadata"]) == ["f:finalizers", "f:labels"]  # name is the server's


def test_a_created_deployments_fields_are_in_order_inside_its_template() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "template": {"spec": {"containers": [CONTAINER_B]}, "metadata": {"labels": {"b": "1", "a": "1"}}},
            "selector": {"matchLabels": {"b": "1", "a": "1"}},
            "replicas": 2,
        },
    }
    trie = _created(DEPLOYMENTS, deployment)
    assert _keys_in_order(trie)
    assert orjson.dumps(trie) == orjson.dumps(to_fields_v1(fields_of(DEPLOYMENTS, deployment)))
    assert list(trie["f:spec"]) == ["f:replicas", "f:selector", "f:template"]
