"""Pure helpers of the ReplicaSet/ReplicationController controllers (upstream pkg/controller/replicaset and
controller_utils.go): which pods to delete first, slow-start batches, status calculation, and the
ControllerRefManager that adopts and releases dependents."""

from __future__ import annotations

import asyncio
import copy
import functools
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from apimachinery.errors import StatusError
from apimachinery.selectors import LabelSelector, selector_from_map
from client.request import Obj, PatchType
from client.rest import ApiClient
from controller_manager.podtemplate import controller_ref, is_pod_active, is_pod_available, is_pod_ready

__all__ = [
    "BURST_REPLICAS",
    "DELETION_COST_ANNOTATION",
    "SLOW_START_INITIAL_BATCH_SIZE",
    "ControllerRefManager",
    "calculate_status",
    "controller_of",
    "format_time",
    "get_pods_to_delete",
    "is_pod_terminating",
    "logarithmic_rank_diff",
    "parse_time",
    "pod_deletion_less",
    "rank_pods_for_deletion",
    "set_condition",
    "slow_start_batch",
]

BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH_SIZE = 1
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 metav1.Time (with or without fractional seconds) as an aware datetime; None if absent."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def format_time(t: datetime) -> str:
    """A datetime as Kubernetes writes metav1.Time."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def controller_of(obj: Obj) -> dict[str, Any] | None:
    """The ownerReference with controller=true, if any (metav1.GetControllerOf)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def is_pod_terminating(pod: Obj) -> bool:
    """Being deleted but not yet Succeeded/Failed (upstream controller.FilterTerminatingPods)."""
    phase = (pod.get("status") or {}).get("phase")
    return bool((pod.get("metadata") or {}).get("deletionTimestamp")) and phase not in ("Succeeded", "Failed")


# --- which pods go first on scale-down (controller.ActivePodsWithRanks) ------------------------------


def _ready_time(pod: Obj) -> datetime | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def _deletion_cost(pod: Obj) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST_ANNOTATION)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _max_restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def logarithmic_rank_diff(t1: datetime, t2: datetime, now: datetime) -> int:
    """Compare two timestamps by the log2 of their age in nanoseconds (upstream logarithmicRankDiff)."""

    def rank(t: datetime) -> int:
        d = (now - t).total_seconds() * 1e9
        return int(math.log2(d)) if d > 0 else -1

    return rank(t1) - rank(t2)


def _after_or_zero(t1: datetime | None, t2: datetime | None) -> bool:
    """Zero time first, then later times first (upstream afterOrZero)."""
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


def _time_less(t1: datetime | None, t2: datetime | None, u1: str, u2: str, now: datetime | None) -> bool:
    if now is None or t1 is None or t2 is None:
        return _after_or_zero(t1, t2)
    diff = logarithmic_rank_diff(t1, t2, now)
    if diff == 0:
        return u1 < u2
    return diff < 0


def pod_deletion_less(a: Obj, b: Obj, rank_a: int, rank_b: int, now: datetime | None) -> bool:
    """Whether pod `a` should be deleted before pod `b` (upstream ActivePodsWithRanks.Less)."""
    na, nb = (a.get("spec") or {}).get("nodeName") or "", (b.get("spec") or {}).get("nodeName") or ""
    # 1. unassigned < assigned
    if na != nb and (not na or not nb):
        return not na
    # 2. Pending < Unknown < Running
    pa = _PHASE_ORDINAL.get((a.get("status") or {}).get("phase") or "", 0)
    pb = _PHASE_ORDINAL.get((b.get("status") or {}).get("phase") or "", 0)
    if pa != pb:
        return pa < pb
    # 3. not ready < ready
    ra, rb = is_pod_ready(a), is_pod_ready(b)
    if ra != rb:
        return not ra
    # 4. lower pod-deletion-cost < higher
    ca, cb = _deletion_cost(a), _deletion_cost(b)
    if ca != cb:
        return ca < cb
    # 5. doubled up (more related pods on the same node) < not doubled up
    if rank_a != rank_b:
        return rank_a > rank_b
    ua, ub = (a.get("metadata") or {}).get("uid", ""), (b.get("metadata") or {}).get("uid", "")
    # 6. ready for less time < more time (logarithmic buckets)
    if ra and rb:
        ta, tb = _ready_time(a), _ready_time(b)
        if ta != tb:
            return _time_less(ta, tb, ua, ub, now)
    # 7. more container restarts < fewer
    xa, xb = _max_restarts(a), _max_restarts(b)
    if xa != xb:
        return xa > xb
    # 8. newer < older (logarithmic buckets)
    ta = parse_time((a.get("metadata") or {}).get("creationTimestamp"))
    tb = parse_time((b.get("metadata") or {}).get("creationTimestamp"))
    if ta != tb:
        return _time_less(ta, tb, ua, ub, now)
    return False


def rank_pods_for_deletion(pods: Sequence[Obj], ranks: Sequence[int], now: datetime | None) -> list[Obj]:
    """`pods` sorted so that the ones to delete first come first."""
    items = list(zip(pods, ranks, strict=True))

    def cmp(x: tuple[Obj, int], y: tuple[Obj, int]) -> int:
        if pod_deletion_less(x[0], y[0], x[1], y[1], now):
            return -1
        if pod_deletion_less(y[0], x[0], y[1], x[1], now):
            return 1
        return 0

    items.sort(key=functools.cmp_to_key(cmp))
    return [p for p, _ in items]


def get_pods_to_delete(
    filtered: Sequence[Obj], related: Iterable[Obj], diff: int, now: datetime | None = None
) -> list[Obj]:
    """The `diff` pods to delete: ranked by related pods doubled up on the same node (upstream getPodsToDelete)."""
    if diff < len(filtered):
        on_node: dict[str, int] = {}
        for p in related:
            if is_pod_active(p):
                node = (p.get("spec") or {}).get("nodeName") or ""
                on_node[node] = on_node.get(node, 0) + 1
        ranks = [on_node.get((p.get("spec") or {}).get("nodeName") or "", 0) for p in filtered]
        filtered = rank_pods_for_deletion(filtered, ranks, now or datetime.now(UTC))
    return list(filtered[:diff])


async def slow_start_batch(count: int, initial: int, fn: Callable[[], Awaitable[None]]) -> tuple[int, Exception | None]:
    """Call `fn` `count` times in batches of 1, 2, 4, ... stopping after a batch with an error.

    Returns (successes, first error) like upstream slowStartBatch."""
    remaining, successes = count, 0
    batch = min(remaining, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for e in errors:
            if not isinstance(e, Exception):
                raise e
        successes += batch - len(errors)
        if errors:
            return successes, errors[0]  # type: ignore[return-value]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


# --- status -------------------------------------------------------------------------------------


def set_condition(conditions: list[Obj], cond: Obj) -> list[Obj]:
    """Upstream SetCondition: replace the condition of that type unless status and reason are unchanged."""
    for c in conditions:
        if c.get("type") == cond["type"] and c.get("status") == cond["status"] and c.get("reason") == cond["reason"]:
            return conditions
    return [c for c in conditions if c.get("type") != cond["type"]] + [cond]


def _template_labels(owner: Obj) -> dict[str, str]:
    return (((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def calculate_status(
    owner: Obj, pods: Sequence[Obj], manage_error: Exception | None, now: datetime, terminating: int | None = None
) -> Obj:
    """The owner's new status (without observedGeneration) from its active pods (upstream calculateStatus).

    `terminating` (pods being deleted, not yet terminal) is reported for ReplicaSets as 1.35 does
    (DeploymentReplicaSetTerminatingReplicas, beta and on by default); None leaves the field out."""
    spec = owner.get("spec") or {}
    status = copy.deepcopy(owner.get("status") or {})
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_selector = selector_from_map(_template_labels(owner))
    fully_labeled = ready = available = 0
    for p in pods:
        if template_selector.matches((p.get("metadata") or {}).get("labels") or {}):
            fully_labeled += 1
        if is_pod_ready(p):
            ready += 1
            if is_pod_available(p, min_ready, now):
                available += 1
    conditions: list[Obj] = list(status.get("conditions") or [])
    failure = next((c for c in conditions if c.get("type") == "ReplicaFailure"), None)
    if manage_error is not None and failure is None:
        diff = len(pods) - int(spec.get("replicas", 1))
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        cond = {
            "type": "ReplicaFailure",
            "status": "True",
            "lastTransitionTime": format_time(now),
            "reason": reason,
            "message": str(manage_error),
        }
        conditions = set_condition(conditions, cond)
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    status["replicas"] = len(pods)
    # Zero values are omitted, as Go's omitempty does.
    counts = {"fullyLabeledReplicas": fully_labeled, "readyReplicas": ready, "availableReplicas": available}
    for field, value in counts.items():
        if value:
            status[field] = value
        else:
            status.pop(field, None)
    if terminating is not None:
        status["terminatingReplicas"] = terminating
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    return status


# --- adoption and release (controller.BaseControllerRefManager) --------------------------------------


class ControllerRefManager:
    """Claims dependents for one owner: keeps owned matching ones, adopts matching orphans, releases the rest."""

    def __init__(
        self,
        api: ApiClient,
        owner: Obj,
        selector: LabelSelector,
        resource: str,
        can_adopt: Callable[[], Awaitable[None]],
    ) -> None:
        self.api = api
        self.owner = owner
        self.selector = selector
        self.resource = resource
        self._can_adopt = can_adopt
        self._adopt_checked: Exception | bool = False
        meta = owner.get("metadata") or {}
        self.uid = meta.get("uid", "")
        self.being_deleted = bool(meta.get("deletionTimestamp"))

    async def claim(self, objs: Iterable[Obj], match: Callable[[Obj], bool] | None = None) -> list[Obj]:
        """The objects this owner controls after adopting/releasing; raises the first error after trying all."""
        claimed: list[Obj] = []
        errors: list[Exception] = []
        for obj in objs:
            try:
                if await self._claim_one(obj, match):
                    claimed.append(obj)
            except StatusError as e:
                errors.append(e)
            except RuntimeError as e:
                errors.append(e)
        if errors:
            raise errors[0]
        return claimed

    def _matches(self, obj: Obj, match: Callable[[Obj], bool] | None) -> bool:
        if not self.selector.matches((obj.get("metadata") or {}).get("labels") or {}):
            return False
        return match(obj) if match else True

    async def _claim_one(self, obj: Obj, match: Callable[[Obj], bool] | None) -> bool:
        meta = obj.get("metadata") or {}
        ref = controller_of(obj)
        if ref is not None:
            if ref.get("uid") != self.uid:
                return False
            if self._matches(obj, match):
                return True
            if self.being_deleted:
                return False
            await self._release(obj)
            return False
        if self.being_deleted or not self._matches(obj, match) or meta.get("deletionTimestamp"):
            return False
        if meta.get("namespace") != (self.owner.get("metadata") or {}).get("namespace"):
            return False
        try:
            await self._adopt(obj)
        except StatusError as e:
            if e.code == 404:
                return False
            raise
        return True

    async def _check_can_adopt(self) -> None:
        if self._adopt_checked is False:
            try:
                await self._can_adopt()
                self._adopt_checked = True
            except Exception as e:  # remembered so every orphan gets the same answer
                self._adopt_checked = e
        if isinstance(self._adopt_checked, Exception):
            raise self._adopt_checked

    async def _adopt(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        try:
            await self._check_can_adopt()
        except Exception as e:
            what = f"{obj.get('kind') or self.resource} {meta.get('namespace')}/{meta.get('name')} ({meta.get('uid')})"
            raise RuntimeError(f"can't adopt {what}: {e}") from e
        patch = {
            "metadata": {
                "ownerReferences": [controller_ref(self.owner)],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        await self.api.patch(self.resource, meta["name"], patch, meta.get("namespace"), patch_type=PatchType.STRATEGIC)

    async def _release(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": self.uid}], "uid": meta.get("uid")}}
        try:
            await self.api.patch(
                self.resource, meta["name"], patch, meta.get("namespace"), patch_type=PatchType.STRATEGIC
            )
        except StatusError as e:
            if e.code in (404, 422):  # gone, or the reference is already gone
                return
            raise
