"""The HPA's replica calculation, ported from pkg/controller/podautoscaler/replica_calculator.go and
metrics/utilization.go: pure functions of the pods, their metrics and the target.

The desired count is `ceil(current usage / target x ready pods)`, unless the ratio is within the
tolerance. Pods being deleted or finished are ignored; Pending pods, and (for CPU) pods not yet
Ready or still in their CPU initialisation period, are "unready"; Running pods without a metric
are "missing". When some pods are unready or missing, the calculation is redone with the
conservative assumption for the direction of the change — missing pods at 100 % of their request
(or the target) when scaling down, unready and missing pods at 0 when scaling up — and the
change is dropped if that assumption reverses its direction or brings it within tolerance.

Values are integers in thousandths (a resource quantity's MilliValue, as upstream), times are
seconds since the epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apimachinery.quantity import QuantityError, to_milli

__all__ = [
    "MAX_INT32",
    "MAX_INT64",
    "MetricsError",
    "PodMetric",
    "ReplicaCalculator",
    "Tolerances",
    "calculate_requests",
    "group_pods",
    "metric_usage_ratio",
    "parse_time",
    "pod_metrics_info",
    "resource_utilization_ratio",
]

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
Obj = Mapping[str, Any]


class MetricsError(Exception):
    """The calculation cannot be done (no metrics, no requests, no pods); the message says why."""


@dataclass(frozen=True)
class PodMetric:
    """One pod's metric: its value in thousandths, when it was measured and over what window."""

    value: int
    timestamp: float = 0.0
    window: float = 60.0


@dataclass(frozen=True)
class Tolerances:
    """How far below and above 1.0 the usage ratio may be before the count changes (0.1 = 10 %)."""

    scale_down: float = 0.1
    scale_up: float = 0.1

    def is_within(self, ratio: float) -> bool:
        """Whether `ratio` is close enough to 1.0 to leave the count alone."""
        return (1.0 - self.scale_down) <= ratio <= (1.0 + self.scale_up)


_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC).timestamp()


def parse_time(value: Any) -> float | None:
    """A metav1.Time string as epoch seconds (None when absent or malformed)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _go_duration(text: Any) -> float:
    """A metav1.Duration (`1m0s`, `10.5s`, `500ms`) in seconds (0 when it cannot be read)."""
    if not isinstance(text, str):
        return 0.0
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    total, number, i = 0.0, "", 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = next((u for u in ("ms", "us", "µs", "ns", "h", "m", "s") if text.startswith(u, i)), None)
        if unit is None or not number:
            return 0.0
        total += float(number) * units[unit]
        number, i = "", i + len(unit)
    return total


def _milli(value: Any) -> int | None:
    try:
        return to_milli(value)
    except (QuantityError, ValueError, TypeError):
        return None


def pod_metrics_info(items: Iterable[Obj], resource: str, container: str = "") -> tuple[dict[str, PodMetric], float]:
    """PodMetrics (metrics.k8s.io) as the calculation's input: each pod's usage of `resource` summed
    over its containers (or `container` alone); pods lacking it are left out (getPodMetrics).
    Returns the metrics and the first item's timestamp; MetricsError when there are none."""
    items = list(items)
    if not items:
        raise MetricsError("no metrics returned from resource metrics API")
    out: dict[str, PodMetric] = {}
    for m in items:
        containers = m.get("containers") or []
        missing, found, total = len(containers) == 0, False, 0
        for c in containers:
            if container and c.get("name") != container:
                continue
            value = _milli((c.get("usage") or {}).get(resource))
            if value is None:
                missing = True
                break
            found = True
            total += value
        if not missing and (not container or found):
            out[str((m.get("metadata") or {}).get("name", ""))] = PodMetric(
                total, parse_time(m.get("timestamp")) or _ZERO_TIME, _go_duration(m.get("window"))
            )
    return out, parse_time(items[0].get("timestamp")) or _ZERO_TIME


def _condition(pod: Obj, kind: str) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == kind:
            return c
    return None


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def group_pods(
    pods: Iterable[Obj],
    metrics: Mapping[str, PodMetric],
    resource: str,
    cpu_initialization_period: float,
    delay_of_initial_readiness_status: float,
    now: float,
) -> tuple[int, set[str], set[str], set[str]]:
    """(ready pod count, unready pods, pods missing metrics, ignored pods) — groupPods."""
    ready, unready, missing, ignored = 0, set(), set(), set()
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        name = str(meta.get("name", ""))
        if meta.get("deletionTimestamp") or _terminal(pod):
            ignored.add(name)
            continue
        if status.get("phase") == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu":
            cond = _condition(pod, "Ready")
            start = parse_time(status.get("startTime")) if "startTime" in status else None
            if cond is None or start is None:
                is_unready = True
            else:
                transition = parse_time(cond.get("lastTransitionTime")) or _ZERO_TIME
                if start + cpu_initialization_period > now:
                    # still initialising: a sample counts only once a whole window follows the last transition
                    is_unready = cond.get("status") == "False" or metric.timestamp < transition + metric.window
                else:
                    # ignore pods that have never been ready
                    is_unready = (
                        cond.get("status") == "False" and start + delay_of_initial_readiness_status > transition
                    )
            if is_unready:
                unready.add(name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def calculate_requests(pods: Iterable[Obj], container: str, resource: str) -> dict[str, int]:
    """Each pod's request of `resource` in thousandths: its containers' (and sidecars') sum, or
    `container`'s; MetricsError naming the first container without one."""
    out: dict[str, int] = {}
    for pod in pods:
        spec, name = pod.get("spec") or {}, str((pod.get("metadata") or {}).get("name", ""))
        containers = list(spec.get("containers") or [])
        containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        total, found = 0, False
        for c in containers:
            if container and c.get("name") != container:
                continue
            raw = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            value = _milli(raw) if raw is not None else None
            if value is None:
                raise MetricsError(f"missing request for {resource} in container {c.get('name', '')} of Pod {name}")
            total += value
            found = True
            if container:
                break
        if container and not found:
            raise MetricsError(f"container {container} not found in Pod {name}")
        out[name] = total
    return out


def resource_utilization_ratio(
    metrics: Mapping[str, PodMetric], requests: Mapping[str, int], target_utilization: int
) -> tuple[float, int, int]:
    """(usage ratio, current utilization %, average raw value) — GetResourceUtilizationRatio."""
    metrics_total = requests_total = entries = 0
    for name, metric in metrics.items():
        request = requests.get(name)
        if request is None:
            continue  # requests are checked elsewhere: a metric without one is extraneous
        metrics_total += metric.value
        requests_total += request
        entries += 1
    if requests_total == 0:
        raise MetricsError("no metrics returned matched known pods")
    utilization = (metrics_total * 100) // requests_total
    return utilization / target_utilization, utilization, metrics_total // entries


def metric_usage_ratio(metrics: Mapping[str, PodMetric], target_usage: int) -> tuple[float, int]:
    """(usage ratio, average usage) — GetMetricUsageRatio."""
    usage = sum(m.value for m in metrics.values()) // len(metrics)
    return usage / target_usage, usage


def _ceil_int32(value: float) -> int:
    return MAX_INT32 if value > MAX_INT32 else math.ceil(value)


def _per_pod_usage(usage: int, status_replicas: int) -> int:
    if float(usage) >= float(MAX_INT64):
        return MAX_INT64
    if status_replicas == 0:
        return 0
    return math.ceil(usage / status_replicas)


@dataclass(frozen=True)
class ReplicaCalculator:
    """The calculations of one HPA controller (its CPU initialisation and readiness delay settings)."""

    cpu_initialization_period: float = 300.0
    delay_of_initial_readiness_status: float = 30.0

    def _group(self, pods: list[Obj], metrics: Mapping[str, PodMetric], resource: str, now: float) -> Any:
        return group_pods(
            pods, metrics, resource, self.cpu_initialization_period, self.delay_of_initial_readiness_status, now
        )

    def resource_replicas(
        self,
        current_replicas: int,
        target_utilization: int,
        resource: str,
        tolerances: Tolerances,
        pods: list[Obj],
        metrics: dict[str, PodMetric],
        container: str = "",
        now: float = 0.0,
    ) -> tuple[int, int, int]:
        """(replicas, utilization %, raw average) for a Utilization target — GetResourceReplicas."""
        if not pods:
            raise MetricsError("no pods returned by selector while calculating replica count")
        metrics = dict(metrics)
        ready, unready, missing, ignored = self._group(pods, metrics, resource, now)
        for name in ignored | unready:
            metrics.pop(name, None)
        if not metrics:
            raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")
        requests = calculate_requests(pods, container, resource)
        ratio, utilization, raw = resource_utilization_ratio(metrics, requests, target_utilization)
        scale_up_with_unready = bool(unready) and ratio > 1.0
        if not scale_up_with_unready and not missing:
            if tolerances.is_within(ratio):
                return current_replicas, utilization, raw
            return _ceil_int32(ratio * ready), utilization, raw
        if missing:
            if ratio < 1.0:
                # scaling down: missing pods use 100 % of their request (or the target, above 100 %)
                fallback = max(100, target_utilization)
                for name in missing:
                    metrics[name] = PodMetric(requests[name] * fallback // 100)
            elif ratio > 1.0:
                for name in missing:  # scaling up: missing pods use nothing
                    metrics[name] = PodMetric(0)
        if scale_up_with_unready:
            for name in unready:
                metrics[name] = PodMetric(0)
        new_ratio, _, _ = resource_utilization_ratio(metrics, requests, target_utilization)
        if tolerances.is_within(new_ratio) or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
            return current_replicas, utilization, raw
        replicas = _ceil_int32(new_ratio * len(metrics))
        if (new_ratio < 1.0 and replicas > current_replicas) or (new_ratio > 1.0 and replicas < current_replicas):
            return current_replicas, utilization, raw
        return replicas, utilization, raw

    def plain_metric_replicas(
        self,
        metrics: dict[str, PodMetric],
        current_replicas: int,
        target_usage: int,
        tolerances: Tolerances,
        pods: list[Obj],
        resource: str = "",
        now: float = 0.0,
    ) -> tuple[int, int]:
        """(replicas, average usage) for an average-value target — calcPlainMetricReplicas."""
        if not pods:
            raise MetricsError("no pods returned by selector while calculating replica count")
        metrics = dict(metrics)
        ready, unready, missing, ignored = self._group(pods, metrics, resource, now)
        for name in ignored | unready:
            metrics.pop(name, None)
        if not metrics:
            raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")
        ratio, usage = metric_usage_ratio(metrics, target_usage)
        scale_up_with_unready = bool(unready) and ratio > 1.0
        if not scale_up_with_unready and not missing:
            if tolerances.is_within(ratio):
                return current_replicas, usage
            return _ceil_int32(ratio * ready), usage
        if missing:
            if ratio < 1.0:
                for name in missing:  # scaling down: missing pods use exactly the target
                    metrics[name] = PodMetric(target_usage)
            elif ratio > 1.0:
                for name in missing:
                    metrics[name] = PodMetric(0)
        if scale_up_with_unready:
            for name in unready:
                metrics[name] = PodMetric(0)
        new_ratio, _ = metric_usage_ratio(metrics, target_usage)
        if tolerances.is_within(new_ratio) or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
            return current_replicas, usage
        replicas = _ceil_int32(new_ratio * len(metrics))
        if (new_ratio < 1.0 and replicas > current_replicas) or (new_ratio > 1.0 and replicas < current_replicas):
            return current_replicas, usage
        return replicas, usage

    @staticmethod
    def ready_pods(pods: Iterable[Obj]) -> int:
        """Running and Ready pods."""
        count = 0
        for pod in pods:
            cond = _condition(pod, "Ready")
            if (
                (pod.get("status") or {}).get("phase") == "Running"
                and cond is not None
                and cond.get("status") == "True"
            ):
                count += 1
        return count

    def usage_ratio_replica_count(
        self, current_replicas: int, usage_ratio: float, tolerances: Tolerances, pods: list[Obj]
    ) -> int:
        """getUsageRatioReplicaCount: ready pods x ratio (at 0 replicas: the ratio alone)."""
        if current_replicas != 0:
            if tolerances.is_within(usage_ratio):
                return current_replicas
            if not pods:
                raise MetricsError(
                    "unable to calculate ready pods: no pods returned by selector while calculating replica count"
                )
            return _ceil_int32(usage_ratio * self.ready_pods(pods))
        return _ceil_int32(usage_ratio)

    def object_metric_replicas(
        self, current_replicas: int, target_usage: int, usage: int, tolerances: Tolerances, pods: list[Obj]
    ) -> tuple[int, int]:
        """(replicas, usage) for an Object metric with a Value target — GetObjectMetricReplicas."""
        replicas = self.usage_ratio_replica_count(current_replicas, usage / target_usage, tolerances, pods)
        return replicas, usage

    @staticmethod
    def per_pod_replicas(
        status_replicas: int, target_per_pod: int, usage: int, tolerances: Tolerances
    ) -> tuple[int, int]:
        """(replicas, per-pod usage) for an AverageValue target of an Object or External metric."""
        replicas = status_replicas
        ratio = usage / (target_per_pod * replicas) if replicas else math.inf
        if not tolerances.is_within(ratio):
            replicas = _ceil_int32(usage / target_per_pod)
        return replicas, _per_pod_usage(usage, status_replicas)

    def external_metric_replicas(
        self, current_replicas: int, target_usage: int, values: Iterable[int], tolerances: Tolerances, pods: list[Obj]
    ) -> tuple[int, int]:
        """(replicas, total usage) for an External metric with a Value target."""
        usage = min(sum(values), MAX_INT64)
        replicas = self.usage_ratio_replica_count(current_replicas, usage / target_usage, tolerances, pods)
        return replicas, usage

    def external_per_pod_replicas(
        self, status_replicas: int, target_per_pod: int, values: Iterable[int], tolerances: Tolerances
    ) -> tuple[int, int]:
        """(replicas, per-pod usage) for an External metric with an AverageValue target."""
        return self.per_pod_replicas(status_replicas, target_per_pod, min(sum(values), MAX_INT64), tolerances)
