"""How far and how fast an HPA may move: stabilization windows and scaling policies, ported from
pkg/controller/podautoscaler/horizontal.go (normalizeDesiredReplicas[WithBehaviors] and helpers).

Every recommendation is remembered with its time. Without `spec.behavior` the controller applies
the highest recommendation of the last `--horizontal-pod-autoscaler-downscale-stabilization` (so
scale-downs wait, scale-ups do not) and at most doubles the count (at least to 4) per step. With
`behavior`, scale-up takes the lowest and scale-down the highest recommendation of their windows,
and each direction's policies (Pods or Percent per period; Max, Min or Disabled) limit the change
against the scale events of that period. The history lives in the controller's memory, as upstream.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Condition", "ScaleEvent", "ScalingHistory", "calculate_scale_down_limit", "calculate_scale_up_limit"]

SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
MIN_INT32, MAX_INT32 = -(2**31), 2**31 - 1

Condition = tuple[str, str, str, str]  # (type, status, reason, message)


@dataclass
class _Recommendation:
    replicas: int
    timestamp: float


@dataclass
class ScaleEvent:
    """A past change of the replica count (its absolute size)."""

    change: int
    timestamp: float
    outdated: bool = False


def _rules(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _changes_in_period(period: float, events: list[ScaleEvent], now: float) -> int:
    cutoff = now - period
    return sum(e.change for e in events if e.timestamp > cutoff)


def calculate_scale_up_limit(
    current: int, up_events: list[ScaleEvent], down_events: list[ScaleEvent], rules: Mapping[str, Any], now: float
) -> int:
    """The most replicas the scale-up policies allow now (calculateScaleUpLimitWithScalingRules)."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    result = MAX_INT32 if select == "Min" else MIN_INT32
    pick = min if select == "Min" else max
    for policy in rules.get("policies") or []:
        period = float(policy.get("periodSeconds") or 0)
        start = current - _changes_in_period(period, up_events, now) + _changes_in_period(period, down_events, now)
        value = int(policy.get("value") or 0)
        if policy.get("type") == "Pods":
            proposed = start + value
        else:
            # rounded up: a small percentage of a few pods must still be able to add one
            proposed = math.ceil(start * (1 + value / 100))
        result = pick(result, proposed)
    return result


def calculate_scale_down_limit(
    current: int, up_events: list[ScaleEvent], down_events: list[ScaleEvent], rules: Mapping[str, Any], now: float
) -> int:
    """The fewest replicas the scale-down policies allow now (calculateScaleDownLimitWithBehaviors)."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    result = MIN_INT32 if select == "Min" else MAX_INT32
    pick = max if select == "Min" else min
    for policy in rules.get("policies") or []:
        period = float(policy.get("periodSeconds") or 0)
        start = current - _changes_in_period(period, up_events, now) + _changes_in_period(period, down_events, now)
        value = int(policy.get("value") or 0)
        if policy.get("type") == "Pods":
            proposed = start - value
        else:
            proposed = int(start * (1 - value / 100))
        result = pick(result, proposed)
    return result


def _longest_period(rules: Mapping[str, Any]) -> int:
    return max((int(p.get("periodSeconds") or 0) for p in rules.get("policies") or []), default=0)


@dataclass
class ScalingHistory:
    """Recommendations and scale events per HPA key, and the normalizations that read them."""

    downscale_stabilization: float = 300.0
    clock: Callable[[], float] = time.time
    recommendations: dict[str, list[_Recommendation]] = field(default_factory=dict)
    scale_up_events: dict[str, list[ScaleEvent]] = field(default_factory=dict)
    scale_down_events: dict[str, list[ScaleEvent]] = field(default_factory=dict)

    def forget(self, key: str) -> None:
        """Drop everything about a deleted HPA."""
        for store in (self.recommendations, self.scale_up_events, self.scale_down_events):
            store.pop(key, None)

    def record_initial(self, current: int, key: str) -> None:
        """Start the history of a new HPA with the current count (recordInitialRecommendation)."""
        if key not in self.recommendations:
            self.recommendations[key] = [_Recommendation(current, self.clock())]

    def _record(self, key: str, replicas: int, old_index: int | None) -> None:
        rec = _Recommendation(replicas, self.clock())
        recs = self.recommendations.setdefault(key, [])
        if old_index is not None:
            recs[old_index] = rec
        else:
            recs.append(rec)

    # --- without behavior ----------------------------------------------------------------------

    def stabilize(self, key: str, prenormalized: int) -> int:
        """The highest recommendation within the downscale window, this one included (stabilizeRecommendation)."""
        now = self.clock()
        cutoff = now - self.downscale_stabilization
        best, old = prenormalized, None
        for i, rec in enumerate(self.recommendations.get(key, [])):
            if rec.timestamp < cutoff:
                old = i
            elif rec.replicas > best:
                best = rec.replicas
        self._record(key, prenormalized, old)
        return best

    def normalize(
        self, key: str, current: int, prenormalized: int, min_replicas: int, max_replicas: int
    ) -> tuple[int, list[Condition]]:
        """The count to scale to and the AbleToScale / ScalingLimited conditions (normalizeDesiredReplicas)."""
        stabilized = self.stabilize(key, prenormalized)
        conditions: list[Condition] = []
        if stabilized != prenormalized:
            conditions.append(
                (
                    "AbleToScale",
                    "True",
                    "ScaleDownStabilized",
                    "recent recommendations were higher than current one, applying the highest recent recommendation",
                )
            )
        else:
            conditions.append(("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"))
        desired, reason, message = convert_desired_replicas_with_rules(current, stabilized, min_replicas, max_replicas)
        conditions.append(("ScalingLimited", "False" if desired == stabilized else "True", reason, message))
        return desired, conditions

    # --- with behavior -------------------------------------------------------------------------

    def _stabilize_with_behaviors(
        self, key: str, current: int, desired: int, up: Mapping[str, Any], down: Mapping[str, Any]
    ) -> tuple[int, str, str]:
        now = self.clock()
        up_cutoff = now - float(up.get("stabilizationWindowSeconds") or 0)
        down_cutoff = now - float(down.get("stabilizationWindowSeconds") or 0)
        up_rec, down_rec, old = desired, desired, None
        for i, rec in enumerate(self.recommendations.get(key, [])):
            if rec.timestamp > up_cutoff:
                up_rec = min(rec.replicas, up_rec)
            if rec.timestamp > down_cutoff:
                down_rec = max(rec.replicas, down_rec)
            if rec.timestamp < up_cutoff and rec.timestamp < down_cutoff:
                old = i
        recommendation = max(current, up_rec)
        recommendation = min(recommendation, down_rec)
        self._record(key, desired, old)
        if desired >= current:
            return (
                recommendation,
                "ScaleUpStabilized",
                "recent recommendations were lower than current one, applying the lowest recent recommendation",
            )
        return (
            recommendation,
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        )

    def _rate_limited(
        self,
        key: str,
        current: int,
        desired: int,
        min_replicas: int,
        max_replicas: int,
        up: Mapping[str, Any],
        down: Mapping[str, Any],
    ) -> tuple[int, str, str]:
        now = self.clock()
        ups, downs = self.scale_up_events.get(key, []), self.scale_down_events.get(key, [])
        if desired > current:
            limit = max(calculate_scale_up_limit(current, ups, downs, up, now), current)
            if max_replicas > limit:
                allowed = limit
                reason, message = (
                    "ScaleUpLimit",
                    "the desired replica count is increasing faster than the maximum scale rate",
                )
            else:
                allowed = max_replicas
                reason, message = "TooManyReplicas", "the desired replica count is more than the maximum replica count"
            if desired > allowed:
                return allowed, reason, message
        elif desired < current:
            limit = min(calculate_scale_down_limit(current, ups, downs, down, now), current)
            if min_replicas < limit:
                allowed = limit
                reason = "ScaleDownLimit"
                message = "the desired replica count is decreasing faster than the maximum scale rate"
            else:
                allowed = min_replicas
                reason, message = "TooFewReplicas", "the desired replica count is less than the minimum replica count"
            if desired < allowed:
                return allowed, reason, message
        return desired, "DesiredWithinRange", "the desired count is within the acceptable range"

    def normalize_with_behaviors(
        self,
        key: str,
        behavior: Mapping[str, Any],
        current: int,
        prenormalized: int,
        min_replicas: int,
        max_replicas: int,
    ) -> tuple[int, list[Condition]]:
        """The count to scale to under `behavior`, and the conditions (normalizeDesiredReplicasWithBehaviors)."""
        up = dict(_rules(behavior.get("scaleUp")))
        down = dict(_rules(behavior.get("scaleDown")))
        if down.get("stabilizationWindowSeconds") is None:
            down["stabilizationWindowSeconds"] = int(self.downscale_stabilization)
        stabilized, reason, message = self._stabilize_with_behaviors(key, current, prenormalized, up, down)
        conditions: list[Condition] = []
        if stabilized != prenormalized:
            conditions.append(("AbleToScale", "True", reason, message))
        else:
            conditions.append(("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"))
        desired, reason, message = self._rate_limited(key, current, stabilized, min_replicas, max_replicas, up, down)
        conditions.append(("ScalingLimited", "False" if desired == stabilized else "True", reason, message))
        return desired, conditions

    def store_scale_event(self, behavior: Mapping[str, Any] | None, key: str, previous: int, new: int) -> None:
        """Remember a change of the count (reusing an event older than the longest policy period)."""
        if behavior is None:
            return
        now = self.clock()
        if new > previous:
            events = self.scale_up_events.setdefault(key, [])
            period = _longest_period(_rules(behavior.get("scaleUp")))
            change = new - previous
        else:
            events = self.scale_down_events.setdefault(key, [])
            period = _longest_period(_rules(behavior.get("scaleDown")))
            change = previous - new
        old = None
        for i, e in enumerate(events):
            if e.timestamp < now - period:
                e.outdated = True
            if e.outdated:
                old = i
        event = ScaleEvent(change, now)
        if old is not None:
            events[old] = event
        else:
            events.append(event)


def convert_desired_replicas_with_rules(
    current: int, desired: int, min_replicas: int, max_replicas: int
) -> tuple[int, str, str]:
    """Clamp to [min, min(max, max(2 x current, 4))] with the limiting reason (convertDesiredReplicasWithRules)."""
    scale_up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    if max_replicas > scale_up_limit:
        maximum = scale_up_limit
        reason, message = "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
    else:
        maximum = max_replicas
        reason, message = "TooManyReplicas", "the desired replica count is more than the maximum replica count"
    if desired < min_replicas:
        return min_replicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
    if desired > maximum:
        return maximum, reason, message
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
