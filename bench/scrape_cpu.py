"""Steady-state CPU of the simulated kubelet, metrics-server and apiserver on S simulated nodes with no pods.

What is left is the periodic work: metrics-server's scrapes of every node (every 15 s), the nodes' lease renewals
(S / 10 a second) and the simulated kubelet's stats housekeeping. Run from the repo root:

    .venv/bin/python bench/scrape_cpu.py [NODES=100] [SECONDS=60]

It starts a cluster (the launcher, `tinykube.cluster.Cluster`), waits 20 s for the first scrapes, then prints each
process's CPU milliseconds per second over SECONDS. Compare trees by running it alternately from each checkout.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykube.cluster import Cluster, ClusterSpec


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Start the cluster, let it settle, measure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("nodes", nargs="?", type=int, default=100, help="simulated nodes (default 100)")
    parser.add_argument("seconds", nargs="?", type=float, default=60.0, help="seconds measured (default 60)")
    args = parser.parse_args()
    nodes, seconds = args.nodes, args.seconds
    with tempfile.TemporaryDirectory(prefix="tinykube-scrape-") as tmp:
        spec = ClusterSpec(
            data_dir=Path(tmp) / "c", nodes=0, simulated_nodes=nodes, controllers="-nodelifecycle", log_level="warning"
        )
        with Cluster(spec) as cluster:
            pids = {p.name: p.pid for p in cluster.processes if p.name.startswith(("kubelet", "metrics", "apiserver"))}
            time.sleep(20)
            before = {n: cpu_seconds(p) for n, p in pids.items()}
            started = time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - started
            after = {n: cpu_seconds(p) for n, p in pids.items()}
            figures = ", ".join(f"{n} {1000 * (after[n] - before[n]) / elapsed:.1f}" for n in pids)
            load = Path("/proc/loadavg").read_text().split()[0]
            print(f"CPU ms per second over {elapsed:.0f} s, {nodes} simulated nodes: {figures} (load {load})")


if __name__ == "__main__":
    main()
