"""policy/v1 PodDisruptionBudget and scheduling.k8s.io/v1 PriorityClass (upstream pkg/registry/policy
and pkg/registry/scheduling, validation in pkg/apis/policy/validation and scheduling/validation)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apimachinery import validation
from apimachinery.errors import Cause
from apimachinery.selectors import SelectorError, selector_from_label_selector
from apimachinery.validation import FieldErrorTuple
from apiserver.strategy import Strategy

__all__ = ["PodDisruptionBudgetStrategy", "PriorityClassStrategy"]

HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_PREFIX = "system-"
SYSTEM_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")
UNHEALTHY_POD_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")
_PERCENT_MESSAGE = (
    "a valid percent string must be a numeric string followed by an ending '%' "
    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
)
_PERCENT_MESSAGE = (
    "a valid percent string must be a numeric string followed by an ending '%' "
    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
)


def _causes(found: Iterable[FieldErrorTuple]) -> list[Cause]:
    return [Cause(path, msg, reason) for path, reason, msg in found]


def _int_or_percent(path: str, value: Any) -> list[FieldErrorTuple]:
    """ValidatePositiveIntOrPercent plus IsNotMoreThan100Percent."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int):
        if value < 0:
            return [validation.invalid(path, value, "must be greater than or equal to 0")]
        return []
    text = str(value)
    if not text.endswith("%") or not text[:-1].isdigit():
        return [validation.invalid(path, value, _PERCENT_MESSAGE)]
    if int(text[:-1]) > 100:
        return [validation.invalid(path, value, "must not be greater than 100%")]
    return []


class PodDisruptionBudgetStrategy(Strategy):
    """PodDisruptionBudgets: minAvailable or maxUnavailable (not both), a valid selector."""

    tracks_generation = True

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        errs: list[FieldErrorTuple] = []
        if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
            errs.append(validation.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
        errs += _int_or_percent("spec.minAvailable", spec.get("minAvailable"))
        errs += _int_or_percent("spec.maxUnavailable", spec.get("maxUnavailable"))
        policy = spec.get("unhealthyPodEvictionPolicy")
        if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
            errs.append(
                validation.not_supported("spec.unhealthyPodEvictionPolicy", policy, UNHEALTHY_POD_EVICTION_POLICIES)
            )
        selector = spec.get("selector")
        if selector is not None:
            try:
                selector_from_label_selector(selector)
            except SelectorError as e:
                errs.append(validation.invalid("spec.selector", selector, str(e)))
        return _causes(errs)

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}


class PriorityClassStrategy(Strategy):
    """PriorityClasses: cluster-scoped; value and preemptionPolicy immutable; system- names reserved."""

    def default(self, obj: dict[str, Any]) -> None:
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        errs: list[FieldErrorTuple] = []
        name = (obj.get("metadata") or {}).get("name") or ""
        value = obj.get("value")
        if not isinstance(value, int) or isinstance(value, bool):
            errs.append(validation.required("value"))
        elif name.startswith(SYSTEM_PREFIX):
            known = SYSTEM_CLASSES.get(name)
            why = ""
            if known is None:
                why = f"{name} is not a known system priority class"
            elif known != value:
                why = f"value of {name} PriorityClass must be {known}"
            elif obj.get("globalDefault"):
                why = f"globalDefault of {name} PriorityClass must be false"
            if why:
                errs.append(
                    validation.forbidden(
                        "metadata.name",
                        f"priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. "
                        f"error: {why}",
                    )
                )
        elif value > HIGHEST_USER_DEFINABLE_PRIORITY:
            errs.append(
                validation.forbidden(
                    "value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
                )
            )
        policy = obj.get("preemptionPolicy")
        if policy is not None and policy not in PREEMPTION_POLICIES:
            errs.append(validation.not_supported("preemptionPolicy", policy, PREEMPTION_POLICIES))
        return _causes(errs)

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        errs: list[FieldErrorTuple] = []
        if new.get("value") != old.get("value"):
            errs.append(validation.forbidden("value", "may not be changed in an update."))
        if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
            errs.append(validation.invalid("preemptionPolicy", new.get("preemptionPolicy"), "field is immutable"))
        return _causes(errs)
