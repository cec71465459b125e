"""Ephemeral containers (`kubectl debug`): what one may hold, and what an update through the
`pods/<name>/ephemeralcontainers` subresource may change (upstream's validateEphemeralContainers and
ValidatePodEphemeralContainersUpdate, with the same fields and messages).

The subresource takes only `spec.ephemeralContainers` from what the client sends (upstream's
dropNonEphemeralContainerUpdates); entries may be added, never changed or removed.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from apimachinery.errors import Cause
from apimachinery.validation import is_dns1123_label

__all__ = [
    "FORBIDDEN_FIELDS",
    "ephemeral_update",
    "in_ephemeral_update",
    "take_ephemeral_containers",
    "validate_ephemeral_containers",
    "validate_ephemeral_containers_update",
]

FORBIDDEN_FIELDS = (
    "ports",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "restartPolicyRules",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
)
"""EphemeralContainerCommon's fields outside upstream's allowedEphemeralContainerFields, in Go's field order."""

_MIRROR = "kubernetes.io/config.mirror"
_CANNOT = "Forbidden: cannot be set for an Ephemeral Container"

# set while the registry writes through the subresource: the pod strategy then checks the update as
# ValidatePodEphemeralContainersUpdate instead of ValidatePodUpdate (the registry passes no subresource)
_UPDATING: ContextVar[bool] = ContextVar("ephemeral_containers_update", default=False)


@contextlib.contextmanager
def ephemeral_update() -> Iterator[None]:
    """Mark the writes made inside as updates through `pods/<name>/ephemeralcontainers`."""
    token = _UPDATING.set(True)
    try:
        yield
    finally:
        _UPDATING.reset(token)


def in_ephemeral_update() -> bool:
    """Whether the current write goes through the ephemeralcontainers subresource."""
    return _UPDATING.get()


def take_ephemeral_containers(sent: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The stored pod with only `spec.ephemeralContainers` (and the resourceVersion precondition) from `sent`."""
    new = copy.deepcopy(current)
    spec, metadata = (v if isinstance(v, dict) else {} for v in (sent.get("spec"), sent.get("metadata")))
    containers = spec.get("ephemeralContainers")
    if containers:
        new.setdefault("spec", {})["ephemeralContainers"] = copy.deepcopy(containers)
    else:
        new.setdefault("spec", {}).pop("ephemeralContainers", None)
    if rv := metadata.get("resourceVersion"):
        new.setdefault("metadata", {})["resourceVersion"] = rv
    return new


def _zero(value: Any) -> bool:
    """Go's zero value as the decoded JSON shows it (an empty object or list counts as unset)."""
    if isinstance(value, dict):
        return all(_zero(v) for v in value.values())
    return value in (None, False, 0, "") or value == []


def validate_ephemeral_containers(spec: dict[str, Any], path: str) -> list[Cause]:
    """Checks on `spec.ephemeralContainers`: names unique across every container, the target a regular or
    init container, no field an ephemeral container may not have, volume mounts of known volumes."""
    ephemeral = spec.get("ephemeralContainers") or []
    if not isinstance(ephemeral, list):
        return []
    regular = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    others = {c.get("name") for c in regular if isinstance(c, dict)}
    volumes = {v.get("name") for v in spec.get("volumes") or [] if isinstance(v, dict)}
    names = set(others)
    causes: list[Cause] = []
    for i, c in enumerate(ephemeral):
        if not isinstance(c, dict):
            continue
        at = f"{path}.ephemeralContainers[{i}]"
        name = c.get("name") or ""
        if not isinstance(name, str):
            continue  # a wrong type: the schema check reports it
        if not name:
            causes.append(Cause(f"{at}.name", "Required value", "FieldValueRequired"))
        else:
            causes += [Cause(f"{at}.name", f'Invalid value: "{name}": {msg}') for msg in is_dns1123_label(name)]
        if not c.get("image"):
            causes.append(Cause(f"{at}.image", "Required value", "FieldValueRequired"))
        if name in names:
            causes.append(Cause(f"{at}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        names.add(name)
        target = c.get("targetContainerName") or ""
        if target and target not in others:
            causes.append(Cause(f"{at}.targetContainerName", f'Not found: "{target}"', "FieldValueNotFound"))
        for key in FORBIDDEN_FIELDS:
            if not _zero(c.get(key)):
                causes.append(Cause(f"{at}.{key}", _CANNOT, "FieldValueForbidden"))
        for j, m in enumerate(c.get("volumeMounts") or []):
            if not isinstance(m, dict):
                continue
            if m.get("name") not in volumes:
                missing = f'Not found: "{m.get("name")}"'
                causes.append(Cause(f"{at}.volumeMounts[{j}].name", missing, "FieldValueNotFound"))
            for key in ("subPath", "subPathExpr"):
                if m.get(key):
                    causes.append(Cause(f"{at}.volumeMounts[{j}].{key}", _CANNOT, "FieldValueForbidden"))
    return causes


def _diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The changed fields, one `-`/`+` line pair each (upstream prints go-cmp's diff here)."""
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if key in old:
                lines.append(f"- {key}: {json.dumps(old[key], sort_keys=True)}")
            if key in new:
                lines.append(f"+ {key}: {json.dumps(new[key], sort_keys=True)}")
    return "\n".join(lines)


def validate_ephemeral_containers_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """What ValidatePodEphemeralContainersUpdate refuses: static pods, and removed or changed entries."""
    if _MIRROR in ((old.get("metadata") or {}).get("annotations") or {}):
        return [Cause("", "Forbidden: static pods do not support ephemeral containers", "FieldValueForbidden")]
    path = "spec.ephemeralContainers"
    added = (new.get("spec") or {}).get("ephemeralContainers") or []
    by_name = {c.get("name"): c for c in added if isinstance(c, dict)}
    causes = []
    for before in (old.get("spec") or {}).get("ephemeralContainers") or []:
        if not isinstance(before, dict):
            continue
        name = before.get("name")
        after = by_name.get(name)
        if after is None:
            why = f'Forbidden: existing ephemeral containers "{name}" may not be removed\n'
            causes.append(Cause(path, why, "FieldValueForbidden"))
        elif after != before:
            why = f'Forbidden: existing ephemeral containers "{name}" may not be changed\n{_diff(before, after)}'
            causes.append(Cause(path, why, "FieldValueForbidden"))
    return causes
