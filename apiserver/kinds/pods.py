"""Pod strategy: defaults, initial status, spec immutability, selectable fields."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apimachinery.errors import Cause
from apiserver.kinds.ephemeral import (
    in_ephemeral_update,
    validate_ephemeral_containers,
    validate_ephemeral_containers_update,
)
from apiserver.kinds.podspec import default_pod_spec, validate_pod_spec
from apiserver.strategy import Finish, Strategy, raise_if

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["PodStrategy", "qos_class"]


def qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort from the containers' requests and limits."""
    if not isinstance(spec, dict):
        return "BestEffort"
    lists = (spec.get("containers"), spec.get("initContainers"))
    containers = [c for each in lists if isinstance(each, list) for c in each]
    requests_any = limits_all = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") if isinstance(c, dict) else None  # prepared before validation: any shape
        res = res if isinstance(res, dict) else {}
        req, lim = (v if isinstance(v, dict) else {} for v in (res.get("requests"), res.get("limits")))
        if req or lim:
            requests_any = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
        limits_all = limits_all or bool(lim)
    if not requests_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed and limits_all else "Burstable"


class PodStrategy(Strategy):
    """Pods: defaulted spec, Pending status on create, only images change on update."""

    tracks_generation = True

    def default(self, obj: dict[str, Any]) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        default_pod_spec(spec)
        # SetDefaults_Pod (a Pod only, not a template): requests default to limits, host ports on the host network
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                resources = c.get("resources") if isinstance(c, dict) else None
                if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
                    requests = resources.get("requests")
                    requests = requests if isinstance(requests, dict) else {}
                    resources["requests"] = dict(sorted({**resources["limits"], **requests}.items()))
                if spec.get("hostNetwork") and isinstance(c, dict):
                    for port in c.get("ports") or []:
                        if isinstance(port, dict) and not port.get("hostPort"):
                            port["hostPort"] = port.get("containerPort")
        spec.setdefault("enableServiceLinks", True)  # priority and preemptionPolicy: Priority admission

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        super().prepare_for_create(obj)
        spec = obj.get("spec")
        if isinstance(spec, dict):
            # ServiceAccount admission, as a real apiserver does.
            spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
            spec.setdefault("serviceAccount", spec["serviceAccountName"])

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}

    async def begin_create(self, obj: dict[str, Any], reg: Registry, dry_run: bool) -> Finish | None:
        """Ephemeral containers come only through the ephemeralcontainers subresource (ValidatePodCreate)."""
        spec = obj.get("spec")
        if isinstance(spec, dict) and spec.get("ephemeralContainers"):
            name = (obj.get("metadata") or {}).get("name", "")
            why = "Forbidden: cannot be set on create"
            raise_if("Pod", name, "", [Cause("spec.ephemeralContainers", why, "FieldValueForbidden")])
        return None

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        return validate_pod_spec(obj["spec"], "spec") + validate_ephemeral_containers(obj["spec"], "spec")

    async def grace_period(self, obj: dict[str, Any], options: dict[str, Any], reg: Registry) -> int:
        """The pod's grace period; 0 when no kubelet runs it (unbound, finished, node gone)."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        node = spec.get("nodeName")
        if not node or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        nodes = {s.obj["metadata"]["name"] for s in await reg.snapshot("nodes")}
        if node not in nodes:
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return max(int(grace), 0)

    def deletion_pending(self, obj: dict[str, Any]) -> bool:
        """A bound pod waits for its kubelet, which deletes it with grace 0 when stopped."""
        return (obj.get("metadata") or {}).get("deletionGracePeriodSeconds", 0) > 0

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        if in_ephemeral_update():  # pods/<name>/ephemeralcontainers: only those changed (the subresource saw to it)
            return validate_ephemeral_containers_update(new, old)
        a, b = _fixed_part(new.get("spec") or {}), _fixed_part(old.get("spec") or {})
        if a.get("nodeName") is None and b.get("nodeName") is not None:
            a["nodeName"] = b["nodeName"]
        if a != b:
            return [
                Cause(
                    "spec",
                    "Forbidden: pod updates may not change fields other than "
                    "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                    "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it "
                    "to be set to 1 if it was previously negative)",
                    "FieldValueForbidden",
                )
            ]
        return []


_MUTABLE_SPEC_FIELDS = ("activeDeadlineSeconds", "tolerations", "schedulingGates")


def _fixed_part(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec without what a pod update may change (containers' images and the fields above), for a
    comparison only: new dicts and lists down to the containers, sharing everything below them."""
    out = {k: v for k, v in spec.items() if k not in _MUTABLE_SPEC_FIELDS}
    for key in ("containers", "initContainers"):
        if containers := out.get(key):
            out[key] = [{k: v for k, v in c.items() if k != "image"} for c in containers]
    return out
