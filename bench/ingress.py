"""Benchmark of the ingress controller: requests/s, latency and bytes/s through it, beside the same
client talking to the backend directly in the same run.

Run from the repo root:

    .venv/bin/python bench/ingress.py               # 10 s per phase
    .venv/bin/python bench/ingress.py --seconds 3   # quicker

It starts etcd, an apiserver, one backend process (uvicorn + httptools, answering a 100-byte body,
or `/big`: 16 MiB in 64 KiB chunks) and `python -m ingress_controller`, all on a loopback /24 of its
own; writes a Service, an EndpointSlice and an Ingress for the backend; then, for each phase, runs
the same load first against the backend and then through the controller:
1. small GETs: C workers, each with its own keep-alive connection, for S seconds: requests/s,
   p50 and p99 latency;
2. downloads: C workers fetching `/big` for S seconds: MiB/s.
The CPU seconds the controller used in each phase are printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykube.procs import Process, free_port, start_apiserver, start_etcd, wait_ready

SMALL = b"x" * 100
CHUNK = b"y" * 65536
BIG_CHUNKS = 256  # 16 MiB


async def backend_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The backend: 100 bytes, or 16 MiB streamed at /big."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/big":
        length = str(len(CHUNK) * BIG_CHUNKS).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]})
        for _ in range(BIG_CHUNKS):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"100")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": SMALL})


def serve_backend(address: str, port: int) -> None:
    """Run the backend (the `--serve-backend` mode of this script)."""
    import uvicorn

    uvicorn.run(backend_app, host=address, port=port, http="httptools", loop="uvloop", log_level="warning")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


async def load(url: str, host: str, path: str, workers: int, seconds: float) -> tuple[int, int, list[float]]:
    """C workers, each with one keep-alive connection, GET `path` until time is up: (requests, bytes, latencies)."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    total = 0

    async def worker() -> None:
        nonlocal total
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=url, headers={"Host": host}, timeout=30, limits=limits) as client:
            while time.monotonic() < deadline:
                t = time.perf_counter()
                async with client.stream("GET", path) as r:
                    async for chunk in r.aiter_raw():
                        total += len(chunk)
                latencies.append(time.perf_counter() - t)
                assert r.status_code == 200, r.status_code

    await asyncio.gather(*(worker() for _ in range(workers)))
    return len(latencies), total, latencies


async def run(seconds: float, workers: int) -> None:
    """Set everything up, measure, print."""
    net = f"127.234.{random.randint(1, 254)}"
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        etcd, etcd_url = start_etcd(d)
        procs: list[Process] = [etcd]
        try:
            apiserver, api_url = start_apiserver(d, etcd_url)
            procs.append(apiserver)
            backend_port = free_port()
            backend = Process(
                "backend",
                [sys.executable, __file__, "--serve-backend", f"{net}.1", str(backend_port)],
                d / "backend.log",
            )
            procs.append(backend)
            port, health = free_port(), free_port()
            controller = Process(
                "ingress-controller",
                [
                    sys.executable,
                    "-m",
                    "ingress_controller",
                    "--server",
                    api_url,
                    "--bind-address",
                    f"{net}.252",
                    "--port",
                    str(port),
                    "--health-port",
                    str(health),
                    "--log-level",
                    "warning",
                ],
                d / "ingress.log",
            )
            procs.append(controller)
            wait_ready(f"http://{net}.252:{health}/readyz", controller)
            async with httpx.AsyncClient(base_url=api_url, timeout=10) as api:
                svc = {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "web"},
                    "spec": {"ports": [{"name": "http", "port": 80}]},
                }
                sl = {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [f"{net}.1"], "conditions": {"ready": True}}],
                    "ports": [{"name": "http", "port": backend_port, "protocol": "TCP"}],
                }
                path = {
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                }
                ing = {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "Ingress",
                    "metadata": {"name": "web"},
                    "spec": {"rules": [{"host": "bench.test", "http": {"paths": [path]}}]},
                }
                for p, body in (
                    ("/api/v1/namespaces/default/services", svc),
                    ("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", sl),
                    ("/apis/networking.k8s.io/v1/namespaces/default/ingresses", ing),
                ):
                    r = await api.post(p, json=body)
                    assert r.status_code == 201, r.text
            direct, proxied = f"http://{net}.1:{backend_port}", f"http://{net}.252:{port}"
            async with httpx.AsyncClient(base_url=proxied, headers={"Host": "bench.test"}, timeout=5) as c:
                for _ in range(200):
                    if (await c.get("/")).status_code == 200 and (await c.get(direct + "/")).status_code == 200:
                        break
                    await asyncio.sleep(0.05)
            rows: list[tuple[str, str, str, str]] = []
            for label, path_, unit in (("small GET", "/", "req/s"), ("16 MiB download", "/big", "MiB/s")):
                results = {}
                for side, url in (("direct", direct), ("ingress", proxied)):
                    cpu0 = cpu_seconds(controller.pid)
                    t0 = time.monotonic()
                    n, nbytes, lat = await load(url, "bench.test", path_, workers, seconds)
                    elapsed = time.monotonic() - t0
                    results[side] = (n, nbytes, lat, elapsed, cpu_seconds(controller.pid) - cpu0)
                for side in ("direct", "ingress"):
                    n, nbytes, lat, elapsed, cpu = results[side]
                    rate = n / elapsed if unit == "req/s" else nbytes / elapsed / 2**20
                    rows.append(
                        (
                            f"{label} ({side})",
                            f"{rate:,.0f} {unit}",
                            f"p50 {percentile(lat, 50) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms",
                            f"controller CPU {cpu:.1f} s",
                        )
                    )
                d_rate = results["direct"][0 if unit == "req/s" else 1] / results["direct"][3]
                i_rate = results["ingress"][0 if unit == "req/s" else 1] / results["ingress"][3]
                rows.append((f"{label}: ingress / direct", f"{i_rate / d_rate:.2f}", "", ""))
            print(f"ingress controller benchmark: {workers} workers, {seconds:.0f} s per side")
            for row in rows:
                print("  " + " | ".join(c for c in row if c))
        finally:
            for p in reversed(procs):
                p.stop()


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", "-c", type=int, default=16)
    parser.add_argument("--serve-backend", nargs=2, metavar=("ADDRESS", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_backend:
        serve_backend(args.serve_backend[0], int(args.serve_backend[1]))
        return
    asyncio.run(run(args.seconds, args.workers))


if __name__ == "__main__":
    main()
