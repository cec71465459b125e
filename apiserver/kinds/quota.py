"""Strategies of the core policy kinds: LimitRange and ResourceQuota (pkg/registry/core/limitrange,
pkg/registry/core/resourcequota), validated as pkg/apis/core/validation does."""

from __future__ import annotations

import copy
from typing import Any

from apimachinery import errors, validation
from apimachinery.errors import Cause
from apimachinery.quantity import Quantity, QuantityError
from apimachinery.quota import INTEGER_RESOURCES, QUOTA_SCOPES, is_standard_quota_resource, scope_supports
from apimachinery.validation import FieldErrorTuple
from apiserver.strategy import Strategy

__all__ = ["LimitRangeStrategy", "ResourceQuotaStrategy", "parse_resource_list"]

_LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
_STANDARD_RESOURCES = frozenset(
    {
        "cpu",
        "memory",
        "ephemeral-storage",
        "storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
    }
)
_NOT_INTEGER = "must be an integer"
_NOT_STANDARD = "must be a standard resource type or fully qualified"
_NOT_QUOTA = "must be a standard resource for quota"


def _causes(found: list[FieldErrorTuple]) -> list[Cause]:
    return [Cause(path, msg, reason) for path, reason, msg in found]


def parse_resource_list(kind: str, values: Any) -> dict[str, Quantity]:
    """A ResourceList as quantities; a malformed quantity is a 400, as when Go decodes the body."""
    out: dict[str, Quantity] = {}
    if values is None:
        return out
    if not isinstance(values, dict):
        raise errors.bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: expected a map of quantities')
    for name, raw in values.items():
        try:
            out[name] = Quantity.parse(raw)
        except (QuantityError, TypeError) as e:
            raise errors.bad_request(
                f'{kind} in version "v1" cannot be handled as a {kind}: {e or "quantities must be strings"}'
            ) from e
    return out


def _is_standard(name: str) -> bool:
    return name in _STANDARD_RESOURCES or name.startswith(("hugepages-", "requests.hugepages-"))


def _resource_name_errors(name: str, path: str, quota: bool = False) -> list[FieldErrorTuple]:
    """validateResourceName (+ validateResourceQuotaResourceName when `quota`)."""
    errs = [validation.invalid(path, name, m) for m in validation.is_qualified_name(name)]
    if errs or "/" in name:
        return errs
    if quota:
        return [] if is_standard_quota_resource(name) else [validation.invalid(path, name, _NOT_QUOTA)]
    return [] if _is_standard(name) else [validation.invalid(path, name, _NOT_STANDARD)]


def _quantity_value_errors(name: str, q: Quantity, path: str) -> list[FieldErrorTuple]:
    """validateResourceQuantityValue: not negative, whole for integer resources."""
    if q.sign() < 0:
        return [validation.invalid(path, str(q), "must be greater than or equal to 0")]
    if name in INTEGER_RESOURCES and q.milli_value() % 1000:
        return [validation.invalid(path, str(q), _NOT_INTEGER)]
    return []


class LimitRangeStrategy(Strategy):
    """LimitRanges: one item per limit type, consistent min ≤ defaultRequest ≤ default ≤ max."""

    def default(self, obj: dict[str, Any]) -> None:
        """SetDefaults_LimitRangeItem: a Container item's default limit is its max, its default request
        the default limit, else its min."""
        limits = (obj.get("spec") or {}).get("limits") if isinstance(obj.get("spec"), dict) else None
        for item in limits if isinstance(limits, list) else []:
            if not isinstance(item, dict) or item.get("type") != "Container":
                continue
            defaults = item.get("default") if isinstance(item.get("default"), dict) else {}
            requests = item.get("defaultRequest") if isinstance(item.get("defaultRequest"), dict) else {}
            for source, target in (("max", defaults), ("default", requests), ("min", requests)):
                values = defaults if source == "default" else item.get(source)
                for name, q in (values or {}).items() if isinstance(values, dict) else ():
                    target.setdefault(name, q)
            if defaults:
                item["default"] = defaults
            if requests:
                item["defaultRequest"] = requests

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        limits = (obj.get("spec") or {}).get("limits")
        if not isinstance(limits, list):
            return []
        errs: list[FieldErrorTuple] = []
        seen: set[str] = set()
        for i, item in enumerate(limits):
            if not isinstance(item, dict):
                continue
            errs += _limit_item_errors(item, f"spec.limits[{i}]", seen)
        return _causes(errs)


def _limit_item_errors(item: dict[str, Any], path: str, seen: set[str]) -> list[FieldErrorTuple]:
    errs: list[FieldErrorTuple] = []
    kind = item.get("type") or ""
    if not kind:
        errs.append(validation.required(f"{path}.type"))
    elif kind not in _LIMIT_TYPES and "/" not in kind:
        errs.append(validation.invalid(f"{path}.type", kind, "must be a standard limit type or fully qualified"))
    if kind in seen:
        errs.append((f"{path}.type", "FieldValueDuplicate", f'Duplicate value: "{kind}"'))
    seen.add(kind)
    lists = {f: parse_resource_list("LimitRange", item.get(f)) for f in _LIMIT_FIELDS}
    for field_name, values in lists.items():
        if kind == "Pod" and field_name in ("default", "defaultRequest") and values:
            errs.append(validation.forbidden(f"{path}.{field_name}", "may not be specified when `type` is 'Pod'"))
            continue
        for name in values:
            errs += _resource_name_errors(name, f"{path}.{field_name}[{name}]")
    if kind == "PersistentVolumeClaim" and "storage" not in lists["min"] and "storage" not in lists["max"]:
        errs.append(
            validation.required(
                f"{path}.limits", "either minimum or maximum storage value is required, but neither was provided"
            )
        )
    keys = sorted(set().union(*(set(v) for v in lists.values())))
    for name in keys:
        errs += _limit_consistency_errors(name, path, lists)
    return errs


_LIMIT_FIELDS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")


def _limit_consistency_errors(name: str, path: str, lists: dict[str, dict[str, Quantity]]) -> list[FieldErrorTuple]:
    lo, hi = lists["min"].get(name), lists["max"].get(name)
    dflt, req = lists["default"].get(name), lists["defaultRequest"].get(name)
    ratio = lists["maxLimitRequestRatio"].get(name)
    errs: list[FieldErrorTuple] = []

    def bad(field_name: str, value: Quantity, msg: str) -> None:
        errs.append(validation.invalid(f"{path}.{field_name}[{name}]", str(value), msg))

    if lo is not None and hi is not None and lo > hi:
        bad("min", lo, f"min value {lo} is greater than max value {hi}")
    if req is not None and lo is not None and lo > req:
        bad("defaultRequest", req, f"min value {lo} is greater than default request value {req}")
    if req is not None and hi is not None and req > hi:
        bad("defaultRequest", req, f"default request value {req} is greater than max value {hi}")
    if req is not None and dflt is not None and req > dflt:
        bad("defaultRequest", req, f"default request value {req} is greater than default limit value {dflt}")
    if dflt is not None and lo is not None and lo > dflt:
        bad("default", lo, f"min value {lo} is greater than default value {dflt}")
    if dflt is not None and hi is not None and dflt > hi:
        bad("default", hi, f"default value {dflt} is greater than max value {hi}")
    if ratio is not None and ratio.value < 1:
        bad("maxLimitRequestRatio", ratio, f"ratio {ratio} is less than 1")
    if ratio is not None and lo is not None and hi is not None and lo.milli_value() > 0:
        limit = hi.milli_value() / lo.milli_value()
        if ratio.milli_value() / 1000 > limit:
            bad("maxLimitRequestRatio", ratio, f"ratio {ratio} is greater than max/min = {limit:f}")
    return errs


class ResourceQuotaStrategy(Strategy):
    """ResourceQuotas: spec.hard by users; status (hard, used) only through /status."""

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        obj["status"] = {}

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        new["status"] = copy.deepcopy(old.get("status") or {})

    def prepare_for_status_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        status = new.get("status")
        new.clear()
        new.update(copy.deepcopy(old))
        new["status"] = status if status is not None else {}

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
        errs: list[FieldErrorTuple] = []
        hard = parse_resource_list("ResourceQuota", spec.get("hard"))
        for path, values in (
            ("spec.hard", hard),
            ("status.hard", parse_resource_list("ResourceQuota", status.get("hard"))),
            ("status.used", parse_resource_list("ResourceQuota", status.get("used"))),
        ):
            for name, q in values.items():
                errs += _resource_name_errors(name, f"{path}[{name}]", quota=True)
                errs += _quantity_value_errors(name, q, f"{path}[{name}]")
        errs += _scope_errors(spec, list(hard))
        return _causes(errs)


def _scope_errors(spec: dict[str, Any], hard: list[str]) -> list[FieldErrorTuple]:
    """validateResourceQuotaScopes / ScopeSelector: known scopes, no conflicts, fitting resources."""
    scopes = [s for s in spec.get("scopes") or [] if isinstance(s, str)]
    errs: list[FieldErrorTuple] = []
    for scope in scopes:
        if scope not in QUOTA_SCOPES:
            errs.append(validation.invalid("spec.scopes", scope, "unsupported scope"))
        for name in hard:
            if scope in QUOTA_SCOPES and not scope_supports(scope, name):
                errs.append(validation.invalid("spec.scopes", scope, "unsupported scope applied to resource"))
                break
    for a, b in (("Terminating", "NotTerminating"), ("BestEffort", "NotBestEffort")):
        if a in scopes and b in scopes:
            errs.append(validation.invalid("spec.scopes", scopes, "conflicting scopes"))
    return errs
