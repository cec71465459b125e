"""The scheduling queue: priority order, per-pod backoff, unschedulable pods moved back on cluster events."""

from __future__ import annotations

import asyncio

from test_scheduler_builders import pod

from scheduler.podinfo import PodInfo
from scheduler.queue import SchedulingQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def pop_now(q: SchedulingQueue) -> str:
    return (await asyncio.wait_for(q.pop(), 0.5)).pod.key


def test_backoff_doubles_to_ten_seconds() -> None:
    q = SchedulingQueue()
    assert [q.backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


async def test_priority_then_fifo() -> None:
    q = SchedulingQueue(clock=Clock())
    q.add(PodInfo.of(pod("low")))
    q.add(PodInfo.of(pod("high", priority=100)))
    q.add(PodInfo.of(pod("low2")))
    assert [await pop_now(q) for _ in range(3)] == ["default/high", "default/low", "default/low2"]


async def test_unschedulable_waits_for_event_then_backoff() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(PodInfo.of(pod("p")))
    qp = await q.pop()
    q.requeue_unschedulable(qp)
    assert q.where("default/p") == "unschedulable"
    q.move_all_to_active_or_backoff()
    assert q.where("default/p") == "backoff"  # still inside its 1 s backoff
    clock.now += 1.0
    assert await pop_now(q) == "default/p"
    q.requeue_unschedulable(qp)
    clock.now += 5  # second attempt: 2 s backoff, already over
    q.move_all_to_active_or_backoff()
    assert q.where("default/p") == "active"


async def test_event_during_attempt_sends_pod_to_backoff() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(PodInfo.of(pod("p")))
    qp = await q.pop()
    q.move_all_to_active_or_backoff()
    q.requeue_unschedulable(qp)
    assert q.where("default/p") == "backoff"


async def test_unschedulable_flushed_after_max_wait() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock, max_unschedulable=60)
    q.add(PodInfo.of(pod("p")))
    q.requeue_unschedulable(await q.pop())
    clock.now += 61
    assert await pop_now(q) == "default/p"


async def test_spec_update_retries_unschedulable_pod_status_update_does_not() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(PodInfo.of(pod("p", cpu="2")))
    q.requeue_unschedulable(await q.pop())
    with_status = pod("p", cpu="2")
    with_status["status"] = {"conditions": [{"type": "PodScheduled", "status": "False"}]}
    q.update(PodInfo.of(with_status))
    assert q.where("default/p") == "unschedulable"
    clock.now += 2
    q.update(PodInfo.of(pod("p", cpu="1")))
    assert q.where("default/p") == "active"


async def test_delete_and_done() -> None:
    q = SchedulingQueue(clock=Clock())
    q.add(PodInfo.of(pod("a")))
    q.add(PodInfo.of(pod("b")))
    q.delete("default/a")
    qp = await q.pop()
    assert qp.pod.key == "default/b"
    q.done("default/b")
    assert "default/b" not in q
    assert len(q) == 0
    q.requeue_unschedulable(qp)  # already gone: ignored
    assert len(q) == 0


async def test_pop_waits_for_backoff_expiry() -> None:
    q = SchedulingQueue(initial_backoff=0.05)
    q.add(PodInfo.of(pod("p")))
    qp = await q.pop()
    q.done(qp.pod.key)
    q.requeue_backoff(qp)
    assert q.where("default/p") == "backoff"
    assert await pop_now(q) == "default/p"


async def test_bound_pod_retries_only_pods_with_pod_affinity() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}
    aff = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    q.add(PodInfo.of(pod("follower", affinity=aff)))
    q.add(PodInfo.of(pod("big", cpu="64")))
    q.requeue_unschedulable(await q.pop())
    q.requeue_unschedulable(await q.pop())
    clock.now += 2
    q.move_pods_with_affinity()
    assert q.where("default/follower") == "active"
    assert q.where("default/big") == "unschedulable"
