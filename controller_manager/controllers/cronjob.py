"""The CronJob controller (upstream pkg/controller/cronjob, v2): create a Job at each scheduled
time, honour concurrencyPolicy, suspend and startingDeadlineSeconds, track active jobs and
trim finished-job history. The clock is injectable (`CronJobController.clock`) for tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from apimachinery.cron import (
    CronSchedule,
    ScheduleError,
    most_recent_schedule_time,
    parse_schedule,
)
from apimachinery.errors import StatusError
from client.request import DeleteOptions, Obj
from controller_manager.base import Controller, owner_key
from controller_manager.controllers import register
from controller_manager.controllers.job_status import is_finished, now_str, parse_time
from controller_manager.podtemplate import controller_ref

__all__ = ["SCHEDULED_TIMESTAMP_ANNOTATION", "CronJobController", "job_name_for", "rfc3339_in"]

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
OWNER_INDEX = "cronjob:controller-uid"
TOO_MANY_MISSED = 100


def _cronjob_owner_uid(job: Obj) -> list[str]:
    for ref in (job.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "CronJob":
            return [ref.get("uid", "")]
    return []


def job_name_for(cronjob_name: str, scheduled: datetime) -> str:
    """`<cronjob>-<scheduled time in minutes since the epoch>` (upstream getJobName)."""
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def rfc3339_in(t: datetime, tz: Any) -> str:
    """Go's time.Format(RFC3339) of `t` in zone `tz` ("Z" for UTC offsets of zero)."""
    local = t.astimezone(tz)
    s = local.strftime("%Y-%m-%dT%H:%M:%S%z")
    if s.endswith("+0000"):
        return s[:-5] + "Z"
    return s[:-2] + ":" + s[-2:]


def _rfc1123z(t: datetime) -> str:
    """Go's time.RFC1123Z in UTC, as upstream's MissSchedule event prints the scheduled time."""
    return t.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def _system_now() -> datetime:
    return datetime.now(UTC)


@register
class CronJobController(Controller):
    """Creates Jobs from CronJobs on schedule."""

    name = "cronjob"
    workers = 2
    clock: ClassVar[Callable[[], datetime]] = staticmethod(_system_now)

    def setup(self) -> None:
        """Watch cronjobs and the jobs they own."""
        self.cronjobs = self.ctx.factory.informer("cronjobs")
        self.cronjobs.add_handler(**self.handlers())
        self.jobs = self.ctx.factory.informer("jobs", indexers={OWNER_INDEX: _cronjob_owner_uid})
        self.jobs.add_handler(**self.handlers(self._job_changed))

    def _job_changed(self, job: Obj) -> None:
        key = owner_key(job, "CronJob")
        if key:
            self.enqueue_key(key)

    def now(self) -> datetime:
        """The controller's clock (replaceable in tests)."""
        return type(self).clock()

    async def sync(self, key: str) -> None:
        """Reconcile one CronJob."""
        cj = self.cronjobs.store.get(key)
        if cj is None or (cj.get("metadata") or {}).get("deletionTimestamp"):
            return
        now = self.now()
        children = self.jobs.store.by_index(OWNER_INDEX, cj["metadata"]["uid"])
        old_status = cj.get("status") or {}
        status: dict[str, Any] = copy.deepcopy(old_status)
        await self._track_children(cj, status, children)
        requeue = await self._schedule(cj, status, children, now)
        await self._cleanup_history(cj, children)
        if status != old_status:
            await self._write_status(cj, status)
        if requeue is not None:
            self.requeue_after(key, requeue)

    async def _write_status(self, cj: Obj, status: dict[str, Any]) -> None:
        """Write status; on a conflict, carry a job just created into the fresh object's active list so that
        the next sync does not lose it (it could not find it by name or lastScheduleTime otherwise)."""
        ns, name = cj["metadata"]["namespace"], cj["metadata"]["name"]
        body = {**cj, "status": status}
        for _ in range(3):
            try:
                await self.api.update_status("cronjobs", body, ns)
                return
            except StatusError as e:
                if e.code != 409:
                    raise
            fresh = await self.api.get("cronjobs", name, ns)
            fresh_status = dict(fresh.get("status") or {})
            have = {r.get("uid") for r in fresh_status.get("active") or []}
            added = [r for r in status.get("active") or [] if r.get("uid") not in have]
            old_have = {r.get("uid") for r in (cj.get("status") or {}).get("active") or []}
            added = [r for r in added if r.get("uid") not in old_have]
            if not added:
                raise StatusError(409, "Conflict", f"cronjob {name} changed; retrying the sync")
            fresh_status["active"] = [*(fresh_status.get("active") or []), *added]
            if status.get("lastScheduleTime"):
                fresh_status["lastScheduleTime"] = status["lastScheduleTime"]
            body = {**fresh, "status": fresh_status}
        raise StatusError(409, "Conflict", f"cronjob {name} kept changing")

    async def _track_children(self, cj: Obj, status: dict[str, Any], children: list[Obj]) -> None:
        """Fold the jobs seen into status.active / lastSuccessfulTime (upstream syncCronJob, first half)."""
        active: list[dict[str, Any]] = list(status.get("active") or [])
        active_uids = {r.get("uid") for r in active}
        child_uids = set()
        for j in children:
            meta = j["metadata"]
            child_uids.add(meta["uid"])
            finished = is_finished(j)
            if meta["uid"] not in active_uids and not finished:
                fresh = await self.api.get("cronjobs", cj["metadata"]["name"], cj["metadata"]["namespace"])
                if any(r.get("uid") == meta["uid"] for r in (fresh.get("status") or {}).get("active") or []):
                    # our cache of the cronjob is behind its status: the job is active all the same (Forbid
                    # must see it in this sync too, or it would start a second run)
                    active.append(_job_ref(j))
                    active_uids.add(meta["uid"])
                    continue
                self.events.record(
                    cj,
                    "Warning",
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {meta['name']}",
                )
            elif meta["uid"] in active_uids and finished:
                self.events.record(
                    cj, "Normal", "SawCompletedJob", f"Saw completed job: {meta['name']}, condition: {finished}"
                )
                active = [r for r in active if r.get("uid") != meta["uid"]]
                active_uids.discard(meta["uid"])
            if finished == "Complete":
                done = parse_time((j.get("status") or {}).get("completionTime"))
                last = parse_time(status.get("lastSuccessfulTime"))
                if done and (last is None or done > last):
                    status["lastSuccessfulTime"] = now_str(done)
        kept: list[dict[str, Any]] = []
        for ref in active:
            if ref.get("uid") in child_uids:
                kept.append(ref)
                continue
            try:
                got = await self.api.get("jobs", ref["name"], ref.get("namespace") or cj["metadata"]["namespace"])
            except StatusError as e:
                if e.code != 404:
                    raise
                got = None
            if got is None or got["metadata"].get("uid") != ref.get("uid"):
                self.events.record(cj, "Normal", "MissingJob", f"Active job went missing: {ref['name']}")
            else:
                kept.append(ref)
        if kept:
            status["active"] = kept
        else:
            status.pop("active", None)

    def _parse(self, cj: Obj) -> CronSchedule | None:
        spec = cj.get("spec") or {}
        tz = spec.get("timeZone")
        try:
            return parse_schedule(spec.get("schedule", ""), tz)
        except ScheduleError as e:
            if tz and "time zone" in str(e):
                self.events.record(cj, "Warning", "UnknownTimeZone", f'invalid timeZone: "{tz}": {e}')
            else:
                self.events.record(
                    cj, "Warning", "UnparseableSchedule", f'unparseable schedule: "{spec.get("schedule")}" : {e}'
                )
            return None

    async def _schedule(self, cj: Obj, status: dict[str, Any], children: list[Obj], now: datetime) -> float | None:
        """Start the most recent missed run if allowed; seconds until the next look (None: never)."""
        spec = cj.get("spec") or {}
        if spec.get("suspend"):
            return None
        sched = self._parse(cj)
        if sched is None:
            return None
        earliest = parse_time(status.get("lastScheduleTime")) or parse_time(cj["metadata"].get("creationTimestamp"))
        earliest = earliest or now
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - timedelta(seconds=int(deadline)))
        scheduled, missed = most_recent_schedule_time(sched, earliest, now)
        if missed > TOO_MANY_MISSED:
            self.events.record(
                cj,
                "Warning",
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
            )
        next_wait = self._next_wait(sched, now)
        if scheduled is None:
            return next_wait
        if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
            self.events.record(
                cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: {_rfc1123z(scheduled)}"
            )
            return next_wait
        name = job_name_for(cj["metadata"]["name"], scheduled)
        active = list(status.get("active") or [])
        processed = parse_time(status.get("lastScheduleTime")) == scheduled
        if (
            processed
            or any(r.get("name") == name for r in active)
            or any(j["metadata"]["name"] == name for j in children)
        ):
            return next_wait
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and active:
            self.events.record(
                cj,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )
            return next_wait
        if policy == "Replace":
            for ref in active:
                await self._delete_job(cj, ref["name"])
            active = []
            status.pop("active", None)
        try:
            job = await self.api.create("jobs", self._job_for(cj, name, scheduled, sched), cj["metadata"]["namespace"])
        except StatusError as e:
            if e.code != 409:
                self.events.record(cj, "Warning", "FailedCreate", f"Error creating job: {e}")
                raise
            return next_wait
        self.events.record(cj, "Normal", "SuccessfulCreate", f"Created job {name}")
        active.append(_job_ref(job))
        status["active"] = active
        status["lastScheduleTime"] = now_str(scheduled)
        return next_wait

    def _next_wait(self, sched: CronSchedule, now: datetime) -> float | None:
        nxt = sched.next(now)
        if nxt is None:
            return None
        # upstream nextScheduleTimeDuration: the next activation plus 100ms
        return (nxt - now).total_seconds() + 0.1

    def _job_for(self, cj: Obj, name: str, scheduled: datetime, sched: CronSchedule) -> Obj:
        template = (cj.get("spec") or {}).get("jobTemplate") or {}
        tmeta = template.get("metadata") or {}
        annotations = dict(tmeta.get("annotations") or {})
        annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = rfc3339_in(scheduled, sched.tz)
        ref = {**controller_ref(cj), "apiVersion": "batch/v1", "kind": "CronJob"}
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": cj["metadata"]["namespace"],
                "labels": dict(tmeta.get("labels") or {}),
                "annotations": annotations,
                "ownerReferences": [ref],
            },
            "spec": copy.deepcopy(template.get("spec") or {}),
        }

    async def _delete_job(self, cj: Obj, name: str) -> None:
        try:
            await self.api.delete(
                "jobs", name, cj["metadata"]["namespace"], options=DeleteOptions(propagation_policy="Background")
            )
        except StatusError as e:
            if e.code != 404:
                self.events.record(cj, "Warning", "FailedDelete", f"Deleted job: {e}")
                raise
            return
        self.events.record(cj, "Normal", "SuccessfulDelete", f"Deleted job {name}")

    async def _cleanup_history(self, cj: Obj, children: list[Obj]) -> None:
        """Delete the oldest finished jobs beyond the history limits (upstream cleanupFinishedJobs)."""
        spec = cj.get("spec") or {}
        for kind, limit in (
            ("Complete", spec.get("successfulJobsHistoryLimit")),
            ("Failed", spec.get("failedJobsHistoryLimit")),
        ):
            if limit is None:
                continue
            done = [j for j in children if is_finished(j) == kind and not j["metadata"].get("deletionTimestamp")]
            if len(done) <= int(limit):
                continue
            done.sort(key=_start_key)
            for j in done[: len(done) - int(limit)]:
                await self._delete_job(cj, j["metadata"]["name"])


def _start_key(job: Obj) -> tuple[int, str, str]:
    start = (job.get("status") or {}).get("startTime")
    return (0 if start else 1, start or "", job["metadata"]["name"])


def _job_ref(job: Obj) -> dict[str, Any]:
    meta = job["metadata"]
    return {
        "kind": "Job",
        "namespace": meta.get("namespace"),
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": "batch/v1",
        "resourceVersion": meta.get("resourceVersion", ""),
    }
