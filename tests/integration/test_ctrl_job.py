"""Job controller against a real apiserver: completions/parallelism, backoffLimit, Indexed, TTL."""

from __future__ import annotations

from typing import Any

import pytest
from controller_kit import controllers, eventually
from ctrl_workload_kit import apply_manifest, owned_pods, patch_retry, set_pod_phase

from apimachinery.errors import StatusError
from client.rest import ApiClient


def job(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            **spec,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


def cond(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_ and c["status"] == "True":
            return c
    return None


@pytest.fixture
async def client(apiserver: str):
    async with ApiClient(apiserver) as api:
        yield api


async def test_completions_and_parallelism(apiserver: str, client: ApiClient, ns: str) -> None:
    async with controllers(apiserver, "job"):
        j = await client.create("jobs", job("work", completions=3, parallelism=2), ns)
        uid = j["metadata"]["uid"]

        async def two_live():
            pods = await owned_pods(client, ns, uid, live=True)
            return pods if len(pods) == 2 else None

        pods = await eventually(two_live, what="2 active pods")
        labels = pods[0]["metadata"]["labels"]
        assert labels["batch.kubernetes.io/job-name"] == "work" and labels["job-name"] == "work"
        assert labels["batch.kubernetes.io/controller-uid"] == uid
        assert pods[0]["metadata"]["generateName"] == "work-"
        done: set[str] = set()
        while True:
            live = await owned_pods(client, ns, uid, live=True)
            if not live:
                break
            for p in live:
                await set_pod_phase(client, ns, p["metadata"]["name"], "Succeeded")
                done.add(p["metadata"]["name"])

            async def progressed(before=len(done)):
                got = await client.get("jobs", "work", ns)
                live = await owned_pods(client, ns, uid, live=True)
                return cond(got, "Complete") or (live and (got.get("status") or {}).get("succeeded") == before)

            await eventually(progressed, what="job progress")
        assert len(done) == 3

        async def complete():
            got = await client.get("jobs", "work", ns)
            return got if cond(got, "Complete") else None

        got = await eventually(complete, what="Complete condition")
        st = got["status"]
        assert (
            st["succeeded"] == 3
            and "active" not in st
            and st["ready"] == 0
            and st["uncountedTerminatedPods"] == {}
            and st["completionTime"]
            and st["startTime"]
        )
        assert cond(got, "Complete")["reason"] == "CompletionsReached"
        assert cond(got, "SuccessCriteriaMet")

        async def completed_event():
            evs = (await client.list("events", ns))["items"]
            return [e for e in evs if e["reason"] == "Completed" and e["involvedObject"]["name"] == "work"]

        await eventually(completed_event, what="Completed event")


async def test_backoff_limit(apiserver: str, client: ApiClient, ns: str) -> None:
    async with controllers(apiserver, "job", job_pod_failure_backoff=0.1):
        j = await client.create("jobs", job("flaky", backoffLimit=1), ns)
        uid = j["metadata"]["uid"]
        failed: set[str] = set()
        for _ in range(2):

            async def new_pod():
                pods = await owned_pods(client, ns, uid, live=True)
                return [p for p in pods if p["metadata"]["name"] not in failed]

            p = (await eventually(new_pod, what="a pod to fail"))[0]
            await set_pod_phase(client, ns, p["metadata"]["name"], "Failed")
            failed.add(p["metadata"]["name"])

        async def job_failed():
            got = await client.get("jobs", "flaky", ns)
            return got if cond(got, "Failed") else None

        got = await eventually(job_failed, what="Failed condition")
        c = cond(got, "Failed")
        assert c["reason"] == "BackoffLimitExceeded"
        assert c["message"] == "Job has reached the specified backoff limit"
        assert got["status"]["failed"] == 2
        assert cond(got, "FailureTarget")
        assert not await owned_pods(client, ns, uid, live=True)


async def test_indexed_job(apiserver: str, client: ApiClient, ns: str) -> None:
    async with controllers(apiserver, "job"):
        j = await client.create("jobs", job("idx", completions=3, parallelism=3, completionMode="Indexed"), ns)
        uid = j["metadata"]["uid"]

        async def three():
            pods = await owned_pods(client, ns, uid, live=True)
            return pods if len(pods) == 3 else None

        pods = await three() or await eventually(three, what="3 indexed pods")
        by_index = {int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]): p for p in pods}
        assert sorted(by_index) == [0, 1, 2]
        p1 = by_index[1]
        assert p1["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "1"
        assert p1["spec"]["hostname"] == "idx-1"
        assert p1["metadata"]["generateName"] == "idx-1-"
        env = p1["spec"]["containers"][0]["env"]
        [index_env] = [e for e in env if e["name"] == "JOB_COMPLETION_INDEX"]
        field_ref = index_env["valueFrom"]["fieldRef"]
        assert field_ref["fieldPath"] == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        for i in (0, 2):
            await set_pod_phase(client, ns, by_index[i]["metadata"]["name"], "Succeeded")

        async def partial():
            got = await client.get("jobs", "idx", ns)
            return got if (got.get("status") or {}).get("completedIndexes") == "0,2" else None

        await eventually(partial, what="completedIndexes 0,2")
        await set_pod_phase(client, ns, by_index[1]["metadata"]["name"], "Succeeded")

        async def complete():
            got = await client.get("jobs", "idx", ns)
            return got if cond(got, "Complete") else None

        got = await eventually(complete, what="indexed job complete")
        assert got["status"]["completedIndexes"] == "0-2"
        assert got["status"]["succeeded"] == 3


async def test_ttl_after_finished(apiserver: str, client: ApiClient, ns: str) -> None:
    async with controllers(apiserver, "job"):
        j = await client.create("jobs", job("short", ttlSecondsAfterFinished=1), ns)
        uid = j["metadata"]["uid"]
        pod = (await eventually(lambda: owned_pods(client, ns, uid, live=True), what="pod"))[0]
        await set_pod_phase(client, ns, pod["metadata"]["name"], "Succeeded")

        async def gone():
            try:
                await client.get("jobs", "short", ns)
            except StatusError as e:
                return e.code == 404
            return False

        await eventually(gone, timeout=15, what="job deleted after its TTL")


async def test_active_deadline(apiserver: str, client: ApiClient, ns: str) -> None:
    async with controllers(apiserver, "job"):
        await client.create("jobs", job("slow", activeDeadlineSeconds=1), ns)

        async def failed():
            got = await client.get("jobs", "slow", ns)
            return got if cond(got, "Failed") else None

        got = await eventually(failed, what="deadline failure")
        assert cond(got, "Failed")["reason"] == "DeadlineExceeded"
        assert cond(got, "Failed")["message"] == "Job was active longer than specified deadline"
        # its running pod was deleted, and counts as failed (upstream isPodFailed)
        assert got["status"]["failed"] == 1
        assert not await owned_pods(client, ns, got["metadata"]["uid"], live=True)


async def test_batch_example_manifest(
    apiserver: str, client: ApiClient, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from controller_manager.controllers.cronjob import CronJobController

    monkeypatch.setattr(CronJobController, "clock", staticmethod(lambda: datetime.now(UTC) + timedelta(seconds=61)))
    path = Path(__file__).parents[2] / "examples" / "batch.yaml"
    async with controllers(apiserver, "job,cronjob"):
        created = {o["metadata"]["name"]: o for o in await apply_manifest(client, str(path), ns)}
        compute, fails = created["compute"]["metadata"]["uid"], created["always-fails"]["metadata"]["uid"]

        async def compute_two():
            pods = await owned_pods(client, ns, compute, live=True)
            return pods if len(pods) == 2 else None

        pods = await eventually(compute_two, what="compute: parallelism 2")
        assert pods[0]["spec"]["containers"][0]["command"][0] == "python3"
        assert len(await eventually(lambda: owned_pods(client, ns, fails, live=True), what="always-fails pod")) == 1

        async def cron_job():
            items = (await client.list("jobs", ns))["items"]
            return [j for j in items if j["metadata"]["name"].startswith("every-minute-")]

        [j] = await eventually(cron_job, what="job from the every-minute cronjob")
        assert await eventually(lambda: owned_pods(client, ns, j["metadata"]["uid"]), what="its pod")


async def test_suspend_and_resume(apiserver: str, client: ApiClient, ns: str) -> None:
    async with controllers(apiserver, "job"):
        j = await client.create("jobs", job("paused", suspend=True, parallelism=2, completions=2), ns)
        uid = j["metadata"]["uid"]

        async def suspended():
            got = await client.get("jobs", "paused", ns)
            return got if cond(got, "Suspended") else None

        got = await eventually(suspended, what="Suspended condition")
        assert cond(got, "Suspended")["reason"] == "JobSuspended"
        assert not got["status"].get("startTime")
        assert await owned_pods(client, ns, uid) == []
        await patch_retry(client, "jobs", "paused", {"spec": {"suspend": False}}, ns)

        async def two():
            pods = await owned_pods(client, ns, uid, live=True)
            return pods if len(pods) == 2 else None

        await eventually(two, what="pods after resuming")

        async def started():
            got = await client.get("jobs", "paused", ns)
            return got if got["status"].get("startTime") else None

        # the controller creates the pods first and writes the Job's status after them
        got = await eventually(started, what="the resumed Job's status")
        resumed = [c for c in got["status"]["conditions"] if c["type"] == "Suspended"]
        assert resumed[0]["status"] == "False" and resumed[0]["reason"] == "JobResumed"
        assert got["status"]["startTime"]
