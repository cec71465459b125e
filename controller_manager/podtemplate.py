"""Pods from an owner's pod template, with the controller ownerReference (upstream's
`GetPodFromTemplate`), and helpers to read pod readiness as controllers do."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from client.request import Obj

__all__ = ["controller_ref", "is_pod_active", "is_pod_available", "is_pod_ready", "pod_from_template"]


def controller_ref(owner: Obj) -> dict[str, Any]:
    """The ownerReference that makes `owner` the controller of a dependent."""
    meta = owner.get("metadata") or {}
    return {
        "apiVersion": owner.get("apiVersion", ""),
        "kind": owner.get("kind", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_from_template(owner: Obj, template: Obj, *, generate_name: str | None = None, name: str = "") -> Obj:
    """A Pod to create for `owner` from `template` (labels, annotations, spec copied)."""
    tmeta = template.get("metadata") or {}
    owner_meta = owner.get("metadata") or {}
    meta: dict[str, Any] = {
        "namespace": owner_meta.get("namespace"),
        "labels": dict(tmeta.get("labels") or {}),
        "annotations": dict(tmeta.get("annotations") or {}),
        "ownerReferences": [controller_ref(owner)],
    }
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name if generate_name is not None else f"{owner_meta.get('name', '')}-"
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


def _condition(pod: Obj, type_: str) -> dict[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def is_pod_ready(pod: Obj) -> bool:
    """Whether the pod's Ready condition is True."""
    c = _condition(pod, "Ready")
    return bool(c and c.get("status") == "True")


def is_pod_available(pod: Obj, min_ready_seconds: int, now: datetime | None = None) -> bool:
    """Ready for at least `min_ready_seconds` (upstream's podutil.IsPodAvailable)."""
    c = _condition(pod, "Ready")
    if not c or c.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = c.get("lastTransitionTime")
    if not since:
        return False
    try:
        t = datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:  # fractional seconds or an offset (RFC 3339 allows both)
        try:
            t = datetime.fromisoformat(since.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            return False
    return ((now or datetime.now(UTC)) - t).total_seconds() >= min_ready_seconds


def is_pod_active(pod: Obj) -> bool:
    """Not terminal and not being deleted (upstream's controller.IsPodActive)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")
