"""Conversions between served versions of one kind: HorizontalPodAutoscaler autoscaling/v2 (stored)
and autoscaling/v1, as pkg/apis/autoscaling/v1/conversion.go does them.

v1 has one metric, `targetCPUUtilizationPercentage` (= a v2 `Resource` cpu metric with an
`averageUtilization` target) and `status.currentCPUUtilizationPercentage`. What v1 cannot say
travels in annotations so that a v1 client's read-modify-write keeps it: the other metrics
(`autoscaling.alpha.kubernetes.io/metrics`, in v1's MetricSpec form), the current metrics
(`.../current-metrics`), `behavior` (`.../behavior`, written with the Go field names of the internal
type, as upstream marshals it) and the conditions (`.../conditions`). Reading v1 back turns the
annotations into fields again and drops them. The functions take partial objects too (an applied
configuration): only the parts present are converted.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

__all__ = [
    "BEHAVIOR_ANNOTATION",
    "CONDITIONS_ANNOTATION",
    "CURRENT_METRICS_ANNOTATION",
    "DEFAULT_CPU_UTILIZATION",
    "METRICS_ANNOTATION",
    "hpa_to_v1",
    "hpa_to_v2",
]

Obj = dict[str, Any]

METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
_ROUND_TRIP = (METRICS_ANNOTATION, CURRENT_METRICS_ANNOTATION, BEHAVIOR_ANNOTATION, CONDITIONS_ANNOTATION)
DEFAULT_CPU_UTILIZATION = 80


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _set(out: Obj, key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _is_cpu_utilization(metric: Obj) -> bool:
    res = _dict(metric.get("resource"))
    return (
        metric.get("type") == "Resource"
        and res.get("name") == "cpu"
        and _dict(res.get("target")).get("averageUtilization") is not None
    )


# --- metric specs and statuses: v2 <-> v1 (annotation) form ---------------------------------------


def _spec_to_v1(m: Obj) -> Obj:
    kind = m.get("type")
    out: Obj = {"type": kind}
    if kind == "Resource" or kind == "ContainerResource":
        key = "resource" if kind == "Resource" else "containerResource"
        src = _dict(m.get(key))
        target = _dict(src.get("target"))
        body: Obj = {"name": src.get("name", "")}
        if kind == "ContainerResource":
            body["container"] = src.get("container", "")
        _set(body, "targetAverageUtilization", target.get("averageUtilization"))
        _set(body, "targetAverageValue", target.get("averageValue"))
        out[key] = body
    elif kind == "Pods":
        src = _dict(m.get("pods"))
        metric, target = _dict(src.get("metric")), _dict(src.get("target"))
        body = {"metricName": metric.get("name", ""), "targetAverageValue": target.get("averageValue", "0")}
        _set(body, "selector", metric.get("selector"))
        out["pods"] = body
    elif kind == "Object":
        src = _dict(m.get("object"))
        metric, target = _dict(src.get("metric")), _dict(src.get("target"))
        body = {
            "target": src.get("describedObject") or {},
            "metricName": metric.get("name", ""),
            "targetValue": target.get("value", "0"),
        }
        _set(body, "selector", metric.get("selector"))
        _set(body, "averageValue", target.get("averageValue"))
        out["object"] = body
    elif kind == "External":
        src = _dict(m.get("external"))
        metric, target = _dict(src.get("metric")), _dict(src.get("target"))
        body = {"metricName": metric.get("name", "")}
        _set(body, "metricSelector", metric.get("selector"))
        _set(body, "targetValue", target.get("value"))
        _set(body, "targetAverageValue", target.get("averageValue"))
        out["external"] = body
    return out


def _spec_to_v2(m: Obj) -> Obj:
    kind = m.get("type")
    out: Obj = {"type": kind}
    if kind == "Resource" or kind == "ContainerResource":
        key = "resource" if kind == "Resource" else "containerResource"
        src = _dict(m.get(key))
        util, avg = src.get("targetAverageUtilization"), src.get("targetAverageValue")
        target: Obj = {"type": "AverageValue" if util is None else "Utilization"}
        _set(target, "averageUtilization", util)
        _set(target, "averageValue", avg)
        body: Obj = {"name": src.get("name", "")}
        if kind == "ContainerResource":
            body["container"] = src.get("container", "")
        body["target"] = target
        out[key] = body
    elif kind == "Pods":
        src = _dict(m.get("pods"))
        metric: Obj = {"name": src.get("metricName", "")}
        _set(metric, "selector", src.get("selector"))
        out["pods"] = {
            "metric": metric,
            "target": {"type": "AverageValue", "averageValue": src.get("targetAverageValue")},
        }
    elif kind == "Object":
        src = _dict(m.get("object"))
        metric = {"name": src.get("metricName", "")}
        _set(metric, "selector", src.get("selector"))
        avg = src.get("averageValue")
        target = {"type": "Value" if avg is None else "AverageValue", "value": src.get("targetValue")}
        _set(target, "averageValue", avg)
        out["object"] = {"describedObject": src.get("target") or {}, "metric": metric, "target": target}
    elif kind == "External":
        src = _dict(m.get("external"))
        metric = {"name": src.get("metricName", "")}
        _set(metric, "selector", src.get("metricSelector"))
        value = src.get("targetValue")
        target = {"type": "AverageValue" if value is None else "Value"}
        _set(target, "value", value)
        _set(target, "averageValue", src.get("targetAverageValue"))
        out["external"] = {"metric": metric, "target": target}
    return out


def _status_to_v1(m: Obj) -> Obj:
    kind = m.get("type")
    out: Obj = {"type": kind}
    if kind == "Resource" or kind == "ContainerResource":
        key = "resource" if kind == "Resource" else "containerResource"
        src = _dict(m.get(key))
        current = _dict(src.get("current"))
        body: Obj = {"name": src.get("name", "")}
        if kind == "ContainerResource":
            body["container"] = src.get("container", "")
        _set(body, "currentAverageUtilization", current.get("averageUtilization"))
        body["currentAverageValue"] = current.get("averageValue", "0")
        out[key] = body
    elif kind == "Pods":
        src = _dict(m.get("pods"))
        metric, current = _dict(src.get("metric")), _dict(src.get("current"))
        body = {"metricName": metric.get("name", ""), "currentAverageValue": current.get("averageValue", "0")}
        _set(body, "selector", metric.get("selector"))
        out["pods"] = body
    elif kind == "Object":
        src = _dict(m.get("object"))
        metric, current = _dict(src.get("metric")), _dict(src.get("current"))
        body = {
            "target": src.get("describedObject") or {},
            "metricName": metric.get("name", ""),
            "currentValue": current.get("value", "0"),
        }
        _set(body, "selector", metric.get("selector"))
        _set(body, "averageValue", current.get("averageValue"))
        out["object"] = body
    elif kind == "External":
        src = _dict(m.get("external"))
        metric, current = _dict(src.get("metric")), _dict(src.get("current"))
        body = {"metricName": metric.get("name", ""), "currentValue": current.get("value", "0")}
        _set(body, "metricSelector", metric.get("selector"))
        _set(body, "currentAverageValue", current.get("averageValue"))
        out["external"] = body
    return out


def _status_to_v2(m: Obj) -> Obj:
    kind = m.get("type")
    out: Obj = {"type": kind}
    if kind == "Resource" or kind == "ContainerResource":
        key = "resource" if kind == "Resource" else "containerResource"
        src = _dict(m.get(key))
        current: Obj = {}
        _set(current, "averageValue", src.get("currentAverageValue"))
        _set(current, "averageUtilization", src.get("currentAverageUtilization"))
        body: Obj = {"name": src.get("name", "")}
        if kind == "ContainerResource":
            body["container"] = src.get("container", "")
        body["current"] = current
        out[key] = body
    elif kind == "Pods":
        src = _dict(m.get("pods"))
        metric: Obj = {"name": src.get("metricName", "")}
        _set(metric, "selector", src.get("selector"))
        out["pods"] = {"metric": metric, "current": {"averageValue": src.get("currentAverageValue", "0")}}
    elif kind == "Object":
        src = _dict(m.get("object"))
        metric = {"name": src.get("metricName", "")}
        _set(metric, "selector", src.get("selector"))
        current = {"value": src.get("currentValue", "0")}
        _set(current, "averageValue", src.get("averageValue"))
        out["object"] = {"metric": metric, "current": current, "describedObject": src.get("target") or {}}
    elif kind == "External":
        src = _dict(m.get("external"))
        metric = {"name": src.get("metricName", "")}
        _set(metric, "selector", src.get("metricSelector"))
        current = {"value": src.get("currentValue", "0")}
        _set(current, "averageValue", src.get("currentAverageValue"))
        out["external"] = {"metric": metric, "current": current}
    return out


# --- behavior: v2 JSON <-> the internal type's Go field names ----------------------------------------


def _rules_to_internal(rules: Any) -> Obj | None:
    if not isinstance(rules, dict):
        return None
    return {
        "StabilizationWindowSeconds": rules.get("stabilizationWindowSeconds"),
        "SelectPolicy": rules.get("selectPolicy"),
        "Policies": [
            {"Type": p.get("type"), "Value": p.get("value"), "PeriodSeconds": p.get("periodSeconds")}
            for p in _list(rules.get("policies"))
            if isinstance(p, dict)
        ]
        or None,
        "Tolerance": rules.get("tolerance"),
    }


def _rules_from_internal(rules: Any) -> Obj | None:
    if not isinstance(rules, dict):
        return None
    out: Obj = {}
    _set(out, "stabilizationWindowSeconds", rules.get("StabilizationWindowSeconds"))
    _set(out, "selectPolicy", rules.get("SelectPolicy"))
    policies = [
        {"type": p.get("Type"), "value": p.get("Value"), "periodSeconds": p.get("PeriodSeconds")}
        for p in _list(rules.get("Policies"))
        if isinstance(p, dict)
    ]
    if policies:
        out["policies"] = policies
    _set(out, "tolerance", rules.get("Tolerance"))
    return out


# --- whole objects ---------------------------------------------------------------------------------


def _load(annotations: Obj, key: str) -> Any:
    raw = annotations.get(key)
    if not isinstance(raw, str):
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def hpa_to_v1(obj: Obj) -> Obj:
    """An autoscaling/v2 HorizontalPodAutoscaler (or part of one) as autoscaling/v1."""
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("spec", "status")}
    if "apiVersion" in obj:
        out["apiVersion"] = "autoscaling/v1"
    meta = _dict(out.get("metadata"))
    annotations = {k: v for k, v in _dict(meta.get("annotations")).items() if k not in _ROUND_TRIP}
    spec, status = obj.get("spec"), obj.get("status")
    if isinstance(spec, dict):
        v1spec: Obj = {}
        for key in ("scaleTargetRef", "minReplicas", "maxReplicas"):
            if key in spec:
                v1spec[key] = copy.deepcopy(spec[key])
        others = []
        for m in _list(spec.get("metrics")):
            if not isinstance(m, dict):
                continue
            if _is_cpu_utilization(m):
                v1spec.setdefault("targetCPUUtilizationPercentage", m["resource"]["target"]["averageUtilization"])
                continue
            others.append(_spec_to_v1(m))
        if others:
            annotations[METRICS_ANNOTATION] = _json(others)
        if isinstance(spec.get("behavior"), dict):
            behavior = spec["behavior"]
            annotations[BEHAVIOR_ANNOTATION] = _json(
                {
                    "ScaleUp": _rules_to_internal(behavior.get("scaleUp")),
                    "ScaleDown": _rules_to_internal(behavior.get("scaleDown")),
                }
            )
        out["spec"] = v1spec
    if isinstance(status, dict):
        v1status: Obj = {}
        for key in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas"):
            if key in status:
                v1status[key] = copy.deepcopy(status[key])
        current = [m for m in _list(status.get("currentMetrics")) if isinstance(m, dict)]
        for m in current:
            res = _dict(m.get("resource"))
            util = _dict(res.get("current")).get("averageUtilization")
            if m.get("type") == "Resource" and res.get("name") == "cpu" and util is not None:
                v1status["currentCPUUtilizationPercentage"] = util
        if current:
            annotations[CURRENT_METRICS_ANNOTATION] = _json([_status_to_v1(m) for m in current])
        conditions = [c for c in _list(status.get("conditions")) if isinstance(c, dict)]
        if conditions:
            annotations[CONDITIONS_ANNOTATION] = _json(conditions)
        out["status"] = v1status
    if annotations:
        meta["annotations"] = annotations
        out["metadata"] = meta
    elif "annotations" in meta:
        meta.pop("annotations")
    return out


def hpa_to_v2(obj: Obj) -> Obj:
    """An autoscaling/v1 HorizontalPodAutoscaler (or part of one) as autoscaling/v2."""
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("spec", "status")}
    if "apiVersion" in obj:
        out["apiVersion"] = "autoscaling/v2"
    meta = _dict(out.get("metadata"))
    annotations = _dict(meta.get("annotations"))
    spec, status = obj.get("spec"), obj.get("status")
    if isinstance(spec, dict):
        v2spec: Obj = {}
        for key in ("scaleTargetRef", "minReplicas", "maxReplicas"):
            if key in spec:
                v2spec[key] = copy.deepcopy(spec[key])
        metrics = [_spec_to_v2(m) for m in _list(_load(annotations, METRICS_ANNOTATION)) if isinstance(m, dict)]
        cpu = spec.get("targetCPUUtilizationPercentage")
        if cpu is not None:
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}},
                }
            )
        if not metrics:
            metrics = [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION},
                    },
                }
            ]
        v2spec["metrics"] = metrics
        behavior = _load(annotations, BEHAVIOR_ANNOTATION)
        if isinstance(behavior, dict):
            up, down = _rules_from_internal(behavior.get("ScaleUp")), _rules_from_internal(behavior.get("ScaleDown"))
            if up is not None or down is not None:
                v2spec["behavior"] = {k: v for k, v in (("scaleUp", up), ("scaleDown", down)) if v is not None}
        out["spec"] = v2spec
    if isinstance(status, dict):
        v2status: Obj = {}
        for key in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas"):
            if key in status:
                v2status[key] = copy.deepcopy(status[key])
        current = _load(annotations, CURRENT_METRICS_ANNOTATION)
        if isinstance(current, list):
            v2status["currentMetrics"] = [_status_to_v2(m) for m in current if isinstance(m, dict)]
        elif status.get("currentCPUUtilizationPercentage") is not None:
            v2status["currentMetrics"] = [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "current": {"averageUtilization": status["currentCPUUtilizationPercentage"]},
                    },
                }
            ]
        conditions = _load(annotations, CONDITIONS_ANNOTATION)
        if isinstance(conditions, list):
            v2status["conditions"] = [c for c in conditions if isinstance(c, dict)]
        out["status"] = v2status
    if annotations:
        kept = {k: v for k, v in annotations.items() if k not in _ROUND_TRIP}
        if kept:
            meta["annotations"] = kept
        else:
            meta.pop("annotations", None)
        out["metadata"] = meta
    return out
