"""events.k8s.io/v1 series (client-go tools/events): repeats of an Event cost two writes, not one each."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from typing import Any

import httpx
from test_scheduler_cluster import cluster, scheduler, wait_for

from client.events_v1 import EventsV1Recorder
from client.rest import ApiClient


class EventWrites:
    """Counts the writes to the Events of a namespace, as a watch through events.k8s.io/v1 sees them."""

    def __init__(self, api: httpx.AsyncClient, ns: str) -> None:
        self.api, self.ns = api, ns
        self.types: Counter[str] = Counter()
        self.last: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventWrites:
        r = await self.api.get(f"/apis/events.k8s.io/v1/namespaces/{self.ns}/events")
        rv = r.json()["metadata"]["resourceVersion"]
        self._task = asyncio.create_task(self._watch(rv))
        return self

    async def _watch(self, rv: str) -> None:
        url = f"/apis/events.k8s.io/v1/namespaces/{self.ns}/events"
        params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "60"}
        async with self.api.stream("GET", url, params=params, timeout=70) as resp:
            async for line in resp.aiter_lines():
                if line.strip():
                    ev = json.loads(line)
                    self.types[ev["type"]] += 1
                    self.last[ev["object"]["metadata"]["name"]] = ev["object"]

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_a_burst_of_repeats_is_one_event_and_a_series(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": ns, "uid": "u-web"}}
    other = {**pod, "metadata": {**pod["metadata"], "name": "db", "uid": "u-db"}}
    async with EventWrites(api, ns) as writes, ApiClient(apiserver) as client:
        recorder = EventsV1Recorder(client, "default-scheduler", "default-scheduler-test", finish_after=1.0)
        async with recorder:
            for _ in range(100):
                recorder.record(pod, None, "Warning", "FailedScheduling", "Scheduling", "0/3 nodes are available")
            recorder.record(other, None, "Warning", "FailedScheduling", "Scheduling", "0/3 nodes are available")

            async def finished() -> dict[str, Any] | None:
                return next(
                    (
                        e
                        for e in writes.last.values()
                        if e["regarding"]["name"] == "web" and (e.get("series") or {}).get("count") == 100
                    ),
                    None,
                )

            final = await wait_for(finished, 20, "the series' final count")
        r = await api.get(f"/apis/events.k8s.io/v1/namespaces/{ns}/events")
        events = r.json()["items"]
        assert sorted(e["regarding"]["name"] for e in events) == ["db", "web"]
        assert writes.types["ADDED"] == 2
        assert writes.types["MODIFIED"] <= 2  # the series' start and its final count, not 99 updates
        assert final["note"] == "0/3 nodes are available" and final["type"] == "Warning"
        assert final["reportingController"] == "default-scheduler"
        assert final["reportingInstance"] == "default-scheduler-test"
        assert final["action"] == "Scheduling" and final["eventTime"]
        assert next(e for e in events if e["regarding"]["name"] == "db").get("series") is None
        core = (await api.get(f"/api/v1/namespaces/{ns}/events/{final['metadata']['name']}")).json()
        assert core["series"]["count"] == 100 and core["involvedObject"]["uid"] == "u-web"


async def test_the_scheduler_writes_events_k8s_io_series(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    async with cluster(api, ns) as tc, scheduler(apiserver):
        node = await tc.add_node("small", cpu="1")
        await tc.create_pod(tc.pod("p", cpu="2"))
        url = f"/apis/events.k8s.io/v1/namespaces/{ns}/events"
        attempts = 0

        async def series() -> list[dict[str, Any]] | None:
            nonlocal attempts
            r = await api.get(url, params={"fieldSelector": "regarding.name=p,reason=FailedScheduling"})
            found = r.json()["items"]
            if any(e.get("series") for e in found):
                return found
            attempts += 1  # a node's labels changing sends the pod back to be scheduled again
            patch = {"metadata": {"labels": {"attempt": str(attempts)}}}
            headers = {"Content-Type": "application/merge-patch+json"}
            await api.patch(f"/api/v1/nodes/{node}", content=json.dumps(patch), headers=headers)
            return None

        found = await wait_for(series, 30, "a FailedScheduling series")
        # upstream's key holds the pod's reference with its resourceVersion, which changes once, when the
        # scheduler writes PodScheduled=False after the first attempt: at most two Events, then a series
        assert len(found) <= 2
        ev = next(e for e in found if e.get("series"))
        assert ev["reportingController"] == "default-scheduler"
        assert ev["reportingInstance"].startswith("default-scheduler-")
        assert ev["action"] == "Scheduling" and ev["type"] == "Warning"
        assert ev["regarding"]["kind"] == "Pod" and ev["regarding"]["name"] == "p"
        assert "deprecatedSource" not in ev and "deprecatedCount" not in ev
