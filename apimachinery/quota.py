"""Resource quota accounting, shared by the ResourceQuota admission plug-in and its controller.

What an object costs against a quota (upstream's quota evaluators in pkg/quota/v1/evaluator/core
and k8s.io/apiserver/pkg/quota/v1/generic), which quotas it falls under (resources and scopes),
and the ResourceList arithmetic of k8s.io/apiserver/pkg/quota/v1 (add, subtract, mask, compare,
print). Pure functions over JSON objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apimachinery.quantity import Quantity, QuantityError
from apimachinery.resources import RESOURCES, ResourceInfo

__all__ = [
    "INTEGER_RESOURCES",
    "QUOTA_SCOPES",
    "Evaluator",
    "ResourceList",
    "add",
    "charged_operations",
    "container_totals",
    "evaluator_for",
    "evaluator_for_count",
    "is_best_effort",
    "is_standard_quota_resource",
    "less_than_or_equal",
    "mask",
    "object_count_name",
    "parse_list",
    "pod_counts_against_quota",
    "pod_limits",
    "pod_requests",
    "pretty_print",
    "quota_matches",
    "remove_zeros",
    "render_list",
    "scope_selectors",
    "scope_supports",
    "subtract_non_negative",
]

ResourceList = dict[str, Quantity]

INTEGER_RESOURCES = frozenset(
    {
        "pods",
        "resourcequotas",
        "services",
        "replicationcontrollers",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    }
)
_STANDARD_QUOTA = frozenset(
    {
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
    }
)
QUOTA_SCOPES = (
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
)
# resources a BestEffort-scoped quota may track (helper.IsResourceQuotaScopeValidForResource)
_OBJECT_COUNT_SCOPE_RESOURCES = frozenset({"pods", "count/pods"})
_COMPUTE_SCOPE_RESOURCES = frozenset(
    {
        "pods",
        "count/pods",
        "cpu",
        "memory",
        "requests.cpu",
        "requests.memory",
        "limits.cpu",
        "limits.memory",
        "ephemeral-storage",
        "requests.ephemeral-storage",
        "limits.ephemeral-storage",
    }
)
_COMPUTE = ("cpu", "memory")
_NATIVE_PREFIXES = ("kubernetes.io/", "requests.", "limits.")


def is_standard_quota_resource(name: str) -> bool:
    """helper.IsStandardQuotaResourceName (hugepages included)."""
    return name in _STANDARD_QUOTA or name.startswith(("hugepages-", "requests.hugepages-"))


def scope_supports(scope: str, resource: str) -> bool:
    """Whether a quota with `scope` may track `resource` (IsResourceQuotaScopeValidForResource)."""
    if scope == "BestEffort":
        return resource in _OBJECT_COUNT_SCOPE_RESOURCES
    if scope in ("NotBestEffort", "Terminating", "NotTerminating", "PriorityClass", "CrossNamespacePodAffinity"):
        return resource in _COMPUTE_SCOPE_RESOURCES or resource.startswith(("hugepages-", "requests."))
    return True


def object_count_name(res: ResourceInfo) -> str:
    """`count/<resource>[.<group>]`, the object-count quota of a resource."""
    return f"count/{res.group_resource}"


# --- ResourceList arithmetic ---------------------------------------------------------------


def parse_list(values: Any) -> ResourceList:
    """A stored ResourceList as quantities; unparsable entries are skipped (validation refused them)."""
    out: ResourceList = {}
    for name, raw in (values or {}).items() if isinstance(values, Mapping) else ():
        try:
            out[name] = Quantity.parse(raw)
        except (QuantityError, TypeError):
            continue
    return out


def render_list(values: ResourceList) -> dict[str, str]:
    """A ResourceList as JSON (each quantity in its canonical form), keys sorted as Go writes maps."""
    return {k: str(values[k]) for k in sorted(values)}


def add(a: ResourceList, b: ResourceList) -> ResourceList:
    """a + b for every resource in either (quota.Add)."""
    out = dict(a)
    for name, q in b.items():
        out[name] = out[name] + q if name in out else q
    return out


def subtract_non_negative(a: ResourceList, b: ResourceList) -> ResourceList:
    """a - b, never below zero, over a's resources (quota.SubtractWithNonNegativeResult)."""
    out: ResourceList = {}
    for name, q in a.items():
        diff = q - b[name] if name in b else q
        out[name] = diff if diff.sign() >= 0 else Quantity.zero()
    return out


def mask(values: ResourceList, names: Iterable[str]) -> ResourceList:
    """Only the named resources (quota.Mask)."""
    keep = set(names)
    return {k: v for k, v in values.items() if k in keep}


def remove_zeros(values: ResourceList) -> ResourceList:
    """Without zero quantities (quota.RemoveZeros)."""
    return {k: v for k, v in values.items() if v.sign() != 0}


def less_than_or_equal(a: ResourceList, b: ResourceList) -> tuple[bool, list[str]]:
    """Whether a ≤ b for every resource of a that b limits, and the resources where it is not."""
    exceeded = sorted(k for k, v in a.items() if k in b and v > b[k])
    return not exceeded, exceeded


def pretty_print(values: ResourceList) -> str:
    """`k=v,k2=v2` sorted by name (the quota plug-in's prettyPrint)."""
    return ",".join(f"{k}={values[k]}" for k in sorted(values))


# --- quotas and scopes ------------------------------------------------------------------------


def scope_selectors(quota: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The quota's scopes as scope-selector requirements (spec.scopes as Exists, plus scopeSelector)."""
    spec = quota.get("spec") if isinstance(quota.get("spec"), Mapping) else {}
    out: list[dict[str, Any]] = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    selector = spec.get("scopeSelector")
    if isinstance(selector, Mapping):
        out += [dict(r) for r in selector.get("matchExpressions") or [] if isinstance(r, Mapping)]
    return out


def quota_matches(quota: Mapping[str, Any], evaluator: Evaluator, obj: Mapping[str, Any], hard: ResourceList) -> bool:
    """generic.Matches: the quota limits something the evaluator tracks and every scope selects obj."""
    if not evaluator.matching_resources(hard):
        return False
    return all(evaluator.matches_scope(sel, obj) for sel in scope_selectors(quota))


def _m(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --- pods -------------------------------------------------------------------------------------


def _containers(spec: Mapping[str, Any], field: str) -> list[Mapping[str, Any]]:
    return [c for c in spec.get(field) or [] if isinstance(c, Mapping)]


def _container_list(c: Mapping[str, Any], kind: str) -> ResourceList:
    resources = c.get("resources") if isinstance(c.get("resources"), Mapping) else {}
    return parse_list(resources.get(kind))


def _max_into(target: ResourceList, other: ResourceList) -> None:
    for name, q in other.items():
        if name not in target or q > target[name]:
            target[name] = q


def container_totals(pod: Mapping[str, Any], kind: str) -> ResourceList:
    """The containers' requests or limits summed, sidecars added, the init containers' maximum taken."""
    spec = _m(pod.get("spec"))
    total: ResourceList = {}
    for c in _containers(spec, "containers"):
        total = add(total, _container_list(c, kind))
    sidecars: ResourceList = {}
    init_max: ResourceList = {}
    for c in _containers(spec, "initContainers"):
        own = _container_list(c, kind)
        if c.get("restartPolicy") == "Always":
            total = add(total, own)
            sidecars = add(sidecars, own)
            _max_into(init_max, sidecars)
        else:
            _max_into(init_max, add(own, sidecars))
    _max_into(total, init_max)
    return total


def _pod_total(pod: Mapping[str, Any], kind: str) -> ResourceList:
    """resourcehelper.PodRequests / PodLimits: container totals, pod-level resources, overhead."""
    spec = _m(pod.get("spec"))
    total = container_totals(pod, kind)
    pod_level = parse_list(_m(spec.get("resources")).get(kind))
    for name in _COMPUTE:
        if name in pod_level:
            total[name] = pod_level[name]
    overhead = parse_list(spec.get("overhead"))
    if overhead and (kind == "requests" or total):
        total = add(total, mask(overhead, total) if kind == "limits" else overhead)
    return total


def pod_requests(pod: Mapping[str, Any]) -> ResourceList:
    """The pod's effective requests (what the scheduler and quota count)."""
    return _pod_total(pod, "requests")


def pod_limits(pod: Mapping[str, Any]) -> ResourceList:
    """The pod's effective limits."""
    return _pod_total(pod, "limits")


def _is_extended(name: str) -> bool:
    """helper.IsExtendedResourceName: a qualified name outside kubernetes.io/ and not requests.*."""
    return "/" in name and not name.startswith(_NATIVE_PREFIXES) and not name.startswith("count/")


def _compute_usage(requests: ResourceList, limits: ResourceList) -> ResourceList:
    """podComputeUsageHelper."""
    out: ResourceList = {"pods": Quantity.parse("1")}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name in requests:
            out[name] = requests[name]
            out[f"requests.{name}"] = requests[name]
        if name in limits:
            out[f"limits.{name}"] = limits[name]
    for name, q in requests.items():
        if name.startswith("hugepages-"):
            out[name] = q
            out[f"requests.{name}"] = q
        if _is_extended(name):
            out[f"requests.{name}"] = q
    return out


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def pod_counts_against_quota(pod: Mapping[str, Any], now: datetime) -> bool:
    """QuotaV1Pod: not terminal, and not stuck terminating past its grace period."""
    phase = (pod.get("status") or {}).get("phase") if isinstance(pod.get("status"), Mapping) else None
    if phase in ("Succeeded", "Failed"):
        return False
    m = pod.get("metadata") if isinstance(pod.get("metadata"), Mapping) else {}
    deleted, grace = _parse_time(m.get("deletionTimestamp")), m.get("deletionGracePeriodSeconds")
    return not (deleted is not None and isinstance(grace, int) and now > deleted + timedelta(seconds=grace))


def is_best_effort(pod: Mapping[str, Any]) -> bool:
    """QoS BestEffort: no cpu or memory request or limit anywhere in the pod."""
    spec = pod.get("spec") if isinstance(pod.get("spec"), Mapping) else {}
    lists = [
        _container_list(c, kind)
        for field in ("containers", "initContainers")
        for c in _containers(spec, field)
        for kind in ("requests", "limits")
    ]
    if isinstance(spec.get("resources"), Mapping):
        lists += [parse_list(spec["resources"].get(k)) for k in ("requests", "limits")]
    return not any(name in lst and lst[name].sign() != 0 for lst in lists for name in _COMPUTE)


def _is_terminating(pod: Mapping[str, Any]) -> bool:
    deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds") if isinstance(pod.get("spec"), Mapping) else None
    return isinstance(deadline, int) and deadline >= 0


def _cross_namespace_affinity(pod: Mapping[str, Any]) -> bool:
    affinity = (pod.get("spec") or {}).get("affinity") if isinstance(pod.get("spec"), Mapping) else None
    if not isinstance(affinity, Mapping):
        return False
    for kind in ("podAffinity", "podAntiAffinity"):
        section = affinity.get(kind)
        if not isinstance(section, Mapping):
            continue
        terms = list(section.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        terms += [
            t.get("podAffinityTerm") or {}
            for t in section.get("preferredDuringSchedulingIgnoredDuringExecution") or []
            if isinstance(t, Mapping)
        ]
        for t in terms:
            if isinstance(t, Mapping) and (t.get("namespaces") or t.get("namespaceSelector") is not None):
                return True
    return False


def _priority_class_matches(pod: Mapping[str, Any], selector: Mapping[str, Any]) -> bool:
    name = (pod.get("spec") or {}).get("priorityClassName") or "" if isinstance(pod.get("spec"), Mapping) else ""
    op, values = selector.get("operator"), list(selector.get("values") or [])
    if op == "Exists":
        return bool(name)
    if op == "DoesNotExist":
        return not name
    if op == "In":
        return bool(name) and name in values
    if op == "NotIn":
        return not name or name not in values
    return False


# --- evaluators -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluator:
    """How one resource is charged: which quota resources it tracks and what an object costs."""

    resource: ResourceInfo
    names: frozenset[str]  # quota resource names tracked (prefix rules aside)
    operations: tuple[str, ...] = ("CREATE",)

    def handles(self, operation: str, subresource: str) -> bool:
        """Whether a write changes this resource's usage (Evaluator.Handles)."""
        return not subresource and operation in self.operations

    def matching_resources(self, hard: Iterable[str]) -> list[str]:
        """The quota resource names among `hard` this evaluator tracks."""
        out = []
        for name in hard:
            if name in self.names:
                out.append(name)
            elif self.resource.plural == "pods" and (
                name.startswith(("hugepages-", "requests.hugepages-"))
                or (name.startswith("requests.") and _is_extended(name.removeprefix("requests.")))
            ):
                out.append(name)
            elif self.resource.plural == "persistentvolumeclaims" and ".storageclass.storage.k8s.io/" in name:
                out.append(name)
        return out

    def matches_scope(self, selector: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
        """Whether obj falls under one scope-selector requirement (only pods have scopes here)."""
        if self.resource.plural != "pods":
            return False
        scope = selector.get("scopeName")
        if scope == "Terminating":
            return _is_terminating(obj)
        if scope == "NotTerminating":
            return not _is_terminating(obj)
        if scope == "BestEffort":
            return is_best_effort(obj)
        if scope == "NotBestEffort":
            return not is_best_effort(obj)
        if scope == "PriorityClass":
            return _priority_class_matches(obj, selector)
        if scope == "CrossNamespacePodAffinity":
            return _cross_namespace_affinity(obj)
        return False

    def usage(self, obj: Mapping[str, Any], now: datetime | None = None) -> ResourceList:
        """What obj costs."""
        one = Quantity.parse("1")
        count = object_count_name(self.resource)
        plural = self.resource.plural if not self.resource.group else ""
        if plural == "pods":
            out: ResourceList = {count: one}
            if not pod_counts_against_quota(obj, now or datetime.now(UTC)):
                return out
            return add(out, _compute_usage(pod_requests(obj), pod_limits(obj)))
        if plural == "services":
            return _service_usage(obj, count)
        if plural == "persistentvolumeclaims":
            return _claim_usage(obj, count)
        if plural in ("configmaps", "secrets", "replicationcontrollers", "resourcequotas"):
            return {count: one, plural: one}
        return {count: one}

    def constraints(self, required: Iterable[str], obj: Mapping[str, Any]) -> str:
        """Why a pod does not satisfy a compute quota ("" when it does): every container must say."""
        if self.resource.plural != "pods" or self.resource.group:
            return ""
        wanted = set(required) & {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
        if not wanted:
            return ""
        spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
        missing: dict[str, set[str]] = {}
        for field in ("containers", "initContainers"):
            for c in _containers(spec, field):
                have = set(_compute_usage(_container_list(c, "requests"), _container_list(c, "limits")))
                for name in wanted - have:
                    missing.setdefault(name, set()).add(str(c.get("name") or ""))
        if not missing:
            return ""
        parts = [f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing)]
        return "must specify " + "; ".join(parts)


def _service_usage(svc: Mapping[str, Any], count: str) -> ResourceList:
    spec = svc.get("spec") if isinstance(svc.get("spec"), Mapping) else {}
    kind = spec.get("type") or "ClusterIP"
    ports = len([p for p in spec.get("ports") or [] if isinstance(p, Mapping)])
    node_ports = 0
    if kind == "NodePort" or (kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False):
        node_ports = ports
    return {
        count: Quantity.parse("1"),
        "services": Quantity.parse("1"),
        "services.nodeports": Quantity.parse(str(node_ports)),
        "services.loadbalancers": Quantity.parse("1" if kind == "LoadBalancer" else "0"),
    }


def _claim_usage(claim: Mapping[str, Any], count: str) -> ResourceList:
    spec = claim.get("spec") if isinstance(claim.get("spec"), Mapping) else {}
    one = Quantity.parse("1")
    out: ResourceList = {count: one, "persistentvolumeclaims": one}
    storage = parse_list(_m(spec.get("resources")).get("requests")).get("storage")
    allocated = parse_list(_m(claim.get("status")).get("allocatedResources"))
    if "storage" in allocated and (storage is None or allocated["storage"] > storage):
        storage = allocated["storage"]
    cls = spec.get("storageClassName")
    if cls:
        out[f"{cls}.storageclass.storage.k8s.io/persistentvolumeclaims"] = one
    if storage is not None:
        out["requests.storage"] = storage
        if cls:
            out[f"{cls}.storageclass.storage.k8s.io/requests.storage"] = storage
    return out


_CORE_NAMES = {
    "pods": frozenset(
        {
            "count/pods",
            "pods",
            "cpu",
            "memory",
            "ephemeral-storage",
            "requests.cpu",
            "requests.memory",
            "requests.ephemeral-storage",
            "limits.cpu",
            "limits.memory",
            "limits.ephemeral-storage",
        }
    ),
    "services": frozenset({"count/services", "services", "services.nodeports", "services.loadbalancers"}),
    "persistentvolumeclaims": frozenset({"count/persistentvolumeclaims", "persistentvolumeclaims", "requests.storage"}),
}


def _core_names(plural: str) -> frozenset[str]:
    return _CORE_NAMES.get(plural) or frozenset({f"count/{plural}", plural})


_CREATE = ("CREATE",)
_OPERATIONS = {"services": ("CREATE", "UPDATE"), "persistentvolumeclaims": ("CREATE", "UPDATE")}


def charged_operations(res: ResourceInfo) -> tuple[str, ...]:
    """The writes that change a resource's usage: creates, and for services and claims updates too."""
    return _OPERATIONS.get(res.plural, _CREATE) if not res.group else _CREATE


def evaluator_for(res: ResourceInfo) -> Evaluator:
    """The evaluator of a resource: the core ones for pods, services, claims and the legacy counted
    kinds; an object-count evaluator (`count/<resource>.<group>`) for everything else."""
    if not res.group:
        return Evaluator(res, _core_names(res.plural), charged_operations(res))
    return Evaluator(res, frozenset({object_count_name(res)}))


def evaluator_for_count(name: str) -> Evaluator | None:
    """The evaluator that tracks quota resource `name` (for the controller's recalculation)."""
    for res in RESOURCES:
        ev = evaluator_for(res)
        if ev.matching_resources([name]):
            return ev
    return None
