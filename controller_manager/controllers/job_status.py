"""Pure pieces of the Job controller: completion-index sets, conditions and pod classification."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from client.request import Obj

__all__ = [
    "INDEX_ANNOTATION",
    "condition",
    "format_indexes",
    "is_finished",
    "now_str",
    "parse_indexes",
    "parse_time",
    "pod_index",
    "set_condition",
]

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
_TIME = "%Y-%m-%dT%H:%M:%SZ"


def now_str(now: datetime | None = None) -> str:
    """RFC 3339 (seconds) UTC timestamp as the API writes it."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime(_TIME)


def parse_time(s: str | None) -> datetime | None:
    """Parse an API timestamp (None stays None)."""
    if not s:
        return None
    s = s.replace("Z", "+00:00")
    return datetime.fromisoformat(s).astimezone(UTC)


def format_indexes(indexes: Iterable[int]) -> str:
    """Sorted indexes in upstream's compressed form: {0,1,2,4} → "0-2,4"."""
    out: list[str] = []
    ordered = sorted(set(indexes))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def parse_indexes(s: str | None, completions: int) -> set[int]:
    """The indexes in a "0-2,4" string that are below `completions` (malformed parts ignored)."""
    out: set[int] = set()
    for part in (s or "").split(","):
        a, dash, b = part.strip().partition("-")
        try:
            lo = int(a)
            hi = int(b) if dash else lo
        except ValueError:
            continue
        out.update(i for i in range(lo, hi + 1) if 0 <= i < completions)
    return out


def pod_index(pod: Obj) -> int | None:
    """The completion index a pod carries (annotation, else label), or None when absent or invalid."""
    meta = pod.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(INDEX_ANNOTATION) or (meta.get("labels") or {}).get(INDEX_ANNOTATION)
    if raw is None or not str(raw).isdigit():
        return None
    return int(raw)


def condition(job: Obj, type_: str) -> dict[str, Any] | None:
    """The job's condition of this type with status True, if any."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return c
    return None


def is_finished(job: Obj) -> str | None:
    """ "Complete" or "Failed" when the job has that terminal condition, else None."""
    for t in ("Complete", "Failed"):
        if condition(job, t):
            return t
    return None


def set_condition(
    conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str, now: str
) -> bool:
    """Add or update a condition in place; True when anything changed (transition time moves on status change)."""
    for c in conditions:
        if c.get("type") == type_:
            if c.get("status") == status and c.get("reason") == reason and c.get("message") == message:
                return False
            if c.get("status") != status:
                c["lastTransitionTime"] = now
            c.update(status=status, reason=reason, message=message, lastProbeTime=now)
            return True
    conditions.append(
        {
            "type": type_,
            "status": status,
            "lastProbeTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
    )
    return True
