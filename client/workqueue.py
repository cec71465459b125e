"""Work queues with client-go's semantics: dedup, one-at-a-time per key, delays and rate limits.

Three layers, as in client-go `util/workqueue`:
- `Queue`: FIFO of keys. A dirty set dedups (adding a queued key again is a no-op); a processing
  set guarantees one key is never handed to two workers at once: a key added while being
  processed is only marked dirty, and `done()` puts it back in the queue. `shut_down()` stops
  new adds, lets workers take what is queued, then makes `get()` raise `ShutDown`;
  `shut_down_with_drain()` also waits until every key handed out is `done()`.
- `DelayingQueue`: `add_after(key, delay)` adds a key later; for a key already waiting the
  earlier time wins. Waiting keys are dropped on shutdown.
- `WorkQueue`: `add_rate_limited(key)` waits as long as the rate limiter says (per-key exponential
  backoff, 5 ms doubling up to 1000 s by default), `forget(key)` resets that key's backoff after
  a success, `num_requeues(key)` tells how many failures it has had.
Time comes from an injectable `Clock`; `FakeClock.step()` fires due timers synchronously, so tests
are deterministic and need no sleeps. Not thread-safe: one asyncio loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar

from apimachinery.errors import StatusError

__all__ = [
    "BucketRateLimiter",
    "Clock",
    "DelayingQueue",
    "FakeClock",
    "ItemExponentialFailureRateLimiter",
    "MaxOfRateLimiter",
    "Queue",
    "RateLimiter",
    "RealClock",
    "ShutDown",
    "Timer",
    "WorkQueue",
    "default_controller_rate_limiter",
    "process_items",
]

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)


# --- clocks --------------------------------------------------------------------------------


class Timer(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None:
        """Do not run the callback."""


class Clock(Protocol):
    """Monotonic time and timers."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` after `delay` seconds."""


class RealClock:
    """The event loop's clock."""

    def now(self) -> float:
        """time.monotonic(), the scale asyncio's loop uses too."""
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """loop.call_later on the running loop."""
        return asyncio.get_running_loop().call_later(max(delay, 0.0), callback)


class _FakeTimer:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that only moves when told to; due timers fire synchronously inside `step`."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """The fake current time."""
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Schedule `callback` at now + delay."""
        timer = _FakeTimer(self._now + max(delay, 0.0), callback)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def step(self, seconds: float) -> None:
        """Advance time, firing every timer that falls due, in time order."""
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, when)
            if not timer.cancelled:
                timer.callback()
        self._now = target

    @property
    def pending_timers(self) -> int:
        """Timers scheduled and not cancelled."""
        return sum(1 for _, _, t in self._timers if not t.cancelled)


# --- rate limiters -------------------------------------------------------------------------


class RateLimiter(Protocol[T_contra]):
    """Decides how long a key waits before it is retried."""

    def when(self, item: T_contra) -> float:
        """Seconds to wait before retrying `item` (records a failure)."""

    def forget(self, item: T_contra) -> None:
        """Stop tracking `item` (it succeeded)."""

    def num_requeues(self, item: T_contra) -> int:
        """Failures recorded for `item`."""


class ItemExponentialFailureRateLimiter(Generic[T]):
    """`base_delay * 2**failures`, at most `max_delay` (client-go defaults: 5 ms, 1000 s)."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay, self.max_delay = base_delay, max_delay
        self._failures: dict[T, int] = {}

    def when(self, item: T) -> float:
        """The delay for this failure of `item`; doubles each time."""
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp >= 1024:  # 2**exp would overflow a float
            return self.max_delay
        return min(self.base_delay * math.pow(2, exp), self.max_delay)

    def forget(self, item: T) -> None:
        """Reset `item`'s backoff."""
        self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        """Failures recorded for `item`."""
        return self._failures.get(item, 0)


class BucketRateLimiter(Generic[T]):
    """An overall token bucket (`qps` refill, `burst` size) shared by all keys."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock | None = None) -> None:
        self.qps, self.burst = qps, burst
        self.clock = clock or RealClock()
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, item: T) -> float:
        """Reserve a token; the wait until it is available."""
        now = self.clock.now()
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: T) -> None:
        """Nothing is tracked per key."""

    def num_requeues(self, item: T) -> int:
        """Always 0: nothing is tracked per key."""
        return 0


class MaxOfRateLimiter(Generic[T]):
    """The longest wait of several limiters."""

    def __init__(self, *limiters: RateLimiter[T]) -> None:
        self.limiters = limiters

    def when(self, item: T) -> float:
        """The maximum of every limiter's delay (each records the failure)."""
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: T) -> None:
        """Forget in every limiter."""
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """The largest count of any limiter."""
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(clock: Clock | None = None) -> MaxOfRateLimiter[Hashable]:
    """client-go's controller default: per-key 5 ms..1000 s backoff and an overall 10 qps / 100 burst."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(), BucketRateLimiter(10.0, 100, clock))


# --- queues --------------------------------------------------------------------------------


class ShutDown(Exception):
    """The queue is shut down and empty: the worker should exit."""


class Queue(Generic[T]):
    """A deduplicating FIFO where a key is processed by one worker at a time."""

    def __init__(self) -> None:
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._shutting_down = False
        self._drain = False
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        """Wake everyone waiting for a change (a fresh event for the next waiters)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def add(self, item: T) -> None:
        """Queue `item` unless already queued; if it is being processed, queue it when done()."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._notify()

    async def get(self) -> T:
        """The next key, waiting for one; raises ShutDown once shut down and empty."""
        while not self._queue and not self._shutting_down:
            await self._changed.wait()
        if not self._queue:
            raise ShutDown
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item: T) -> None:
        """Mark `item` processed; if it was added meanwhile, queue it again."""
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._notify()
        elif not self._processing:
            self._notify()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        """Whether shut_down has been called."""
        return self._shutting_down

    def shut_down(self) -> None:
        """Ignore new adds; `get()` hands out what is queued, then raises ShutDown."""
        self._shutting_down = True
        self._drain = False
        self._notify()

    async def shut_down_with_drain(self) -> None:
        """Shut down, then wait until every key handed out has been `done()` (or shut_down() is called)."""
        self._drain = True
        self._shutting_down = True
        self._notify()
        while self._processing and self._drain:
            await self._changed.wait()


class DelayingQueue(Queue[T]):
    """A Queue whose keys can be added after a delay."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__()
        self.clock = clock or RealClock()
        self._waiting: list[tuple[float, int, T]] = []
        self._ready_at: dict[T, float] = {}
        self._seq = itertools.count()
        self._timer: Timer | None = None
        self._timer_at = math.inf

    def add_after(self, item: T, delay: float) -> None:
        """Add `item` after `delay` seconds (at once if <= 0); a key already waiting keeps the earlier time."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        ready = self.clock.now() + delay
        if self._ready_at.get(item, math.inf) <= ready:
            return
        self._ready_at[item] = ready
        heapq.heappush(self._waiting, (ready, next(self._seq), item))
        self._arm()

    @property
    def waiting(self) -> int:
        """Keys waiting for their delay to pass."""
        return len(self._ready_at)

    def _arm(self) -> None:
        """Keep one timer set for the earliest waiting key."""
        while self._waiting and self._ready_at.get(self._waiting[0][2]) != self._waiting[0][0]:
            heapq.heappop(self._waiting)  # superseded by an earlier time, or already added
        if not self._waiting:
            return
        at = self._waiting[0][0]
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self.clock.call_later(at - self.clock.now(), self._fire)

    def _fire(self) -> None:
        self._timer, self._timer_at = None, math.inf
        now = self.clock.now()
        while self._waiting and self._waiting[0][0] <= now:
            ready, _, item = heapq.heappop(self._waiting)
            if self._ready_at.get(item) == ready:
                del self._ready_at[item]
                self.add(item)
        self._arm()

    def _drop_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, math.inf
        self._waiting.clear()
        self._ready_at.clear()

    def shut_down(self) -> None:
        """Shut down and drop keys still waiting."""
        self._drop_waiting()
        super().shut_down()

    async def shut_down_with_drain(self) -> None:
        """Drop keys still waiting, shut down, wait for keys handed out to be done."""
        self._drop_waiting()
        await super().shut_down_with_drain()


class WorkQueue(DelayingQueue[T]):
    """The controller work queue: a DelayingQueue with per-key rate-limited retries."""

    def __init__(self, rate_limiter: RateLimiter[T] | None = None, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.rate_limiter: RateLimiter[T] = rate_limiter or ItemExponentialFailureRateLimiter()

    def add_rate_limited(self, item: T) -> None:
        """Add `item` after its rate limiter's delay (record one more failure)."""
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Reset `item`'s failure count (call after a successful sync)."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """How many times `item` has been rate-limited since it was last forgotten."""
        return self.rate_limiter.num_requeues(item)


async def process_items(queue: WorkQueue[T], sync: Callable[[T], Awaitable[None]], log: logging.Logger) -> None:
    """A worker: take keys until shutdown and `sync` each; success forgets the key's failures,
    an exception puts it back with per-key backoff (a 409 Conflict quietly: the next try re-reads)."""
    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            await sync(key)
            queue.forget(key)
        except asyncio.CancelledError:
            raise
        except StatusError as e:
            if e.code == 409:
                log.debug("sync %s: conflict, retrying", key)
            else:
                log.warning("sync %s failed: %s", key, e)
            queue.add_rate_limited(key)
        except Exception:
            log.exception("sync %s failed", key)
            queue.add_rate_limited(key)
        finally:
            queue.done(key)
