"""LimitRanger (plugin/pkg/admission/limitranger): the namespace's LimitRanges default the
containers' requests and limits of a new pod (mutating), and hold pods, their containers and
PersistentVolumeClaims within min, max and maxLimitRequestRatio (validating), refusing with 403."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from apimachinery.quantity import Quantity
from apimachinery.quota import ResourceList, container_totals, parse_list
from apiserver.admission import AdmissionAttributes
from apiserver.admission.lookups import aggregate, forbidden, list_in_namespace

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = [
    "LIMIT_RANGER_ANNOTATION",
    "LimitRanger",
    "apply_defaults",
    "validate_claim",
    "validate_pod",
]

LIMIT_RANGER_ANNOTATION = "kubernetes.io/limit-ranger"
_CONTAINER_FIELDS = (("containers", "container"), ("initContainers", "init container"))


def _items(limit_range: dict[str, Any]) -> list[dict[str, Any]]:
    limits = (limit_range.get("spec") or {}).get("limits")
    return [i for i in limits if isinstance(i, dict)] if isinstance(limits, list) else []


def _containers(pod: dict[str, Any], field: str) -> list[dict[str, Any]]:
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    return [c for c in spec.get(field) or [] if isinstance(c, dict)]


# --- defaults (PodMutateLimitFunc) -----------------------------------------------------------


def apply_defaults(limit_range: dict[str, Any], pod: dict[str, Any]) -> None:
    """Give each container the Container item's default limits and default requests it lacks, and
    note what was set in the `kubernetes.io/limit-ranger` annotation."""
    limits: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    for item in _items(limit_range):
        if item.get("type") == "Container":
            requests.update(item.get("defaultRequest") or {})
            limits.update(item.get("default") or {})
    notes: list[str] = []
    for field, label in _CONTAINER_FIELDS:
        for c in _containers(pod, field):
            resources = c.get("resources") if isinstance(c.get("resources"), dict) else {}
            set_limits = _fill(resources, "limits", limits)
            set_requests = _fill(resources, "requests", requests)
            if set_limits or set_requests:
                c["resources"] = resources
            if set_requests:
                notes.append(f"{', '.join(sorted(set_requests))} request for {label} {c.get('name', '')}")
            if set_limits:
                notes.append(f"{', '.join(sorted(set_limits))} limit for {label} {c.get('name', '')}")
    if notes:
        meta = pod.setdefault("metadata", {})
        annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
        annotations[LIMIT_RANGER_ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
        meta["annotations"] = annotations


def _fill(resources: dict[str, Any], kind: str, defaults: dict[str, Any]) -> list[str]:
    current = resources.get(kind) if isinstance(resources.get(kind), dict) else {}
    added = [name for name in defaults if name not in current]
    for name in added:
        current[name] = str(Quantity.parse(defaults[name]))
    if added or kind in resources:
        resources[kind] = current
    return added


# --- constraints ------------------------------------------------------------------------------


def _min(kind: str, name: str, enforced: Quantity, request: ResourceList, limit: ResourceList) -> str:
    req, lim = request.get(name), limit.get(name)
    if req is None:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified"
    if req.milli_value() < enforced.milli_value():
        return f"minimum {name} usage per {kind} is {enforced}, but request is {req}"
    if lim is not None and lim.milli_value() < enforced.milli_value():
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {lim}"
    return ""


def _max(kind: str, name: str, enforced: Quantity, request: ResourceList, limit: ResourceList) -> str:
    req, lim = request.get(name), limit.get(name)
    if lim is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"
    if lim.milli_value() > enforced.milli_value():
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {lim}"
    if req is not None and req.milli_value() > enforced.milli_value():
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return ""


def _max_request(kind: str, name: str, enforced: Quantity, request: ResourceList) -> str:
    req = request.get(name)
    if req is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No request is specified"
    if req.milli_value() > enforced.milli_value():
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return ""


def _ratio(kind: str, name: str, enforced: Quantity, request: ResourceList, limit: ResourceList) -> str:
    req, lim = request.get(name), limit.get(name)
    if req is None or req.milli_value() == 0:
        return (
            f"{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
        )
    if lim is None or lim.milli_value() == 0:
        return f"{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
    observed = lim.milli_value() / req.milli_value()
    if observed * 1000 > enforced.milli_value():
        return f"{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {observed:f}"
    return ""


_Check = Callable[[str, str, Quantity, ResourceList, ResourceList], str]
_CHECKS: tuple[tuple[str, _Check], ...] = (("min", _min), ("max", _max), ("maxLimitRequestRatio", _ratio))


def _check_item(item: dict[str, Any], kind: str, request: ResourceList, limit: ResourceList) -> list[str]:
    found = []
    for field, check in _CHECKS:
        for name, enforced in parse_list(item.get(field)).items():
            if msg := check(kind, name, enforced, request, limit):
                found.append(msg)
    return found


def validate_pod(limit_range: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    """PodValidateLimitFunc: every Container item against each (init) container, Pod items against the
    pod's totals; the messages of what is violated."""
    found: list[str] = []
    for item in _items(limit_range):
        kind = item.get("type")
        if kind == "Container":
            for field, _label in _CONTAINER_FIELDS:
                for c in _containers(pod, field):
                    res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
                    found += _check_item(item, kind, parse_list(res.get("requests")), parse_list(res.get("limits")))
        elif kind == "Pod":
            found += _check_item(item, kind, container_totals(pod, "requests"), container_totals(pod, "limits"))
    return found


def validate_claim(limit_range: dict[str, Any], claim: dict[str, Any]) -> list[str]:
    """PersistentVolumeClaimValidateLimitFunc: the storage request within min and max."""
    spec = claim.get("spec") if isinstance(claim.get("spec"), dict) else {}
    resources = spec.get("resources") if isinstance(spec.get("resources"), dict) else {}
    requests = parse_list(resources.get("requests"))
    found: list[str] = []
    for item in _items(limit_range):
        if item.get("type") != "PersistentVolumeClaim":
            continue
        for name, enforced in parse_list(item.get("min")).items():
            if msg := _min("PersistentVolumeClaim", name, enforced, requests, {}):
                found.append(msg)
        for name, enforced in parse_list(item.get("max")).items():
            if msg := _max_request("PersistentVolumeClaim", name, enforced, requests):
                found.append(msg)
    return found


# --- the plug-in ------------------------------------------------------------------------------


class LimitRanger:
    """Mutating (defaults) and validating (constraints) LimitRanger plug-in."""

    name = "LimitRanger"

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Pods on create, PersistentVolumeClaims on create and update; never subresources."""
        if attrs.subresource or attrs.resource.group or attrs.obj is None:
            return False
        if (attrs.old or {}).get("metadata", {}).get("deletionTimestamp"):
            return False
        if attrs.resource.plural == "pods":
            return attrs.operation == "CREATE"
        return attrs.resource.plural == "persistentvolumeclaims" and attrs.operation in ("CREATE", "UPDATE")

    async def admit(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Apply each LimitRange's container defaults to a new pod."""
        if attrs.resource.plural != "pods" or attrs.obj is None:
            return
        for limit_range in await list_in_namespace(reg, "limitranges", attrs.namespace):
            apply_defaults(limit_range, attrs.obj)

    async def validate(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Refuse (403) what breaks a LimitRange: the first LimitRange violated, all its messages."""
        if attrs.obj is None:
            return
        check = validate_pod if attrs.resource.plural == "pods" else validate_claim
        for limit_range in await list_in_namespace(reg, "limitranges", attrs.namespace):
            if found := check(limit_range, attrs.obj):
                raise forbidden(attrs, aggregate(found))
