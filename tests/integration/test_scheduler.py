"""The scheduler in-process against the real apiserver: binding, Unschedulable status and events, retries."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from test_scheduler_cluster import cluster, scheduler, wait_for


async def test_binds_to_the_only_fitting_node(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    async with cluster(api, ns) as tc, scheduler(apiserver):
        await tc.add_node("small", cpu="1")
        big = await tc.add_node("big", cpu="4")
        await tc.create_pod(tc.pod("p", cpu="2"))
        assert await tc.bound("p") == big
        pod = await tc.get_pod("p")
        cond = {c["type"]: c for c in pod["status"]["conditions"]}["PodScheduled"]
        assert cond["status"] == "True"

        async def scheduled_event() -> list:
            return await tc.events("p", "Scheduled")

        ev = (await wait_for(scheduled_event, 10, "Scheduled event"))[0]
        assert ev["type"] == "Normal"
        assert ev["message"] == f"Successfully assigned {ns}/p to {big}"
        assert ev["reportingComponent"] == "default-scheduler"  # written through events.k8s.io/v1: no source
        assert ev["action"] == "Binding"
        assert ev["involvedObject"]["kind"] == "Pod"


async def test_unschedulable_then_scheduled_when_a_node_fits(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    async with cluster(api, ns) as tc, scheduler(apiserver):
        await tc.add_node("a", cpu="1")
        await tc.add_node("b", cpu="1")
        await tc.create_pod(tc.pod("p", cpu="2"))
        others = await tc.other_nodes()
        cond = await tc.condition("p")
        assert cond["reason"] == "Unschedulable"
        if others == 0:
            assert cond["message"] == "0/2 nodes are available: 2 Insufficient cpu."
        else:  # nodes left by other tests change the count, not our nodes' reasons
            assert cond["message"].startswith(f"0/{others + 2} nodes are available: ")
            assert "2 Insufficient cpu" in cond["message"]

        async def failed_event() -> list:
            return await tc.events("p", "FailedScheduling")

        ev = (await wait_for(failed_event, 10, "FailedScheduling event"))[0]
        assert ev["type"] == "Warning"
        assert ev["message"] == cond["message"]

        big = await tc.add_node("big", cpu="4")
        assert await tc.bound("p") == big


async def test_mixed_reasons_message(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    async with cluster(api, ns) as tc, scheduler(apiserver):
        await tc.add_node("a", memory="1Gi")
        await tc.add_node("b", memory="1Gi")
        await tc.add_node("c", memory="8Gi", labels={"sched-test": "elsewhere"})
        await tc.create_pod(tc.pod("p", memory="2Gi"))
        others = await tc.other_nodes()
        cond = await tc.condition("p")
        mine = "1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient memory"
        if others == 0:
            assert cond["message"] == f"0/3 nodes are available: {mine}."
        else:
            assert "2 Insufficient memory" in cond["message"]


async def test_fills_nodes_exactly_to_capacity(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    """Each decision sees the pods assumed before it: 40 pods on 4 nodes of 10 pods each, none over."""
    async with cluster(api, ns) as tc, scheduler(apiserver):
        names = [await tc.add_node(f"n{i}", cpu="8", pods="10") for i in range(4)]
        for i in range(40):
            await tc.create_pod(tc.pod(f"p{i}", cpu="100m"))
        await tc.create_pod(tc.pod("extra", cpu="100m"))

        async def all_bound() -> Counter | None:
            r = await api.get(f"/api/v1/namespaces/{ns}/pods")
            placed = Counter(p["spec"].get("nodeName", "") for p in r.json()["items"])
            return placed if sum(v for k, v in placed.items() if k) == 40 else None

        placed = await wait_for(all_bound, 30, "40 pods bound")
        assert {k: v for k, v in placed.items() if k} == dict.fromkeys(names, 10)
        cond = await tc.condition("extra")
        assert "4 Too many pods" in cond["message"]


async def test_pod_anti_affinity_spreads_over_hosts(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    async with cluster(api, ns) as tc, scheduler(apiserver):
        await tc.add_node("a")
        await tc.add_node("b")
        anti = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        }
        for i in range(3):
            body = tc.pod(f"web-{i}", affinity=anti)
            body["metadata"]["labels"] = {"app": "web"}
            await tc.create_pod(body)

        async def two_bound() -> list | None:
            pods = [await tc.get_pod(f"web-{i}") for i in range(3)]
            nodes = [p["spec"].get("nodeName") for p in pods]
            return nodes if len([n for n in nodes if n]) == 2 else None

        nodes = await wait_for(two_bound, 15, "two web pods bound")
        assert len({n for n in nodes if n}) == 2
        left = nodes.index(None)
        cond = await tc.condition(f"web-{left}")
        assert "2 node(s) didn't match pod anti-affinity rules" in cond["message"]

        # Deleting one web pod frees its host for the pending one.
        gone = next(i for i, n in enumerate(nodes) if n)
        r = await api.delete(f"/api/v1/namespaces/{ns}/pods/web-{gone}", params={"gracePeriodSeconds": "0"})
        assert r.status_code == 200
        assert await tc.bound(f"web-{left}") == nodes[gone]


async def test_pod_affinity_waits_for_its_peer(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    async with cluster(api, ns) as tc, scheduler(apiserver):
        await tc.add_node("a")
        await tc.add_node("b")
        term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}
        await tc.create_pod(
            tc.pod("follower", affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}})
        )
        others = await tc.other_nodes()
        cond = await tc.condition("follower")
        if others == 0:
            assert cond["message"] == "0/2 nodes are available: 2 node(s) didn't match pod affinity rules."
        db = tc.pod("db")
        db["metadata"]["labels"] = {"app": "db"}
        await tc.create_pod(db)
        db_node = await tc.bound("db")
        assert await tc.bound("follower") == db_node


async def test_topology_spread_constraint_balances_hosts(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    async with cluster(api, ns) as tc, scheduler(apiserver):
        a = await tc.add_node("a", cpu="8")
        b = await tc.add_node("b", cpu="1")  # LeastAllocated alone would put most pods on a
        spread = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "spread"}},
            }
        ]
        for i in range(6):
            body = tc.pod(f"s{i}", topologySpreadConstraints=spread)
            body["metadata"]["labels"] = {"app": "spread"}
            await tc.create_pod(body)
        placed = Counter([await tc.bound(f"s{i}") for i in range(6)])
        assert placed == {a: 3, b: 3}


async def test_scheduling_gates_hold_a_pod_until_removed(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    async with cluster(api, ns) as tc, scheduler(apiserver):
        await tc.add_node("a")
        await tc.create_pod(tc.pod("gated", schedulingGates=[{"name": "example.com/wait"}]))
        await tc.create_pod(tc.pod("marker"))
        await tc.bound("marker")  # the scheduler is running and saw both pods
        assert not (await tc.get_pod("gated"))["spec"].get("nodeName")
        r = await api.patch(
            f"/api/v1/namespaces/{ns}/pods/gated",
            json={"spec": {"schedulingGates": None}},
            headers={"content-type": "application/merge-patch+json"},
        )
        assert r.status_code == 200, r.text
        await tc.bound("gated")


async def test_other_scheduler_names_are_left_alone(apiserver: str, api: httpx.AsyncClient, ns: str) -> None:
    async with cluster(api, ns) as tc, scheduler(apiserver, "my-scheduler"):
        await tc.add_node("a")
        await tc.create_pod(tc.pod("mine", schedulerName="my-scheduler"))
        await tc.create_pod(tc.pod("theirs"))
        await tc.bound("mine")

        async def scheduled() -> list | None:  # events are written asynchronously
            return await tc.events("mine", "Scheduled") or None

        events = await wait_for(scheduled, 10, "the Scheduled event")
        assert events[0]["reportingComponent"] == "my-scheduler"
        pod = await tc.get_pod("theirs")
        assert not pod["spec"].get("nodeName")
        assert not [c for c in pod.get("status", {}).get("conditions") or [] if c["type"] == "PodScheduled"]


async def test_a_burst_binds_every_pod_and_writes_every_scheduled_event(
    apiserver: str, api: httpx.AsyncClient, ns: str
) -> None:
    async with cluster(api, ns) as tc, scheduler(apiserver):
        node = await tc.add_node("n", cpu="8")
        names = [f"b{i}" for i in range(40)]
        await asyncio.gather(*(tc.create_pod(tc.pod(n, cpu="10m")) for n in names))
        for n in names:
            assert await tc.bound(n) == node

        async def all_scheduled() -> list | None:
            r = await api.get(f"/api/v1/namespaces/{ns}/events", params={"fieldSelector": "reason=Scheduled"})
            got = sorted(e["involvedObject"]["name"] for e in r.json()["items"])
            return got if len(got) == len(names) else None

        # the Events trail the bindings (the scheduler holds them while it binds), and every one is written
        assert await wait_for(all_scheduled, 20, "a Scheduled event per pod") == sorted(names)
