"""The horizontal pod autoscaler controller (pkg/controller/podautoscaler/horizontal.go).

Every `--horizontal-pod-autoscaler-sync-period` each HPA is reconciled: read the target's `/scale`
(its replicas and pod selector), compute a desired count per metric — Resource and
ContainerResource metrics from the Metrics API (metrics.k8s.io, through the apiserver), Pods and
Object metrics from custom.metrics.k8s.io, External ones from external.metrics.k8s.io — take the
largest, bound it by min/max and `behavior` (controller_manager/controllers/hpa_scaling.py), write
it to `/scale`, and record status: current/desired replicas, the metrics seen, lastScaleTime, and
the AbleToScale, ScalingActive and ScalingLimited conditions with upstream's reasons and messages;
Events SuccessfulRescale, FailedGetScale, FailedGetResourceMetric, FailedComputeMetricsReplicas….
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from apimachinery.errors import StatusError
from apimachinery.quantity import QuantityError, to_milli
from apimachinery.selectors import LabelSelector, SelectorError, parse_label_selector, selector_from_label_selector
from client.discovery import KindResolver
from client.request import Obj
from client.store import meta_key
from controller_manager.base import Controller, split_key
from controller_manager.controllers import register
from controller_manager.controllers.hpa_scaling import Condition, ScalingHistory
from controller_manager.controllers.replica_calculator import (
    MetricsError,
    PodMetric,
    ReplicaCalculator,
    Tolerances,
    parse_time,
    pod_metrics_info,
)

__all__ = ["HorizontalPodAutoscalerController", "milli_quantity"]

METRICS_API = "/apis/metrics.k8s.io/v1beta1"
CUSTOM_METRICS_API = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL_METRICS_API = "/apis/external.metrics.k8s.io/v1beta1"
_DECIMAL_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}


def milli_quantity(milli: int, binary: bool = False) -> str:
    """A value in thousandths as Kubernetes writes the quantity (DecimalSI `250m`, BinarySI `10Mi`)."""
    if milli == 0:
        return "0"
    if binary and milli % 1000 == 0:
        value = milli // 1000
        for power, suffix in ((6, "Ei"), (5, "Pi"), (4, "Ti"), (3, "Gi"), (2, "Mi"), (1, "Ki")):
            if value % 1024**power == 0:
                return f"{value // 1024**power}{suffix}"
        return str(value)
    exponent = -3
    while milli % 1000 == 0 and exponent < 18:
        milli //= 1000
        exponent += 3
    return f"{milli}{_DECIMAL_SUFFIX[exponent]}"


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(status: dict[str, Any], cond: Condition) -> None:
    """Set one condition in `status.conditions` (its transition time moves only when its status does)."""
    kind, state, reason, message = cond
    conditions = status.setdefault("conditions", [])
    existing = next((c for c in conditions if c.get("type") == kind), None)
    if existing is None:
        existing = {"type": kind}
        conditions.append(existing)
    if existing.get("status") != state:
        existing["lastTransitionTime"] = _now_text()
    existing["status"], existing["reason"], existing["message"] = state, reason, message
    # field order as Go writes HorizontalPodAutoscalerCondition
    ordered = {k: existing[k] for k in ("type", "status", "lastTransitionTime", "reason", "message") if k in existing}
    existing.clear()
    existing.update(ordered)


class _Failed(Exception):
    """No replica count from the metrics: the ScalingActive condition to set, why, and the statuses seen."""

    def __init__(self, condition: Condition, error: str, statuses: list[Obj] | None = None) -> None:
        super().__init__(error)
        self.condition = condition
        self.statuses = statuses or []


@dataclass(frozen=True)
class _Proposal:
    replicas: int
    metric: str
    status: Obj


def _milli(value: Any) -> int:
    try:
        return to_milli(value)
    except (QuantityError, ValueError, TypeError):
        return 0


def _selector_text(selector: Any) -> str:
    if not isinstance(selector, Mapping):
        return ""
    return str(selector_from_label_selector(selector))


@register
class HorizontalPodAutoscalerController(Controller):
    """Scales each HPA's target to keep its metrics at their targets."""

    name = "horizontalpodautoscaling"
    event_source = "horizontal-pod-autoscaler"
    workers = 2

    def setup(self) -> None:
        self.sync_period = self.ctx.option("horizontal-pod-autoscaler-sync-period", 15.0)
        self.tolerance = self.ctx.option("horizontal-pod-autoscaler-tolerance", 0.1)
        self.history = ScalingHistory(self.ctx.option("horizontal-pod-autoscaler-downscale-stabilization", 300.0))
        self.calc = ReplicaCalculator(
            self.ctx.option("horizontal-pod-autoscaler-cpu-initialization-period", 300.0),
            self.ctx.option("horizontal-pod-autoscaler-initial-readiness-delay", 30.0),
        )
        self._selectors: dict[str, LabelSelector] = {}
        self.hpas = self.ctx.factory.informer("horizontalpodautoscalers")
        self.hpas.add_handler(on_add=self.enqueue, on_update=self._updated, on_delete=self._deleted)
        self.pods = self.ctx.factory.informer("pods")
        self.kinds = KindResolver(self.api)  # scale targets and described objects may be custom resources

    # --- informer handlers -------------------------------------------------------------------------

    def _updated(self, old: Obj, new: Obj) -> None:
        # a spec change is looked at now; a status write (ours, mostly) waits for the next period
        if (old.get("metadata") or {}).get("generation") != (new.get("metadata") or {}).get("generation"):
            self.enqueue(new)

    def _deleted(self, obj: Obj) -> None:
        key = meta_key(obj)
        self.history.forget(key)
        self._selectors.pop(key, None)

    # --- sync -----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        hpa = self.hpas.store.get(key)
        if hpa is None:
            self.history.forget(key)
            self._selectors.pop(key, None)
            return
        try:
            await self.reconcile(copy.deepcopy(hpa), key)
        except Exception as e:  # the next period tries again, as upstream's resync does
            self.log.warning("reconciling %s: %s", key, e)
        finally:
            self.requeue_after(key, self.sync_period)

    def _tolerances(self, hpa: Obj) -> Tolerances:
        t = Tolerances(self.tolerance, self.tolerance)
        behavior = (hpa.get("spec") or {}).get("behavior") or {}
        down = (behavior.get("scaleDown") or {}).get("tolerance")
        up = (behavior.get("scaleUp") or {}).get("tolerance")
        return Tolerances(
            _milli(down) / 1000 if down is not None else t.scale_down,
            _milli(up) / 1000 if up is not None else t.scale_up,
        )

    async def _update_status(self, hpa: Obj, original: Obj) -> None:
        if hpa.get("status") == original:
            return
        try:
            await self.api.update_status("horizontalpodautoscalers", hpa)
        except StatusError as e:
            self.events.record(hpa, "Warning", "FailedUpdateStatus", e.message)
            raise

    async def reconcile(self, hpa: Obj, key: str) -> None:
        """One pass over one HPA (reconcileAutoscaler)."""
        ns = str(split_key(key)[0] or "")
        spec = hpa.get("spec") or {}
        status = hpa.setdefault("status", {})
        original = copy.deepcopy(status)
        ref = spec.get("scaleTargetRef") or {}
        kind, target, api_version = str(ref.get("kind", "")), str(ref.get("name", "")), str(ref.get("apiVersion", ""))
        reference = f"{kind}/{ns}/{target}"
        res = await self.kinds.by_kind(api_version, kind)
        scale_path = f"{res.base_path(ns)}/{quote(target)}/scale" if res is not None else ""
        try:
            if res is None:
                group = api_version.rpartition("/")[0]
                raise StatusError(404, "NotFound", f'no matches for kind "{kind}" in group "{group}"')
            scale = orjson.loads((await self.api.request("GET", scale_path)).content)
        except StatusError as e:
            self.events.record(hpa, "Warning", "FailedGetScale", e.message)
            set_condition(
                status,
                (
                    "AbleToScale",
                    "False",
                    "FailedGetScale",
                    f"the HPA controller was unable to get the target's current scale: {e.message}",
                ),
            )
            await self._update_status(hpa, original)
            return
        set_condition(
            status,
            (
                "AbleToScale",
                "True",
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale",
            ),
        )
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        self.history.record_initial(current, key)
        min_replicas = int(spec.get("minReplicas") or 1) if spec.get("minReplicas") is not None else 1
        max_replicas = int(spec.get("maxReplicas") or 0)
        behavior = spec.get("behavior") if isinstance(spec.get("behavior"), Mapping) else None
        metric_statuses: list[Obj] = list(status.get("currentMetrics") or [])
        desired, reason, rescale = 0, "", True
        if current == 0 and min_replicas != 0:
            rescale = False
            set_condition(
                status,
                (
                    "ScalingActive",
                    "False",
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero",
                ),
            )
        elif current > max_replicas:
            reason, desired = "Current number of replicas above Spec.MaxReplicas", max_replicas
        elif current < min_replicas:
            reason, desired = "Current number of replicas below Spec.MinReplicas", min_replicas
        else:
            try:
                proposal, metric_name, metric_statuses = await self._compute(hpa, key, ns, scale, status)
            except _Failed as e:
                self._set_status(status, current, int(status.get("desiredReplicas") or 0), e.statuses, False)
                await self._update_status(hpa, original)
                self.events.record(hpa, "Warning", "FailedComputeMetricsReplicas", str(e))
                return
            if proposal > desired:
                desired = proposal
            if desired > current:
                reason = f"{metric_name} above target"
            if desired < current:
                reason = "All metrics below target"
            if behavior is None:
                desired, conds = self.history.normalize(key, current, desired, min_replicas, max_replicas)
            else:
                desired, conds = self.history.normalize_with_behaviors(
                    key, behavior, current, desired, min_replicas, max_replicas
                )
            for cond in conds:
                set_condition(status, cond)
            rescale = desired != current
        if rescale:
            try:
                await self._write_scale(scale_path, scale, desired)
            except StatusError as e:
                self.events.record(
                    hpa, "Warning", "FailedRescale", f"New size: {desired}; reason: {reason}; error: {e.message}"
                )
                set_condition(
                    status,
                    (
                        "AbleToScale",
                        "False",
                        "FailedUpdateScale",
                        f"the HPA controller was unable to update the target scale: {e.message}",
                    ),
                )
                self._set_status(status, current, int(status.get("desiredReplicas") or 0), metric_statuses, False)
                await self._update_status(hpa, original)
                return
            set_condition(
                status,
                (
                    "AbleToScale",
                    "True",
                    "SucceededRescale",
                    f"the HPA controller was able to update the target scale to {desired}",
                ),
            )
            self.events.record(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            self.history.store_scale_event(behavior, key, current, desired)
            self.log.info("rescaled %s from %d to %d: %s", reference, current, desired, reason)
        else:
            desired = current
        self._set_status(status, current, desired, metric_statuses, rescale)
        await self._update_status(hpa, original)

    @staticmethod
    def _set_status(status: Obj, current: int, desired: int, metrics: list[Obj], rescale: bool) -> None:
        conditions, last = status.get("conditions"), status.get("lastScaleTime")
        status.clear()
        status["currentReplicas"] = current
        status["desiredReplicas"] = desired
        if metrics:
            status["currentMetrics"] = metrics
        if rescale:
            last = _now_text()
        if last is not None:
            status["lastScaleTime"] = last
        if conditions:
            status["conditions"] = conditions

    async def _write_scale(self, path: str, scale: Obj, desired: int) -> None:
        for attempt in range(5):
            scale.setdefault("spec", {})["replicas"] = desired
            try:
                await self.api.request("PUT", path, body=scale)
                return
            except StatusError as e:
                if e.code != 409 or attempt == 4:
                    raise
                scale = orjson.loads((await self.api.request("GET", path)).content)

    # --- metrics -----------------------------------------------------------------------------------

    def _pods(self, namespace: str, selector: LabelSelector) -> list[Obj]:
        return [
            p
            for p in self.pods.store.list()
            if (p.get("metadata") or {}).get("namespace") == namespace
            and selector.matches((p.get("metadata") or {}).get("labels") or {})
        ]

    def _selector(self, hpa: Obj, key: str, namespace: str, text: str) -> LabelSelector:
        if not text:
            self.events.record(hpa, "Warning", "SelectorRequired", "selector is required")
            raise _Failed(
                ("ScalingActive", "False", "InvalidSelector", "the HPA target's scale is missing a selector"),
                "selector is required",
            )
        try:
            selector = parse_label_selector(text)
        except SelectorError as e:
            msg = f"couldn't convert selector into a corresponding internal selector object: {e}"
            self.events.record(hpa, "Warning", "InvalidSelector", msg)
            raise _Failed(("ScalingActive", "False", "InvalidSelector", msg), msg) from None
        self._selectors[key] = selector
        pods = self._pods(namespace, selector)
        others = sorted(
            other
            for other, sel in self._selectors.items()
            if other != key
            and other.startswith(f"{namespace}/")
            and other in self.hpas.store
            and any(sel.matches((p.get("metadata") or {}).get("labels") or {}) for p in pods)
        )
        if others:
            msg = f"pods by selector {text} are controlled by more than one HPA (e.g. [{key} {others[0]}])"
            self.events.record(hpa, "Warning", "AmbiguousSelector", msg)
            raise _Failed(("ScalingActive", "False", "AmbiguousSelector", msg), msg)
        return selector

    async def _compute(self, hpa: Obj, key: str, namespace: str, scale: Obj, status: Obj) -> tuple[int, str, list[Obj]]:
        """(replicas, the metric that asked for them, metric statuses) — computeReplicasForMetrics."""
        specs = list((hpa.get("spec") or {}).get("metrics") or [])
        try:
            selector = self._selector(hpa, key, namespace, str((scale.get("status") or {}).get("selector") or ""))
        except _Failed as e:
            set_condition(status, e.condition)
            raise
        spec_replicas = int((scale.get("spec") or {}).get("replicas") or 0)
        status_replicas = int((scale.get("status") or {}).get("replicas") or 0)
        pods = self._pods(namespace, selector)
        statuses: list[Obj] = [{} for _ in specs]
        replicas, metric, invalid, first_error, first_condition = 0, "", 0, "", None
        for i, m in enumerate(specs):
            try:
                proposal = await self._metric(hpa, m, namespace, selector, pods, spec_replicas, status_replicas)
            except _Failed as e:
                if invalid == 0:
                    first_condition, first_error = e.condition, str(e)
                invalid += 1
                continue
            statuses[i] = proposal.status
            if replicas == 0 or proposal.replicas > replicas:
                replicas, metric = proposal.replicas, proposal.metric
        statuses = [s for s in statuses if s] if invalid else statuses
        if invalid:
            first_error = f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first_error}"
        if invalid >= len(specs) or (invalid > 0 and replicas < spec_replicas):
            assert first_condition is not None
            set_condition(status, first_condition)
            raise _Failed(first_condition, first_error, statuses)
        set_condition(
            status,
            (
                "ScalingActive",
                "True",
                "ValidMetricFound",
                f"the HPA was able to successfully calculate a replica count from {metric}",
            ),
        )
        return replicas, metric, statuses

    def _unable(self, hpa: Obj, reason: str, error: str) -> Condition:
        self.events.record(hpa, "Warning", reason, error)
        return ("ScalingActive", "False", reason, f"the HPA was unable to compute the replica count: {error}")

    async def _get_json(self, path: str, params: dict[str, str] | None = None) -> Obj:
        return orjson.loads((await self.api.request("GET", path, params=params or {})).content)

    async def _metric(
        self,
        hpa: Obj,
        m: Obj,
        namespace: str,
        selector: LabelSelector,
        pods: list[Obj],
        spec_replicas: int,
        status_replicas: int,
    ) -> _Proposal:
        kind = m.get("type")
        tolerances = self._tolerances(hpa)
        now = time.time()
        if kind in ("Resource", "ContainerResource"):
            key = "resource" if kind == "Resource" else "containerResource"
            src = m.get(key) or {}
            resource, container = str(src.get("name", "")), str(src.get("container", "") if key != "resource" else "")
            target = src.get("target") or {}
            reason = "FailedGetResourceMetric" if kind == "Resource" else "FailedGetContainerResourceMetric"
            try:
                try:
                    try:
                        listing = await self._get_json(
                            f"{METRICS_API}/namespaces/{namespace}/pods", {"labelSelector": str(selector)}
                        )
                    except StatusError as e:
                        raise MetricsError(f"unable to fetch metrics from resource metrics API: {e.message}") from None
                    metrics, _ = pod_metrics_info(listing.get("items") or [], resource, container)
                except MetricsError as e:
                    raise MetricsError(f"unable to get metrics for resource {resource}: {e}") from None
                binary = resource == "memory"
                if target.get("averageValue") is not None:
                    replicas, raw = self.calc.plain_metric_replicas(
                        metrics, spec_replicas, _milli(target["averageValue"]), tolerances, pods, resource, now
                    )
                    current: Obj = {"averageValue": milli_quantity(raw, binary)}
                    name = f"{resource} resource"
                elif target.get("averageUtilization") is not None:
                    replicas, util, raw = self.calc.resource_replicas(
                        spec_replicas,
                        int(target["averageUtilization"]),
                        resource,
                        tolerances,
                        pods,
                        metrics,
                        container,
                        now,
                    )
                    current = {"averageValue": milli_quantity(raw, binary), "averageUtilization": util}
                    name = f"{resource} resource utilization (percentage of request)"
                    if kind == "ContainerResource":
                        name = f"{resource} container resource utilization (percentage of request)"
                else:
                    raise MetricsError(
                        "invalid resource metric source: neither an average utilization target nor an average value "
                        "(usage) target was set"
                    )
            except MetricsError as e:
                what = "utilization" if target.get("averageValue") is None else "usage"
                err = f"failed to get {resource} {what}: {e}"
                where = (
                    f"failed to get {resource} resource metric value"
                    if kind == "Resource"
                    else (f"failed to get {container} container metric value")
                )
                raise _Failed(self._unable(hpa, reason, err), f"{where}: {err}") from None
            body: Obj = {"name": resource}
            if kind == "ContainerResource":
                body["container"] = container
            body["current"] = current
            return _Proposal(replicas, name, {"type": kind, key: body})
        if kind == "Pods":
            src = m.get("pods") or {}
            metric = src.get("metric") or {}
            metric_name = str(metric.get("name", ""))
            try:
                try:
                    params = {"labelSelector": str(selector)}
                    if metric.get("selector"):
                        params["metricLabelSelector"] = _selector_text(metric["selector"])
                    listing = await self._get_json(
                        f"{CUSTOM_METRICS_API}/namespaces/{namespace}/pods/*/{quote(metric_name)}", params
                    )
                except StatusError as e:
                    raise MetricsError(f"unable to fetch metrics from custom metrics API: {e.message}") from None
                values = {
                    str((i.get("describedObject") or {}).get("name", "")): PodMetric(
                        _milli(i.get("value")),
                        parse_time(i.get("timestamp")) or 0.0,
                        float(i.get("windowSeconds") or 60),
                    )
                    for i in listing.get("items") or []
                }
                if not values:
                    raise MetricsError("no metrics returned from custom metrics API")
                replicas, usage = self.calc.plain_metric_replicas(
                    values,
                    spec_replicas,
                    _milli((src.get("target") or {}).get("averageValue")),
                    tolerances,
                    pods,
                    "",
                    now,
                )
            except MetricsError as e:
                err = f"unable to get metric {metric_name}: {e}"
                raise _Failed(
                    self._unable(hpa, "FailedGetPodsMetric", err), f"failed to get pods metric value: {err}"
                ) from None
            status = {
                "metric": {"name": metric_name, **({"selector": metric["selector"]} if metric.get("selector") else {})}
            }
            status["current"] = {"averageValue": milli_quantity(usage)}
            return _Proposal(replicas, f"pods metric {metric_name}", {"type": "Pods", "pods": status})
        if kind == "Object":
            return await self._object_metric(hpa, m, namespace, pods, spec_replicas, status_replicas, tolerances)
        if kind == "External":
            return await self._external_metric(hpa, m, namespace, pods, spec_replicas, status_replicas, tolerances)
        err = f'unknown metric source type "{kind}"'
        raise _Failed(self._unable(hpa, "InvalidMetricSourceType", err), err)

    async def _object_metric(
        self,
        hpa: Obj,
        m: Obj,
        namespace: str,
        pods: list[Obj],
        spec_replicas: int,
        status_replicas: int,
        tolerances: Tolerances,
    ) -> _Proposal:
        src = m.get("object") or {}
        metric, target, described = src.get("metric") or {}, src.get("target") or {}, src.get("describedObject") or {}
        metric_name = str(metric.get("name", ""))
        res = await self.kinds.by_kind(str(described.get("apiVersion", "")), str(described.get("kind", "")))
        try:
            if res is None:
                raise MetricsError(f'no matches for kind "{described.get("kind", "")}"')
            described_name = quote(str(described.get("name", "")))
            path = f"{CUSTOM_METRICS_API}/namespaces/{namespace}/{res.group_resource}/{described_name}"
            params = {"metricLabelSelector": _selector_text(metric["selector"])} if metric.get("selector") else {}
            try:
                listing = await self._get_json(f"{path}/{quote(metric_name)}", params)
            except StatusError as e:
                raise MetricsError(f"unable to fetch metrics from custom metrics API: {e.message}") from None
            items = listing.get("items") or []
            if not items:
                raise MetricsError("no metrics returned from custom metrics API")
            usage = _milli(items[0].get("value"))
            if target.get("value") is not None:
                replicas, usage = self.calc.object_metric_replicas(
                    spec_replicas, _milli(target["value"]), usage, tolerances, pods
                )
                current: Obj = {"value": milli_quantity(usage)}
            elif target.get("averageValue") is not None:
                replicas, usage = self.calc.per_pod_replicas(
                    status_replicas, _milli(target["averageValue"]), usage, tolerances
                )
                current = {"averageValue": milli_quantity(usage)}
            else:
                raise MetricsError(
                    "invalid object metric source: neither a value target nor an average value target was set"
                )
        except MetricsError as e:
            err = f"unable to get metric {metric_name}: {e}"
            raise _Failed(
                self._unable(hpa, "FailedGetObjectMetric", err), f"failed to get object metric value: {err}"
            ) from None
        ident = {"name": metric_name, **({"selector": metric["selector"]} if metric.get("selector") else {})}
        status = {"type": "Object", "object": {"metric": ident, "current": current, "describedObject": described}}
        return _Proposal(replicas, f"{described.get('kind', '')} metric {metric_name}", status)

    async def _external_metric(
        self,
        hpa: Obj,
        m: Obj,
        namespace: str,
        pods: list[Obj],
        spec_replicas: int,
        status_replicas: int,
        tolerances: Tolerances,
    ) -> _Proposal:
        src = m.get("external") or {}
        metric, target = src.get("metric") or {}, src.get("target") or {}
        metric_name = str(metric.get("name", ""))
        try:
            params = {"labelSelector": _selector_text(metric["selector"])} if metric.get("selector") else {}
            try:
                listing = await self._get_json(
                    f"{EXTERNAL_METRICS_API}/namespaces/{namespace}/{quote(metric_name)}", params
                )
            except StatusError as e:
                raise MetricsError(f"unable to fetch metrics from external metrics API: {e.message}") from None
            values = [_milli(i.get("value")) for i in listing.get("items") or []]
            if not values:
                raise MetricsError("no metrics returned from external metrics API")
            if target.get("averageValue") is not None:
                replicas, usage = self.calc.external_per_pod_replicas(
                    status_replicas, _milli(target["averageValue"]), values, tolerances
                )
                current: Obj = {"averageValue": milli_quantity(usage)}
            elif target.get("value") is not None:
                replicas, usage = self.calc.external_metric_replicas(
                    spec_replicas, _milli(target["value"]), values, tolerances, pods
                )
                current = {"value": milli_quantity(usage)}
            else:
                raise MetricsError(
                    "invalid external metric source: neither a value target nor an average value target was set"
                )
        except MetricsError as e:
            err = f"unable to get external metric {namespace}/{metric_name}: {e}"
            raise _Failed(
                self._unable(hpa, "FailedGetExternalMetric", err),
                f"failed to get {metric_name} external metric value: {err}",
            ) from None
        ident = {"name": metric_name, **({"selector": metric["selector"]} if metric.get("selector") else {})}
        return _Proposal(
            replicas,
            f"external metric {metric_name}",
            {"type": "External", "external": {"metric": ident, "current": current}},
        )
