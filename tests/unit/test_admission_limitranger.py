"""LimitRanger: container defaults and the min/max/ratio refusals, as upstream's admission_test.go."""

from __future__ import annotations

from typing import Any

import pytest
from admission_kit import attrs, container, limit_range, pod

from apimachinery.resources import by_plural
from apiserver.admission.limitranger import (
    LIMIT_RANGER_ANNOTATION,
    LimitRanger,
    apply_defaults,
    validate_claim,
    validate_pod,
)
from apiserver.kinds.quota import LimitRangeStrategy

CPU_MAX_1 = {"type": "Container", "max": {"cpu": "1"}}


def _claim(storage: str | None) -> dict[str, Any]:
    resources = {"requests": {"storage": storage}} if storage else {}
    return {"metadata": {"name": "pvc"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": resources}}


POD_CASES = [
    pytest.param(
        CPU_MAX_1,
        pod("p", container(limits={"cpu": "2"})),
        ["maximum cpu usage per Container is 1, but limit is 2"],
        id="max-limit",
    ),
    pytest.param(
        CPU_MAX_1,
        pod("p", container(requests={"cpu": "2"})),
        ["maximum cpu usage per Container is 1.  No limit is specified"],
        id="max-no-limit",
    ),
    pytest.param(
        CPU_MAX_1,
        pod("p", container(requests={"cpu": "1500m"}, limits={"cpu": "1"})),
        ["maximum cpu usage per Container is 1, but request is 1500m"],
        id="max-request",
    ),
    pytest.param(CPU_MAX_1, pod("p", container(limits={"cpu": "1000m"})), [], id="max-equal"),
    pytest.param(
        {"type": "Container", "min": {"memory": "100Mi"}},
        pod("p", container(requests={"memory": "50Mi"})),
        ["minimum memory usage per Container is 100Mi, but request is 50Mi"],
        id="min-request",
    ),
    pytest.param(
        {"type": "Container", "min": {"cpu": "100m"}},
        pod("p", container()),
        ["minimum cpu usage per Container is 100m.  No request is specified"],
        id="min-no-request",
    ),
    pytest.param(
        {"type": "Container", "min": {"cpu": "100m"}},
        pod("p", container(requests={"cpu": "200m"}, limits={"cpu": "50m"})),
        ["minimum cpu usage per Container is 100m, but limit is 50m"],
        id="min-limit",
    ),
    pytest.param(
        {"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
        pod("p", container(requests={"cpu": "100m"}, limits={"cpu": "500m"})),
        ["cpu max limit to request ratio per Container is 2, but provided ratio is 5.000000"],
        id="ratio",
    ),
    pytest.param(
        {"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
        pod("p", container(limits={"cpu": "500m"})),
        ["cpu max limit to request ratio per Container is 2, but no request is specified or request is 0"],
        id="ratio-no-request",
    ),
    pytest.param(
        {"type": "Pod", "max": {"memory": "1Gi"}},
        pod("p", container("a", limits={"memory": "600Mi"}), container("b", limits={"memory": "600Mi"})),
        ["maximum memory usage per Pod is 1Gi, but limit is 1200Mi"],
        id="pod-max-sums-containers",
    ),
    pytest.param(
        {"type": "Pod", "max": {"memory": "1Gi"}},
        pod("p", container("a", limits={"memory": "100Mi"}), init=(container("i", limits={"memory": "2Gi"}),)),
        ["maximum memory usage per Pod is 1Gi, but limit is 2Gi"],
        id="pod-max-init-container-maximum",
    ),
    pytest.param(
        CPU_MAX_1,
        pod("p", container("a", limits={"cpu": "1"}), init=(container("i", limits={"cpu": "3"}),)),
        ["maximum cpu usage per Container is 1, but limit is 3"],
        id="init-container",
    ),
    pytest.param(
        {"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}},
        pod("p", container(limits={"cpu": "2", "memory": "2Gi"})),
        [
            "maximum cpu usage per Container is 1, but limit is 2",
            "maximum memory usage per Container is 1Gi, but limit is 2Gi",
        ],
        id="two-violations",
    ),
]


@pytest.mark.parametrize(("item", "obj", "expected"), POD_CASES)
def test_validate_pod(item: dict[str, Any], obj: dict[str, Any], expected: list[str]) -> None:
    assert validate_pod(limit_range(item), obj) == expected


@pytest.mark.parametrize(
    ("item", "storage", "expected"),
    [
        (
            {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}},
            "500Mi",
            ["minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"],
        ),
        (
            {"type": "PersistentVolumeClaim", "max": {"storage": "10Gi"}},
            "20Gi",
            ["maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"],
        ),
        (
            {"type": "PersistentVolumeClaim", "max": {"storage": "10Gi"}},
            None,
            ["maximum storage usage per PersistentVolumeClaim is 10Gi.  No request is specified"],
        ),
        ({"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}, "5Gi", []),
        ({"type": "Container", "max": {"cpu": "1"}}, "5Gi", []),
    ],
)
def test_validate_claim(item: dict[str, Any], storage: str | None, expected: list[str]) -> None:
    assert validate_claim(limit_range(item), _claim(storage)) == expected


def test_defaults_fill_only_what_is_missing_and_are_annotated() -> None:
    lr = limit_range(
        {"type": "Container", "default": {"cpu": "0.5", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m"}}
    )
    obj = pod(
        "p", container("a"), container("b", requests={"cpu": "300m"}, limits={"cpu": "1"}), init=(container("i"),)
    )
    apply_defaults(lr, obj)
    a, b = obj["spec"]["containers"]
    assert a["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m"}}
    assert b["resources"] == {"requests": {"cpu": "300m"}, "limits": {"cpu": "1", "memory": "256Mi"}}
    assert obj["spec"]["initContainers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert obj["metadata"]["annotations"][LIMIT_RANGER_ANNOTATION] == (
        "LimitRanger plugin set: cpu request for container a; cpu, memory limit for container a; "
        "memory limit for container b; cpu request for init container i; cpu, memory limit for init container i"
    )


def test_defaults_without_container_items_change_nothing() -> None:
    obj = pod("p", container("a"))
    apply_defaults(limit_range({"type": "Pod", "max": {"cpu": "2"}}), obj)
    assert obj == pod("p", container("a"))


def test_handles_pod_creates_and_claim_writes_only() -> None:
    plugin = LimitRanger()
    assert plugin.handles(attrs("pods", pod()))
    assert not plugin.handles(attrs("pods", pod(), "UPDATE", old=pod()))
    assert not plugin.handles(attrs("pods", pod(), "UPDATE", old=pod(), subresource="status"))
    assert plugin.handles(attrs("persistentvolumeclaims", _claim("1Gi"), "UPDATE", old=_claim("1Gi")))
    assert not plugin.handles(attrs("services", {"metadata": {"name": "s"}}))
    deleting = _claim("1Gi")
    deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert not plugin.handles(attrs("persistentvolumeclaims", _claim("1Gi"), "UPDATE", old=deleting))


def test_limit_range_defaulting_as_set_defaults_limit_range_item() -> None:
    strategy = LimitRangeStrategy(by_plural("", "limitranges"))  # type: ignore[arg-type]
    obj = limit_range(
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}, "default": {"memory": "128Mi"}}
    )
    strategy.default(obj)
    item = obj["spec"]["limits"][0]
    assert item["default"] == {"memory": "128Mi", "cpu": "2"}
    assert item["defaultRequest"] == {"memory": "128Mi", "cpu": "2"}
    pod_item = limit_range({"type": "Pod", "max": {"cpu": "2"}})
    strategy.default(pod_item)
    assert "default" not in pod_item["spec"]["limits"][0]


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        (
            {"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}},
            "spec.limits[0].min[cpu]",
            'Invalid value: "2": min value 2 is greater than max value 1',
        ),
        (
            {"type": "Container", "default": {"cpu": "100m"}, "defaultRequest": {"cpu": "200m"}},
            "spec.limits[0].defaultRequest[cpu]",
            'Invalid value: "200m": default request value 200m is greater than default limit value 100m',
        ),
        (
            {"type": "Pod", "default": {"cpu": "1"}},
            "spec.limits[0].default",
            "Forbidden: may not be specified when `type` is 'Pod'",
        ),
        (
            {"type": "Container", "maxLimitRequestRatio": {"cpu": "500m"}},
            "spec.limits[0].maxLimitRequestRatio[cpu]",
            'Invalid value: "500m": ratio 500m is less than 1',
        ),
        (
            {"type": "PersistentVolumeClaim", "max": {"cpu": "1"}},
            "spec.limits[0].limits",
            "Required value: either minimum or maximum storage value is required, but neither was provided",
        ),
        (
            {"type": "Container", "max": {"widgets": "1"}},
            "spec.limits[0].max[widgets]",
            'Invalid value: "widgets": must be a standard resource type or fully qualified',
        ),
    ],
)
def test_limit_range_validation(item: dict[str, Any], field: str, message: str) -> None:
    strategy = LimitRangeStrategy(by_plural("", "limitranges"))  # type: ignore[arg-type]
    obj = limit_range(item)
    strategy.default(obj)
    causes = [(c.field, c.message) for c in strategy.validate(obj)]
    assert (field, message) in causes  # defaulting may copy the bad value on (max → default), as upstream
