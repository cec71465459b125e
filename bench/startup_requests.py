"""What the apiserver is asked per pod during a pod start-up burst: the audit log of a 100-pod burst, counted.

Run from the repo root:

    .venv/bin/python bench/startup_requests.py                      # as `bench/cluster.py --phases startup`
    .venv/bin/python bench/startup_requests.py --controllers '*,-nodelifecycle'   # with every controller: the
                                                                     # ServiceAccount admission, tokens, root CA

The cluster is the start-up phase's (2 real kubelets, process runtime), with the apiserver writing an audit log
(`Metadata` level, `ResponseComplete` stage only). After a 10 s idle window it creates P pods (`sleep 3600`, 16
concurrent POSTs) and waits until all are Ready, plus 3 s. It prints, for the burst window, the requests by
user agent, user, verb, resource[/subresource] and code, per pod and beside the idle rate, and the CPU ms per
pod of each component (`/proc/<pid>/stat`, as bench/cluster.py). The audit log costs the apiserver CPU of its
own, so read the CPU figures from `bench/cluster.py`, the counts from here.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cluster as bc  # bench/cluster.py

from tinykube.cluster import Cluster, ClusterSpec

POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"
Key = tuple[str, str, str, str, int]


def count(chunk: bytes) -> collections.Counter[Key]:
    """Requests in a piece of the audit log by (user agent, user, verb, resource[/subresource], code)."""
    out: collections.Counter[Key] = collections.Counter()
    for line in chunk.splitlines():
        if not line.strip():
            continue
        ev = json.loads(line)
        ref = ev.get("objectRef") or {}
        resource = ref.get("resource") or ev["requestURI"].split("?")[0]
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        user = ev["user"].get("username", "")
        agent = (ev.get("userAgent") or "-").split("/")[0]
        out[(agent, user, ev["verb"], resource, (ev.get("responseStatus") or {}).get("code", 0))] += 1
    return out


async def burst(pods: int, controllers: str) -> dict[str, Any]:
    """Start the cluster, record an idle window and the burst; the two windows' requests and the CPU per pod."""
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-") as tmp:
        policy, log = Path(tmp) / "policy.yaml", Path(tmp) / "audit.log"
        policy.write_text(POLICY)
        spec = ClusterSpec(
            data_dir=Path(tmp) / "a",
            nodes=2,
            controllers=controllers,
            log_level="warning",
            apiserver_args=["--audit-policy-file", str(policy), "--audit-log-path", str(log)],
        )
        with Cluster(spec) as cluster:
            async with httpx.AsyncClient(base_url=cluster.server, timeout=30) as api:
                await bc.make_namespace(api)
                await asyncio.sleep(3)
                idle0, t0 = log.stat().st_size, time.perf_counter()
                await asyncio.sleep(10)
                idle1, idle = log.stat().st_size, time.perf_counter() - t0
                pods_path = f"/api/v1/namespaces/{bc.NS}/pods"
                rv = (await api.get(pods_path, params={"limit": "1"})).json()["metadata"]["resourceVersion"]
                ready: set[str] = set()

                def seen(ev: dict[str, Any]) -> bool:
                    if bc._ready(ev["object"]):
                        ready.add(ev["object"]["metadata"]["name"])
                    return len(ready) == pods

                watcher = asyncio.create_task(bc.watch_until(api, pods_path, seen, 300, rv))
                cpu0, burst0 = bc.component_cpu(cluster), log.stat().st_size
                sem = asyncio.Semaphore(16)

                async def one(i: int) -> None:
                    async with sem:
                        r = await api.post(pods_path, json=bc.pod(f"run-{i}", command=["sleep", "3600"]))
                        r.raise_for_status()

                await asyncio.gather(*(one(i) for i in range(pods)))
                await watcher
                await asyncio.sleep(3)  # the last Events and status writes
                cpu1, burst1 = bc.component_cpu(cluster), log.stat().st_size
            data = log.read_bytes()
    return {
        "idle": count(data[idle0:idle1]),
        "idle_seconds": idle,
        "burst": count(data[burst0:burst1]),
        "cpu": {k: (cpu1.get(k, 0.0) - v) / pods * 1000 for k, v in cpu0.items()},
    }


def main() -> None:
    """Run the burst and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pods", type=int, default=100)
    p.add_argument("--controllers", default="-nodelifecycle", help="the controller-manager's --controllers")
    args = p.parse_args()
    r = asyncio.run(burst(args.pods, args.controllers))
    print(f"{'user agent':28} {'user':32} {'verb':7} {'resource':28} code  burst  per pod  idle/s")
    for key, n in sorted(r["burst"].items(), key=lambda kv: -kv[1]):
        agent, user, verb, resource, code = key
        rate = r["idle"].get(key, 0) / r["idle_seconds"]
        per_pod = n / args.pods
        print(f"{agent[:28]:28} {user[:32]:32} {verb:7} {resource[:28]:28} {code}  {n:5d}  {per_pod:7.2f}  {rate:6.2f}")
    total = sum(r["burst"].values())
    idle = sum(r["idle"].values()) / r["idle_seconds"]
    print(f"total: {total} requests, {total / args.pods:.2f} per pod; idle {idle:.1f}/s")
    print("CPU ms per pod (audit log on):", bc._cpu_note(r["cpu"]))
    print("load average at the end:", bc.loadavg())


if __name__ == "__main__":
    main()
