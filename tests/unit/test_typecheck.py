"""Unit tests for apiserver.typecheck: encoding/json's words for the first mistyped value of an object."""

from __future__ import annotations

from typing import Any

import pytest

from apimachinery.resources import by_plural
from apiserver import typecheck


def pod(**spec: Any) -> dict[str, Any]:
    """A Pod with one container and `spec` on top."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c"}], **spec},
    }


@pytest.mark.parametrize(
    ("plural", "obj", "message"),
    [
        pytest.param("pods", pod(), None, id="fine"),
        pytest.param(
            "pods",
            pod(containers=[{"name": "c", "ports": [{"containerPort": "80"}]}]),
            "json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort "
            "of type int32",
            id="through-lists",
        ),
        pytest.param(
            "pods",
            pod(nodeSelector={"a": 1}),
            "json: cannot unmarshal number into Go struct field PodSpec.spec.nodeSelector.a of type string",
            id="map-value",
        ),
        pytest.param(
            "pods",
            pod(terminationGracePeriodSeconds=1.5),
            "json: cannot unmarshal number 1.5 into Go struct field PodSpec.spec.terminationGracePeriodSeconds "
            "of type int64",
            id="float-for-int",
        ),
        pytest.param(
            "pods",
            pod(containers=[{"name": "c", "ports": [{"containerPort": 1 << 40}]}]),
            "json: cannot unmarshal number 1099511627776 into Go struct field "
            "ContainerPort.spec.containers.ports.containerPort of type int32",
            id="int-range",
        ),
        pytest.param(
            "pods",
            pod(hostNetwork="yes"),
            "json: cannot unmarshal string into Go struct field PodSpec.spec.hostNetwork of type bool",
            id="bool",
        ),
        pytest.param(
            "pods",
            {"kind": "Pod", "spec": []},
            "json: cannot unmarshal array into Go struct field PodSpec.spec of type v1.PodSpec",
            id="struct",
        ),
        pytest.param(
            "services",
            {"kind": "Service", "spec": {"ports": [{"port": 80, "targetPort": 1.5}]}},
            "json: cannot unmarshal number 1.5 into Go value of type int32",
            id="int-or-string",
        ),
        pytest.param(
            "services",
            {"kind": "Service", "spec": {"ports": [{"port": 80, "targetPort": True}]}},
            "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type "
            "intstr.IntOrString",
            id="int-or-string-bool",
        ),
        pytest.param(
            "secrets", {"kind": "Secret", "data": {"k": "a!b"}}, "illegal base64 data at input byte 1", id="base64"
        ),
    ],
)
def test_first_type_error(plural: str, obj: dict[str, Any], message: str | None) -> None:
    """The message names the innermost Go struct and the field's whole path, as encoding/json does."""
    assert typecheck.first_type_error(by_plural("", plural), obj) == message


def test_declared_nulls_are_dropped() -> None:
    """A declared field given as null is left out, as decoding into the struct and encoding again would."""
    obj = pod(nodeName=None, containers=[{"name": "c", "image": None, "x": None}])
    assert typecheck.first_type_error(by_plural("", "pods"), obj) is None
    assert "nodeName" not in obj["spec"] and obj["spec"]["containers"] == [{"name": "c", "x": None}]


def test_depth_is_checked_unless_known() -> None:
    """Past MAX_DEPTH levels an object is refused, unless the caller knows it is not that deep."""
    deep: Any = []
    for _ in range(200):
        deep = [deep]
    obj = {"kind": "ControllerRevision", "metadata": {"name": "r"}, "revision": 1, "data": {"a": deep}}
    res = by_plural("apps", "controllerrevisions")
    assert typecheck.first_type_error(res, obj) == "exceeded max depth of 128 nested objects and arrays"
    assert typecheck.first_type_error(res, obj, depth_known=True) is None
