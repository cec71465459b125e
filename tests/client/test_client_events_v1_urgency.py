"""EventsV1Recorder against the real apiserver with an `Urgency`: Events trail urgent work, and none is lost."""

from __future__ import annotations

import asyncio

from apimachinery.resources import EVENTS_V1
from client.events_v1 import EventsV1Recorder
from client.rest import ApiClient
from client.urgency import Urgency


def _pod(name: str, ns: str) -> dict:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"}}


async def _notes(kube: ApiClient, ns: str) -> list[str]:
    return sorted(e["note"] for e in (await kube.list(EVENTS_V1, ns))["items"])


async def test_events_wait_while_bindings_are_in_flight_then_all_are_written(kube: ApiClient, ns: str) -> None:
    urgency = Urgency()
    async with EventsV1Recorder(kube, "default-scheduler", urgency=urgency, max_defer=30.0) as rec:
        with urgency:
            for i in range(5):
                rec.record(_pod(f"p{i}", ns), None, "Normal", "Scheduled", "Binding", f"assigned p{i}")
            # the writer holds the Events while the urgent work runs (an unwritten Event needs a window to show)
            await asyncio.sleep(0.3)
            assert await _notes(kube, ns) == []
        await asyncio.wait_for(rec._queue.join(), 10)
        assert await _notes(kube, ns) == [f"assigned p{i}" for i in range(5)]


async def test_a_half_full_queue_is_written_while_the_work_goes_on(kube: ApiClient, ns: str) -> None:
    urgency = Urgency()
    async with EventsV1Recorder(kube, "default-scheduler", queue_size=8, urgency=urgency, max_defer=30.0) as rec:
        with urgency:
            for i in range(8):
                rec.record(_pod(f"p{i}", ns), None, "Normal", "Scheduled", "Binding", f"assigned p{i}")
            # a full queue is not held back (deferring must not make the next record drop an Event): the
            # writer goes on while the work does until fewer than half are queued, then holds the rest again
            for _ in range(1000):
                if rec._queue.qsize() < 4:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the writer held a full queue")
            await asyncio.sleep(0.3)
            assert urgency.busy
            assert await _notes(kube, ns) == [f"assigned p{i}" for i in range(4)]
        await asyncio.wait_for(rec._queue.join(), 10)
        assert await _notes(kube, ns) == [f"assigned p{i}" for i in range(8)]
