"""Priority (upstream plugin/pkg/admission/priority): a new pod's spec.priority and preemptionPolicy
come from its PriorityClass (or the global default class, or 0), never from the pod itself; and at
most one PriorityClass may be the global default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apiserver.admission import AdmissionAttributes
from apiserver.admission.lookups import forbidden

if TYPE_CHECKING:
    from apiserver.registry import Registry
    from apiserver.storage import StoredObject

__all__ = ["SYSTEM_PRIORITY_CLASSES", "Priority"]

DEFAULT_PREEMPTION = "PreemptLowerPriority"
# The classes every cluster has (upstream pkg/apis/scheduling SystemPriorityClasses), created at start.
SYSTEM_PRIORITY_CLASSES: tuple[dict[str, Any], ...] = (
    {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "system-node-critical"},
        "value": 2000001000,
        "description": "Used for system critical pods that must not be moved from their current node.",
    },
    {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "system-cluster-critical"},
        "value": 2000000000,
        "description": "Used for system critical pods that must run in the cluster, but can be moved to another "
        "node if necessary.",
    },
)


def _classes(reg: Registry) -> list[dict[str, Any]]:
    """The PriorityClasses as the watch cache holds them (the list is shared: not to be changed)."""
    return reg.cache.cache("priorityclasses").derived(_objects)


def _objects(stored: list[StoredObject]) -> list[dict[str, Any]]:
    return [s.obj for s in stored]


def _is(attrs: AdmissionAttributes, group: str, plural: str) -> bool:
    return attrs.resource.group == group and attrs.resource.plural == plural and not attrs.subresource


class Priority:
    """Resolves pods' priority from PriorityClasses; keeps one global default class."""

    name = "Priority"

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Pod creates, PriorityClass creates and updates."""
        if _is(attrs, "", "pods"):
            return attrs.operation == "CREATE"
        return _is(attrs, "scheduling.k8s.io", "priorityclasses") and attrs.operation in ("CREATE", "UPDATE")

    async def admit(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Set the pod's priority, or check the default class stays unique."""
        obj = attrs.obj or {}
        if attrs.resource.plural == "priorityclasses":
            await self._one_default(attrs, reg, obj)
            return
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        name = spec.get("priorityClassName") or ""
        classes = _classes(reg)
        if name:
            found = next((c for c in classes if (c.get("metadata") or {}).get("name") == name), None)
            if found is None:
                raise forbidden(attrs, f"no PriorityClass with name {name} was found")
            value, policy = int(found.get("value") or 0), found.get("preemptionPolicy") or DEFAULT_PREEMPTION
        else:
            defaults = [c for c in classes if c.get("globalDefault")]
            best = min(defaults, key=lambda c: int(c.get("value") or 0), default=None)
            value = int(best.get("value") or 0) if best else 0
            policy = (best.get("preemptionPolicy") if best else None) or DEFAULT_PREEMPTION
            if best is not None:
                spec["priorityClassName"] = (best.get("metadata") or {}).get("name", "")
        given = spec.get("priority")
        if given is not None and given != value:
            raise forbidden(
                attrs,
                f"the integer value of priority ({given}) must not be provided in pod spec; priority admission "
                f"controller computed {value} from the given PriorityClass name",
            )
        spec["priority"] = value
        given_policy = spec.get("preemptionPolicy")
        if given_policy is not None and given_policy != policy:
            raise forbidden(
                attrs,
                f"the string value of PreemptionPolicy ({given_policy}) must not be provided in pod spec; priority "
                f"admission controller computed {policy} from the given PriorityClass name",
            )
        spec["preemptionPolicy"] = policy

    @staticmethod
    async def _one_default(attrs: AdmissionAttributes, reg: Registry, obj: dict[str, Any]) -> None:
        if not obj.get("globalDefault"):
            return
        me = (obj.get("metadata") or {}).get("name")
        for c in _classes(reg):
            other = (c.get("metadata") or {}).get("name")
            if c.get("globalDefault") and other != me:
                raise forbidden(
                    attrs, f"PriorityClass {other} is already marked as default. Only one default can exist"
                )
