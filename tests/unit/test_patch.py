"""Unit tests for apimachinery.patch: JSON Patch, JSON Merge Patch and strategic merge patch."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from apimachinery.patch import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    PatchError,
    UnsupportedPatchType,
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)

# --- JSON Patch (RFC 6902) -----------------------------------------------------------------

DOC: dict[str, Any] = {"a": {"b": 1, "c": [1, 2, 3]}, "x/y": 1, "t~s": 2, "flag": True}


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        pytest.param(
            [{"op": "add", "path": "/a/d", "value": {"e": None}}],
            {**DOC, "a": {"b": 1, "c": [1, 2, 3], "d": {"e": None}}},
            id="add-member",
        ),
        pytest.param(
            [{"op": "add", "path": "/a/c/1", "value": 9}],
            {**DOC, "a": {"b": 1, "c": [1, 9, 2, 3]}},
            id="add-insert-index",
        ),
        pytest.param(
            [
                {"op": "add", "path": "/a/c/-", "value": 4},
                {"op": "add", "path": "/a/c/4", "value": 5},
            ],
            {**DOC, "a": {"b": 1, "c": [1, 2, 3, 4, 5]}},
            id="add-append-dash-and-end-index",
        ),
        pytest.param([{"op": "add", "path": "", "value": [1]}], [1], id="add-root"),
        pytest.param(
            [{"op": "remove", "path": "/a/c/0"}, {"op": "remove", "path": "/flag"}],
            {"a": {"b": 1, "c": [2, 3]}, "x/y": 1, "t~s": 2},
            id="remove",
        ),
        pytest.param(
            [
                {"op": "replace", "path": "/a/b", "value": [7]},
                {"op": "replace", "path": "/a/c/2", "value": 0},
            ],
            {**DOC, "a": {"b": [7], "c": [1, 2, 0]}},
            id="replace",
        ),
        pytest.param(
            [{"op": "replace", "path": "/x~1y", "value": 5}, {"op": "remove", "path": "/t~0s"}],
            {"a": DOC["a"], "x/y": 5, "flag": True},
            id="pointer-escapes",
        ),
        pytest.param(
            [{"op": "move", "from": "/a/c", "path": "/c"}],
            {**DOC, "a": {"b": 1}, "c": [1, 2, 3]},
            id="move",
        ),
        pytest.param(
            [{"op": "move", "from": "/a/c/0", "path": "/a/c/-"}],
            {**DOC, "a": {"b": 1, "c": [2, 3, 1]}},
            id="move-within-array",
        ),
        pytest.param(
            [
                {"op": "copy", "from": "/a", "path": "/z"},
                {"op": "add", "path": "/z/c/-", "value": 4},
            ],
            {**DOC, "z": {"b": 1, "c": [1, 2, 3, 4]}},
            id="copy-is-deep",
        ),
        pytest.param(
            [{"op": "move", "from": "/a/b", "path": "/a/b"}],
            DOC,
            id="move-onto-itself",
        ),
        pytest.param(
            [{"op": "test", "path": "/a", "value": {"c": [1, 2, 3], "b": 1.0}}],
            DOC,
            id="test-pass",
        ),
    ],
)
def test_json_patch(ops: list[dict[str, Any]], expected: Any) -> None:
    """Valid RFC 6902 operations produce the expected document."""
    before = copy.deepcopy(DOC)
    assert json_patch(DOC, ops) == expected
    assert before == DOC


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        pytest.param({"op": "add"}, "JSON array", id="ops-not-a-list"),
        pytest.param(["add"], "not a JSON object", id="op-not-an-object"),
        pytest.param([{"op": "upsert", "path": "/a"}], "unsupported op 'upsert'", id="unknown-op"),
        pytest.param([{"op": "add", "value": 1}], "missing required member 'path'", id="no-path"),
        pytest.param([{"op": "add", "path": "/q"}], "'value'", id="no-value"),
        pytest.param([{"op": "move", "path": "/q"}], "'from'", id="no-from"),
        pytest.param([{"op": "add", "path": "a", "value": 1}], "start with '/'", id="bad-ptr"),
        pytest.param([{"op": "add", "path": "/a~2", "value": 1}], "'~' escape", id="bad-escape"),
        pytest.param([{"op": "remove", "path": "/nope"}], "does not exist", id="remove-missing"),
        pytest.param([{"op": "replace", "path": "/nope", "value": 1}], "does not exist", id="replace-missing"),
        pytest.param([{"op": "add", "path": "/q/r", "value": 1}], "does not exist", id="add-no-parent"),
        pytest.param([{"op": "add", "path": "/a/b/c", "value": 1}], "parent is", id="add-under-scalar"),
        pytest.param([{"op": "add", "path": "/a/c/4", "value": 1}], "out of bounds", id="add-past-end"),
        pytest.param([{"op": "remove", "path": "/a/c/3"}], "out of bounds", id="remove-out-of-bounds"),
        pytest.param([{"op": "remove", "path": "/a/c/-"}], "invalid array index", id="remove-dash"),
        pytest.param([{"op": "remove", "path": "/a/c/01"}], "invalid array index", id="leading-zero"),
        pytest.param([{"op": "remove", "path": ""}], "whole document", id="remove-root"),
        pytest.param([{"op": "move", "from": "/a", "path": "/a/b/z"}], "own child", id="move-into-child"),
        pytest.param([{"op": "test", "path": "/a/b", "value": 2}], "test failed", id="test-fail"),
        pytest.param([{"op": "test", "path": "/flag", "value": 1}], "test failed", id="test-bool-is-not-1"),
    ],
)
def test_json_patch_errors(ops: Any, message: str) -> None:
    """Malformed or inapplicable operations raise PatchError with a readable message."""
    with pytest.raises(PatchError, match=message):
        json_patch(DOC, ops)


def test_json_patch_error_names_the_operation() -> None:
    """Errors say which operation of the patch failed."""
    ops = [{"op": "test", "path": "/a/b", "value": 1}, {"op": "remove", "path": "/zz"}]
    with pytest.raises(PatchError, match=r"operation 1 \(remove\)"):
        json_patch(DOC, ops)


# --- JSON Merge Patch (RFC 7386) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "patch", "expected"),
    [
        pytest.param({"a": 1, "b": 2}, {"a": None, "c": 3}, {"b": 2, "c": 3}, id="null-deletes"),
        pytest.param(
            {"m": {"x": 1, "y": {"z": 1}}},
            {"m": {"y": {"z": None, "w": [1]}}},
            {"m": {"x": 1, "y": {"w": [1]}}},
            id="nested",
        ),
        pytest.param({"l": [1, 2]}, {"l": [3]}, {"l": [3]}, id="list-replaced"),
        pytest.param({"a": "s"}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}, id="scalar-to-map"),
        pytest.param({"a": 1}, ["x"], ["x"], id="non-dict-patch-replaces"),
        pytest.param([1], {"a": 1}, {"a": 1}, id="non-dict-doc"),
    ],
)
def test_merge_patch(doc: Any, patch: Any, expected: Any) -> None:
    """RFC 7386 semantics; inputs are left untouched."""
    before = copy.deepcopy((doc, patch))
    assert merge_patch(doc, patch) == expected
    assert before == (doc, patch)


# --- Strategic merge patch ------------------------------------------------------------------


def deployment(**spec: Any) -> dict[str, Any]:
    """A Deployment with an nginx and a side container and a RollingUpdate strategy."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 3,
            "paused": True,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1",
                            "args": ["-a", "-b"],
                            "ports": [{"containerPort": 80, "name": "http"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        },
                        {"name": "side", "image": "busybox"},
                    ],
                    "tolerations": [{"key": "k1"}, {"key": "k2"}],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
            **spec,
        },
    }


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment."""
    return obj["spec"]["template"]["spec"]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a Deployment's pod template."""
    return pod_spec(obj)["containers"]


def names(items: list[dict[str, Any]]) -> list[Any]:
    """The `name` of every list element."""
    return [item["name"] for item in items]


def template_patch(spec: dict[str, Any]) -> dict[str, Any]:
    """A Deployment patch that changes only the pod spec."""
    return {"spec": {"template": {"spec": spec}}}


KUBECTL_APPLY_PATCH = {
    "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
    "spec": {
        "replicas": 2,
        "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
        "template": {
            "spec": {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [
                    {"image": "nginx:2", "name": "nginx"},
                    {"$patch": "delete", "name": "side"},
                ],
            }
        },
    },
}


def test_smp_kubectl_apply_two_containers_to_one_and_recreate() -> None:
    """The patch kubectl apply sends when dropping a container and switching strategy."""
    doc = deployment()
    before = copy.deepcopy(doc)
    result = strategic_merge_patch(doc, KUBECTL_APPLY_PATCH, "Deployment")
    assert doc == before
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    assert result["spec"]["replicas"] == 2
    assert result["metadata"]["annotations"] == KUBECTL_APPLY_PATCH["metadata"]["annotations"]
    [nginx] = containers(result)
    assert nginx == {**containers(before)[0], "image": "nginx:2"}


def test_smp_kubectl_set_image() -> None:
    """`kubectl set image` only changes the image and keeps the container order."""
    patch = template_patch(
        {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "side"}],
            "containers": [{"image": "nginx:3", "name": "nginx"}],
        }
    )
    result = strategic_merge_patch(deployment(), patch, "Deployment")
    expected = deployment()
    containers(expected)[0]["image"] = "nginx:3"
    assert result == expected


def test_smp_result_shares_nothing_with_inputs() -> None:
    """Mutating the result must not affect the document or the patch."""
    doc, patch = deployment(), template_patch({"volumes": [{"name": "new", "emptyDir": {}}]})
    result = strategic_merge_patch(doc, patch, "Deployment")
    pod_spec(result)["volumes"][1]["emptyDir"]["medium"] = "Memory"
    containers(result)[0]["env"].clear()
    assert patch == template_patch({"volumes": [{"name": "new", "emptyDir": {}}]})
    assert doc == deployment()


def env(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The env of the Deployment's first container."""
    return containers(obj)[0]["env"]


@pytest.mark.parametrize(
    ("patch", "select", "expected"),
    [
        pytest.param(
            {"spec": {"paused": None, "missing": None}},
            lambda r: sorted(r["spec"]),
            ["replicas", "strategy", "template"],
            id="null-deletes-key",
        ),
        pytest.param(
            template_patch({"containers": [{"name": "nginx", "env": [{"name": "B", "value": "x"}, {"name": "C"}]}]}),
            env,
            [{"name": "A", "value": "1"}, {"name": "B", "value": "x"}, {"name": "C"}],
            id="env-merges-by-name",
        ),
        pytest.param(
            template_patch({"containers": [{"name": "nginx", "env": [{"name": "A", "value": None}]}]}),
            env,
            [{"name": "A"}, {"name": "B", "value": "2"}],
            id="null-inside-merged-element",
        ),
        pytest.param(
            template_patch(
                {
                    "containers": [
                        {
                            "name": "nginx",
                            "ports": [
                                {"containerPort": 80, "protocol": "TCP"},
                                {"containerPort": 443},
                            ],
                        }
                    ]
                }
            ),
            lambda r: containers(r)[0]["ports"],
            [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}],
            id="container-ports-merge-by-containerPort",
        ),
        pytest.param(
            template_patch({"containers": [{"name": "new", "image": "x"}]}),
            lambda r: names(containers(r)),
            ["nginx", "side", "new"],
            id="new-container-appended",
        ),
        pytest.param(
            template_patch({"containers": [{"name": "nginx", "args": ["-c"]}]}),
            lambda r: (containers(r)[0]["args"], containers(r)[0]["image"]),
            (["-c"], "nginx:1"),
            id="args-atomic",
        ),
        pytest.param(
            template_patch({"tolerations": [{"key": "k3"}]}),
            lambda r: pod_spec(r)["tolerations"],
            [{"key": "k3"}],
            id="tolerations-atomic",
        ),
        pytest.param(
            template_patch({"containers": [{"name": "side", "$patch": "delete"}]}),
            lambda r: names(containers(r)),
            ["nginx"],
            id="patch-delete-list-element",
        ),
        pytest.param(
            template_patch({"containers": [{"$patch": "replace"}, {"name": "only", "image": "y"}]}),
            containers,
            [{"name": "only", "image": "y"}],
            id="patch-replace-list",
        ),
        pytest.param(
            {"spec": {"strategy": {"$patch": "delete"}}},
            lambda r: "strategy" in r["spec"],
            False,
            id="patch-delete-map",
        ),
        pytest.param(
            {"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}},
            lambda r: r["spec"]["strategy"],
            {"type": "Recreate"},
            id="patch-replace-map",
        ),
        pytest.param(
            {"spec": {"strategy": {"$patch": "merge", "type": "Recreate"}}},
            lambda r: r["spec"]["strategy"],
            {"type": "Recreate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
            id="patch-merge-map-is-default",
        ),
        pytest.param(
            {
                "spec": {
                    "strategy": {
                        "$retainKeys": ["type", "rollingUpdate"],
                        "rollingUpdate": {"maxSurge": 2},
                    }
                }
            },
            lambda r: r["spec"]["strategy"],
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}},
            id="retainKeys-keeps-listed",
        ),
        pytest.param(
            template_patch(
                {
                    "volumes": [
                        {
                            "$retainKeys": ["name", "hostPath"],
                            "name": "data",
                            "hostPath": {"path": "/d"},
                        }
                    ]
                }
            ),
            lambda r: pod_spec(r)["volumes"],
            [{"name": "data", "hostPath": {"path": "/d"}}],
            id="retainKeys-in-volume-element",
        ),
        pytest.param(
            {"metadata": {"finalizers": ["c", "a", "c"]}},
            lambda r: r["metadata"]["finalizers"],
            ["a", "b", "c"],
            id="finalizers-union",
        ),
        pytest.param(
            {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "zz"]}},
            lambda r: r["metadata"]["finalizers"],
            ["b"],
            id="deleteFromPrimitiveList",
        ),
        pytest.param(
            {"metadata": {"$deleteFromPrimitiveList/labels": ["x"]}},
            lambda r: "labels" in r["metadata"],
            False,
            id="deleteFromPrimitiveList-missing-field",
        ),
        pytest.param(
            {
                "metadata": {
                    "$deleteFromPrimitiveList/finalizers": ["a"],
                    "$setElementOrder/finalizers": ["c", "b"],
                    "finalizers": ["c"],
                }
            },
            lambda r: r["metadata"]["finalizers"],
            ["c", "b"],
            id="deleteFromPrimitiveList-with-setElementOrder",
        ),
        pytest.param(
            {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}},
            lambda r: r["metadata"]["finalizers"],
            ["c", "b", "a"],
            id="setElementOrder-primitives",
        ),
        pytest.param(
            template_patch({"$setElementOrder/containers": [{"name": "side"}, {"name": "nginx"}]}),
            lambda r: names(containers(r)),
            ["side", "nginx"],
            id="setElementOrder-reorders-without-list",
        ),
        pytest.param(
            template_patch(
                {
                    "$setElementOrder/containers": [{"name": "new"}, {"name": "nginx"}],
                    "containers": [{"name": "new"}],
                }
            ),
            lambda r: names(containers(r)),
            ["new", "nginx", "side"],
            id="setElementOrder-keeps-server-only-items",
        ),
        pytest.param(
            template_patch(
                {
                    "containers": [
                        {
                            "name": "new",
                            "volumeMounts": [{"mountPath": "/a", "$patch": "delete"}],
                            "env": [{"name": "X", "valueFrom": None}],
                        }
                    ]
                }
            ),
            lambda r: containers(r)[2],
            {"name": "new", "volumeMounts": [], "env": [{"name": "X"}]},
            id="directives-and-nulls-stripped-from-new-items",
        ),
        pytest.param(
            {"spec": {"template": {"metadata": {"labels": {"app": None, "tier": "fe"}}}}},
            lambda r: r["spec"]["template"]["metadata"]["labels"],
            {"tier": "fe"},
            id="labels-map-merge",
        ),
    ],
)
def test_strategic_merge_patch_deployment(
    patch: dict[str, Any], select: Callable[[dict[str, Any]], Any], expected: Any
) -> None:
    """Strategic merge patch rules on a Deployment's fields and its pod template."""
    doc = deployment()
    result = strategic_merge_patch(doc, patch, "Deployment")
    assert select(result) == expected
    assert doc == deployment()
    assert "$" not in repr(result)


@pytest.mark.parametrize(
    ("kind", "doc", "patch", "expected"),
    [
        pytest.param(
            "Service",
            {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}},
            {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}},
            {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}},
            id="service-ports-by-port",
        ),
        pytest.param(
            "EndpointSlice",
            {"ports": [{"port": 80}, {"port": 443}], "endpoints": [{"addresses": ["1.1.1.1"]}]},
            {"ports": [{"port": 80, "name": "x"}], "endpoints": [{"addresses": ["2.2.2.2"]}]},
            {"ports": [{"port": 80, "name": "x"}], "endpoints": [{"addresses": ["2.2.2.2"]}]},
            id="endpointslice-lists-atomic",
        ),
        pytest.param(
            "Endpoints",
            {"subsets": [{"addresses": [{"ip": "1.1.1.1"}]}]},
            {"subsets": [{"ports": [{"port": 1}]}]},
            {"subsets": [{"ports": [{"port": 1}]}]},
            id="endpoints-subsets-atomic",
        ),
        pytest.param(
            "Pod",
            {
                "spec": {
                    "initContainers": [{"name": "i", "image": "a"}],
                    "containers": [{"name": "c", "volumeMounts": [{"mountPath": "/a", "name": "v"}]}],
                }
            },
            {
                "spec": {
                    "initContainers": [{"name": "i", "image": "b"}],
                    "containers": [{"name": "c", "volumeMounts": [{"mountPath": "/a", "readOnly": True}]}],
                }
            },
            {
                "spec": {
                    "initContainers": [{"name": "i", "image": "b"}],
                    "containers": [
                        {
                            "name": "c",
                            "volumeMounts": [{"mountPath": "/a", "name": "v", "readOnly": True}],
                        }
                    ],
                }
            },
            id="pod-initContainers-and-volumeMounts",
        ),
        pytest.param(
            "Pod",
            {
                "status": {
                    "conditions": [
                        {"type": "Ready", "status": "False"},
                        {"type": "Scheduled", "status": "True"},
                    ],
                    "podIPs": [{"ip": "10.0.0.1"}],
                }
            },
            {
                "status": {
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "podIPs": [{"ip": "fd00::1"}],
                }
            },
            {
                "status": {
                    "conditions": [
                        {"type": "Ready", "status": "True"},
                        {"type": "Scheduled", "status": "True"},
                    ],
                    "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                }
            },
            id="pod-status-conditions-and-podIPs",
        ),
        pytest.param(
            "Node",
            {
                "status": {
                    "addresses": [{"type": "InternalIP", "address": "1"}],
                    "images": [{"names": ["a"]}],
                }
            },
            {
                "status": {
                    "addresses": [{"type": "Hostname", "address": "n"}],
                    "images": [{"names": ["b"]}],
                }
            },
            {
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": "1"},
                        {"type": "Hostname", "address": "n"},
                    ],
                    "images": [{"names": ["b"]}],
                }
            },
            id="node-addresses-by-type",
        ),
        pytest.param(
            "ServiceAccount",
            {"secrets": [{"name": "a"}], "imagePullSecrets": [{"name": "p"}]},
            {"secrets": [{"name": "b"}], "imagePullSecrets": [{"name": "q"}]},
            {"secrets": [{"name": "a"}, {"name": "b"}], "imagePullSecrets": [{"name": "q"}]},
            id="serviceaccount-secrets-by-name",
        ),
        pytest.param(
            "ConfigMap",
            {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}},
            {"metadata": {"ownerReferences": [{"uid": "2", "controller": True}]}},
            {
                "metadata": {
                    "ownerReferences": [
                        {"uid": "1", "name": "a"},
                        {"uid": "2", "name": "b", "controller": True},
                    ]
                }
            },
            id="ownerReferences-by-uid",
        ),
        pytest.param(
            "CronJob",
            {
                "spec": {
                    "jobTemplate": {
                        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}]}}}
                    }
                }
            },
            {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "2"}]}}}}}},
            {
                "spec": {
                    "jobTemplate": {
                        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "2"}, {"name": "b"}]}}}
                    }
                }
            },
            id="cronjob-nested-pod-template",
        ),
        pytest.param(
            "Namespace",
            {"spec": {"finalizers": ["kubernetes"]}},
            {"spec": {"finalizers": ["other"]}},
            {"spec": {"finalizers": ["other"]}},
            id="namespace-spec-finalizers-atomic",
        ),
        pytest.param(
            "Pod",
            {"a": 1},
            {"$patch": "replace", "b": {"c": None, "d": 1}},
            {"b": {"d": 1}},
            id="root-replace",
        ),
    ],
)
def test_strategic_merge_patch_kinds(
    kind: str, doc: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Merge keys are resolved from the kind and the field path."""
    assert strategic_merge_patch(doc, patch, kind) == expected


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        pytest.param({"metadata": ["x"]}, "cannot merge a list into an object", id="list-for-map"),
        pytest.param({"spec": {"replicas": {"a": 1}}}, "cannot merge an object", id="map-for-scalar"),
        pytest.param(template_patch({"volumes": {"name": "x"}}), "into a list", id="map-for-list"),
        pytest.param({"spec": {"template": "x"}}, "cannot replace an object", id="scalar-for-map"),
        pytest.param(template_patch({"containers": [{"image": "x"}]}), "merge key 'name'", id="no-merge-key"),
        pytest.param(template_patch({"containers": ["nginx"]}), "must be objects", id="scalar-element"),
        pytest.param(
            template_patch({"containers": [{"$patch": "delete"}]}),
            "merge key 'name'",
            id="delete-no-key",
        ),
        pytest.param(
            template_patch({"containers": [{"$patch": "merge", "name": "x"}]}),
            r"\$patch: merge",
            id="list-merge-directive",
        ),
        pytest.param(
            {"spec": {"strategy": {"$patch": "bogus"}}},
            "unknown \\$patch",
            id="unknown-map-directive",
        ),
        pytest.param(
            template_patch({"containers": [{"$patch": "x", "name": "a"}]}),
            "unknown \\$patch",
            id="unknown-list-directive",
        ),
        pytest.param(
            {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}},
            "not listed in \\$retainKeys",
            id="retainKeys-violation",
        ),
        pytest.param(
            {"spec": {"strategy": {"$retainKeys": "type"}}},
            "list of field names",
            id="retainKeys-not-list",
        ),
        pytest.param(
            template_patch(
                {
                    "$setElementOrder/containers": [{"name": "nginx"}, {"name": "side"}],
                    "containers": [{"name": "side"}, {"name": "nginx"}],
                }
            ),
            "doesn't match",
            id="setElementOrder-mismatch",
        ),
        pytest.param(
            template_patch({"$setElementOrder/containers": {"name": "a"}}),
            "must be a list",
            id="setElementOrder-not-list",
        ),
        pytest.param(
            template_patch({"$setElementOrder/containers": ["nginx"]}),
            "merge key 'name'",
            id="setElementOrder-no-key",
        ),
        pytest.param(
            {"metadata": {"$setElementOrder/": []}},
            "does not name a field",
            id="directive-no-field",
        ),
        pytest.param(
            {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
            "must be a list",
            id="deleteFromPrimitiveList-not-list",
        ),
        pytest.param(
            {"metadata": {"finalizers": [{"a": 1}]}},
            "only contain scalars",
            id="primitive-list-with-object",
        ),
    ],
)
def test_strategic_merge_patch_errors(patch: dict[str, Any], message: str) -> None:
    """Malformed strategic merge patches raise PatchError."""
    with pytest.raises(PatchError, match=message):
        strategic_merge_patch(deployment(), patch, "Deployment")


def test_strategic_merge_patch_root_delete() -> None:
    """`$patch: delete` on the whole object empties it."""
    assert strategic_merge_patch({"a": 1}, {"$patch": "delete"}, "Pod") == {}


# --- apply_patch dispatch -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        pytest.param(JSON_PATCH, [{"op": "replace", "path": "/spec/l", "value": [3]}], [3], id="json"),
        pytest.param(MERGE_PATCH, {"spec": {"l": [{"name": "c"}]}}, [{"name": "c"}], id="merge"),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            {"spec": {"containers": [{"name": "c"}]}},
            [{"name": "a"}, {"name": "c"}],
            id="strategic",
        ),
        pytest.param(f"{MERGE_PATCH}; charset=utf-8", {"spec": {"l": None}}, None, id="params-ignored"),
    ],
)
def test_apply_patch(content_type: str, body: Any, expected: Any) -> None:
    """apply_patch dispatches on the media type."""
    doc = {"spec": {"l": [1], "containers": [{"name": "a"}]}}
    result = apply_patch(doc, body, content_type, "Pod")
    key = "containers" if content_type == STRATEGIC_MERGE_PATCH else "l"
    assert result["spec"].get(key) == expected


@pytest.mark.parametrize(
    ("content_type", "body", "error", "message"),
    [
        pytest.param(JSON_PATCH, {"op": "add"}, PatchError, "JSON array", id="json-not-list"),
        pytest.param(STRATEGIC_MERGE_PATCH, [1], PatchError, "JSON object", id="smp-not-dict"),
        pytest.param(MERGE_PATCH, "x", PatchError, "must be a JSON object", id="merge-to-scalar"),
        pytest.param(
            JSON_PATCH,
            [{"op": "add", "path": "", "value": 1}],
            PatchError,
            "JSON object",
            id="json-to-scalar",
        ),
        pytest.param("application/apply-patch+yaml", {}, UnsupportedPatchType, "not a supported", id="apply"),
        pytest.param("application/json", {}, UnsupportedPatchType, "not a supported", id="json-type"),
    ],
)
def test_apply_patch_errors(content_type: str, body: Any, error: type, message: str) -> None:
    """Bad bodies raise PatchError; unknown media types raise UnsupportedPatchType."""
    with pytest.raises(error, match=message):
        apply_patch({"a": 1}, body, content_type, "Pod")


def test_unsupported_patch_type_is_a_patch_error() -> None:
    """Callers catching PatchError also catch UnsupportedPatchType."""
    assert issubclass(UnsupportedPatchType, PatchError)
    assert issubclass(PatchError, ValueError)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param(
            MERGE_PATCH, {"status": {"phase": "Running", "conditions": [{"type": "Ready", "x": None}]}}, id="merge"
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            {"status": {"conditions": [{"type": "Ready", "status": "True"}], "podIPs": [{"ip": "10.0.0.1"}]}},
            id="strategic",
        ),
        pytest.param(JSON_PATCH, [{"op": "add", "path": "/status/podIPs", "value": [{"ip": "10.0.0.1"}]}], id="json"),
    ],
)
def test_apply_patch_in_place_to_a_private_copy(content_type: str, body: Any) -> None:
    """copy_doc=False patches the given document itself, gives the same result, and leaves the patch intact:
    the registry applies the same patch again to a fresh copy when a write conflicts."""
    doc = {
        "metadata": {"name": "p"},
        "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]},
    }
    patch = copy.deepcopy(body)
    expected = apply_patch(doc, body, content_type, "Pod")
    private = copy.deepcopy(doc)
    result = apply_patch(private, body, content_type, "Pod", copy_doc=False)
    assert result is private and result == expected
    result["status"]["podIPs" if "podIPs" in result["status"] else "conditions"][0].clear()
    assert body == patch  # nothing of the result is the patch's
    assert apply_patch(copy.deepcopy(doc), body, content_type, "Pod", copy_doc=False) == expected
