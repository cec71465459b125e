"""The Job controller (upstream pkg/controller/job): run pods until enough succeed, or give up
on the backoff limit or the active deadline; Indexed jobs give each pod a completion index;
finished jobs with ttlSecondsAfterFinished are deleted once the TTL passes."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apimachinery.errors import StatusError
from client.request import DeleteOptions, Obj, Preconditions
from client.store import meta_key
from controller_manager.base import Controller, owner_key
from controller_manager.controllers import register
from controller_manager.controllers.job_status import (
    INDEX_ANNOTATION,
    condition,
    format_indexes,
    is_finished,
    now_str,
    parse_indexes,
    parse_time,
    pod_index,
    set_condition,
)
from controller_manager.expectations import Expectations
from controller_manager.podtemplate import is_pod_active, is_pod_ready, pod_from_template

__all__ = ["JobController", "PodCounts", "count_pods", "want_active"]

OWNER_INDEX = "job:controller-uid"
MAX_BACKOFF = 600.0
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
BACKOFF_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")


def _job_owner_uid(pod: Obj) -> list[str]:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "Job":
            return [ref.get("uid", "")]
    return []


@dataclass
class PodCounts:
    """A job's pods sorted by state."""

    active: list[Obj] = field(default_factory=list)
    terminating: list[Obj] = field(default_factory=list)
    succeeded: list[Obj] = field(default_factory=list)
    failed: list[Obj] = field(default_factory=list)

    @property
    def ready(self) -> int:
        """Active pods whose Ready condition is True."""
        return sum(1 for p in self.active if is_pod_ready(p))


def count_pods(pods: list[Obj]) -> PodCounts:
    """Classify pods: active, terminating (being deleted, not finished), succeeded, failed."""
    out = PodCounts()
    for p in pods:
        phase = (p.get("status") or {}).get("phase")
        if phase == "Succeeded":
            out.succeeded.append(p)
        elif phase == "Failed":
            out.failed.append(p)
        elif (p.get("metadata") or {}).get("deletionTimestamp"):
            out.terminating.append(p)
        elif is_pod_active(p):
            out.active.append(p)
    return out


def want_active(spec: Obj, succeeded: int, active: int) -> int:
    """How many pods a NonIndexed job should have running (upstream manageJob)."""
    parallelism = int(spec.get("parallelism", 1) or 0)
    completions = spec.get("completions")
    if completions is None:
        return active if succeeded > 0 else parallelism
    return max(0, min(parallelism, int(completions) - succeeded))


def _restarts_exceed(job: Obj, pods: list[Obj]) -> bool:
    """upstream pastBackoffLimitOnFailure: container restarts of running pods under OnFailure."""
    spec = job.get("spec") or {}
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    total = 0
    for p in pods:
        st = p.get("status") or {}
        if st.get("phase") in ("Running", "Pending"):
            for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
                total += int(cs.get("restartCount") or 0)
    limit = int(spec.get("backoffLimit", 6))
    return total > 0 if limit == 0 else total >= limit


@register
class JobController(Controller):
    """Reconciles Jobs with their pods."""

    name = "job"
    workers = 2

    def setup(self) -> None:
        """Watch jobs and the pods they control."""
        self.expectations = Expectations()
        self._failures: dict[str, tuple[int, float]] = {}
        self.jobs = self.ctx.factory.informer("jobs")
        self.jobs.add_handler(**self.handlers())
        self.pods = self.ctx.factory.informer("pods", indexers={OWNER_INDEX: _job_owner_uid})
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    # -- handlers ----------------------------------------------------------------------

    def _pod_added(self, pod: Obj) -> None:
        key = owner_key(pod, "Job")
        if key:
            self.expectations.creation_observed(key)
            self.enqueue_key(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = owner_key(new, "Job")
        if key:
            self.enqueue_key(key)
        old_key = owner_key(old, "Job")
        if old_key and old_key != key:
            self.enqueue_key(old_key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = owner_key(pod, "Job")
        if key:
            self.expectations.deletion_observed(key, meta_key(pod))
            self.enqueue_key(key)

    # -- reconcile ---------------------------------------------------------------------

    def _backoff_base(self) -> float:
        return self.ctx.option("job-pod-failure-backoff", 10.0)

    async def sync(self, key: str) -> None:
        """Reconcile one Job."""
        job = self.jobs.store.get(key)
        if job is None:
            self.expectations.forget(key)
            self._failures.pop(key, None)
            return
        if (job.get("metadata") or {}).get("deletionTimestamp"):
            return
        now = datetime.now(UTC)
        if is_finished(job):
            await self._handle_ttl(key, job, now)
            return
        uid = job["metadata"]["uid"]
        pods = self.pods.store.by_index(OWNER_INDEX, uid)
        await self._reconcile(key, job, pods, now)

    async def _handle_ttl(self, key: str, job: Obj, now: datetime) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        status = job.get("status") or {}
        finished = parse_time(status.get("completionTime"))
        if finished is None:
            c = condition(job, "Failed") or condition(job, "Complete") or {}
            finished = parse_time(c.get("lastTransitionTime")) or now
        expire = finished + timedelta(seconds=int(ttl))
        if now < expire:
            self.requeue_after(key, (expire - now).total_seconds() + 0.05)
            return
        meta = job["metadata"]
        try:
            await self.api.delete(
                "jobs",
                meta["name"],
                meta["namespace"],
                options=DeleteOptions(propagation_policy="Background", preconditions=Preconditions(uid=meta["uid"])),
            )
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    async def _reconcile(self, key: str, job: Obj, pods: list[Obj], now: datetime) -> None:
        spec = job.get("spec") or {}
        old_status = job.get("status") or {}
        status: dict[str, Any] = copy.deepcopy(old_status)
        conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
        ts = now_str(now)
        counts = count_pods(pods)
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        suspended = bool(spec.get("suspend"))

        if not suspended and not status.get("startTime"):
            status["startTime"] = ts
        succeeded = max(int(old_status.get("succeeded") or 0), len(counts.succeeded))
        failed = max(int(old_status.get("failed") or 0), len(counts.failed))
        completed: set[int] = set()
        if indexed and completions is not None:
            completed = parse_indexes(old_status.get("completedIndexes"), int(completions))
            for p in counts.succeeded:
                i = pod_index(p)
                if i is not None and i < int(completions):
                    completed.add(i)
            status["completedIndexes"] = format_indexes(completed)

        # Terminal decisions (upstream sets an interim FailureTarget / SuccessCriteriaMet first).
        failure = condition(job, "FailureTarget")
        success = condition(job, "SuccessCriteriaMet")
        if not failure and not success:
            if failed > int(spec.get("backoffLimit", 6)) or _restarts_exceed(job, counts.active):
                set_condition(conditions, "FailureTarget", "True", *BACKOFF_EXCEEDED, ts)
                failure = {"reason": BACKOFF_EXCEEDED[0], "message": BACKOFF_EXCEEDED[1]}
            elif self._deadline_passed(spec, status, now, suspended):
                set_condition(conditions, "FailureTarget", "True", *DEADLINE_EXCEEDED, ts)
                failure = {"reason": DEADLINE_EXCEEDED[0], "message": DEADLINE_EXCEEDED[1]}
            elif self._complete(spec, indexed, completed, succeeded, counts):
                set_condition(conditions, "SuccessCriteriaMet", "True", *COMPLETIONS_REACHED, ts)
                success = {"reason": COMPLETIONS_REACHED[0]}

        deleted = 0
        if failure or success:
            deleted = await self._delete_pods(key, job, counts.active)
            if failure:
                # upstream isPodFailed: a deleted pod that did not succeed counts as failed
                failed += deleted
            if not counts.active and not counts.terminating:
                if failure:
                    reason, message = failure["reason"], failure["message"]
                    set_condition(conditions, "Failed", "True", reason, message, ts)
                    self.events.record(job, "Warning", reason, message)
                else:
                    set_condition(conditions, "Complete", "True", *COMPLETIONS_REACHED, ts)
                    status["completionTime"] = ts
                    self.events.record(job, "Normal", "Completed", "Job completed")
        elif suspended:
            deleted = await self._delete_pods(key, job, counts.active)
            if set_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", ts):
                self.events.record(job, "Normal", "Suspended", "Job suspended")
        else:
            if condition(job, "Suspended") and set_condition(
                conditions, "Suspended", "False", "JobResumed", "Job resumed", ts
            ):
                status["startTime"] = ts
                self.events.record(job, "Normal", "Resumed", "Job resumed")
            if self.expectations.satisfied(key):
                deleted = await self._manage(key, job, counts, indexed, completed, succeeded, failed)
            self._requeue_deadline(key, spec, status, now)

        status["active"] = len(counts.active) - deleted
        status["ready"] = counts.ready
        status["terminating"] = len(counts.terminating) + deleted
        status["succeeded"] = succeeded
        status["failed"] = failed
        # Pods are counted straight from the pod list (no job-tracking finalizer), so nothing is ever uncounted.
        status["uncountedTerminatedPods"] = {}
        for k in ("active", "succeeded", "failed", "completedIndexes"):
            if not status.get(k):
                status.pop(k, None)  # omitempty in batch/v1 (ready and terminating are pointers: kept at 0)
        if not conditions:
            status.pop("conditions")
        if status != old_status:
            body = {**job, "status": status}
            await self.api.update_status("jobs", body, job["metadata"]["namespace"])

    @staticmethod
    def _deadline_passed(spec: Obj, status: Obj, now: datetime, suspended: bool) -> bool:
        deadline = spec.get("activeDeadlineSeconds")
        start = parse_time(status.get("startTime"))
        if deadline is None or start is None or suspended:
            return False
        return now >= start + timedelta(seconds=int(deadline))

    def _requeue_deadline(self, key: str, spec: Obj, status: Obj, now: datetime) -> None:
        deadline = spec.get("activeDeadlineSeconds")
        start = parse_time(status.get("startTime"))
        if deadline is not None and start is not None:
            self.requeue_after(key, (start + timedelta(seconds=int(deadline)) - now).total_seconds() + 0.05)

    @staticmethod
    def _complete(spec: Obj, indexed: bool, completed: set[int], succeeded: int, counts: PodCounts) -> bool:
        completions = spec.get("completions")
        if indexed and completions is not None:
            return len(completed) >= int(completions)
        if completions is None:
            return succeeded > 0 and not counts.active
        return succeeded >= int(completions)

    def _creation_delay(self, key: str, failed: int) -> float:
        """Seconds still to wait before creating replacement pods after `failed` failures (exponential)."""
        if failed <= 0:
            self._failures.pop(key, None)
            return 0.0
        seen = self._failures.get(key)
        if seen is None or seen[0] != failed:
            seen = self._failures[key] = (failed, time.monotonic())
        delay = min(self._backoff_base() * 2 ** (failed - 1), MAX_BACKOFF)
        return delay - (time.monotonic() - seen[1])

    async def _manage(
        self,
        key: str,
        job: Obj,
        counts: PodCounts,
        indexed: bool,
        completed: set[int],
        succeeded: int,
        failed: int,
    ) -> int:
        """Create or delete pods towards the wanted number; the number deleted."""
        spec = job.get("spec") or {}
        active = counts.active
        parallelism = int(spec.get("parallelism", 1) or 0)
        to_create: list[int | None] = []
        to_delete: list[Obj] = []
        if indexed and spec.get("completions") is not None:
            completions = int(spec["completions"])
            seen: set[int] = set()
            keep: list[Obj] = []
            for p in sorted(
                active, key=lambda p: (not is_pod_ready(p), (p["metadata"].get("creationTimestamp") or ""))
            ):
                i = pod_index(p)
                if i is None or i >= completions or i in completed or i in seen:
                    to_delete.append(p)
                else:
                    seen.add(i)
                    keep.append(p)
            wanted = max(0, min(parallelism, completions - len(completed)))
            if len(keep) > wanted:
                extra = sorted(keep, key=lambda p: pod_index(p) or 0, reverse=True)[: len(keep) - wanted]
                to_delete.extend(extra)
            else:
                free = [i for i in range(completions) if i not in completed and i not in seen]
                to_create = list(free[: wanted - len(keep)])
        else:
            wanted = want_active(spec, succeeded, len(active))
            if len(active) > wanted:
                ordered = sorted(
                    active, key=lambda p: (is_pod_ready(p), (p["metadata"].get("creationTimestamp") or ""))
                )
                to_delete = ordered[: len(active) - wanted]
            else:
                to_create = [None] * (wanted - len(active))
        deleted = await self._delete_pods(key, job, to_delete)
        if to_create:
            delay = self._creation_delay(key, failed)
            if delay > 0:
                self.requeue_after(key, delay)
                return deleted
            self.expectations.expect_creations(key, len(to_create))
            for index in to_create:
                await self._create_pod(key, job, index)
        return deleted

    def _pod_for(self, job: Obj, index: int | None) -> Obj:
        name = job["metadata"]["name"]
        template = (job.get("spec") or {}).get("template") or {}
        if index is None:
            return pod_from_template(job, template, generate_name=f"{name}-")
        pod = pod_from_template(job, template, generate_name=f"{name}-{index}-")
        pod["metadata"]["annotations"][INDEX_ANNOTATION] = str(index)
        pod["metadata"]["labels"][INDEX_ANNOTATION] = str(index)
        pod_spec = pod["spec"]
        if not pod_spec.get("hostname"):
            pod_spec["hostname"] = f"{name}-{index}"
        env_var = {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}},
        }
        for c in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []):
            env = c.setdefault("env", [])
            if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in env):
                env.append(dict(env_var))
        return pod

    async def _create_pod(self, key: str, job: Obj, index: int | None) -> None:
        ns = job["metadata"]["namespace"]
        try:
            created = await self.api.create("pods", self._pod_for(job, index), ns)
        except StatusError as e:
            self.expectations.creation_observed(key)
            self.events.record(job, "Warning", "FailedCreate", f"Error creating: {e}")
            raise
        except BaseException:
            self.expectations.creation_observed(key)
            raise
        self.events.record(job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    async def _delete_pods(self, key: str, job: Obj, pods: list[Obj]) -> int:
        if not pods:
            return 0
        self.expectations.expect_deletions(key, [meta_key(p) for p in pods])
        done = 0
        for p in pods:
            meta = p["metadata"]
            try:
                await self.api.delete("pods", meta["name"], meta["namespace"])
                done += 1
                self.events.record(job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")
            except StatusError as e:
                self.expectations.deletion_observed(key, meta_key(p))
                if e.code != 404:
                    self.events.record(job, "Warning", "FailedDelete", f"Error deleting: {e}")
                    raise
        return done
