"""Unit tests for client.workqueue: client-go queue semantics on a fake clock, no sleeps."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from client_kit import eventually

from client.workqueue import (
    BucketRateLimiter,
    DelayingQueue,
    FakeClock,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    Queue,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
)


async def test_add_dedups_queued_keys() -> None:
    q: Queue[str] = Queue()
    for key in ("a", "b", "a", "c", "b"):
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_being_processed_is_not_handed_out_again_until_done() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")  # dirty while processing: must not be queued
    q.add("a")
    assert len(q) == 0
    q.add("b")
    assert await q.get() == "b"
    q.done("a")  # made dirty meanwhile: back in the queue, once
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    q.done("b")
    assert len(q) == 0


async def test_done_without_new_add_does_not_requeue() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    key = await q.get()
    q.done(key)
    assert len(q) == 0


async def test_get_waits_for_add() -> None:
    q: Queue[str] = Queue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


async def test_two_workers_never_hold_the_same_key() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    first = await q.get()
    second = asyncio.create_task(q.get())
    q.add("a")
    await asyncio.sleep(0)
    assert not second.done()  # "a" is dirty but processing: nothing to hand out
    q.done(first)
    assert await asyncio.wait_for(second, 1) == "a"


async def test_shut_down_hands_out_queued_keys_then_raises_and_ignores_adds() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.shut_down()
    q.add("b")
    assert q.shutting_down
    assert await q.get() == "a"
    with pytest.raises(ShutDown):
        await q.get()


async def test_shut_down_wakes_blocked_getters() -> None:
    q: Queue[str] = Queue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shut_down()
    results = await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), 1)
    assert all(isinstance(r, ShutDown) for r in results)


async def test_shut_down_with_drain_waits_for_processing_keys() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.add("b")
    a, b = await q.get(), await q.get()
    drain = asyncio.create_task(q.shut_down_with_drain())
    await asyncio.sleep(0)
    assert not drain.done()
    q.done(a)
    await asyncio.sleep(0)
    assert not drain.done()
    q.done(b)
    await asyncio.wait_for(drain, 1)


async def test_shut_down_with_drain_returns_at_once_when_idle() -> None:
    q: Queue[str] = Queue()
    await asyncio.wait_for(q.shut_down_with_drain(), 1)
    with pytest.raises(ShutDown):
        await q.get()


async def test_shut_down_interrupts_a_drain() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    await q.get()
    drain = asyncio.create_task(q.shut_down_with_drain())
    await asyncio.sleep(0)
    q.shut_down()
    await asyncio.wait_for(drain, 1)


def test_add_after_fires_on_the_fake_clock() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock)
    q.add_after("a", 10)
    assert len(q) == 0 and q.waiting == 1
    clock.step(9.999)
    assert len(q) == 0
    clock.step(0.001)
    assert len(q) == 1 and q.waiting == 0


def test_add_after_keeps_the_earliest_time_for_a_key() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock)
    q.add_after("a", 10)
    q.add_after("a", 5)
    q.add_after("a", 20)
    assert q.waiting == 1
    clock.step(5)
    assert len(q) == 1
    clock.step(20)
    assert len(q) == 1  # superseded entries do not add it again


def test_add_after_orders_by_ready_time() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock)
    q.add_after("late", 3)
    q.add_after("early", 1)
    q.add_after("now", 0)
    assert list(q._queue) == ["now"]
    clock.step(1)
    assert list(q._queue) == ["now", "early"]
    clock.step(2)
    assert list(q._queue) == ["now", "early", "late"]


def test_add_after_a_queued_key_is_deduped_when_it_fires() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock)
    q.add("a")
    q.add_after("a", 1)
    clock.step(1)
    assert len(q) == 1


def test_shut_down_drops_waiting_keys_and_timers() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock)
    q.add_after("a", 1)
    q.shut_down()
    q.add_after("b", 1)
    assert clock.pending_timers == 0
    clock.step(5)
    assert len(q) == 0


async def test_get_wakes_when_a_delayed_key_becomes_ready() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock)
    getter = asyncio.create_task(q.get())
    q.add_after("a", 2)
    await asyncio.sleep(0)
    assert not getter.done()
    clock.step(2)
    assert await asyncio.wait_for(getter, 1) == "a"


async def test_real_clock_add_after() -> None:
    q: DelayingQueue[str] = DelayingQueue()
    q.add_after("a", 0.01)
    assert await asyncio.wait_for(q.get(), 2) == "a"
    q.shut_down()


def test_exponential_rate_limiter_doubles_from_5ms_to_1000s() -> None:
    rl: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    delays = [rl.when("a") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000.0
    assert all(b == min(2 * a, 1000.0) for a, b in itertools.pairwise(delays))
    assert rl.num_requeues("a") == 20
    assert rl.when("b") == 0.005  # per key
    rl.forget("a")
    assert rl.num_requeues("a") == 0
    assert rl.when("a") == 0.005
    for _ in range(5000):
        rl.when("c")
    assert rl.when("c") == 1000.0


def test_exponential_rate_limiter_is_configurable() -> None:
    rl: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(1.0, 3.0)
    assert [rl.when("a") for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]


def test_bucket_rate_limiter_allows_a_burst_then_spaces_requests() -> None:
    clock = FakeClock()
    rl: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=2, clock=clock)
    assert [rl.when("x"), rl.when("y")] == [0.0, 0.0]
    assert rl.when("z") == pytest.approx(0.1)
    assert rl.when("z") == pytest.approx(0.2)
    clock.step(1)
    assert rl.when("w") == 0.0


def test_max_of_rate_limiter() -> None:
    clock = FakeClock()
    rl: MaxOfRateLimiter[str] = MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(0.5, 10), BucketRateLimiter(1, 1, clock)
    )
    assert rl.when("a") == 0.5
    assert rl.when("a") == pytest.approx(1.0)  # the bucket is empty: 1 s until the next token
    assert rl.num_requeues("a") == 2
    rl.forget("a")
    assert rl.num_requeues("a") == 0
    assert default_controller_rate_limiter(clock).when("k") == 0.005


async def test_rate_limited_requeue_forget_and_num_requeues() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_rate_limited("a")
    q.add_rate_limited("a")  # waits 5 ms already: 10 ms is later, so the earlier time stays
    assert q.num_requeues("a") == 2
    clock.step(0.004)
    assert len(q) == 0
    clock.step(0.001)
    assert len(q) == 1
    key = await q.get()
    q.add_rate_limited(key)  # third failure: 20 ms
    clock.step(0.019)
    q.done(key)
    assert len(q) == 0
    clock.step(0.001)
    assert len(q) == 1
    q.forget(key)
    assert q.num_requeues(key) == 0


async def test_controller_worker_loop() -> None:
    """The client-go pattern: get, sync, forget on success or add_rate_limited on error, done."""
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(ItemExponentialFailureRateLimiter(1.0, 60.0), clock)
    failures_left = {"a": 2, "b": 0}
    synced: list[str] = []

    async def worker() -> None:
        while True:
            try:
                key = await q.get()
            except ShutDown:
                return
            try:
                if failures_left[key]:
                    failures_left[key] -= 1
                    q.add_rate_limited(key)
                else:
                    synced.append(key)
                    q.forget(key)
            finally:
                q.done(key)

    q.add("a")
    q.add("b")
    task = asyncio.create_task(worker())
    await eventually(lambda: synced == ["b"] and q.num_requeues("a") == 1 and q.waiting == 1)
    clock.step(0.999)
    assert len(q) == 0
    clock.step(0.001)  # first retry after 1 s
    await eventually(lambda: q.num_requeues("a") == 2 and q.waiting == 1)
    clock.step(2)  # second retry after 2 s
    await eventually(lambda: synced == ["b", "a"])
    assert q.num_requeues("a") == 0
    await q.shut_down_with_drain()
    await asyncio.wait_for(task, 1)
