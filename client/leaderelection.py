"""Leader election on a coordination.k8s.io/v1 Lease (client-go `tools/leaderelection`).

Candidates share one Lease. The holder writes its identity and renews `renewTime` every
`retry_period`; others read the Lease every `retry_period` (with jitter) and may take it only
when it is free (empty holder) or has not changed for `lease_duration` as measured on their own
monotonic clock (so clock skew between machines does not matter). Every write carries the
resourceVersion last read, so of two candidates racing for an expired lease exactly one wins:
the other gets 409 Conflict and keeps following.

Timing (client-go's defaults 15 / 10 / 2 s), constrained as `lease_duration > renew_deadline >
1.2 * retry_period`:
- `lease_duration`: how long followers wait after the last observed change before taking over;
  the longest a dead leader can hold the lease.
- `renew_deadline`: how long the leader keeps retrying a failed renewal before it gives up
  leading; smaller than lease_duration so it stops before a follower may start.
- `retry_period`: the interval between acquire or renew attempts.

`LeaderElector.run()` acquires, calls `on_started_leading()` in a task, and renews. If renewal
fails for `renew_deadline` the task is cancelled, `on_stopped_leading()` is called and `run()`
returns: leadership is lost. Cancelling `run()` is the clean shutdown: the leading task is cancelled
and awaited first, then the lease is released (empty holder, 1 s duration) so a follower takes
over at its next retry, then `on_stopped_leading()`. `on_new_leader(identity)` is called whenever
the observed holder changes, including to this candidate.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from apimachinery.errors import StatusError
from apimachinery.resources import ResourceInfo, by_kind
from client.request import Obj
from client.rest import ApiClient

__all__ = ["JITTER_FACTOR", "LeaderElectionRecord", "LeaderElector", "LeaseLock", "ResourceLock"]

log = logging.getLogger("client.leaderelection")

JITTER_FACTOR = 1.2
_LEASES = by_kind("coordination.k8s.io/v1", "Lease")
assert _LEASES is not None
LEASES: ResourceInfo = _LEASES


def _format_time(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if dt else None


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class LeaderElectionRecord:
    """What a lock stores: who leads, for how long, since when, and how many handovers so far."""

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    leader_transitions: int = 0

    @classmethod
    def from_lease_spec(cls, spec: dict[str, Any]) -> LeaderElectionRecord:
        """Read a LeaseSpec."""
        return cls(
            holder_identity=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=_parse_time(spec.get("acquireTime")),
            renew_time=_parse_time(spec.get("renewTime")),
            leader_transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_lease_spec(self) -> dict[str, Any]:
        """Render as a LeaseSpec."""
        return {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": _format_time(self.acquire_time),
            "renewTime": _format_time(self.renew_time),
            "leaseTransitions": self.leader_transitions,
        }


class ResourceLock(Protocol):
    """Storage for a LeaderElectionRecord with optimistic concurrency (client-go resourcelock.Interface)."""

    identity: str

    async def get(self) -> LeaderElectionRecord | None:
        """The current record, or None if the lock object does not exist."""

    async def create(self, record: LeaderElectionRecord) -> None:
        """Create the lock object; StatusError 409 if someone else did first."""

    async def update(self, record: LeaderElectionRecord) -> None:
        """Write the record over the version last read; StatusError 409 if it changed since."""

    def describe(self) -> str:
        """`namespace/name` of the lock, for logs."""


class LeaseLock:
    """A ResourceLock on a coordination.k8s.io/v1 Lease."""

    def __init__(self, api: ApiClient, namespace: str, name: str, identity: str) -> None:
        self.api, self.namespace, self.name, self.identity = api, namespace, name, identity
        self._lease: Obj | None = None

    async def get(self) -> LeaderElectionRecord | None:
        """Read the Lease (remembering its resourceVersion for the next update)."""
        try:
            self._lease = await self.api.get(LEASES, self.name, self.namespace)
        except StatusError as e:
            if e.code == 404:
                self._lease = None
                return None
            raise
        return LeaderElectionRecord.from_lease_spec(self._lease.get("spec") or {})

    async def create(self, record: LeaderElectionRecord) -> None:
        """Create the Lease holding `record`."""
        body = {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.to_lease_spec(),
        }
        self._lease = await self.api.create(LEASES, body, self.namespace)

    async def update(self, record: LeaderElectionRecord) -> None:
        """Replace the Lease's spec, conditional on the resourceVersion last read."""
        if self._lease is None:
            raise RuntimeError("update before get/create")
        self._lease = await self.api.update(LEASES, {**self._lease, "spec": record.to_lease_spec()}, self.namespace)

    def describe(self) -> str:
        """`namespace/name`."""
        return f"{self.namespace}/{self.name}"


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result


class LeaderElector:
    """Runs one candidate: acquire the lock, lead while renewing it, stop leading when it is lost."""

    def __init__(
        self,
        lock: ResourceLock,
        *,
        on_started_leading: Callable[[], Awaitable[None]],
        on_stopped_leading: Callable[[], Awaitable[None] | None] | None = None,
        on_new_leader: Callable[[str], Awaitable[None] | None] | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        release_on_cancel: bool = True,
    ) -> None:
        if not (lease_duration > renew_deadline > JITTER_FACTOR * retry_period > 0):
            raise ValueError("need lease_duration > renew_deadline > 1.2 * retry_period > 0")
        if not lock.identity:
            raise ValueError("the lock needs a non-empty identity")
        self.lock = lock
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._observed: LeaderElectionRecord | None = None
        self._observed_at = 0.0
        self._reported_leader = ""

    @property
    def identity(self) -> str:
        """This candidate's identity."""
        return self.lock.identity

    @property
    def leader(self) -> str:
        """The holder last observed ("" if none)."""
        return self._observed.holder_identity if self._observed else ""

    def is_leader(self) -> bool:
        """Whether this candidate held the lease when last observed."""
        return self.leader == self.identity

    async def run(self) -> None:
        """Acquire, lead until the lease is lost (then return) or until cancelled (then release)."""
        await self._acquire()
        leading = asyncio.create_task(self._lead(), name=f"leading {self.identity}")
        lost = False
        try:
            await self._renew_until_lost()
            lost = True
            log.warning("%s: lost the lease %s", self.identity, self.lock.describe())
        finally:
            leading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leading
            try:
                if not lost and self.release_on_cancel and self.is_leader():
                    await self._release()
            finally:
                if self.on_stopped_leading is not None:
                    await _maybe_await(self.on_stopped_leading())

    async def _lead(self) -> None:
        try:
            await self.on_started_leading()
        except Exception:
            log.exception("%s: on_started_leading failed", self.identity)

    def _jittered(self) -> float:
        return self.retry_period * (1 + random.random() * JITTER_FACTOR)

    async def _acquire(self) -> None:
        log.info("%s: trying to acquire the lease %s", self.identity, self.lock.describe())
        while True:
            if await self._attempt(self.retry_period):
                break
            await asyncio.sleep(self._jittered())
        log.info("%s: acquired the lease %s", self.identity, self.lock.describe())

    async def _renew_until_lost(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            deadline = loop.time() + self.renew_deadline
            while not await self._attempt(deadline - loop.time()):
                if deadline - loop.time() <= 0:
                    return
                await asyncio.sleep(min(self.retry_period, max(deadline - loop.time(), 0)))
            await asyncio.sleep(self.retry_period)

    async def _attempt(self, budget: float) -> bool:
        """One bounded try_acquire_or_renew; API errors and running out of time count as failure."""
        if budget <= 0:
            return False
        try:
            async with asyncio.timeout(budget):
                return await self._try_acquire_or_renew()
        except (StatusError, httpx.TransportError, TimeoutError) as e:
            log.info("%s: lease %s not acquired/renewed: %s", self.identity, self.lock.describe(), e)
            return False

    async def _try_acquire_or_renew(self) -> bool:
        now = datetime.now(UTC)
        desired = LeaderElectionRecord(self.identity, math.ceil(self.lease_duration), now, now, 0)
        old = await self.lock.get()
        if old is None:
            await self.lock.create(desired)
            await self._observe(desired)
            return True
        if old != self._observed:
            await self._observe(old)
        held_by_other = old.holder_identity and old.holder_identity != self.identity
        if held_by_other and self._observed_at + old.lease_duration_seconds > time.monotonic():
            return False
        if old.holder_identity == self.identity:
            desired = replace(desired, acquire_time=old.acquire_time, leader_transitions=old.leader_transitions)
        else:
            desired = replace(desired, leader_transitions=old.leader_transitions + 1)
        await self.lock.update(desired)
        await self._observe(desired)
        return True

    async def _observe(self, record: LeaderElectionRecord) -> None:
        self._observed, self._observed_at = record, time.monotonic()
        if record.holder_identity != self._reported_leader:
            self._reported_leader = record.holder_identity
            if self.on_new_leader is not None and record.holder_identity:
                try:
                    await _maybe_await(self.on_new_leader(record.holder_identity))
                except Exception:
                    log.exception("%s: on_new_leader failed", self.identity)

    async def _release(self) -> None:
        """Give the lease up: empty holder, 1 s duration, so a follower takes it at its next try."""
        assert self._observed is not None
        now = datetime.now(UTC)
        record = LeaderElectionRecord("", 1, now, now, self._observed.leader_transitions)
        try:
            async with asyncio.timeout(self.renew_deadline):
                await self.lock.update(record)
            self._observed, self._observed_at = record, time.monotonic()
            log.info("%s: released the lease %s", self.identity, self.lock.describe())
        except (StatusError, httpx.TransportError, TimeoutError) as e:
            log.warning("%s: could not release the lease %s: %s", self.identity, self.lock.describe(), e)
