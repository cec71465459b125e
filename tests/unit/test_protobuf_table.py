"""The protobuf descriptor table is complete for what the server serves, and encode/decode agree."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from apimachinery.resources import RESOURCES
from apiserver.protobuf import (
    MAGIC,
    ProtobufError,
    _table,
    decode_protobuf,
    encode_protobuf,
    kind_message,
    message,
    table_sources,
)

# kinds a client sends or reads that are not a resource of the table: subresources' bodies and
# the meta/v1 types every group version carries
SUBRESOURCE_KINDS = [
    ("v1", "Binding"),
    ("autoscaling/v1", "Scale"),
    ("policy/v1", "Eviction"),
    ("authentication.k8s.io/v1", "TokenRequest"),
    ("meta.k8s.io/v1", "PartialObjectMetadata"),
    ("meta.k8s.io/v1", "PartialObjectMetadataList"),
    ("meta.k8s.io/v1", "Status"),
]
OPTION_KINDS = ("DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions", "ListOptions", "GetOptions")


def _served() -> list[tuple[str, str]]:
    out = []
    for res in RESOURCES:
        for version in (res.version, *res.also_served):
            gv = f"{res.group}/{version}" if res.group else version
            out.append((gv, res.kind))
            if "create" not in res.verbs or "list" in res.verbs:
                out.append((gv, res.list_kind))
    return out


@pytest.mark.parametrize(("api_version", "kind"), _served() + SUBRESOURCE_KINDS)
def test_every_served_kind_has_a_message(api_version: str, kind: str) -> None:
    msg = kind_message(api_version, kind)
    assert msg is not None, f"{api_version}/{kind} has no protobuf message"
    assert msg.short_name == kind


@pytest.mark.parametrize("kind", OPTION_KINDS)
def test_option_types_in_every_served_group_version(kind: str) -> None:
    for api_version, _ in _served():
        msg = kind_message(api_version, kind)
        assert msg is not None and msg.name == f"k8s.io.apimachinery.pkg.apis.meta.v1.{kind}", api_version


def test_every_referenced_message_is_in_the_table() -> None:
    table = _table()
    scalars = {"string", "bytes", "int32", "int64", "bool", "double"}
    for msg in table.messages.values():
        for field in msg.fields.values():
            if field.type in ("message", "map") and field.ref not in scalars:
                assert field.ref in table.messages, f"{msg.name}.{field.name} names {field.ref}"


def test_the_table_names_its_upstream_sources() -> None:
    sources = table_sources()
    assert set(sources) >= {"k8s.io/api", "k8s.io/apimachinery", "k8s.io/kube-aggregator"}
    assert all(len(commit) == 40 for commit in sources.values())


def test_upstream_field_numbers() -> None:
    """A few numbers read off upstream's generated.proto by hand, as a check on the generator."""

    def number(name: str, json_name: str) -> int:
        return next(f.number for f in message(name).fields.values() if f.name == json_name)

    core = "k8s.io.api.core.v1"
    meta = "k8s.io.apimachinery.pkg.apis.meta.v1"
    assert number(f"{meta}.DeleteOptions", "gracePeriodSeconds") == 1
    assert number(f"{meta}.DeleteOptions", "preconditions") == 2
    assert number(f"{meta}.DeleteOptions", "propagationPolicy") == 4
    assert number(f"{meta}.DeleteOptions", "dryRun") == 5
    assert number(f"{meta}.ObjectMeta", "managedFields") == 17
    assert number(f"{core}.PodSpec", "nodeName") == 10
    assert number(f"{core}.PodSpec", "containers") == 2
    assert number(f"{core}.Container", "image") == 2
    assert number("k8s.io.api.apps.v1.DeploymentSpec", "progressDeadlineSeconds") == 9
    volume = message(f"{core}.Volume").fields[2]
    assert volume.inline and volume.ref == f"{core}.VolumeSource"


def _pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "front"},
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": True}
            ],
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-01-02T03:04:05Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}},
                }
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "nginx",
                    "command": ["sleep", "10"],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
                }
            ],
            "volumes": [{"name": "v", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "x"}}],
            "terminationGracePeriodSeconds": 0,
            "restartPolicy": "Always",
        },
        "status": {"phase": "Running", "podIP": "10.0.0.1"},
    }


@pytest.mark.parametrize(
    "obj",
    [
        _pod(),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "data": {"k": base64.b64encode(bytes(range(256))).decode()},
            "type": "Opaque",
        },
        {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "propagationPolicy": "Foreground",
            "preconditions": {"uid": "u", "resourceVersion": "5"},
            "dryRun": ["All"],
        },
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "l"},
            "spec": {"holderIdentity": "me", "renewTime": "2026-01-02T03:04:05.123456Z", "leaseDurationSeconds": 15},
        },
        {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "message": 'pods "x" not found',
            "reason": "NotFound",
            "details": {"name": "x", "kind": "pods"},
            "code": 404,
        },
        {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": "d", "namespace": "n"},
            "spec": {"replicas": 1},
            "status": {"replicas": 2, "selector": "app=d"},
        },
        {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "p", "namespace": "n"},
            "deleteOptions": {"gracePeriodSeconds": 30},
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "service": {"namespace": "kube-system", "name": "metrics-server", "port": 443},
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "insecureSkipTLSVerify": True,
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {"name": "r"},
            "data": {"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}},
            "revision": 3,
        },
    ],
    ids=lambda o: o["kind"],
)
def test_encode_then_decode_round_trips(obj: dict[str, Any]) -> None:
    body = encode_protobuf(obj)
    assert body.startswith(MAGIC)
    assert decode_protobuf(body) == obj


def test_list_round_trips_with_items_without_type_meta() -> None:
    pod = _pod()
    listing = {
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "12", "continue": "abc"},
        "items": [{k: v for k, v in pod.items() if k not in ("apiVersion", "kind")}],
    }
    assert decode_protobuf(encode_protobuf(listing)) == listing


def test_duration_and_quantity_forms() -> None:
    flow = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": "apps/v1"},
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
        },
    }
    assert decode_protobuf(encode_protobuf(flow)) == flow


def test_encoding_a_kind_without_a_message_or_a_wrong_type_fails() -> None:
    with pytest.raises(ProtobufError, match=r"no protobuf message for example\.com/v1/Widget"):
        encode_protobuf({"apiVersion": "example.com/v1", "kind": "Widget"})
    with pytest.raises(ProtobufError, match=r"ConfigMap\.data"):
        encode_protobuf({"apiVersion": "v1", "kind": "ConfigMap", "data": ["not", "a", "map"]})


def test_unknown_json_fields_have_no_place_on_the_wire() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}, "extra": 1}
    assert decode_protobuf(encode_protobuf(cm)) == {k: v for k, v in cm.items() if k != "extra"}
