"""A burst past --max-requests-inflight: 429s for the excess, and the admitted requests stay fast.

Run from the repo root:

    .venv/bin/python bench/overload.py                 # 200 greedy clients, 10 s per burst, 300 probes
    .venv/bin/python bench/overload.py --clients 400   # a bigger burst

It starts its own etcd, fills a namespace with 500 ConfigMaps, and runs the same phases against two
apiservers on that etcd, one after the other: one with `--max-requests-inflight 20`, one without a
limit (`0`), so the limit's effect is measured in the same run:

1. probe latency unloaded — sequential `GET` of one ConfigMap on one keep-alive connection;
2. the same probe while a burst runs in another process: N clients looping full lists of the 500
   ConfigMaps (read-only requests, the kind the limit counts) as fast as they are answered. Probes
   the limit refuses (429) are counted and retried after Retry-After, as our client library does;
   the latency is of the admitted probes only;
3. what the burst got: answers per second, how many were 429 and whether each 429 carried
   Retry-After and a Status.

Every loop is bounded in count and time; the processes are stopped at the end, on errors and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tinykube.procs import Process, start_apiserver, start_etcd

NAMESPACE = "default"
OBJECTS = 500
LIMIT = 20


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def fill(url: str) -> None:
    """OBJECTS ConfigMaps of about 1 KiB each, so a full list is real work for the server."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cm-{i:04d}"},
                "data": {"k": "x" * 1024},
            }
            async with sem:
                r = await client.post(f"/api/v1/namespaces/{NAMESPACE}/configmaps", json=body)
                if r.status_code not in (201, 409):
                    raise RuntimeError(f"create cm-{i:04d}: {r.status_code} {r.text[:200]}")

        await asyncio.gather(*(one(i) for i in range(OBJECTS)))


async def probe(url: str, count: int, budget: float) -> tuple[list[float], int]:
    """(latencies in ms of the admitted GETs, how many were refused with 429) on one keep-alive connection."""
    out: list[float] = []
    refused = 0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    deadline = time.monotonic() + budget
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        while len(out) < count and time.monotonic() < deadline:
            t = time.perf_counter()
            r = await client.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/cm-0000")
            elapsed = (time.perf_counter() - t) * 1000
            if r.status_code == 429:
                refused += 1
                await asyncio.sleep(min(float(r.headers.get("retry-after", "1")), 1.0))
                continue
            if r.status_code != 200:
                raise RuntimeError(f"probe: {r.status_code} {r.text[:200]}")
            out.append(elapsed)
    return out, refused


async def burst(url: str, clients: int, seconds: float) -> dict[str, int]:
    """`clients` loops of full lists for `seconds`: counts of answers by kind."""
    counts = {"ok": 0, "429": 0, "429 without Retry-After or Status": 0, "other": 0, "errors": 0}
    stop = time.monotonic() + seconds

    async def loop() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while time.monotonic() < stop:
                try:
                    r = await client.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps")
                except httpx.HTTPError:
                    counts["errors"] += 1
                    continue
                if r.status_code == 200:
                    counts["ok"] += 1
                elif r.status_code == 429:
                    counts["429"] += 1
                    if "retry-after" not in r.headers or r.json().get("kind") != "Status":
                        counts["429 without Retry-After or Status"] += 1
                else:
                    counts["other"] += 1

    await asyncio.gather(*(loop() for _ in range(clients)))
    return counts


def _burst_process(url: str, clients: int, seconds: float, started: Any, out: Any) -> None:
    started.put(True)
    out.put(asyncio.run(burst(url, clients, seconds)))


async def phase(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Unloaded probe, then the probe during a burst run by another process (the server's latency alone)."""
    base, _ = await probe(url, args.probes, 60)
    ctx = multiprocessing.get_context("spawn")
    started, out = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=_burst_process, args=(url, args.clients, args.seconds, started, out))
    child.start()
    try:
        await asyncio.to_thread(started.get, True, 60)
        await asyncio.sleep(1.0)  # let every burst client connect and start
        loaded, refused = await probe(url, args.probes, args.seconds - 1.5)
        counts = await asyncio.to_thread(out.get, True, args.seconds + 60)
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    return {"base": base, "loaded": loaded, "refused": refused, "counts": counts}


def report(limited: dict[str, Any], unlimited: dict[str, Any], args: argparse.Namespace) -> str:
    """The table, the limit's run beside the run without one."""
    lines = [
        f"probe GET of one ConfigMap (ms), burst = {args.clients} clients listing {OBJECTS} ConfigMaps",
        f"{'':44}{'limit ' + str(LIMIT):>14}{'no limit':>14}",
    ]
    for label, key, q in (
        ("unloaded p50", "base", 0.5),
        ("unloaded p99", "base", 0.99),
        ("during the burst p50", "loaded", 0.5),
        ("during the burst p99", "loaded", 0.99),
    ):
        lines.append(f"  {label:<42}{_pct(limited[key], q):>14.2f}{_pct(unlimited[key], q):>14.2f}")
    lines.append(
        f"  {'probes answered during the burst':<42}{len(limited['loaded']):>14}{len(unlimited['loaded']):>14}"
    )
    lines.append(f"  {'probes refused (429)':<42}{limited['refused']:>14}{unlimited['refused']:>14}")
    for key in limited["counts"]:
        a, b = limited["counts"][key], unlimited["counts"][key]
        lines.append(f"  {'burst ' + key:<42}{a:>14}{b:>14}")
    lines.append(
        f"  {'burst lists served/s':<42}{limited['counts']['ok'] / args.seconds:>14.1f}"
        f"{unlimited['counts']['ok'] / args.seconds:>14.1f}"
    )
    return "\n".join(lines)


def main() -> None:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--clients", type=int, default=200, help="concurrent clients in the burst")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each burst")
    p.add_argument("--probes", type=int, default=300, help="probe requests per phase (at most)")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tinykube-overload-"))
    procs: list[Process] = []
    results: dict[int, dict[str, Any]] = {}
    try:
        etcd, etcd_url = start_etcd(tmp)
        procs.append(etcd)
        for limit in (LIMIT, 0):
            flags = ["--etcd-compaction-interval", "0", "--log-level", "warning"]
            flags += ["--max-requests-inflight", str(limit), "--max-connections-per-client", "0"]
            api, url = start_apiserver(tmp / f"api-{limit}", etcd_url, extra=flags)
            procs.append(api)
            if limit:
                asyncio.run(fill(url))
            print(f"apiserver --max-requests-inflight {limit}: {url}", flush=True)
            results[limit] = asyncio.run(phase(url, args))
            api.stop()
        print()
        print(report(results[LIMIT], results[0], args))
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(Exception):
                proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
