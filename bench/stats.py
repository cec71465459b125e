"""Benchmark of the kubelet's resource stats collection: what it costs on a node with 100 pods.

Run from the repo root:

    .venv/bin/python bench/stats.py             # 100 pods per node, 60 s window
    .venv/bin/python bench/stats.py --quick     # 20 pods per node, 20 s window

One etcd, one apiserver and two real kubelets (process runtime) in a temp dir, side by side in the
same run: one collects stats every `--interval` seconds (default 10, the kubelet's default
`--housekeeping-interval`), the other has collection off (`--housekeeping-interval 0`). Each runs
the same number of pods (`sleep` processes, bound to the node by name, so no scheduler). Once
every pod is Running and a settle period has passed, the CPU time of both kubelet processes
(utime + stime of the process and its threads, /proc/<pid>/stat) is read over the same window.
Printed: each kubelet's CPU %, the difference (the cost of the collector), and the collector's
own view from its `/metrics` (`kubelet_resource_stats_collection_duration_seconds`: collections
and the mean time of one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykube.procs import Process, free_port, start_apiserver, start_etcd, wait_ready

NS = "bench-stats"


@dataclass
class Kubelet:
    """A kubelet process of the benchmark."""

    name: str
    proc: Process
    port: int
    health: int
    interval: float


def start_kubelet(tmp: Path, server: str, name: str, interval: float, cidr: str) -> Kubelet:
    port, health = free_port(), free_port()
    argv = [sys.executable, "-m", "kubelet", "--server", server, "--node-name", name]
    argv += ["--root-dir", str(tmp / name), "--port", str(port), "--health-port", str(health)]
    argv += ["--pod-cidr", cidr, "--housekeeping-interval", str(interval), "--log-level", "warning"]
    proc = Process(name, argv, tmp / f"{name}.log")
    wait_ready(f"http://127.0.0.1:{health}/readyz", proc, timeout=60)
    return Kubelet(name, proc, port, health, interval)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def create_pods(api: httpx.AsyncClient, node: str, count: int) -> None:
    async def one(i: int) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{node}-{i}"},
            "spec": {
                "nodeName": node,
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "1000000"]}],
            },
        }
        r = await api.post(f"/api/v1/namespaces/{NS}/pods", json=body)
        r.raise_for_status()

    for start in range(0, count, 20):
        await asyncio.gather(*(one(i) for i in range(start, min(start + 20, count))))


async def running(api: httpx.AsyncClient, node: str) -> int:
    r = await api.get(f"/api/v1/namespaces/{NS}/pods", params={"fieldSelector": f"spec.nodeName={node}"})
    return sum(1 for p in r.json()["items"] if (p.get("status") or {}).get("phase") == "Running")


def collector_figures(k: Kubelet) -> tuple[float, float]:
    """(collections so far, mean wall-clock seconds per collection) from the kubelet's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{k.health}/metrics", timeout=10).text
    count = total = 0.0
    for line in text.splitlines():
        if line.startswith("kubelet_resource_stats_collection_duration_seconds_count"):
            count = float(line.split()[-1])
        elif line.startswith("kubelet_resource_stats_collection_duration_seconds_sum"):
            total = float(line.split()[-1])
    return count, (total / count if count else 0.0)


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-stats-"))
    procs: list[Process] = []
    try:
        etcd, etcd_url = start_etcd(tmp / "etcd")
        procs.append(etcd)
        apiserver, server = start_apiserver(tmp / "apiserver", etcd_url)
        procs.append(apiserver)
        octet = random.randint(200, 250)
        on = start_kubelet(tmp, server, "stats-on", args.interval, f"127.{octet}.1.0/24")
        off = start_kubelet(tmp, server, "stats-off", 0, f"127.{octet}.2.0/24")
        procs += [on.proc, off.proc]
        async with httpx.AsyncClient(base_url=server, timeout=30) as api:
            ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
            (await api.post("/api/v1/namespaces", json=ns)).raise_for_status()
            started = time.monotonic()
            await asyncio.gather(create_pods(api, on.name, args.pods), create_pods(api, off.name, args.pods))
            deadline = time.monotonic() + args.start_timeout
            while True:
                counts = [await running(api, k.name) for k in (on, off)]
                if all(c >= args.pods for c in counts):
                    break
                if time.monotonic() > deadline:
                    print(f"only {counts} of {args.pods} pods Running after {args.start_timeout}s", file=sys.stderr)
                    return 1
                await asyncio.sleep(1)
            print(f"{2 * args.pods} pods Running in {time.monotonic() - started:.0f}s; settling {args.settle}s")
        await asyncio.sleep(args.settle)
        before = {k.name: cpu_seconds(k.proc.pid) for k in (on, off)}
        count0, _ = collector_figures(on)
        t0 = time.monotonic()
        await asyncio.sleep(args.window)
        elapsed = time.monotonic() - t0
        used = {k.name: cpu_seconds(k.proc.pid) - before[k.name] for k in (on, off)}
        count1, mean = collector_figures(on)
        pct_on, pct_off = (100 * used[on.name] / elapsed), (100 * used[off.name] / elapsed)
        async with httpx.AsyncClient(timeout=10) as client:
            summary = (await client.get(f"http://127.0.0.1:{on.port}/stats/summary")).json()
        print()
        print(f"kubelet CPU over {elapsed:.0f}s with {args.pods} pods each (% of one core)")
        print(f"  {'kubelet':<40} {'CPU %':>8}")
        print(f"  {'stats on (every ' + format(args.interval, 'g') + 's)':<40} {pct_on:>8.2f}")
        print(f"  {'stats off (--housekeeping-interval 0)':<40} {pct_off:>8.2f}")
        print(f"  {'difference (the collector)':<40} {pct_on - pct_off:>8.2f}")
        collections = count1 - count0
        print()
        print(
            f"collector: {collections:.0f} collections in the window, {1000 * mean:.1f} ms wall time each on average "
            f"({len(summary['pods'])} pods, {sum(len(p['containers']) for p in summary['pods'])} containers measured)"
        )
        if collections:
            cpu_each = (used[on.name] - used[off.name]) / collections
            print(f"  CPU per collection (the difference / collections): {1000 * cpu_each:.1f} ms")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (the machine is shared; both kubelets saw the same)")
        return 0
    finally:
        for p in reversed(procs):
            p.stop(timeout=30)
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=100, help="pods per kubelet (default 100)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of measurement (default 60)")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds between start-up and measurement")
    parser.add_argument(
        "--interval", type=float, default=10.0, help="--housekeeping-interval of the collecting kubelet"
    )
    parser.add_argument("--start-timeout", type=float, default=300.0, help="seconds to wait for the pods")
    parser.add_argument("--quick", action="store_true", help="20 pods per kubelet, 20 s window")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args()
    if args.quick:
        args.pods, args.window, args.settle = 20, 20.0, 5.0
    raise SystemExit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
