"""Integration tests for client.events' EventRecorder against the real apiserver: urgent work goes first."""

from __future__ import annotations

import asyncio

from client.events import EventRecorder
from client.rest import ApiClient
from client.urgency import Urgency


def _pod(name: str, ns: str) -> dict:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"}}


async def _reasons(kube: ApiClient, ns: str) -> list[str]:
    return sorted(e["reason"] for e in (await kube.list("events", ns))["items"])


async def test_events_wait_while_urgent_work_is_in_flight_and_follow_once_it_settles(kube: ApiClient, ns: str) -> None:
    urgency = Urgency()
    async with EventRecorder(kube, "kubelet", host="n1", urgency=urgency, max_defer=30.0) as rec:
        with urgency:
            rec.record(_pod("a", ns), "Normal", "Started", "Started container c")
            # the writer holds the event while the urgent work runs (an unwritten event needs a window to show)
            await asyncio.sleep(0.3)
            assert await _reasons(kube, ns) == []
        await asyncio.wait_for(rec._queue.join(), 10)
        assert await _reasons(kube, ns) == ["Started"]


async def test_a_deferral_is_bounded_and_then_events_flow_while_the_work_goes_on(kube: ApiClient, ns: str) -> None:
    urgency = Urgency()
    async with EventRecorder(kube, "kubelet", host="n1", urgency=urgency, max_defer=0.3) as rec:
        with urgency:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(5):
                rec.record(_pod(f"p{i}", ns), "Normal", "Created", f"Created container c{i}")
            await asyncio.wait_for(rec._queue.join(), 10)
            elapsed = loop.time() - start
            # one deferral of 0.3 s for the busy spell, not 0.3 s per event
            assert 0.3 <= elapsed < 1.5, elapsed
            assert await _reasons(kube, ns) == ["Created"] * 5


async def test_without_urgency_events_are_written_at_once(kube: ApiClient, ns: str) -> None:
    async with EventRecorder(kube, "scheduler") as rec:
        rec.record(_pod("b", ns), "Normal", "Scheduled", "Successfully assigned")
        await asyncio.wait_for(rec._queue.join(), 10)
        assert await _reasons(kube, ns) == ["Scheduled"]
