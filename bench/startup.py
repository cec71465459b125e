"""Cluster start-up: seconds until a launcher's cluster is usable, and each component's CPU to get there.

Run from the repo root:

    .venv/bin/python bench/startup.py                # 5 rounds, 1 node (the pytest plugin's cluster)
    .venv/bin/python bench/startup.py --rounds 3 --nodes 2

Each round starts a cluster as the pytest plugin does (`tinykube.cluster.Cluster`: etcd, the apiserver, a
scheduler, a controller-manager, the cluster DNS, metrics-server, and a kubelet and a kube-proxy per node) in
a temp dir, then stops it. It prints the median over the rounds of: the seconds from the start until the
cluster is up (every component healthy, every node Ready) and until it has stopped, and each component's CPU
seconds until it was up (from /proc), the launcher's (this process's) own included. The same-run baseline: as
many bare interpreters (`python -c pass`) as the cluster has Python components, started at once: their wall
time until all have exited, and the CPU of each. The difference is what importing and starting the components
costs. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchkit import load_apiserver_bench

from tinykube.cluster import Cluster, ClusterSpec

cpu_seconds = load_apiserver_bench().cpu_seconds


def component_name(name: str) -> str:
    """A process name with its node's suffix taken off (kubelet-node-1 → kubelet)."""
    for prefix in ("kubelet", "kube-proxy", "apiserver"):
        if name.startswith(prefix):
            return prefix
    return name


def one_cluster(nodes: int) -> tuple[float, float, dict[str, float], int]:
    """Seconds to up, seconds to stopped, CPU seconds per component at up (summed per kind), Python processes."""
    with tempfile.TemporaryDirectory(prefix="tinykube-startup-") as tmp:
        spec = ClusterSpec(data_dir=Path(tmp) / "c", nodes=nodes, log_level="warning")
        start, own = time.perf_counter(), time.process_time()
        cluster = Cluster(spec).start()
        up = time.perf_counter() - start
        cpu: dict[str, float] = {"launcher (its readiness polls)": time.process_time() - own}
        for proc in cluster.processes:
            name = component_name(proc.name)
            cpu[name] = cpu.get(name, 0.0) + cpu_seconds(proc.pid)
        python = sum(1 for p in cluster.processes if p.name != "etcd")
        start = time.perf_counter()
        cluster.stop()
        return up, time.perf_counter() - start, cpu, python


def bare_interpreters(count: int) -> tuple[float, float]:
    """Wall seconds for `count` bare interpreters started at once to exit, and the CPU seconds of each."""
    start = time.perf_counter()
    before = os.times()
    procs = [subprocess.Popen([sys.executable, "-c", "pass"]) for _ in range(count)]
    for p in procs:
        p.wait()
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu / count


def main() -> None:
    """Parse flags, run the rounds, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=1, help="nodes running real pods (a kubelet and kube-proxy each)")
    args = parser.parse_args()
    ups, stops, walls, bare_cpu = [], [], [], []
    cpus: dict[str, list[float]] = {}
    python = 0
    for _ in range(args.rounds):
        up, stop, cpu, python = one_cluster(args.nodes)
        ups.append(up)
        stops.append(stop)
        for k, v in cpu.items():
            cpus.setdefault(k, []).append(v)
        wall, each = bare_interpreters(python)
        walls.append(wall)
        bare_cpu.append(each)
    med = statistics.median
    print(f"cluster start-up, {args.nodes} node(s), {python} Python processes, median of {args.rounds} rounds")
    print(f"{'figure':<52} {'tinykube':>12} {'baseline (same run)':>30}")
    print(f"{'seconds until up':<52} {med(ups):>10.2f} s {f'{python} bare interpreters: {med(walls):.2f} s':>30}")
    print(f"{'seconds until stopped':<52} {med(stops):>10.2f} s")
    total = {k: med(v) for k, v in cpus.items()}
    bare = f"{python} x {med(bare_cpu):.3f} s"
    print(f"{'CPU seconds until up, all components':<52} {sum(total.values()):>10.2f} s {bare:>30}")
    for name, seconds in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<50} {seconds:>10.2f} s")
    print(f"note: rounds, seconds until up: {', '.join(f'{u:.2f}' for u in ups)}")


if __name__ == "__main__":
    main()
