"""HorizontalPodAutoscaler (autoscaling/v2): defaults and validation as pkg/apis/autoscaling has them."""

from __future__ import annotations

import copy
from typing import Any

from apimachinery import validation
from apimachinery.errors import Cause
from apimachinery.quantity import QUANTITY_MESSAGE, QuantityError, parse_quantity
from apimachinery.validation import FieldErrorTuple
from apiserver.strategy import Strategy

__all__ = [
    "DEFAULT_SCALE_DOWN_RULES",
    "DEFAULT_SCALE_UP_RULES",
    "HorizontalPodAutoscalerStrategy",
    "default_behavior",
]

MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600
DEFAULT_CPU_UTILIZATION = 80
_METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
_SOURCE_KEYS = (("object", "Object"), ("external", "External"), ("pods", "Pods"), ("resource", "Resource"))
_SELECT_POLICIES = ("Disabled", "Max", "Min")
_POLICY_TYPES = ("Percent", "Pods")

# autoscaling/v2 defaults.go: scale up by 4 pods or 100 % per 15 s (the larger), no stabilization;
# scale down by 100 % per 15 s, stabilization left unset (the controller's --horizontal-pod-autoscaler-
# downscale-stabilization, 5 minutes, applies)
DEFAULT_SCALE_UP_RULES: dict[str, Any] = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
DEFAULT_SCALE_DOWN_RULES: dict[str, Any] = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _rules(given: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key in ("selectPolicy", "stabilizationWindowSeconds", "policies", "tolerance"):
        if isinstance(given, dict) and given.get(key) is not None:
            out[key] = given[key]
    return out


def default_behavior(behavior: Any) -> dict[str, Any]:
    """A behavior with every unset rule filled in (SetDefaults_HorizontalPodAutoscalerBehavior)."""
    b = _dict(behavior)
    return {
        **b,
        "scaleUp": _rules(b.get("scaleUp"), DEFAULT_SCALE_UP_RULES),
        "scaleDown": _rules(b.get("scaleDown"), DEFAULT_SCALE_DOWN_RULES),
    }


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _positive_quantity(path: str, value: Any) -> list[FieldErrorTuple]:
    try:
        ok = parse_quantity(value) > 0
    except (QuantityError, ValueError):
        return [validation.invalid(path, value, QUANTITY_MESSAGE)]
    return [] if ok else [validation.invalid(path, value, "must be positive")]


def _cross_ref(ref: Any, path: str) -> list[FieldErrorTuple]:
    ref = _dict(ref)
    errs: list[FieldErrorTuple] = []
    for key in ("kind", "name"):
        value = ref.get(key) or ""
        if not value:
            errs.append(validation.required(f"{path}.{key}"))
        else:
            errs += [validation.invalid(f"{path}.{key}", value, m) for m in validation.is_path_segment_name(str(value))]
    return errs


def _metric_target(target: Any, path: str) -> list[FieldErrorTuple]:
    t = _dict(target)
    errs: list[FieldErrorTuple] = []
    if not t.get("type"):
        errs.append(validation.required(f"{path}.type", "must specify a metric target type"))
    if t.get("type") not in ("Utilization", "Value", "AverageValue"):
        errs.append(
            validation.invalid(f"{path}.type", t.get("type", ""), "must be either Utilization, Value, or AverageValue")
        )
    for key in ("value", "averageValue"):
        if t.get(key) is not None:
            errs += _positive_quantity(f"{path}.{key}", t[key])
    util = t.get("averageUtilization")
    if util is not None and (_int(util) is None or util < 1):
        errs.append(validation.invalid(f"{path}.averageUtilization", util, "must be greater than 0"))
    return errs


def _metric_identifier(metric: Any, path: str) -> list[FieldErrorTuple]:
    name = _dict(metric).get("name") or ""
    if not name:
        return [validation.required(f"{path}.name", "must specify a metric name")]
    return [validation.invalid(f"{path}.name", name, m) for m in validation.is_path_segment_name(str(name))]


def _resource_source(src: dict[str, Any], path: str, container: bool) -> list[FieldErrorTuple]:
    errs: list[FieldErrorTuple] = []
    if not src.get("name"):
        errs.append(validation.required(f"{path}.name", "must specify a resource name"))
    if container:
        if not src.get("container"):
            errs.append(validation.required(f"{path}.container", "must specify a container"))
        else:
            errs += [
                validation.invalid(f"{path}.container", src["container"], m)
                for m in validation.is_dns1123_label(str(src["container"]))
            ]
    target = _dict(src.get("target"))
    errs += _metric_target(target, f"{path}.target")
    if target.get("averageUtilization") is None and target.get("averageValue") is None:
        errs.append(
            validation.required(
                f"{path}.target.averageUtilization", "must set either a target raw value or a target utilization"
            )
        )
    if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
        errs.append(
            validation.forbidden(
                f"{path}.target.averageValue", "may not set both a target raw value and a target utilization"
            )
        )
    return errs


def _source(kind: str, src: dict[str, Any], path: str) -> list[FieldErrorTuple]:
    if kind in ("resource", "containerResource"):
        return _resource_source(src, path, kind == "containerResource")
    errs = _metric_identifier(src.get("metric"), f"{path}.metric")
    target = _dict(src.get("target"))
    errs += _metric_target(target, f"{path}.target")
    if kind == "pods" and target.get("averageValue") is None:
        errs.append(validation.required(f"{path}.target.averageValue", "must specify a positive target averageValue"))
    if kind == "object":
        errs = _cross_ref(src.get("describedObject"), f"{path}.describedObject") + errs
        if target.get("value") is None and target.get("averageValue") is None:
            errs.append(
                validation.required(f"{path}.target.averageValue", "must set either a target value or averageValue")
            )
    if kind == "external":
        if target.get("value") is None and target.get("averageValue") is None:
            errs.append(
                validation.required(
                    f"{path}.target.averageValue", "must set either a target value for metric or a per-pod target"
                )
            )
        if target.get("value") is not None and target.get("averageValue") is not None:
            errs.append(
                validation.forbidden(
                    f"{path}.target.value", "may not set both a target value for metric and a per-pod target"
                )
            )
    return errs


def _metric_spec(spec: Any, path: str) -> list[FieldErrorTuple]:
    m = _dict(spec)
    kind = m.get("type") or ""
    errs: list[FieldErrorTuple] = []
    if not kind:
        errs.append(validation.required(f"{path}.type", "must specify a metric source type"))
    if kind not in _METRIC_TYPES:
        errs.append(validation.not_supported(f"{path}.type", kind, _METRIC_TYPES))
    present = [key for key in ("object", "external", "pods", "resource", "containerResource") if m.get(key) is not None]
    if present:
        errs += _source(present[0], _dict(m[present[0]]), f"{path}.{present[0]}")
    expected = {"Object": "object", "Pods": "pods", "Resource": "resource", "External": "external"}.get(kind)
    if kind == "ContainerResource":
        expected = "containerResource"
    if expected is not None and m.get(expected) is None:
        errs.append(validation.required(f"{path}.{expected}", "must populate information for the given metric source"))
    if len(present) != 1:
        errs += [
            validation.forbidden(f"{path}.{key}", "must populate the given metric source only")
            for key in present
            if key != expected
        ]
    return errs


def _scaling_rules(rules: Any, path: str) -> list[FieldErrorTuple]:
    if not isinstance(rules, dict):
        return []
    errs: list[FieldErrorTuple] = []
    window = rules.get("stabilizationWindowSeconds")
    if window is not None:
        if _int(window) is None or window < 0:
            errs.append(
                validation.invalid(
                    f"{path}.stabilizationWindowSeconds", window, "must be greater than or equal to zero"
                )
            )
        elif window > MAX_STABILIZATION_WINDOW_SECONDS:
            errs.append(
                validation.invalid(
                    f"{path}.stabilizationWindowSeconds",
                    window,
                    f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}",
                )
            )
    select = rules.get("selectPolicy")
    if select is not None and select not in _SELECT_POLICIES:
        errs.append(validation.not_supported(f"{path}.selectPolicy", select, _SELECT_POLICIES))
    policies = rules.get("policies")
    if not policies:
        errs.append(validation.required(f"{path}.policies", "must specify at least one Policy"))
    for i, policy in enumerate(policies if isinstance(policies, list) else []):
        p, at = _dict(policy), f"{path}.policies[{i}]"
        if p.get("type") not in _POLICY_TYPES:
            errs.append(validation.not_supported(f"{at}.type", p.get("type", ""), _POLICY_TYPES))
        value, period = p.get("value"), p.get("periodSeconds")
        if _int(value) is None or value <= 0:
            errs.append(validation.invalid(f"{at}.value", value, "must be greater than zero"))
        if _int(period) is None or period <= 0:
            errs.append(validation.invalid(f"{at}.periodSeconds", period, "must be greater than zero"))
        elif period > MAX_PERIOD_SECONDS:
            errs.append(
                validation.invalid(f"{at}.periodSeconds", period, f"must be less than or equal to {MAX_PERIOD_SECONDS}")
            )
    return errs


class HorizontalPodAutoscalerStrategy(Strategy):
    """HPAs: minReplicas 1, CPU at 80 % when no metric is given, behavior rules filled in; spec validated."""

    tracks_generation = True

    def default(self, obj: dict[str, Any]) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        if spec.get("minReplicas") is None:
            spec["minReplicas"] = 1
        if not spec.get("metrics"):
            spec["metrics"] = [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION},
                    },
                }
            ]
        if isinstance(spec.get("behavior"), dict):
            spec["behavior"] = default_behavior(spec["behavior"])

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        spec = _dict(obj.get("spec"))
        errs: list[FieldErrorTuple] = []
        low, high = spec.get("minReplicas"), spec.get("maxReplicas")
        if low is not None and (_int(low) is None or low < 1):
            errs.append(validation.invalid("spec.minReplicas", low, "must be greater than or equal to 1"))
        if _int(high) is None or high < 1:
            errs.append(
                validation.invalid("spec.maxReplicas", high if high is not None else 0, "must be greater than 0")
            )
        elif _int(low) is not None and high < low:
            errs.append(validation.invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
        errs += _cross_ref(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
        metrics = spec.get("metrics")
        for i, m in enumerate(metrics if isinstance(metrics, list) else []):
            errs += _metric_spec(m, f"spec.metrics[{i}]")
        behavior = spec.get("behavior")
        if isinstance(behavior, dict):
            errs += _scaling_rules(behavior.get("scaleUp"), "spec.behavior.scaleUp")
            errs += _scaling_rules(behavior.get("scaleDown"), "spec.behavior.scaleDown")
        status = _dict(obj.get("status"))
        for key in ("currentReplicas", "desiredReplicas"):
            value = status.get(key)
            if value is not None and (_int(value) is None or value < 0):
                errs.append(validation.invalid(f"status.{key}", value, "must be greater than or equal to 0"))
        return [Cause(path, msg, reason) for path, reason, msg in errs]
