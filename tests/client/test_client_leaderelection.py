"""Leader election against the real apiserver: two candidates, one Lease, exactly one leader."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from client_kit import eventually

from apimachinery.errors import StatusError
from client.leaderelection import LeaderElectionRecord, LeaderElector, LeaseLock
from client.rest import ApiClient

TIMING = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.2}


@dataclass
class Candidate:
    """One elector plus what its callbacks observed."""

    elector: LeaderElector
    started: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    work_cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    leaders_seen: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


def candidate(api: ApiClient, ns: str, identity: str, release: bool = True) -> Candidate:
    c: Candidate

    async def lead() -> None:
        c.started.set()
        try:
            await asyncio.Event().wait()  # the controllers would run here
        except asyncio.CancelledError:
            c.work_cancelled.set()
            raise

    def new_leader(who: str) -> None:
        c.leaders_seen.append(who)

    elector = LeaderElector(
        LeaseLock(api, ns, "controller-manager", identity),
        on_started_leading=lead,
        on_stopped_leading=lambda: c.stopped.set(),
        on_new_leader=new_leader,
        release_on_cancel=release,
        **TIMING,
    )
    c = Candidate(elector)
    return c


@contextlib.asynccontextmanager
async def running(*cands: Candidate) -> AsyncIterator[None]:
    for c in cands:
        c.task = asyncio.create_task(c.elector.run())
    try:
        yield
    finally:
        for c in cands:
            assert c.task is not None
            c.task.cancel()
        await asyncio.gather(*(c.task for c in cands if c.task), return_exceptions=True)


async def wait(event: asyncio.Event, timeout: float = 10.0) -> None:
    await asyncio.wait_for(event.wait(), timeout)


async def first_leader(a: Candidate, b: Candidate) -> tuple[Candidate, Candidate]:
    await eventually(lambda: a.started.is_set() or b.started.is_set(), 10, "a leader")
    return (a, b) if a.started.is_set() else (b, a)


async def lease(api: ApiClient, ns: str) -> LeaderElectionRecord:
    obj = await api.get("leases", "controller-manager", ns)
    return LeaderElectionRecord.from_lease_spec(obj["spec"])


async def test_exactly_one_leads_and_the_other_takes_over_after_release(kube: ApiClient, ns: str) -> None:
    a, b = candidate(kube, ns, "a"), candidate(kube, ns, "b")
    async with running(a, b):
        leader, follower = await first_leader(a, b)
        # the follower has read the lease and seen someone else hold it
        await eventually(lambda: leader.elector.identity in follower.leaders_seen, 10, "the follower to see the leader")
        assert leader.elector.is_leader() and not follower.elector.is_leader()
        assert not follower.started.is_set()
        record = await lease(kube, ns)
        assert record.holder_identity == leader.elector.identity
        assert record.lease_duration_seconds == 2 and record.leader_transitions == 0
        assert record.acquire_time and record.renew_time and record.renew_time <= datetime.now(UTC)

        assert leader.task is not None
        leader.task.cancel()  # clean shutdown: stop the work, release the lease
        await wait(leader.stopped)
        assert leader.work_cancelled.is_set()
        await wait(follower.started, 5)  # well before lease_duration would have passed after release
        record = await lease(kube, ns)
        assert record.holder_identity == follower.elector.identity and record.leader_transitions == 1
        assert follower.leaders_seen[-1] == follower.elector.identity


async def test_takeover_after_the_leader_dies_without_releasing(kube: ApiClient, ns: str) -> None:
    a, b = candidate(kube, ns, "a", release=False), candidate(kube, ns, "b", release=False)
    async with running(a, b):
        leader, follower = await first_leader(a, b)
        held = await lease(kube, ns)
        assert leader.task is not None
        leader.task.cancel()  # like a crash: the lease is left held
        await wait(leader.stopped)
        assert (await lease(kube, ns)).holder_identity == leader.elector.identity
        await wait(follower.started, 10)
        record = await lease(kube, ns)
        assert record.holder_identity == follower.elector.identity
        assert record.leader_transitions == held.leader_transitions + 1


async def test_leader_renews_while_leading(kube: ApiClient, ns: str) -> None:
    a = candidate(kube, ns, "solo")
    async with running(a):
        await wait(a.started)
        first = await lease(kube, ns)
        renewed = asyncio.Event()

        async def watch_renewals() -> None:
            while not renewed.is_set():
                if await _renewed_after(kube, ns, first):
                    renewed.set()
                else:
                    await asyncio.sleep(0.05)

        await asyncio.wait_for(watch_renewals(), 10)
        assert a.elector.is_leader() and not a.stopped.is_set()
        again = await lease(kube, ns)
        assert again.acquire_time == first.acquire_time and again.leader_transitions == first.leader_transitions


async def test_leadership_is_lost_when_renewals_fail(kube: ApiClient, ns: str) -> None:
    a = candidate(kube, ns, "doomed")
    async with running(a):
        await wait(a.started)
        # someone else takes the lease by force: every renewal now conflicts or sees another holder
        await usurp(kube, ns)
        await wait(a.stopped, 10)
        assert a.work_cancelled.is_set()
        assert a.task is not None
        await asyncio.wait_for(a.task, 5)  # run() returns by itself when leadership is lost
        assert (await lease(kube, ns)).holder_identity == "usurper"  # not released: it was not ours


def test_timing_is_validated() -> None:
    class Lock:
        identity = "x"

    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        LeaderElector(Lock(), on_started_leading=asyncio.sleep, lease_duration=1, renew_deadline=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LeaderElector(Lock(), on_started_leading=asyncio.sleep, renew_deadline=2, retry_period=2)  # type: ignore[arg-type]


async def usurp(api: ApiClient, ns: str) -> None:
    """Overwrite the lease's holder, retrying while the leader's renewals race us (RetryOnConflict)."""
    for _ in range(50):
        obj = await api.get("leases", "controller-manager", ns)
        obj["spec"].update(holderIdentity="usurper", leaseDurationSeconds=3600)
        try:
            await api.update("leases", obj)
            return
        except StatusError as e:
            if e.code != 409:
                raise
    raise AssertionError("could not overwrite the lease")


async def _renewed_after(api: ApiClient, ns: str, first: LeaderElectionRecord) -> bool:
    try:
        now = await lease(api, ns)
    except StatusError:
        return False
    return bool(now.renew_time and first.renew_time and now.renew_time > first.renew_time)
