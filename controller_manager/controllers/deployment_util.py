"""Pure helpers of the Deployment controller (upstream pkg/controller/deployment/util and
controller.ComputeHash): template hashing, new/old ReplicaSet detection, revisions and their
annotations, surge/unavailability fenceposts, proportional scaling, status and conditions."""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from client.request import Obj
from controller_manager.controllers.replicaset_util import format_time, parse_time

__all__ = [
    "DESIRED_REPLICAS_ANNOTATION",
    "HASH_LABEL",
    "MAX_REPLICAS_ANNOTATION",
    "REVISION_ANNOTATION",
    "REVISION_HISTORY_ANNOTATION",
    "calculate_status",
    "compute_hash",
    "deployment_complete",
    "deployment_progressing",
    "deployment_timed_out",
    "equal_ignore_hash",
    "filter_active",
    "find_active_or_latest",
    "find_new_replica_set",
    "find_old_replica_sets",
    "get_condition",
    "is_saturated",
    "max_revision",
    "max_surge",
    "max_unavailable",
    "new_condition",
    "new_rs_new_replicas",
    "proportional_sizes",
    "remove_condition",
    "replicas",
    "resolve_fenceposts",
    "revision",
    "safe_encode_string",
    "scaled_value",
    "set_condition",
    "set_new_replica_set_annotations",
    "set_replicas_annotations",
    "sort_by_creation",
    "sort_by_revision",
]

HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
MAX_REV_HISTORY_LENGTH_IN_CHARS = 2000
MAX_INT32 = 2**31 - 1

# Condition reasons (upstream deploymentutil).
NEW_RS_REASON = "NewReplicaSetCreated"
FOUND_NEW_RS_REASON = "FoundNewReplicaSet"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"
RS_UPDATED_REASON = "ReplicaSetUpdated"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
PAUSED_REASON = "DeploymentPaused"
RESUMED_REASON = "DeploymentResumed"
FAILED_RS_CREATE_REASON = "ReplicaSetCreateError"
MIN_AVAILABLE_REASON = "MinimumReplicasAvailable"
MIN_UNAVAILABLE_REASON = "MinimumReplicasUnavailable"

_ANNOTATIONS_TO_SKIP = {
    LAST_APPLIED_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    ROLLBACK_TO_ANNOTATION,
}
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


# --- hashing and template equality -------------------------------------------------------------------


def _normalize(v: Any) -> Any:
    """Drop null, {} and [] members: Go's semantic equality treats nil and empty alike."""
    if isinstance(v, dict):
        out = {k: _normalize(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x is not None and x != {} and x != []}
    if isinstance(v, list):
        return [_normalize(x) for x in v]
    return v


def safe_encode_string(s: str) -> str:
    """Map each byte onto consonants and digits so the result can't spell words (upstream rand.SafeEncodeString)."""
    return "".join(_ALPHANUMS[b % len(_ALPHANUMS)] for b in s.encode())


def _fnv32a(data: bytes, h: int = 0x811C9DC5) -> int:
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """The pod-template-hash: fnv32a of the template (+ collisionCount), SafeEncodeString'd (controller.ComputeHash).

    Upstream hashes Go's spew dump of the struct; we hash canonical JSON of the normalized template,
    which is just as deterministic."""
    h = _fnv32a(json.dumps(_normalize(template), sort_keys=True, separators=(",", ":")).encode())
    if collision_count is not None:
        h = _fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0", h)
    return safe_encode_string(str(h))


def _without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return _normalize(t)


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Whether two pod templates are equal apart from the pod-template-hash label (EqualIgnoreHash)."""
    return _without_hash(a) == _without_hash(b)


# --- small accessors ---------------------------------------------------------------------------------


def replicas(obj: Obj | None) -> int:
    """spec.replicas (1 when unset, as defaulted)."""
    if obj is None:
        return 0
    v = (obj.get("spec") or {}).get("replicas")
    return 1 if v is None else int(v)


def _status(obj: Obj | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def _annotations(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _int_annotation(obj: Obj, key: str) -> int | None:
    try:
        return int(_annotations(obj)[key])
    except (KeyError, ValueError):
        return None


def revision(rs: Obj) -> int:
    """The ReplicaSet's revision annotation (0 if absent or invalid)."""
    v = _int_annotation(rs, REVISION_ANNOTATION)
    return v if v is not None else 0


def max_revision(rss: Iterable[Obj]) -> int:
    """The largest revision among `rss`."""
    return max((revision(rs) for rs in rss), default=0)


def filter_active(rss: Iterable[Obj | None]) -> list[Obj]:
    """ReplicaSets with spec.replicas > 0."""
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def _creation_key(rs: Obj) -> tuple[str, str]:
    m = rs.get("metadata") or {}
    t = parse_time(m.get("creationTimestamp"))
    return (t.isoformat() if t else "", m.get("name", ""))


def sort_by_creation(rss: Iterable[Obj], newest_first: bool = False) -> list[Obj]:
    """By creationTimestamp, then name (controller.ReplicaSetsByCreationTimestamp)."""
    return sorted(rss, key=_creation_key, reverse=newest_first)


def sort_by_revision(rss: Iterable[Obj]) -> list[Obj]:
    """By revision, then creation (deploymentutil.ReplicaSetsByRevision)."""
    return sorted(rss, key=lambda rs: (revision(rs), _creation_key(rs)))


def _sort_by_size(rss: Sequence[Obj], newer_first_on_tie: bool) -> list[Obj]:
    def cmp(a: Obj, b: Obj) -> int:
        if replicas(a) != replicas(b):
            return -1 if replicas(a) > replicas(b) else 1
        ka, kb = _creation_key(a), _creation_key(b)
        if ka == kb:
            return 0
        older_first = -1 if ka < kb else 1
        return -older_first if newer_first_on_tie else older_first

    return sorted(rss, key=functools.cmp_to_key(cmp))


# --- new and old ReplicaSets -------------------------------------------------------------------------


def _template(obj: Obj) -> Obj:
    return (obj.get("spec") or {}).get("template") or {}


def find_new_replica_set(d: Obj, rss: Iterable[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template equals the deployment's, ignoring the hash label."""
    for rs in sort_by_creation(rss):
        if equal_ignore_hash(_template(rs), _template(d)):
            return rs
    return None


def find_old_replica_sets(d: Obj, rss: Iterable[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(old ReplicaSets with pods, all old ReplicaSets)."""
    rss = list(rss)
    new = find_new_replica_set(d, rss)
    new_uid = (new or {}).get("metadata", {}).get("uid")
    all_old = [rs for rs in rss if new is None or rs["metadata"].get("uid") != new_uid]
    return [rs for rs in all_old if replicas(rs) != 0], all_old


# --- surge and unavailability ------------------------------------------------------------------------


def scaled_value(v: int | str | None, total: int, round_up: bool) -> int:
    """An int, or a percentage of `total` rounded up or down (intstr.GetScaledValueFromIntOrPercent)."""
    if v is None:
        return 0
    if isinstance(v, int):
        return v
    if not v.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {v!r}")
    pct = int(v[:-1])
    return math.ceil(pct * total / 100) if round_up else math.floor(pct * total / 100)


def _rolling(d: Obj) -> dict[str, Any] | None:
    strategy = (d.get("spec") or {}).get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return None
    return strategy.get("rollingUpdate") or {}


def resolve_fenceposts(surge: int | str | None, unavailable: int | str | None, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; both 0 becomes unavailable 1 (ResolveFenceposts)."""
    s = scaled_value(surge if surge is not None else 0, desired, True)
    u = scaled_value(unavailable if unavailable is not None else 0, desired, False)
    if s == 0 and u == 0:
        u = 1
    return s, u


def max_surge(d: Obj) -> int:
    """The deployment's maxSurge in pods (0 unless RollingUpdate)."""
    ru = _rolling(d)
    if ru is None:
        return 0
    return resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    """The deployment's maxUnavailable in pods, at most spec.replicas (0 unless RollingUpdate)."""
    ru = _rolling(d)
    if ru is None or replicas(d) == 0:
        return 0
    u = resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), replicas(d))[1]
    return min(u, replicas(d))


def new_rs_new_replicas(d: Obj, all_rss: Iterable[Obj | None], new_rs: Obj) -> int:
    """How big the new ReplicaSet may be now (NewRSNewReplicas)."""
    strategy = ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate")
    if strategy == "Recreate":
        return replicas(d)
    if strategy != "RollingUpdate":
        raise ValueError(f"deployment type {strategy} isn't supported")
    surge = scaled_value((_rolling(d) or {}).get("maxSurge"), replicas(d), True)
    current = sum(replicas(rs) for rs in all_rss if rs is not None)
    max_total = replicas(d) + surge
    if current >= max_total:
        return replicas(new_rs)
    scale_up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + scale_up


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """The new ReplicaSet has all the deployment's replicas, desired and available."""
    if rs is None:
        return False
    desired = _int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)
    n = replicas(d)
    return desired is not None and replicas(rs) == n and desired == n and _status(rs, "availableReplicas") == n


def find_active_or_latest(new_rs: Obj | None, old_rss: Sequence[Obj]) -> Obj | None:
    """The only active ReplicaSet; with none active, the newest; None when several are active."""
    if new_rs is None and not old_rss:
        return None
    olds = sort_by_creation(old_rss, newest_first=True)
    active = filter_active([*olds, new_rs])
    if not active:
        return new_rs if new_rs is not None else olds[0]
    return active[0] if len(active) == 1 else None


# --- annotations -------------------------------------------------------------------------------------


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    """Set desired-replicas/max-replicas on the ReplicaSet; whether anything changed."""
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS_ANNOTATION, str(desired)), (MAX_REPLICAS_ANNOTATION, str(max_replicas))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    """Whether desired-replicas/max-replicas differ from these values."""
    ann = _annotations(rs)
    return ann.get(DESIRED_REPLICAS_ANNOTATION) != str(desired) or ann.get(MAX_REPLICAS_ANNOTATION) != str(max_replicas)


def set_new_replica_set_annotations(
    d: Obj, rs: Obj, new_revision: str, exists: bool, limit: int = MAX_REV_HISTORY_LENGTH_IN_CHARS
) -> bool:
    """Copy the deployment's annotations, raise the revision (keeping revision-history), and on create set the
    replicas annotations (SetNewReplicaSetAnnotations); whether anything changed."""
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for k, v in _annotations(d).items():
        if k in _ANNOTATIONS_TO_SKIP or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    had_revision = REVISION_ANNOTATION in ann
    old_revision = ann.get(REVISION_ANNOTATION, "")
    try:
        old_int = int(old_revision) if old_revision else 0
    except ValueError:
        return False
    try:
        new_int = int(new_revision)
    except ValueError:
        return False
    if old_int < new_int:
        ann[REVISION_ANNOTATION] = new_revision
        changed = True
    if had_revision and old_int < new_int:
        history = ann.get(REVISION_HISTORY_ANNOTATION, "")
        olds = history.split(",")
        if not olds[0]:
            ann[REVISION_HISTORY_ANNOTATION] = old_revision
        else:
            total = len(history) + len(old_revision) + 1
            start = 0
            while total > limit and start < len(olds):
                total -= len(olds[start]) + 1
                start += 1
            if total <= limit:
                ann[REVISION_HISTORY_ANNOTATION] = ",".join([*olds[start:], old_revision])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


# --- proportional scaling ----------------------------------------------------------------------------


def _fraction(rs: Obj, d: Obj) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    d_max = replicas(d) + max_surge(d)
    before = _int_annotation(rs, MAX_REPLICAS_ANNOTATION)
    if not before:
        # Someone scaled the ReplicaSet by hand: fall back to the deployment's current size.
        before = _status(d, "replicas")
    if not before:
        return 0
    size = replicas(rs) * d_max / before
    return math.floor(size + 0.5) - replicas(rs)


def _proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Obj, active: Sequence[Obj]) -> list[tuple[Obj, int]]:
    """New sizes for the active ReplicaSets of a rolling deployment being scaled mid-rollout (upstream scale())."""
    total = sum(replicas(rs) for rs in active)
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - total
    ordered = list(active)
    if to_add > 0:
        ordered = _sort_by_size(ordered, newer_first_on_tie=True)
    elif to_add < 0:
        ordered = _sort_by_size(ordered, newer_first_on_tie=False)
    sizes: list[int] = []
    added = 0
    for rs in ordered:
        if to_add != 0:
            p = _proportion(rs, d, to_add, added)
            sizes.append(replicas(rs) + p)
            added += p
        else:
            sizes.append(replicas(rs))
    if ordered and to_add != 0:
        # Leftovers go to the largest ReplicaSet.
        sizes[0] = max(sizes[0] + to_add - added, 0)
    return list(zip(ordered, sizes, strict=True))


# --- status and conditions ---------------------------------------------------------------------------


def new_condition(type_: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    """A DeploymentCondition stamped now."""
    ts = format_time(now)
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": ts,
        "lastTransitionTime": ts,
        "reason": reason,
        "message": message,
    }


def get_condition(status: Obj, type_: str) -> Obj | None:
    """The condition of that type, if any."""
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def set_condition(status: Obj, cond: Obj) -> None:
    """Upstream SetDeploymentCondition: no-op on same status+reason; keep lastTransitionTime on same status."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    cond = dict(cond)
    if cur is not None and cur.get("status") == cond["status"]:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime")
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, type_: str) -> None:
    """Drop the condition of that type."""
    if "conditions" in status:
        status["conditions"] = [c for c in status["conditions"] if c.get("type") != type_]


def calculate_status(all_rss: Sequence[Obj | None], new_rs: Obj | None, d: Obj, now: datetime) -> Obj:
    """The deployment's status from its ReplicaSets (upstream calculateStatus); zero counts omitted."""
    rss = [rs for rs in all_rss if rs is not None]
    available = sum(_status(rs, "availableReplicas") for rs in rss)
    total = sum(replicas(rs) for rs in rss)
    old = d.get("status") or {}
    counts = {
        "observedGeneration": int((d.get("metadata") or {}).get("generation") or 0),
        "replicas": sum(_status(rs, "replicas") for rs in rss),
        "updatedReplicas": _status(new_rs, "replicas"),
        "readyReplicas": sum(_status(rs, "readyReplicas") for rs in rss),
        "availableReplicas": available,
        "unavailableReplicas": max(total - available, 0),
    }
    status: Obj = {k: v for k, v in counts.items() if v}
    terminating = [((rs.get("status") or {}).get("terminatingReplicas")) for rs in rss]
    if all(t is not None for t in terminating):
        # nil as soon as one ReplicaSet does not report it (GetTerminatingReplicaCountForReplicaSets)
        status["terminatingReplicas"] = sum(int(t) for t in terminating)
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    status["conditions"] = [dict(c) for c in old.get("conditions") or []]
    if available >= replicas(d) - max_unavailable(d):
        cond = new_condition("Available", "True", MIN_AVAILABLE_REASON, "Deployment has minimum availability.", now)
    else:
        msg = "Deployment does not have minimum availability."
        cond = new_condition("Available", "False", MIN_UNAVAILABLE_REASON, msg, now)
    set_condition(status, cond)
    return status


def has_progress_deadline(d: Obj) -> bool:
    """Whether progressDeadlineSeconds is set (and not MaxInt32)."""
    v = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return v is not None and int(v) != MAX_INT32


def deployment_complete(d: Obj, status: Obj) -> bool:
    """All replicas updated and available, and the latest generation observed."""
    n = replicas(d)
    return (
        int(status.get("updatedReplicas") or 0) == n
        and int(status.get("replicas") or 0) == n
        and int(status.get("availableReplicas") or 0) == n
        and int(status.get("observedGeneration") or 0) >= int((d.get("metadata") or {}).get("generation") or 0)
    )


def deployment_progressing(d: Obj, status: Obj) -> bool:
    """Whether the new status shows progress over the old one (DeploymentProgressing)."""
    old = d.get("status") or {}

    def g(s: Obj, f: str) -> int:
        return int(s.get(f) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(status, "replicas") - g(status, "updatedReplicas")
    return (
        g(status, "updatedReplicas") > g(old, "updatedReplicas")
        or new_old < old_old
        or g(status, "readyReplicas") > g(old, "readyReplicas")
        or g(status, "availableReplicas") > g(old, "availableReplicas")
    )


def deployment_timed_out(d: Obj, status: Obj, now: datetime) -> bool:
    """Whether no progress was reported within progressDeadlineSeconds (DeploymentTimedOut)."""
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.get("reason") == TIMED_OUT_REASON:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"])) < now
