"""Watch fan-out benchmark: apiserver CPU per pod write and per watch event delivered, with W watchers.

Run from the repo root:

    .venv/bin/python bench/watch_fanout.py                      # this tree only, 2 rounds
    .venv/bin/python bench/watch_fanout.py --base /tmp/x-base   # ABAB: base tree, this tree, base, this

`--base` is another checkout of the repo (e.g. `git archive main | tar -x -C /tmp/x-base`): its apiserver
runs from there, with this same script, in alternating rounds (A = base, B = this tree). Each round
starts its own etcd and apiserver (insecure port, 127.0.0.1 only) in a temporary dir, creates the pods,
then for each setting opens W watches of the namespace's pods (JSON or protobuf framing) at the list's
resourceVersion, patches pods N times (4 concurrent writers, or --writers) and waits until every watcher
has every event. It prints the apiserver CPU per write and the marginal CPU per event delivered: (CPU per
write with W watchers - CPU per write with none) / W. Each process is stopped by its own pid at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from benchkit import apiserver_from_tree, cpu_seconds

NAMESPACE = "fanout"
PODS = 50
WRITERS = 4
PROTOBUF = "application/vnd.kubernetes.protobuf"
# (framing, watchers): the first, no watchers, is what a write costs alone.
SETTINGS: tuple[tuple[str, int], ...] = (
    ("json", 0),
    ("json", 1),
    ("json", 5),
    ("json", 20),
    ("protobuf", 5),
    ("protobuf", 20),
)


@dataclass
class Watcher:
    """One watch stream: counts the events it received."""

    framing: str
    events: int = 0
    connected: bool = False

    async def run(self, client: httpx.AsyncClient, rv: str) -> None:
        """Read the stream until cancelled, counting JSON lines or length-prefixed protobuf frames."""
        headers = {"Accept": PROTOBUF if self.framing == "protobuf" else "application/json"}
        params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "600"}
        async with client.stream("GET", f"/api/v1/namespaces/{NAMESPACE}/pods", params=params, headers=headers) as r:
            r.raise_for_status()
            self.connected = True
            pending = b""
            async for chunk in r.aiter_raw():
                if self.framing == "json":
                    self.events += chunk.count(b"\n")
                    continue
                pending += chunk
                while len(pending) >= 4 and len(pending) >= 4 + (n := int.from_bytes(pending[:4], "big")):
                    pending = pending[4 + n :]
                    self.events += 1


async def wait_for(cond: object, timeout: float, what: str) -> None:
    """Poll a condition (a callable) until true; RuntimeError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def measure(url: str, pid: int, framing: str, watchers: int, writes: int, offset: int, writers: int) -> float:
    """Apiserver CPU seconds for `writes` pod patches delivered to `watchers` watches."""
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=200)) as client:
        rv = (await client.get(f"/api/v1/namespaces/{NAMESPACE}/pods")).json()["metadata"]["resourceVersion"]
        ws = [Watcher(framing) for _ in range(watchers)]
        tasks = [asyncio.create_task(w.run(client, rv)) for w in ws]
        try:
            await wait_for(lambda: all(w.connected for w in ws), 30, "watches to connect")
            await asyncio.sleep(0.3)  # the watch registrations' own work is done before counting starts

            async def writer(k: int) -> None:
                for i in range(k, writes, writers):
                    patch = {"metadata": {"labels": {"n": str(offset + i)}}}
                    r = await client.patch(
                        f"/api/v1/namespaces/{NAMESPACE}/pods/p{i % PODS}",
                        content=orjson.dumps(patch),
                        headers={"Content-Type": "application/merge-patch+json"},
                    )
                    r.raise_for_status()

            c0 = cpu_seconds(pid)
            await asyncio.gather(*(writer(k) for k in range(writers)))
            await wait_for(lambda: all(w.events >= writes for w in ws), 60, "every event delivered")
            spent = cpu_seconds(pid) - c0
            if any(t.done() and t.exception() for t in tasks):
                raise RuntimeError("a watch failed")
            return spent
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def setup(url: str) -> None:
    """The namespace and its pods."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        r = await client.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
        r.raise_for_status()
        for i in range(PODS):
            pod = {
                "metadata": {"name": f"p{i}", "labels": {"app": "fanout"}},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
            }
            r = await client.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=pod)
            r.raise_for_status()


def one_round(tree: Path, writes: int, writers: int) -> dict[tuple[str, int], float]:
    """Start etcd and an apiserver from `tree`; CPU seconds per write of every setting."""
    with apiserver_from_tree(tree, "tinykube-fanout-") as (_etcd, api, url):
        asyncio.run(setup(url))
        out: dict[tuple[str, int], float] = {}
        for n, (framing, watchers) in enumerate(SETTINGS):
            spent = asyncio.run(measure(url, api.pid, framing, watchers, writes, n * writes, writers))
            out[(framing, watchers)] = spent / writes
        return out


def main() -> int:
    """Run the rounds and print a table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, help="a base checkout to compare with (ABAB rounds)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of each tree")
    ap.add_argument("--writes", type=int, default=300, help="pod patches per setting")
    ap.add_argument("--writers", type=int, default=WRITERS, help="concurrent writers (more: larger bursts per watch)")
    args = ap.parse_args()
    here = Path(__file__).resolve().parent.parent
    trees = [("base", args.base.resolve()), ("this", here)] if args.base else [("this", here)]
    results: dict[str, list[dict[tuple[str, int], float]]] = {name: [] for name, _ in trees}
    for r in range(args.rounds):
        for name, tree in trees:
            t0 = time.monotonic()
            results[name].append(one_round(tree, args.writes, args.writers))
            load = os.getloadavg()[0]
            print(f"round {r + 1} {name} ({tree}): {time.monotonic() - t0:.0f} s, load {load:.2f}", flush=True)
    print(
        f"\napiserver CPU, median of {args.rounds} rounds; "
        f"{args.writes} pod patches per setting, {args.writers} writers"
    )
    head = f"{'watchers':>14}" + "".join(f" | {name + ' ms/write':>15} | {name + ' us/event':>15}" for name, _ in trees)
    print(head)
    for framing, watchers in SETTINGS:
        row = f"{framing + ' x' + str(watchers):>14}"
        for name, _ in trees:
            per_write = statistics.median(x[(framing, watchers)] for x in results[name])
            alone = statistics.median(x[("json", 0)] for x in results[name])
            per_event = (per_write - alone) / watchers * 1e6 if watchers else float("nan")
            row += f" | {per_write * 1e3:>15.3f} | {per_event:>15.1f}"
        print(row)
    print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
