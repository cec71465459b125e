"""Watch clients' CPU per event under a burst of writes, and the apiserver's per write (issue 15 items 4 and 5).

Run from the repo root:

    .venv/bin/python bench/watch_clients.py                      # this tree only, 2 rounds
    .venv/bin/python bench/watch_clients.py --base /tmp/x-base   # ABAB: base tree, this tree, base, this

Every component follows the apiserver through watches (the scheduler, kubelets and controllers all watch
pods), and on two cores what each spends per event is taken from the apiserver. A client pays mostly per
wake-up: a read, a TLS record, a turn of its event loop, whatever number of events the chunk holds. Each round
starts an etcd and an apiserver from a tree (`--base`: another checkout, e.g. `git archive main | tar -x -C
/tmp/x-base`, in alternating rounds), creates the pods, starts W watcher processes (this script with
`--watcher`: one watch of the namespace's pods on uvloop, its chunked body parsed by httptools, every event
decoded with orjson, as a component's informer reads it), then patches pods/status N times (C concurrent
writers, hand-written HTTP/1.1 as bench/apiserver.py's section 6) and waits until every watcher has every
event. It prints the median over rounds of: the apiserver's CPU per write (the patch, its watch event and the
fan-out), etcd's, the watchers' CPU per event, the chunks each watcher read per 1,000 events, and writes/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httptools
import httpx
import orjson
import uvloop
from benchkit import apiserver_from_tree, load_apiserver_bench

ab = load_apiserver_bench()
NAMESPACE = "watchers"
PODS = 100


class _Events:
    """httptools callbacks of one watch response: the body's lines, decoded, counted."""

    def __init__(self) -> None:
        self.status = 0
        self.events = 0
        self.chunks = 0
        self._rest = b""

    def on_status(self, _status: bytes) -> None:
        """Nothing: the status code is read from the parser once the head is in."""

    def on_body(self, body: bytes) -> None:
        """Decode every whole line of the body so far."""
        self.chunks += 1
        *lines, self._rest = (self._rest + body).split(b"\n")
        for line in lines:
            if orjson.loads(line).get("type") != "BOOKMARK":
                self.events += 1


async def watcher(port: int, rv: str, want: int) -> dict[str, float]:
    """Watch the namespace's pods from `rv` until `want` events are in; this process's CPU and reads."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    path = f"/api/v1/namespaces/{NAMESPACE}/pods?watch=1&resourceVersion={rv}&timeoutSeconds=600"
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n\r\n".encode())
    events = _Events()
    parser = httptools.HttpResponseParser(events)
    reads = 0
    while events.events < want:
        data = await asyncio.wait_for(reader.read(1 << 16), 60)
        if not data:
            raise RuntimeError(f"the watch ended after {events.events} of {want} events")
        reads += 1
        parser.feed_data(data)
        if parser.get_status_code() != 200:
            raise RuntimeError(f"the watch answered {parser.get_status_code()}")
    writer.close()
    return {"cpu": time.process_time(), "reads": reads}


async def setup(url: str) -> None:
    """The namespace and its pods."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        (await client.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})).raise_for_status()
        for i in range(PODS):
            pod = {
                "metadata": {"name": f"p{i}"},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
            }
            (await client.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=pod)).raise_for_status()


async def burst(url: str, writes: int, writers: int, offset: int) -> float:
    """`writes` JSON merge patches of pods/status on `writers` connections; seconds taken."""
    conns = [ab.RawConnection(url, None, 60.0) for _ in range(writers)]
    pending = iter(range(writes))

    async def write(conn: Any) -> None:
        for i in pending:
            body = orjson.dumps({"status": {"message": f"write {offset + i}"}})
            path = f"/api/v1/namespaces/{NAMESPACE}/pods/p{i % PODS}/status"
            status, answer = await conn.request("PATCH", path, body, "application/merge-patch+json")
            if status != 200:
                raise RuntimeError(f"patch {path}: {status} {answer[:200]!r}")

    start = time.perf_counter()
    try:
        await asyncio.gather(*(write(c) for c in conns))
    finally:
        for c in conns:
            await c.aclose()
    return time.perf_counter() - start


def one_round(tree: Path, watchers: int, writes: int, writers: int) -> dict[str, float]:
    """Start etcd and an apiserver from `tree`, then one burst under `watchers` watcher processes."""
    children: list[subprocess.Popen[bytes]] = []
    with apiserver_from_tree(tree, "tinykube-watchers-") as (etcd, api, url):
        try:
            asyncio.run(setup(url))
            rv = httpx.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods?limit=1").json()["metadata"]["resourceVersion"]
            me = [sys.executable, __file__, "--watcher", url.rsplit(":", 1)[1], rv, str(writes)]
            children = [subprocess.Popen(me, stdout=subprocess.PIPE) for _ in range(watchers)]
            time.sleep(1.0)  # the watcher processes started and registered before the clock starts
            ready = [ab.cpu_seconds(c.pid) for c in children]
            api0, etcd0 = ab.cpu_seconds(api.pid), ab.cpu_seconds(etcd.pid)
            took = uvloop.run(burst(url, writes, writers, 0))
            outs = [json.loads(c.communicate(timeout=120)[0]) for c in children]
            api_cpu, etcd_cpu = ab.cpu_seconds(api.pid) - api0, ab.cpu_seconds(etcd.pid) - etcd0
        finally:
            for c in children:
                c.kill()
    client_cpu = sum(o["cpu"] - r for o, r in zip(outs, ready, strict=True))
    return {
        "api_us_per_write": api_cpu / writes * 1e6,
        "etcd_us_per_write": etcd_cpu / writes * 1e6,
        "watcher_us_per_event": client_cpu / (writes * watchers) * 1e6,
        "reads_per_1000": statistics.fmean(o["reads"] for o in outs) * 1000 / writes,
        "writes_per_s": writes / took,
    }


def main() -> int:
    """Run the rounds and print a table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, help="a base checkout to compare with (ABAB rounds)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of each tree")
    ap.add_argument("--watchers", type=int, default=4, help="watcher processes")
    ap.add_argument("--writes", type=int, default=3000, help="pods/status patches per round")
    ap.add_argument("--writers", type=int, default=16, help="concurrent writers")
    ap.add_argument("--watcher", nargs=3, metavar=("PORT", "RV", "EVENTS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.watcher:
        port, rv, want = args.watcher
        print(json.dumps(uvloop.run(watcher(int(port), rv, int(want)))))
        return 0
    this = Path(__file__).resolve().parent.parent
    trees = [("base", args.base.resolve()), ("this", this)] if args.base else [("this", this)]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    for r in range(args.rounds):
        for name, tree in trees:
            start = time.perf_counter()
            results[name].append(one_round(tree, args.watchers, args.writes, args.writers))
            print(f"round {r + 1} {name} ({tree}): {time.perf_counter() - start:.0f} s", flush=True)
    print()
    print(f"median of {args.rounds} rounds; {args.writes} pods/status patches, {args.writers} writers, ", end="")
    print(f"{args.watchers} watcher processes")
    keys = [
        ("api_us_per_write", "apiserver us/write"),
        ("etcd_us_per_write", "etcd us/write"),
        ("watcher_us_per_event", "watcher us/event"),
        ("reads_per_1000", "reads/1000 events"),
        ("writes_per_s", "writes/s"),
    ]
    print(f"{'tree':>6} | " + " | ".join(f"{label:>20}" for _, label in keys))
    for name, rounds in results.items():
        cells = [f"{statistics.median(r[key] for r in rounds):20.1f}" for key, _ in keys]
        print(f"{name:>6} | " + " | ".join(cells))
        print(f"{'':>6}   rounds: " + "; ".join(", ".join(f"{r[key]:.0f}" for key, _ in keys) for r in rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
