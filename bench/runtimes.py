"""Pod start-up with the docker runtime beside the process runtime, in the same run.

Run from the repo root (needs a Docker Engine on /var/run/docker.sock and /bin/busybox from
busybox-static; `bash scripts/docker-engine.sh` starts one):

    .venv/bin/python bench/runtimes.py            # 20 pods per runtime
    .venv/bin/python bench/runtimes.py --pods 50

For each runtime a one-node cluster starts through the launcher; P pods (`sleep 3600`, from a
locally built busybox image that is already present) are created C at a time, and create → Ready
is read off a watch: p50 / p99 per runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cluster import NS, make_namespace, percentile, pod, watch_until
from kubelet.docker_api import EngineClient
from kubelet.docker_runtime import busybox_image_context
from tinykube.cluster import Cluster, ClusterSpec

IMAGE = "tinykube-bench/busybox:1"


async def build_image() -> None:
    """The pods' image, built locally (no registry needed)."""
    engine = EngineClient()
    try:
        busybox = await asyncio.to_thread(Path("/bin/busybox").read_bytes)
        await engine.build(busybox_image_context(busybox), IMAGE)
    finally:
        await engine.close()


async def startup(cluster: Cluster, pods: int, concurrency: int) -> list[float]:
    """Create → Ready seconds of each pod."""
    async with httpx.AsyncClient(base_url=cluster.server, timeout=30) as api:
        await make_namespace(api)
        rv = (await api.get(f"/api/v1/namespaces/{NS}/pods", params={"limit": "1"})).json()["metadata"][
            "resourceVersion"
        ]
        created: dict[str, float] = {}
        ready: dict[str, float] = {}

        def seen(ev: dict[str, Any]) -> bool:
            obj = ev["object"]
            name = obj["metadata"]["name"]
            conds = (obj.get("status") or {}).get("conditions") or []
            if name in created and any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                ready.setdefault(name, time.perf_counter() - created[name])
            return len(ready) == pods

        watcher = asyncio.create_task(watch_until(api, f"/api/v1/namespaces/{NS}/pods", seen, 300, rv))
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                body = pod(f"run-{i}", command=["sleep", "3600"])
                c = body["spec"]["containers"][0]
                c["image"], c["imagePullPolicy"] = IMAGE, "IfNotPresent"
                created[body["metadata"]["name"]] = time.perf_counter()
                (await api.post(f"/api/v1/namespaces/{NS}/pods", json=body)).raise_for_status()

        await asyncio.gather(*(one(i) for i in range(pods)))
        await watcher
        return list(ready.values())


async def run(args: argparse.Namespace) -> None:
    """Both runtimes, one after the other, then the table."""
    await build_image()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-rt-") as tmp:
        for runtime in ("process", "docker"):
            spec = ClusterSpec(
                data_dir=Path(tmp) / runtime,
                nodes=1,
                dns=False,
                metrics_server=False,
                container_runtime=runtime,
                controllers="-nodelifecycle",
                log_level="warning",
            )
            with Cluster(spec) as cluster:
                samples = await startup(cluster, args.pods, args.concurrency)
            rows.append((runtime, percentile(samples, 50) * 1000, percentile(samples, 99) * 1000))
    print(f"pod start-up, create → Ready ({args.pods} pods, 1 node, {args.concurrency} concurrent creates)")
    for runtime, p50, p99 in rows:
        print(f"  {runtime:<8} p50 {p50:6.0f} ms   p99 {p99:6.0f} ms")


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--concurrency", "-c", type=int, default=4)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
