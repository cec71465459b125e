"""Two `python -m scheduler` processes with leader election: one leads and binds; the other takes over."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
from test_scheduler_cluster import cluster, wait_for

from tinykube.procs import Process, free_port

LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler"
STARTED = "scheduler default-scheduler started"


def start(apiserver: str, log: Path) -> Process:
    argv = [sys.executable, "-m", "scheduler", "--server", apiserver, "--health-port", str(free_port())]
    return Process("scheduler", argv, log)


def started(p: Process) -> bool:
    return STARTED in (p.log_path.read_text(errors="replace") if p.log_path.exists() else "")


async def test_only_the_leader_binds_and_the_other_takes_over(
    apiserver: str, api: httpx.AsyncClient, ns: str, tmp_path: Path
) -> None:
    procs = [start(apiserver, tmp_path / f"sched-{i}.log") for i in range(2)]
    try:
        async with cluster(api, ns) as tc:
            await tc.add_node("a", cpu="8")
            await tc.add_node("b", cpu="8")

            async def leader() -> Process | None:
                leaders = [p for p in procs if started(p)]
                assert len(leaders) <= 1, "two schedulers lead at once"
                return leaders[0] if leaders else None

            first = await wait_for(leader, 30, "a scheduler to lead")
            lease = (await api.get(LEASE)).json()
            assert lease["spec"]["holderIdentity"]

            for i in range(10):
                await tc.create_pod(tc.pod(f"p{i}"))
            for i in range(10):
                await tc.bound(f"p{i}", timeout=20)

            async def one_event_each() -> bool:
                for i in range(10):
                    events = await tc.events(f"p{i}", "Scheduled")
                    if len(events) != 1:
                        return False
                    assert events[0].get("series") is None  # written once, through events.k8s.io/v1
                return True

            await wait_for(one_event_each, 10, "one Scheduled event per pod")
            assert [p for p in procs if started(p)] == [first]

            # The leader stops (releasing the lease): the other one takes over and schedules.
            await asyncio.to_thread(first.stop)
            second = next(p for p in procs if p is not first)

            async def took_over() -> bool:
                return started(second)

            await wait_for(took_over, 30, "the other scheduler to lead")
            holder = (await api.get(LEASE)).json()["spec"]["holderIdentity"]
            assert holder and holder != lease["spec"]["holderIdentity"]
            await tc.create_pod(tc.pod("after"))
            await tc.bound("after", timeout=20)
    finally:
        for p in procs:
            await asyncio.to_thread(p.stop)
