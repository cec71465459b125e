"""Writes for repeats of one FailedScheduling: core/v1 `EventRecorder` against events.k8s.io/v1 `EventsV1Recorder`.

A real etcd and apiserver; each round records N repeats of one Event through each recorder, alternated,
and counts the writes a watch on the namespace's Events sees until the last count is written (the v1
recorder's series ends after `--finish-after` seconds, upstream's is 6 minutes).

    .venv/bin/python bench/events_series.py [--repeats 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from client.events import EventRecorder
from client.events_v1 import EventsV1Recorder
from client.rest import ApiClient
from tinykube.procs import start_apiserver, start_etcd

NOTE = "0/3 nodes are available"


def pod(ns: str) -> dict[str, Any]:
    """The pod the events are about (it need not exist)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": ns, "uid": "u-web"}}


async def count_writes(
    url: str, ns: str, record: Callable[[], Awaitable[None]], last: Callable[[dict[str, Any]], bool]
) -> tuple[int, float]:
    """(writes seen on a watch until `last` holds for a written Event, seconds from the first record)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as api:
        ns_body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        await api.post("/api/v1/namespaces", json=ns_body)
        rv = (await api.get(f"/api/v1/namespaces/{ns}/events")).json()["metadata"]["resourceVersion"]
        writes = 0
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal writes
            params = {"watch": "1", "resourceVersion": rv}
            async with api.stream("GET", f"/api/v1/namespaces/{ns}/events", params=params, timeout=60) as r:
                async for line in r.aiter_lines():
                    if line.strip():
                        writes += 1
                        if last(json.loads(line)["object"]):
                            done.set()

        task = asyncio.create_task(watch())
        start = time.monotonic()
        await record()
        await asyncio.wait_for(done.wait(), 60)
        elapsed = time.monotonic() - start
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return writes, elapsed


async def run(url: str, repeats: int, rounds: int, finish_after: float) -> None:
    """Alternate the two recorders for `rounds` rounds and print each one's writes."""
    async with ApiClient(url) as client:
        for i in range(rounds):
            ns = f"core-{i}"
            core = EventRecorder(client, "default-scheduler")

            async def record_core(ns: str = ns, core: EventRecorder = core) -> None:
                for _ in range(repeats):
                    core.record(pod(ns), "Warning", "FailedScheduling", NOTE)

            writes, seconds = await count_writes(url, ns, record_core, lambda o: o.get("count") == repeats)
            await core.stop()
            print(f"core/v1 EventRecorder: {repeats} repeats -> {writes} writes, last after {seconds:.2f} s")

            ns = f"v1-{i}"
            v1 = EventsV1Recorder(client, "default-scheduler", "bench", finish_after=finish_after)

            async def record_v1(ns: str = ns, v1: EventsV1Recorder = v1) -> None:
                for _ in range(repeats):
                    v1.record(pod(ns), None, "Warning", "FailedScheduling", "Scheduling", NOTE)

            def final(o: dict[str, Any]) -> bool:
                return (o.get("series") or {}).get("count") == repeats

            writes, seconds = await count_writes(url, ns, record_v1, final)
            await v1.stop()
            print(
                f"events.k8s.io/v1 EventsV1Recorder: {repeats} repeats -> {writes} writes, last after {seconds:.2f} s"
            )


def main() -> None:
    """Parse the flags, start etcd and an apiserver, run the rounds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--finish-after", type=float, default=1.0, help="the v1 recorder's series end (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        etcd, etcd_url = start_etcd(Path(d) / "etcd")
        apiserver, url = start_apiserver(Path(d) / "apiserver", etcd_url)
        try:
            asyncio.run(run(url, args.repeats, args.rounds, args.finish_after))
        finally:
            apiserver.stop()
            etcd.stop()


if __name__ == "__main__":
    main()
