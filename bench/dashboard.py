"""Benchmark of the dashboard: how long the overview takes to show 1,000 pods.

Run from the repo root:

    .venv/bin/python bench/dashboard.py                # 1,000 pods on 10 simulated nodes, 5 loads
    .venv/bin/python bench/dashboard.py --pods 200 --runs 3

It starts its own etcd, apiserver, a kubelet with simulated nodes (which reports the pods bound to
them Running) and the dashboard, in a temp dir; creates the pods already bound to the nodes; waits
until the kubelet reports all of them Running; then loads the overview (all namespaces) in a fresh
headless Chromium tab R times. Each load is timed from navigation start to the page's
`dashboard:synced` performance mark — the frame in which every list has come back and every row is
in the DOM (the test checks the pod rows are all there). Beside it, measured in the same run on the
same apiserver: the raw list request `kubectl get pods -A` makes (`GET /api/v1/pods` as a Table) and
the same list as JSON, each timed until the client has decoded the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykube.procs import Process, free_port, start_apiserver, start_etcd, wait_ready

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
NS = "bench"


def pod(name: str, node: str) -> dict[str, Any]:
    """A pod already bound to a simulated node."""
    container = {"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}
    spec = {"nodeName": node, "containers": [container]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "1"}}, "spec": spec}


async def create_pods(api: httpx.AsyncClient, count: int, nodes: list[str], concurrency: int = 16) -> None:
    """Create the pods with `concurrency` workers (bounded in time)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    deadline = time.monotonic() + 300

    async def worker() -> None:
        while not queue.empty() and time.monotonic() < deadline:
            i = queue.get_nowait()
            r = await api.post(f"/api/v1/namespaces/{NS}/pods", json=pod(f"p-{i:05d}", nodes[i % len(nodes)]))
            if r.status_code != 201:
                raise RuntimeError(f"create p-{i}: {r.status_code} {r.text}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def wait_running(api: httpx.AsyncClient, count: int, timeout: float = 300) -> None:
    """Until the kubelet reports `count` pods Running."""
    deadline = time.monotonic() + timeout
    running = 0
    while time.monotonic() < deadline:
        r = await api.get(f"/api/v1/namespaces/{NS}/pods", params={"fieldSelector": "status.phase=Running"})
        running = len(r.json()["items"])
        if running >= count:
            return
        await asyncio.sleep(1)
    raise RuntimeError(f"only {running}/{count} pods Running after {timeout}s")


async def time_list(server: str, accept: str, runs: int) -> list[float]:
    """Seconds for `GET /api/v1/pods` until decoded, `runs` times on one connection."""
    out = []
    async with httpx.AsyncClient(base_url=server, timeout=60) as client:
        for _ in range(runs):
            t = time.perf_counter()
            r = await client.get("/api/v1/pods", headers={"Accept": accept})
            r.json()
            out.append(time.perf_counter() - t)
    return out


async def time_page(url: str, pods: int, runs: int, profile: Path) -> list[float]:
    """Seconds from navigation start to the overview's `dashboard:synced` mark, `runs` fresh tabs."""
    from playwright.async_api import async_playwright

    out = []
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            for _ in range(runs):
                page = await context.new_page()
                await page.goto(url)
                await page.wait_for_function(
                    "() => performance.getEntriesByName('dashboard:synced').length > 0", timeout=120000
                )
                rows = await page.locator("#pods tbody tr").count()
                if rows != pods:
                    raise RuntimeError(f"the overview shows {rows} pod rows, not {pods}")
                mark = await page.evaluate("performance.getEntriesByName('dashboard:synced')[0].startTime")
                out.append(mark / 1000)
                await page.close()
        finally:
            await context.close()
    return out


def fmt(samples: list[float]) -> str:
    return (
        f"{statistics.median(samples) * 1000:8.0f} ms  (min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f})"
    )


async def run(args: argparse.Namespace, tmp: Path) -> None:
    procs: list[Process] = []
    try:
        etcd, etcd_url = start_etcd(tmp)
        procs.append(etcd)
        apiserver, server = start_apiserver(tmp, etcd_url)
        procs.append(apiserver)
        health = free_port()
        kubelet = Process(
            "kubelet",
            [sys.executable, "-m", "kubelet", "--server", server, "--node-name", "sim", "--simulated-nodes",
             str(args.nodes), "--root-dir", str(tmp / "kubelet"), "--port", str(free_port()),
             "--health-port", str(health)],
            tmp / "logs" / "kubelet.log",
        )  # fmt: skip
        procs.append(kubelet)
        wait_ready(f"http://127.0.0.1:{health}/readyz", kubelet, 60)
        port, dhealth = free_port(), free_port()
        dashboard = Process(
            "dashboard",
            [sys.executable, "-m", "dashboard", "--server", server, "--port", str(port), "--health-port", str(dhealth)],
            tmp / "logs" / "dashboard.log",
        )
        procs.append(dashboard)
        wait_ready(f"http://127.0.0.1:{dhealth}/readyz", dashboard, 60)

        async with httpx.AsyncClient(base_url=server, timeout=60) as api:
            r = await api.post("/api/v1/namespaces", json={"metadata": {"name": NS}})
            assert r.status_code == 201, r.text
            nodes = [f"sim-{i}" for i in range(args.nodes)]
            t = time.monotonic()
            await create_pods(api, args.pods, nodes)
            await wait_running(api, args.pods)
            print(f"{args.pods} pods on {args.nodes} simulated nodes, Running after {time.monotonic() - t:.1f}s")

        table = await time_list(server, TABLE, args.runs)
        json_list = await time_list(server, "application/json", args.runs)
        page = await time_page(f"http://127.0.0.1:{port}/", args.pods, args.runs, tmp / "chromium")
        print()
        print(f"{'figure':<58} {'median':>8}")
        print(f"{'overview load, navigation start → all rows rendered':<58} {fmt(page)}")
        print(f"{'kubectl get pods -A list (Table), request → decoded':<58} {fmt(table)}")
        print(f"{'GET /api/v1/pods as JSON, request → decoded':<58} {fmt(json_list)}")
        print(f"\nratio overview / Table list: {statistics.median(page) / statistics.median(table):.1f}x")
    finally:
        for p in reversed(procs):
            p.stop()


def main() -> None:
    """Parse flags and run the benchmark in a temp dir."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-dashboard-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
