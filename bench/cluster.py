"""Benchmark of the whole cluster: pod start-up latency, scheduler throughput, Deployment roll-outs.

Run from the repo root:

    .venv/bin/python bench/cluster.py            # all three phases
    .venv/bin/python bench/cluster.py --quick    # smaller counts (about a minute)
    .venv/bin/python bench/cluster.py --phases scheduler --nodes 1000 --node-objects

Each phase starts its own cluster through the launcher (`tinykube.cluster.Cluster`) in a temp dir
and prints its figures beside the apiserver's raw pod-create rate measured in the same cluster
in the same run (C concurrent POSTs of pods nobody acts on), so numbers hold on a noisy machine:

1. startup: P pods on 2 real nodes (process runtime), create → Ready latency p50 / p99, with each pod's
   timeline split into stages from the watch (bound, first kubelet status, Running, Ready), the pod
   status writes per pod, and the CPU the components used.
2. scheduler: N pending pods created with no scheduler running; then a scheduler starts and binds
   them onto S simulated nodes (`--nodes`; `--node-objects`: S Node objects with no kubelet): pods
   bound per second, plus the CPU per bound pod of the scheduler and of the apiserver (until the last
   binding, and until the last `Scheduled` Event, which the scheduler writes behind its bindings).
3. deployment: a R-replica Deployment on the S simulated nodes: seconds until fully available,
   then seconds for a rolling update (new image) to complete; beside the start-up p50 of phase 1.
4. burst: B pods (16 concurrent POSTs) on the S simulated nodes with the scheduler running: seconds from
   the first POST until every pod is seen Running and Ready on a watch, beside the raw create time; the
   components' CPU per pod until then, and until the last `Scheduled` Event is written.

5. nodes (only when asked: `--phases nodes --nodes 1000`): a cluster with S simulated nodes and nothing
   else acting on them: seconds from the simulated kubelet's process start until all S are registered and
   Ready, the CPU the apiserver, etcd and that kubelet had used by then, then their CPU per second over
   20 s of lease renewals (S / 10 a second) and the kubelet's stats housekeeping (no metrics-server).

6. scale (only when asked: `--phases scale --nodes 5000 --pods 30000`): P pods created on S simulated nodes
   with the scheduler running: create rate, bind rate, seconds until all are Running, then the apiserver's
   and etcd's memory, pod / node list latency at that size (one full list, and pages of 500) and the age
   of the node Leases' renewTime; progress every 30 s on stderr.

`--phases startup,burst` runs only those phases.

The benchmark's own requests go through `bench_client` (the repo's keep-alive transport, orjson): its CPU per
pod is printed with the components' ("bench client"), so what it takes from the two cores can be read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchkit import load_apiserver_bench

from client.transport import KeepAliveTransport
from tinykube.cluster import Cluster, ClusterSpec

LeanClient = load_apiserver_bench().LeanClient

NS = "bench"
# the raw-create baseline's pods name a scheduler that does not run: nobody acts on them, so they do not
# queue in the scheduler (and write FailedScheduling) ahead of the pods being measured
IDLE = "bench-nobody"


def bench_client(server: str, timeout: float = 30) -> httpx.AsyncClient:
    """The benchmark's own client: httpx's API over the repo's keep-alive transport (`LeanClient` of
    bench/apiserver.py). A load generator must cost far less than what it measures: httpx's default
    client took about 2 ms of this process's CPU per pod of the burst, on two cores the cluster shares."""
    transport = KeepAliveTransport(None, max_connections=64, max_idle_connections=64)
    return LeanClient(base_url=server, transport=transport, timeout=timeout, trust_env=False)


async def post_json(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST `body` as JSON (encoded by orjson); raises on an error status."""
    r = await api.post(path, content=orjson.dumps(body), headers={"content-type": "application/json"})
    r.raise_for_status()
    return r


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of samples."""
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def pod(
    name: str, node_selector: dict[str, str] | None = None, command: list[str] | None = None, scheduler: str = ""
) -> dict[str, Any]:
    """A small pod; `command` makes it runnable by the process runtime; `scheduler` names a scheduler (one
    that does not run leaves the pod alone)."""
    container: dict[str, Any] = {"name": "c", "image": "busybox:1.36", "resources": {"requests": {"cpu": "10m"}}}
    if command:
        container["command"] = command
    spec: dict[str, Any] = {"containers": [container], "terminationGracePeriodSeconds": 1}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if scheduler:
        spec["schedulerName"] = scheduler
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "1"}}, "spec": spec}


async def create_all(
    api: httpx.AsyncClient, bodies: list[dict[str, Any]], concurrency: int, done: list[int] | None = None
) -> float:
    """POST every body with `concurrency` workers (counting the creates in `done[0]`); creates per second."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)

    async def worker() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            await post_json(api, f"/api/v1/namespaces/{NS}/pods", body)
            if done is not None:
                done[0] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(bodies) / (time.perf_counter() - start)


async def watch_until(
    api: httpx.AsyncClient, path: str, done: Callable[[dict[str, Any]], bool], timeout: float, rv: str = ""
) -> None:
    """Follow a watch until `done(event)` returns True."""
    params = {"watch": "1", "allowWatchBookmarks": "false"}
    if rv:
        params["resourceVersion"] = rv
    async with asyncio.timeout(timeout):
        async with api.stream("GET", path, params=params, timeout=httpx.Timeout(10, read=None)) as r:
            rest = b""
            async for chunk in r.aiter_raw():
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    if line.strip() and done(orjson.loads(line)):
                        return


async def request_counts(api: httpx.AsyncClient) -> dict[str, float]:
    """The apiserver's `apiserver_request_total` so far, summed over codes, by "verb resource"."""
    counts: dict[str, float] = {}
    for line in (await api.get("/metrics")).text.splitlines():
        if line.startswith("apiserver_request_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            key = f"{labels.get('verb')} {labels.get('resource')}"
            counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def per_pod_requests(before: dict[str, float], after: dict[str, float], pods: int) -> dict[str, float]:
    """Requests per pod between two `request_counts`, leaving out the rare ones (under 1 per 100 pods)."""
    return {k: (v - before.get(k, 0.0)) / pods for k, v in after.items() if v - before.get(k, 0.0) >= pods / 100}


async def scheduled_events(api: httpx.AsyncClient, pods: int, rv: str, timeout: float = 120) -> None:
    """Wait until the scheduler's `Scheduled` Event of each of `pods` pods in the namespace has been written
    (a watch of the namespace's Events from `rv`, started with the phase: the watch cache's window may not
    reach back that far later): the scheduler writes them behind its bindings, so the CPU a pod costs is
    also counted until the last one is in."""
    seen: set[str] = set()

    def done(ev: dict[str, Any]) -> bool:
        obj = ev["object"]
        if ev["type"] == "ADDED" and obj.get("reason") == "Scheduled":
            seen.add(obj["involvedObject"]["name"])
        return len(seen) >= pods

    await watch_until(api, f"/api/v1/namespaces/{NS}/events", done, timeout, rv)


async def make_namespace(api: httpx.AsyncClient) -> None:
    """Create the benchmark namespace."""
    r = await api.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    r.raise_for_status()


def _ready(p: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in p.get("status", {}).get("conditions", [])
    )


STAGES = ("bound", "status", "running", "ready")


def _stage(p: dict[str, Any]) -> set[str]:
    """The start-up stages a pod object shows it has passed."""
    st = p.get("status") or {}
    out = set()
    if p["spec"].get("nodeName"):
        out.add("bound")
    if st.get("hostIP"):  # only the kubelet writes hostIP
        out.add("status")
    if any("running" in (c.get("state") or {}) for c in st.get("containerStatuses") or []):
        out.add("running")
    if _ready(p):
        out.add("ready")
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its reaped children) from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def apiservers_cpu(cluster: Cluster) -> float:
    """CPU seconds used so far by the cluster's apiserver processes together (`--apiserver-count`)."""
    return sum(cpu_seconds(p.pid) for p in cluster.processes if p.name.startswith("apiserver"))


def loadavg() -> str:
    """The machine's /proc/loadavg line."""
    return Path("/proc/loadavg").read_text().strip()


def component_cpu(cluster: Cluster) -> dict[str, float]:
    """CPU seconds used so far by each component, kubelets summed, and by the kubelets' descendants
    ("containers": the containers' start-up before exec, and the process runtime's fork servers)."""
    out: dict[str, float] = {}
    kubelets = set()
    for proc in cluster.processes:
        name = next((k for k in ("kubelet", "apiserver") if proc.name.startswith(k)), proc.name)
        out[name] = out.get(name, 0.0) + cpu_seconds(proc.pid)
        if name == "kubelet":
            kubelets.add(proc.pid)
    out["containers"] = sum(run_seconds(pid) for pid in descendants(kubelets))
    out["bench client"] = time.process_time()
    return out


def run_seconds(pid: int) -> float:
    """CPU seconds a (single-threaded) live process has run, in ns from /proc/<pid>/schedstat: the
    clock ticks of /proc/<pid>/stat drop up to 10 ms per process, as much as a container's start costs."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def descendants(roots: set[int]) -> list[int]:
    """Every live process below `roots` in the process tree."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out: list[int] = []
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


async def phase_startup(cluster: Cluster, pods: int, concurrency: int) -> dict[str, Any]:
    """Create → Ready latency on the real nodes (with a per-stage timeline), plus the raw create rate."""
    async with bench_client(cluster.server) as api:
        await make_namespace(api)
        raw = [pod(f"raw-{i}", scheduler=IDLE) for i in range(pods * 2)]
        raw_rate = await create_all(api, raw, concurrency)
        rv = (await api.get(f"/api/v1/namespaces/{NS}/pods", params={"limit": "1"})).json()["metadata"][
            "resourceVersion"
        ]
        created: dict[str, float] = {}
        stages: dict[str, dict[str, float]] = {}
        writes: dict[str, int] = {}

        def seen(ev: dict[str, Any]) -> bool:
            obj = ev["object"]
            name = obj["metadata"]["name"]
            if not name.startswith("run-") or name not in created:
                return False
            now = time.perf_counter()
            mine = stages.setdefault(name, {})
            if "bound" in mine and ev["type"] == "MODIFIED":
                writes[name] = writes.get(name, 0) + 1  # status writes (and the graceful-delete ones: none here)
            for stage in _stage(obj):
                mine.setdefault(stage, now - created[name])
            return sum(1 for m in stages.values() if "ready" in m) == pods

        watcher = asyncio.create_task(watch_until(api, f"/api/v1/namespaces/{NS}/pods", seen, 300, rv))
        sem = asyncio.Semaphore(concurrency)
        cpu0 = component_cpu(cluster)

        async def one(i: int) -> None:
            async with sem:
                name = f"run-{i}"
                created[name] = time.perf_counter()
                await post_json(api, f"/api/v1/namespaces/{NS}/pods", pod(name, command=["sleep", "3600"]))

        await asyncio.gather(*(one(i) for i in range(pods)))
        await watcher
        cpu1 = component_cpu(cluster)
        # status writes seen after Ready (a write that lands late) are counted by a short settle
        await asyncio.sleep(2)
        samples = [m["ready"] for m in stages.values()]
        timeline = {
            stage: (
                percentile([m[stage] for m in stages.values() if stage in m], 50) * 1000,
                percentile([m[stage] for m in stages.values() if stage in m], 99) * 1000,
            )
            for stage in STAGES
        }
        # the kubelet's share: from the binding seen on the watch to Ready seen on the watch
        on_node = [m["ready"] - m["bound"] for m in stages.values()]
        timeline["bound → ready"] = (percentile(on_node, 50) * 1000, percentile(on_node, 99) * 1000)
        return {
            "raw": raw_rate,
            "p50": percentile(samples, 50) * 1000,
            "p99": percentile(samples, 99) * 1000,
            "timeline": timeline,
            "writes": sum(writes.values()) / pods,
            "cpu": {k: (cpu1.get(k, 0.0) - v) / pods * 1000 for k, v in cpu0.items()},
        }


def load_average() -> float:
    """The 1-minute load average (other work on the machine skews rates, not CPU per pod)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


async def register_nodes(api: httpx.AsyncClient, count: int, concurrency: int) -> None:
    """Register `count` Ready Node objects nobody heartbeats (`--node-objects`: no kubelet behind them).

    Nothing runs their pods, so each pod costs the apiserver the scheduler's writes only; the node
    lifecycle controller is off in this cluster, so they stay Ready.
    """
    from kubelet.simulated import simulated_cidrs, simulated_node

    queue = list(simulated_cidrs("node-obj", count).items())

    async def worker() -> None:
        while queue:
            name, cidr = queue.pop()
            body = simulated_node(name, cidr, "32", "256Gi", 110)
            r = await api.post("/api/v1/nodes", json=body)
            r.raise_for_status()
            created = r.json()
            created["status"] = body["status"]
            (await api.put(f"/api/v1/nodes/{name}/status", json=created)).raise_for_status()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def phase_scheduler(cluster: Cluster, pods: int, concurrency: int, node_objects: int = 0) -> dict[str, float]:
    """Bind rate of a scheduler started with `pods` pending pods, plus the raw create rate.

    Also: seconds from the scheduler's start to its first binding, the rate from the first binding
    to the last, and the CPU milliseconds per bound pod of the scheduler and of the apiserver.
    """
    async with bench_client(cluster.server) as api:
        await make_namespace(api)
        if node_objects:
            await register_nodes(api, node_objects, concurrency)
        raw_rate = await create_all(api, [pod(f"p-{i}") for i in range(pods)], concurrency)
        listing = (await api.get(f"/api/v1/namespaces/{NS}/pods")).json()
        bound = {p["metadata"]["name"] for p in listing["items"] if p["spec"].get("nodeName")}
        first: list[float] = []  # the time of the first binding seen, the scheduler's CPU seconds then
        cpu_first: dict[str, float] = {}  # every component's CPU seconds then

        def seen(ev: dict[str, Any]) -> bool:
            obj = ev["object"]
            if obj["spec"].get("nodeName"):
                if not first:
                    sched = next(p for p in cluster.processes if p.name == "scheduler")
                    first.extend((time.perf_counter(), cpu_seconds(sched.pid)))
                    cpu_first.update(component_cpu(cluster))
                bound.add(obj["metadata"]["name"])
            return len(bound) >= pods

        watcher = asyncio.create_task(
            watch_until(api, f"/api/v1/namespaces/{NS}/pods", seen, 600, listing["metadata"]["resourceVersion"])
        )
        events = asyncio.create_task(scheduled_events(api, pods, listing["metadata"]["resourceVersion"]))
        asked0 = await request_counts(api)
        api_cpu = apiservers_cpu(cluster)
        start = time.perf_counter()
        scheduler = await asyncio.to_thread(cluster.start_scheduler)
        await watcher
        end = time.perf_counter()
        api_cpu_total = apiservers_cpu(cluster)
        cpu_last = component_cpu(cluster)
        asked1 = await request_counts(api)
        api_cpu = api_cpu_total - api_cpu
        sched_cpu = cpu_seconds(scheduler.pid) - first[1]  # leaves out its start-up (imports, lists)
        await events
        events_end = time.perf_counter()
        api_cpu_total = api_cpu + apiservers_cpu(cluster) - api_cpu_total
        return {
            "raw": raw_rate,
            "bind": pods / (end - start),
            "first": first[0] - start,
            "steady": (pods - 1) / max(end - first[0], 1e-9),
            "sched_ms": sched_cpu * 1000 / (pods - 1),
            "api_ms": api_cpu * 1000 / pods,
            "api_ms_events": api_cpu_total * 1000 / pods,
            "events_at": events_end - start,
            "load": load_average(),
            "asked": per_pod_requests(asked0, asked1, pods),
            "cpu": {k: (cpu_last.get(k, 0.0) - v) * 1000 / (pods - 1) for k, v in cpu_first.items()},
        }


async def phase_deployment(server: str, replicas: int) -> dict[str, float]:
    """Seconds to a fully available Deployment, then for a rolling update of it."""
    path = f"/apis/apps/v1/namespaces/{NS}/deployments"
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
            },
        },
    }

    def complete(ev: dict[str, Any]) -> bool:
        d = ev["object"]
        st = d.get("status", {})
        return (
            st.get("observedGeneration", 0) >= d["metadata"].get("generation", 1)
            and st.get("updatedReplicas") == replicas
            and st.get("availableReplicas") == replicas
            and st.get("replicas") == replicas
        )

    async with bench_client(server) as api:
        rv = (await api.get(path)).json()["metadata"]["resourceVersion"]
        start = time.perf_counter()
        (await api.post(path, json=dep)).raise_for_status()
        await watch_until(api, path, complete, 600, rv)
        available = time.perf_counter() - start
        start = time.perf_counter()
        r = await api.patch(
            f"{path}/web",
            json={"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}},
            headers={"content-type": "application/strategic-merge-patch+json"},
        )
        r.raise_for_status()
        await watch_until(api, path, complete, 600, r.json()["metadata"]["resourceVersion"])
        return {"available": available, "rollout": time.perf_counter() - start}


async def phase_burst(cluster: Cluster, pods: int, concurrency: int) -> dict[str, Any]:
    """Seconds from the first POST until `pods` pods are Running and Ready on the simulated nodes."""
    async with bench_client(cluster.server) as api:
        await make_namespace(api)
        raw_rate = await create_all(api, [pod(f"raw-{i}", scheduler=IDLE) for i in range(pods)], concurrency)
        rv = (await api.get(f"/api/v1/namespaces/{NS}/pods", params={"limit": "1"})).json()["metadata"][
            "resourceVersion"
        ]
        ready: dict[str, float] = {}
        bound: dict[str, float] = {}

        def seen(ev: dict[str, Any]) -> bool:
            obj = ev["object"]
            name = obj["metadata"]["name"]
            if name.startswith("burst-") and obj["spec"].get("nodeName"):
                bound.setdefault(name, time.perf_counter())
                if (obj.get("status") or {}).get("phase") == "Running" and _ready(obj):
                    ready.setdefault(name, time.perf_counter())
            return len(ready) == pods

        watcher = asyncio.create_task(watch_until(api, f"/api/v1/namespaces/{NS}/pods", seen, 300, rv))
        events = asyncio.create_task(scheduled_events(api, pods, rv))
        asked0 = await request_counts(api)
        cpu0 = component_cpu(cluster)
        start = time.perf_counter()
        await create_all(api, [pod(f"burst-{i}") for i in range(pods)], concurrency)
        posted = time.perf_counter() - start
        await watcher
        total = time.perf_counter() - start
        cpu1 = component_cpu(cluster)
        asked1 = await request_counts(api)
        await events
        events_at = time.perf_counter() - start
        cpu2 = component_cpu(cluster)
        on_node = [ready[n] - bound[n] for n in ready]  # the simulated kubelet's share: bound → Running seen
        return {
            "raw": pods / raw_rate,
            "posted": posted,
            "bound": max(bound.values()) - start,
            "on_node": (percentile(on_node, 50) * 1000, percentile(on_node, 99) * 1000),
            "running": total,
            "cpu": {k: (cpu1.get(k, 0.0) - v) / pods * 1000 for k, v in cpu0.items()},
            "events_at": events_at,
            "cpu_events": {k: (cpu2.get(k, 0.0) - v) / pods * 1000 for k, v in cpu0.items()},
            "asked": per_pod_requests(asked0, asked1, pods),
        }


def memory_mib(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM (peak) of a process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def list_p50(api: httpx.AsyncClient, path: str, reps: int = 3, limit: int = 0) -> tuple[float, int, float]:
    """Median milliseconds of a full list of `path`, timed until decoded (orjson), the items it held, and the
    median milliseconds until the last body was in (the server's share and the transfer); with `limit`, the
    whole list in pages of that many (following `continue`), as informers and kubectl list."""
    times, received, items = [], [], 0
    for _ in range(reps):
        t = time.perf_counter()
        items, token, decoding = 0, "", 0.0
        while True:
            params = {"limit": str(limit)} if limit else {}
            if token:
                params["continue"] = token
            try:
                r = await api.get(path, params=params)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # a pooled connection the apiserver closed while idle (its keep-alive timeout): once more
                r = await api.get(path, params=params)
            r.raise_for_status()
            d = time.perf_counter()
            gc.disable()  # millions of new objects: the collector's passes over them would be timed too
            try:
                body = orjson.loads(r.content)
            finally:
                gc.enable()
            decoding += time.perf_counter() - d
            items += len(body["items"])
            if not (token := body["metadata"].get("continue", "")):
                break
        times.append((time.perf_counter() - t) * 1000)
        received.append(times[-1] - decoding * 1000)
    return percentile(times, 50), items, percentile(received, 50)


def lease_ages(server: str) -> tuple[float, float]:
    """Median and oldest age, in seconds, of the node Leases' renewTime."""
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    leases = httpx.get(f"{server}{path}", timeout=120)
    leases.raise_for_status()
    now = datetime.now(UTC)
    ages = [
        (
            now - datetime.strptime(item["spec"]["renewTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        ).total_seconds()
        for item in leases.json()["items"]
    ]
    return percentile(ages, 50), max(ages)


async def phase_scale(cluster: Cluster, pods: int, concurrency: int) -> dict[str, Any]:
    """`pods` pods on the simulated nodes: create rate, scheduler throughput, time until all Running, then the
    apiserver's and etcd's memory, full and paginated pod / node list latency and the Leases' age at that size.
    Prints its progress every 30 s to stderr (a run this size takes many minutes)."""
    async with bench_client(cluster.server, 300) as api:
        await make_namespace(api)
        rv = (await api.get(f"/api/v1/namespaces/{NS}/pods", params={"limit": "1"})).json()["metadata"][
            "resourceVersion"
        ]
        bound: dict[str, float] = {}
        ready: set[str] = set()
        created = [0]

        def seen(ev: dict[str, Any]) -> bool:
            nonlocal rv
            if ev["type"] == "ERROR":
                raise RuntimeError(f"pod watch ended: {ev['object']}")
            obj = ev["object"]
            rv = obj["metadata"].get("resourceVersion", rv)
            name = obj["metadata"]["name"]
            if obj["spec"].get("nodeName"):
                bound.setdefault(name, time.perf_counter())
                if (obj.get("status") or {}).get("phase") == "Running" and _ready(obj):
                    ready.add(name)
            return len(ready) == pods

        async def follow() -> None:
            # a watch this long may be closed by the apiserver: resume it from the last resourceVersion seen
            async with asyncio.timeout(3 * 3600):
                while len(ready) < pods:
                    with contextlib.suppress(httpx.TransportError):
                        await watch_until(api, f"/api/v1/namespaces/{NS}/pods", seen, 3 * 3600, rv)

        async def progress() -> None:
            while True:
                await asyncio.sleep(30)
                print(
                    f"scale: {time.perf_counter() - start:.0f} s: {created[0]} created, {len(bound)} bound, "
                    f"{len(ready)} Running; load {loadavg().split()[0]}",
                    file=sys.stderr,
                    flush=True,
                )

        watcher = asyncio.create_task(follow())
        start = time.perf_counter()
        reporter = asyncio.create_task(progress())
        rate = await create_all(api, [pod(f"s-{i}") for i in range(pods)], concurrency, created)
        await watcher
        running = time.perf_counter() - start
        reporter.cancel()
        first, last = min(bound.values()), max(bound.values())
        out: dict[str, Any] = {
            "create": rate,
            "running": running,
            "bind": (pods - 1) / max(last - first, 1e-9),
            "bound_span": (first - start, last - start),
            "load": loadavg(),
            "lease_age": lease_ages(cluster.server),
            "pods_list": await list_p50(api, "/api/v1/pods"),
            "pods_pages": await list_p50(api, "/api/v1/pods", limit=500),
            "nodes_list": await list_p50(api, "/api/v1/nodes"),
            "nodes_pages": await list_p50(api, "/api/v1/nodes", limit=500),
        }
        for name in ("apiserver", "etcd"):
            proc = next(p for p in cluster.processes if p.name == name)
            out[name] = memory_mib(proc.pid)
        return out


def process_age(pid: int) -> float:
    """Seconds since the process started (its start time in /proc/<pid>/stat against /proc/uptime)."""
    started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
    return float(Path("/proc/uptime").read_text().split()[0]) - started


def phase_nodes(data_dir: Path, count: int, idle: float = 20.0) -> dict[str, Any]:
    """Seconds until `count` simulated nodes are Ready, the CPU used by then, and CPU per second while idle."""
    spec = ClusterSpec(
        data_dir=data_dir,
        nodes=0,
        simulated_nodes=count,
        scheduler=False,
        controllers="-nodelifecycle",
        metrics_server=False,  # it would scrape every node's stats: not what this phase measures
        dns=False,
        log_level="warning",
        ready_timeout=max(60.0, count * 0.3),
    )
    with Cluster(spec) as cluster:
        kubelet = next(p for p in cluster.processes if p.name == "kubelet-simulated")
        up = process_age(kubelet.pid)
        cpu0 = component_cpu(cluster)
        time.sleep(idle)
        cpu1 = component_cpu(cluster)
        lease_age = lease_ages(cluster.server)
    return {
        "up": up,
        "lease_age": lease_age,
        "cpu_up": cpu0,
        "cpu_idle": {k: (cpu1.get(k, 0.0) - v) / idle * 1000 for k, v in cpu0.items()},
        "load": loadavg(),
    }


def _asked(figures: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(figures["asked"].items(), key=lambda kv: -kv[1]))


def _cpu_note(cpu: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v >= 0.05)


async def run(args: argparse.Namespace) -> None:
    """Run the phases and print the table."""
    rows: list[tuple[str, str, str]] = []
    notes: list[str] = []
    phases = set(args.phases.split(","))
    s: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-") as tmp:
        if "nodes" in phases:
            n = phase_nodes(Path(tmp) / "n", args.nodes)
            rows.append(
                (
                    f"{args.nodes} simulated nodes registered and Ready",
                    f"{n['up']:.1f} s after the kubelet started",
                    f"load {n['load'].split()[0]} at the end",
                )
            )
            notes.append(f"nodes: CPU seconds used by the time all were Ready: {_cpu_note(n['cpu_up'])}")
            notes.append(f"nodes: CPU ms per second afterwards (lease renewals): {_cpu_note(n['cpu_idle'])}")
            notes.append(
                "nodes: age of the Leases' renewTime at the end, median / oldest (renewed every 10 s when keeping up): "
                f"{n['lease_age'][0]:.1f} / {n['lease_age'][1]:.1f} s"
            )
        if "startup" in phases:
            spec = ClusterSpec(data_dir=Path(tmp) / "a", nodes=2, controllers="-nodelifecycle", log_level="warning")
            with Cluster(spec) as cluster:
                s = await phase_startup(cluster, args.startup_pods, args.concurrency)
            rows.append(
                (
                    f"pod start-up, create → Ready ({args.startup_pods} pods, 2 nodes)",
                    f"p50 {s['p50']:.0f} ms, p99 {s['p99']:.0f} ms",
                    f"raw creates {s['raw']:.0f}/s",
                )
            )
            stages = ", ".join(f"{k} {p50:.0f}/{p99:.0f}" for k, (p50, p99) in s["timeline"].items())
            notes.append(f"start-up timeline from the POST, p50/p99 ms: {stages}")
            notes.append(f"start-up: {s['writes']:.1f} pod updates per pod after binding (status writes)")
            notes.append(f"start-up CPU ms per pod: {_cpu_note(s['cpu'])}")
        if phases & {"scheduler", "deployment"}:
            spec = ClusterSpec(
                data_dir=Path(tmp) / "b",
                nodes=0,
                simulated_nodes=0 if args.node_objects else args.nodes,
                scheduler=False,
                controllers="replicaset,deployment",
                apiserver_count=args.apiserver_count,
                log_level="warning",
                ready_timeout=max(60.0, args.nodes * 0.3),  # 1,000 simulated nodes take a while to register
            )
            with Cluster(spec) as cluster:
                kind = "Node objects" if args.node_objects else "nodes"
                if "scheduler" in phases:
                    objects = args.nodes if args.node_objects else 0
                    b = await phase_scheduler(cluster, args.pods, args.concurrency, objects)
                    rows.append(
                        (
                            f"scheduler throughput ({args.pods} pending pods, {args.nodes} {kind})",
                            f"{b['bind']:.0f} pods bound/s",
                            f"raw creates {b['raw']:.0f}/s",
                        )
                    )
                    rows.append(
                        (
                            "  first binding after; rate from the first binding to the last",
                            f"{b['first']:.2f} s; {b['steady']:.0f} pods/s",
                            f"load {b['load']:.2f}",
                        )
                    )
                    rows.append(
                        (
                            "  CPU per bound pod: scheduler (after its first binding); apiserver",
                            f"{b['sched_ms']:.2f} ms; {b['api_ms']:.2f} ms",
                            "",
                        )
                    )
                    rows.append(
                        (
                            "  apiserver CPU per pod until its Scheduled Event is written too",
                            f"{b['api_ms_events']:.2f} ms",
                            f"last Event at {b['events_at']:.1f} s",
                        )
                    )
                    notes.append(
                        f"scheduler: requests per pod until the last binding (the bench's own included): {_asked(b)}"
                    )
                    notes.append(f"scheduler: CPU ms per pod from the first binding to the last: {_cpu_note(b['cpu'])}")
                else:
                    cluster.start_scheduler()
                if "deployment" in phases:
                    d = await phase_deployment(cluster.server, args.replicas)
                    base = f"pod start-up p50 {s['p50']:.0f} ms" if s else ""
                    rows.append(
                        (
                            f"Deployment of {args.replicas} replicas fully available ({args.nodes} simulated nodes)",
                            f"{d['available']:.1f} s",
                            base,
                        )
                    )
                    rows.append(("rolling update of it (25% surge / 25% unavailable)", f"{d['rollout']:.1f} s", base))
        if "scale" in phases:
            spec = ClusterSpec(
                data_dir=Path(tmp) / "s",
                nodes=0,
                simulated_nodes=args.nodes,
                controllers="-nodelifecycle",
                metrics_server=False,  # it would scrape every simulated node
                log_level="warning",
                ready_timeout=max(60.0, args.nodes * 0.3),
            )
            started = time.perf_counter()
            with Cluster(spec) as cluster:
                up = time.perf_counter() - started
                v = await phase_scale(cluster, args.pods, args.concurrency)
            rows.append((f"scale: cluster with {args.nodes} simulated nodes up", f"{up:.0f} s", ""))
            rows.append(
                (
                    f"scale: {args.pods} pods created, C={args.concurrency}; all Running after",
                    f"{v['create']:.0f}/s; {v['running']:.0f} s",
                    f"load {v['load'].split()[0]}",
                )
            )
            rows.append(
                (
                    "scale: scheduler, first binding to last",
                    f"{v['bind']:.0f} pods/s",
                    f"bound from {v['bound_span'][0]:.0f} s to {v['bound_span'][1]:.0f} s",
                )
            )
            for key, what, how in (
                ("pods_list", "pods", "JSON"),
                ("pods_pages", "pods", "pages of 500"),
                ("nodes_list", "nodes", "JSON"),
                ("nodes_pages", "nodes", "pages of 500"),
            ):
                ms, items, received = v[key]
                rows.append(
                    (
                        f"scale: full list of {what} ({items} items, {how}), p50 decoded (received)",
                        f"{ms:.0f} ms ({received:.0f} ms)",
                        "",
                    )
                )
            rows.append(
                (
                    "scale: Leases' renewTime age when all were Running, median / oldest",
                    f"{v['lease_age'][0]:.1f} / {v['lease_age'][1]:.1f} s",
                    "",
                )
            )
            for key in ("apiserver", "etcd"):
                rss, hwm = v[key]
                rows.append((f"scale: {key} memory, RSS (peak)", f"{rss:.0f} MiB ({hwm:.0f} MiB)", ""))
        if "burst" in phases:
            spec = ClusterSpec(
                data_dir=Path(tmp) / "c",
                nodes=0,
                simulated_nodes=args.nodes,
                controllers="-nodelifecycle",
                apiserver_count=args.apiserver_count,
                log_level="warning",
            )
            with Cluster(spec) as cluster:
                u = await phase_burst(cluster, args.burst_pods, args.concurrency)
            rows.append(
                (
                    f"{args.burst_pods} pods created → all Running ({args.nodes} simulated nodes)",
                    f"{u['running']:.1f} s (POSTs done at {u['posted']:.1f} s)",
                    f"raw creates of as many: {u['raw']:.1f} s",
                )
            )
            notes.append(
                f"burst: all bound at {u['bound']:.1f} s; bound → Running seen, p50/p99: "
                f"{u['on_node'][0]:.0f}/{u['on_node'][1]:.0f} ms"
            )
            notes.append(f"burst CPU ms per pod: {_cpu_note(u['cpu'])}")
            notes.append(f"burst: requests per pod until all Running (the bench's own included): {_asked(u)}")
            notes.append(
                f"burst: last Scheduled Event written at {u['events_at']:.1f} s; CPU ms per pod until then: "
                f"{_cpu_note(u['cpu_events'])}"
            )
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'tinykube':<28}  baseline (same run)")
    for name, value, base in rows:
        print(f"{name:<{width}}  {value:<28}  {base}")
    for note in notes:
        print(f"  {note}")
    print(f"  load average at the end: {loadavg()}")


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--concurrency", "-c", type=int, default=16)
    parser.add_argument("--nodes", type=int, default=100, help="simulated nodes (scheduler, deployment phases)")
    parser.add_argument(
        "--node-objects",
        action="store_true",
        help="scheduler phase: register --nodes Ready Node objects itself instead of starting simulated kubelets",
    )
    parser.add_argument("--pods", type=int, default=0, help="pending pods for the scheduler phase")
    parser.add_argument(
        "--apiserver-count",
        type=int,
        default=1,
        help="apiserver processes on one port (the launcher's --apiserver-count) in the scheduler, deployment "
        "and burst phases; their CPU is summed",
    )
    parser.add_argument(
        "--phases",
        default="startup,scheduler,deployment,burst",
        help="comma-separated: startup,scheduler,deployment,burst (and nodes, scale: not in the default)",
    )
    args = parser.parse_args()
    if args.node_objects and "deployment" in args.phases.split(","):
        parser.error("--node-objects has no kubelet to run a Deployment's pods: use --phases scheduler")
    args.startup_pods = 30 if args.quick else 100
    args.pods = args.pods or (300 if args.quick else 1000)
    args.replicas = 100
    args.burst_pods = 300 if args.quick else 1000
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
