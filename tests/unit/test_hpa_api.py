"""HorizontalPodAutoscaler and APIService in the apiserver: v1 <-> v2 conversion, printers, defaults
and validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from apimachinery.resources import by_plural
from apiserver.conversion import (
    BEHAVIOR_ANNOTATION,
    CONDITIONS_ANNOTATION,
    CURRENT_METRICS_ANNOTATION,
    METRICS_ANNOTATION,
    hpa_to_v1,
    hpa_to_v2,
)
from apiserver.kindregistry import KindRegistry
from apiserver.printers import format_hpa_metrics, printer_for

NOW = datetime(2026, 1, 1, tzinfo=UTC)

V2: dict[str, Any] = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "namespace": "ns", "annotations": {"team": "a"}},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}},
            },
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
            },
            {
                "type": "Pods",
                "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}},
            },
        ],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}],
            },
            "scaleDown": {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
        },
    },
    "status": {
        "currentReplicas": 3,
        "desiredReplicas": 4,
        "currentMetrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": 75, "averageValue": "75m"}},
            }
        ],
        "conditions": [
            {
                "type": "AbleToScale",
                "status": "True",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "reason": "R",
                "message": "m",
            }
        ],
    },
}


def test_v2_to_v1_keeps_what_v1_cannot_say_in_annotations() -> None:
    v1 = hpa_to_v1(V2)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 10,
        "targetCPUUtilizationPercentage": 60,
    }
    assert v1["status"] == {"currentReplicas": 3, "desiredReplicas": 4, "currentCPUUtilizationPercentage": 75}
    annotations = v1["metadata"]["annotations"]
    assert annotations["team"] == "a"
    assert json.loads(annotations[METRICS_ANNOTATION]) == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}},
        {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}},
    ]
    assert json.loads(annotations[CURRENT_METRICS_ANNOTATION]) == [
        {"type": "Resource", "resource": {"name": "cpu", "currentAverageUtilization": 75, "currentAverageValue": "75m"}}
    ]
    behavior = json.loads(annotations[BEHAVIOR_ANNOTATION])
    assert behavior["ScaleUp"]["Policies"] == [{"Type": "Pods", "Value": 4, "PeriodSeconds": 15}]
    assert behavior["ScaleDown"]["StabilizationWindowSeconds"] is None
    assert json.loads(annotations[CONDITIONS_ANNOTATION])[0]["type"] == "AbleToScale"


def test_round_trip_through_v1_restores_the_v2_object() -> None:
    back = hpa_to_v2(hpa_to_v1(V2))
    assert back["metadata"]["annotations"] == {"team": "a"}
    assert back["status"] == V2["status"]
    assert back["spec"]["behavior"] == V2["spec"]["behavior"]
    # v1's one metric comes back after the others (as upstream's conversion orders them)
    assert back["spec"]["metrics"] == [V2["spec"]["metrics"][0], V2["spec"]["metrics"][2], V2["spec"]["metrics"][1]]


def test_v1_without_a_target_gets_the_default_cpu_metric() -> None:
    v2 = hpa_to_v2(
        {
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "x"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3},
        }
    )
    assert v2["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}
    ]
    assert "annotations" not in v2["metadata"]


def test_hpa_printer_and_targets() -> None:
    printer = printer_for("HorizontalPodAutoscaler")
    assert [c.name for c in printer.columns] == [
        "Name",
        "Reference",
        "Targets",
        "MinPods",
        "MaxPods",
        "Replicas",
        "Age",
    ]
    obj = {**V2, "metadata": {**V2["metadata"], "creationTimestamp": "2025-12-31T23:59:00Z"}}
    cells = printer.row(obj, NOW)["cells"]
    # statuses pair with specs by position, as printers.go does (here the cpu status sits first)
    assert cells == ["web", "Deployment/web", "memory: 75m/100Mi, cpu: <unknown>/60% + 1 more...", "2", 10, 3, "60s"]
    assert format_hpa_metrics([], []) == "<none>"
    spec = [{"type": "Pods", "pods": {"target": {"averageValue": "10"}}}]
    assert format_hpa_metrics(spec, [{"type": "Pods", "pods": {"current": {"averageValue": "12"}}}]) == "12/10"
    external = [{"type": "External", "external": {"target": {"averageValue": "5"}}}]
    assert format_hpa_metrics(external, []) == "<unknown>/5 (avg)"


def test_api_service_printer() -> None:
    printer = printer_for("APIService")
    base = {"metadata": {"name": "v1beta1.metrics.k8s.io", "creationTimestamp": "2025-12-31T23:00:00Z"}}
    remote = {**base, "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}}}
    failing = {
        **remote,
        "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]},
    }
    assert printer.row(failing, NOW)["cells"] == [
        "v1beta1.metrics.k8s.io",
        "kube-system/metrics-server",
        "False (MissingEndpoints)",
        "60m",
    ]
    local = {**base, "spec": {}, "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}}
    assert printer.row(local, NOW)["cells"][1:3] == ["Local", "True"]
    assert printer.row(remote, NOW)["cells"][2] == "Unknown"


def strategy(plural: str, group: str):  # type: ignore[no-untyped-def]
    res = by_plural(group, plural)
    assert res is not None
    return KindRegistry().strategy(res)


def test_hpa_defaults_and_validation() -> None:
    s = strategy("horizontalpodautoscalers", "autoscaling")
    obj: dict[str, Any] = {
        "metadata": {"name": "h", "namespace": "ns"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "d"},
            "maxReplicas": 3,
            "behavior": {"scaleDown": {}},
        },
    }
    s.default(obj)
    assert obj["spec"]["minReplicas"] == 1
    assert obj["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 80}
    assert obj["spec"]["behavior"]["scaleUp"]["policies"] == [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ]
    assert "stabilizationWindowSeconds" not in obj["spec"]["behavior"]["scaleDown"]
    assert s.validate(obj) == []
    bad = {
        "metadata": {"name": "h", "namespace": "ns"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": ""},
            "minReplicas": 5,
            "maxReplicas": 2,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}},
                }
            ],
            "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 4000}]}},
        },
    }
    messages = {(c.field, c.message) for c in s.validate(bad)}
    assert ("spec.maxReplicas", "Invalid value: 2: must be greater than or equal to `minReplicas`") in messages
    assert ("spec.scaleTargetRef.name", "Required value") in messages
    assert (
        "spec.metrics[0].resource.target.averageUtilization",
        "Invalid value: 0: must be greater than 0",
    ) in messages
    assert ("spec.behavior.scaleUp.policies[0].value", "Invalid value: 0: must be greater than zero") in messages
    assert (
        "spec.behavior.scaleUp.policies[0].periodSeconds",
        "Invalid value: 4000: must be less than or equal to 1800",
    ) in messages


def test_api_service_validation() -> None:
    s = strategy("apiservices", "apiregistration.k8s.io")
    good = {
        "metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {
            "group": "metrics.k8s.io",
            "version": "v1beta1",
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
            "insecureSkipTLSVerify": True,
            "service": {"namespace": "kube-system", "name": "metrics-server"},
        },
    }
    s.default(good)
    assert good["spec"]["service"]["port"] == 443
    assert s.validate(good) == []
    bad = {
        "metadata": {"name": "v1.wrong"},
        "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 0, "versionPriority": 100},
    }
    messages = {(c.field, c.message) for c in s.validate(bad)}
    assert (
        "metadata.name",
        'Invalid value: "v1.wrong": must be `spec.version+"."+spec.group`: "v1beta1.metrics.k8s.io"',
    ) in messages
    assert ("spec.groupPriorityMinimum", "Invalid value: 0: must be positive and less than 20000") in messages
