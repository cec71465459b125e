"""CronJob controller against a real apiserver, with the controller's clock moved forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from controller_kit import controllers, eventually
from ctrl_workload_kit import patch_retry

from client.request import Selectors
from client.rest import ApiClient
from controller_manager.controllers.cronjob import CronJobController


def cronjob(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "* * * * *",
            **spec,
            "jobTemplate": {
                "metadata": {"labels": {"from": name}},
                "spec": {
                    "template": {
                        "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}
                    }
                },
            },
        },
    }


@pytest.fixture
async def client(apiserver: str):
    async with ApiClient(apiserver) as api:
        yield api


@pytest.fixture
def offset(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Seconds the cronjob controller's clock runs ahead of real time (mutable)."""
    ahead = [0.0]
    monkeypatch.setattr(
        CronJobController, "clock", staticmethod(lambda: datetime.now(UTC) + timedelta(seconds=ahead[0]))
    )
    return ahead


async def jobs_of(api: ApiClient, ns: str, uid: str) -> list[dict[str, Any]]:
    items = (await api.list("jobs", ns, selectors=Selectors()))["items"]
    return [j for j in items if any(r["uid"] == uid for r in j["metadata"].get("ownerReferences") or [])]


async def poke(api: ApiClient, ns: str, name: str, n: int) -> None:
    """Make the controller look again now (an update is an informer event)."""
    await patch_retry(api, "cronjobs", name, {"metadata": {"labels": {"poke": str(n)}}}, ns)


async def events(api: ApiClient, ns: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in (await api.list("events", ns))["items"] if e["reason"] == reason]


async def test_creates_job_on_schedule(apiserver: str, client: ApiClient, ns: str, offset: list[float]) -> None:
    offset[0] = 61
    async with controllers(apiserver, "cronjob"):
        cj = await client.create("cronjobs", cronjob("tick"), ns)
        uid = cj["metadata"]["uid"]
        found = await eventually(lambda: jobs_of(client, ns, uid), what="a job from the cronjob")
        j = found[0]
        minutes = int(j["metadata"]["name"].rsplit("-", 1)[1])
        stamp = j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() == minutes * 60
        assert j["metadata"]["labels"]["from"] == "tick"
        ref = j["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["controller"]) == ("CronJob", "tick", True)

        async def status():
            got = await client.get("cronjobs", "tick", ns)
            st = got.get("status") or {}
            return st if st.get("active") and st.get("lastScheduleTime") else None

        st = await eventually(status, what="cronjob status")
        assert any(a["name"] == j["metadata"]["name"] for a in st["active"])
        assert await eventually(lambda: events(client, ns, "SuccessfulCreate"), what="SuccessfulCreate event")


async def test_forbid_skips_while_active_then_resumes(
    apiserver: str, client: ApiClient, ns: str, offset: list[float]
) -> None:
    offset[0] = 61
    async with controllers(apiserver, "cronjob"):
        cj = await client.create("cronjobs", cronjob("once", concurrencyPolicy="Forbid"), ns)
        uid = cj["metadata"]["uid"]
        first = (await eventually(lambda: jobs_of(client, ns, uid), what="first job"))[0]
        offset[0] = 181
        await poke(client, ns, "once", 1)
        assert await eventually(lambda: events(client, ns, "JobAlreadyActive"), what="JobAlreadyActive event")
        assert len(await jobs_of(client, ns, uid)) == 1

        # finish the first job (no job controller here): the next run may start
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        first["status"] = {
            "startTime": now,
            "completionTime": now,
            "succeeded": 1,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "m"},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "m"},
            ],
        }
        await client.update_status("jobs", first, ns)
        assert await eventually(lambda: events(client, ns, "SawCompletedJob"), what="SawCompletedJob event")

        async def second():
            js = await jobs_of(client, ns, uid)
            return js if len(js) == 2 else None

        await poke(client, ns, "once", 2)
        await eventually(second, what="second job after the first completed")

        async def last_success():
            got = await client.get("cronjobs", "once", ns)
            return (got.get("status") or {}).get("lastSuccessfulTime")

        assert await eventually(last_success, what="lastSuccessfulTime") == now


async def test_suspend_and_history_limit(apiserver: str, client: ApiClient, ns: str, offset: list[float]) -> None:
    offset[0] = 61
    async with controllers(apiserver, "cronjob"):
        cj = await client.create("cronjobs", cronjob("hist", suspend=True, successfulJobsHistoryLimit=1), ns)
        uid = cj["metadata"]["uid"]
        await poke(client, ns, "hist", 1)
        # a suspended cronjob never starts a job: prove the controller looked by a later event
        await patch_retry(client, "cronjobs", "hist", {"spec": {"suspend": False}}, ns)
        js = await eventually(lambda: jobs_of(client, ns, uid), what="job after resuming")
        assert len(js) == 1

        async def finish(job: dict[str, Any], start: str) -> None:
            job = await client.get("jobs", job["metadata"]["name"], ns)
            job["status"] = {
                "startTime": start,
                "completionTime": start,
                "succeeded": 1,
                "conditions": [{"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "m"}],
            }
            await client.update_status("jobs", job, ns)

        await finish(js[0], "2026-01-01T00:00:00Z")
        offset[0] = 181
        await poke(client, ns, "hist", 2)

        async def two():
            got = await jobs_of(client, ns, uid)
            return got if len(got) == 2 else None

        js2 = await eventually(two, what="second job")
        newer = next(j for j in js2 if j["metadata"]["name"] != js[0]["metadata"]["name"])
        await finish(newer, "2026-01-01T00:05:00Z")

        async def oldest_trimmed():
            got = await jobs_of(client, ns, uid)
            names = [j["metadata"]["name"] for j in got]
            return js[0]["metadata"]["name"] not in names and newer["metadata"]["name"] in names

        await eventually(oldest_trimmed, what="oldest finished job deleted by history limit")
        assert await eventually(lambda: events(client, ns, "SuccessfulDelete"), what="SuccessfulDelete event")


def test_sync_with_fake_now_proves_schedule() -> None:
    """The scheduling arithmetic without a server: a 5-minute schedule after 12:07 fires at 12:10."""
    from apimachinery.cron import most_recent_schedule_time, parse_schedule

    s = parse_schedule("*/5 * * * *")
    t0 = datetime(2026, 1, 1, 12, 7, tzinfo=UTC)
    assert most_recent_schedule_time(s, t0, t0 + timedelta(minutes=4))[0] == datetime(2026, 1, 1, 12, 10, tzinfo=UTC)


async def test_too_many_missed_and_starting_deadline(
    apiserver: str, client: ApiClient, ns: str, offset: list[float]
) -> None:
    offset[0] = 200 * 60  # the controller wakes up 200 minutes after creation
    async with controllers(apiserver, "cronjob"):
        late = await client.create("cronjobs", cronjob("late"), ns)
        bounded = await client.create("cronjobs", cronjob("bounded", startingDeadlineSeconds=90), ns)
        for cj in (late, bounded):
            uid = cj["metadata"]["uid"]
            assert await eventually(lambda uid=uid: jobs_of(client, ns, uid), what="a job for the latest schedule")
        evs = await eventually(lambda: events(client, ns, "TooManyMissedTimes"), what="TooManyMissedTimes event")
        assert {e["involvedObject"]["name"] for e in evs} == {"late"}
        assert evs[0]["message"] == (
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
        )
        assert evs[0]["type"] == "Warning"


async def test_replace_deletes_the_running_job(apiserver: str, client: ApiClient, ns: str, offset: list[float]) -> None:
    offset[0] = 61
    async with controllers(apiserver, "cronjob"):
        cj = await client.create("cronjobs", cronjob("swap", concurrencyPolicy="Replace"), ns)
        uid = cj["metadata"]["uid"]
        [first] = await eventually(lambda: jobs_of(client, ns, uid), what="first job")
        offset[0] = 181
        await poke(client, ns, "swap", 1)

        async def replaced():
            names = [
                j["metadata"]["name"]
                for j in await jobs_of(client, ns, uid)
                if not j["metadata"].get("deletionTimestamp")
            ]
            return names if len(names) == 1 and names[0] != first["metadata"]["name"] else None

        [second] = await eventually(replaced, what="the first job replaced by a second")

        async def active_is_second():
            st = (await client.get("cronjobs", "swap", ns)).get("status") or {}
            return [a["name"] for a in st.get("active") or []] == [second]

        await eventually(active_is_second, what="status.active = the new job")
        want = f"Deleted job {first['metadata']['name']}"

        async def deleted_event() -> bool:
            return want in [e["message"] for e in await events(client, ns, "SuccessfulDelete")]

        await eventually(deleted_event, what=f"event {want!r}")
