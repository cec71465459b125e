"""Delete benchmark: apiserver and etcd CPU per pod delete and per GET of a deleted pod (a 404), and what a
DELETED watch event's object costs.

Run from the repo root:

    .venv/bin/python bench/deletes.py                      # this tree only, 2 rounds
    .venv/bin/python bench/deletes.py --base /tmp/x-base   # ABBA: base tree, this tree, this, base

`--base` is another checkout of the repo (e.g. `git archive main | tar -x -C /tmp/x-base`): its apiserver runs
from there, with this same script, in pairs of rounds of alternating order (base first, then this tree first).
Each round starts its own etcd and apiserver (insecure port) in a temporary dir, creates N unscheduled pods
(deleted at once, as upstream deletes a pod no node runs), and deletes them on C concurrent workers, optionally
with W JSON watchers of the namespace that must see every DELETED event. Then it GETs every deleted pod (404
NotFound, as a garbage collector's lookup of a deleted owner or `kubectl wait --for=delete` gets it). It prints
the apiserver's and etcd's CPU per delete and per 404 GET (from /proc) and the etcd calls the apiserver made for
each (its /metrics), per round and as medians per tree.

First, in this process: the CPU of the object a DELETED event carries (`StoredObject.at_revision`, the
previous object with the deletion's revision), beside what a decode of the previous object and an encode of
the result cost, as the event was built before session 28.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import timeit
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchkit import apiserver_from_tree, cpu_seconds

from apiserver.storage import StoredObject, _laid_out, splice_point
from tests.integration.helpers import etcd_calls

NAMESPACE = "deletes"
REPO = Path(__file__).resolve().parent.parent


def pod(i: int) -> dict:
    """A pod as a ReplicaSet's: labels, an owner, a container with ports."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"web-{i}",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d"},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u", "controller": True}
            ],
        },
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]},
    }


def event_object_costs(n: int = 20000) -> str:
    """The DELETED event's object and its JSON, in µs: spliced (now) beside a decode and an encode."""
    obj = {**pod(0), "metadata": {**pod(0)["metadata"], "namespace": NAMESPACE, "uid": "0" * 36}}
    value = orjson.dumps(_laid_out(obj))
    at = splice_point(value)

    def kept(served: bool) -> StoredObject:
        s = StoredObject.of_value("/registry/pods/x/y", value, 100, at)
        if served:
            s.json()
        return s

    def decoded(prev: StoredObject) -> bytes:
        o = prev.obj
        return StoredObject(prev.key, {**o, "metadata": {**o["metadata"], "resourceVersion": "101"}}, 101).json()

    def spliced(prev: StoredObject) -> bytes:
        return prev.at_revision(101).json()

    assert decoded(kept(True)) == spliced(kept(True))
    out = []
    for served in (False, True):
        row = []
        for name, build in (("decode + encode", decoded), ("at_revision", spliced)):
            it = iter([kept(served) for _ in range(n)])
            row.append(f"{name} {timeit.timeit(lambda b=build, i=it: b(next(i)), number=n) / n * 1e6:.2f} µs")
        out.append(f"  previous object {'served before' if served else 'never read'}: " + ", ".join(row))
    return f"a DELETED event's object and its JSON ({len(value)}-byte pod), in this process:\n" + "\n".join(out)


@dataclass
class Figures:
    """One operation's figures in one round (or their medians)."""

    api_us: float
    etcd_us: float
    rate: float
    etcd_gets: float
    etcd_deletes: float


@dataclass
class Round:
    """One round's figures: the deletes, then the GETs of the deleted pods."""

    deletes: Figures
    gets: Figures


class Span:
    """The apiserver's and etcd's CPU, the time and the apiserver's etcd calls over n operations."""

    def __init__(self, client: httpx.AsyncClient, api: Any, etcd: Any) -> None:
        self.client, self.api, self.etcd = client, api, etcd

    async def __aenter__(self) -> Span:
        self.m0 = (await self.client.get("/metrics")).text
        self.a0, self.e0, self.t0 = cpu_seconds(self.api.pid), cpu_seconds(self.etcd.pid), time.perf_counter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self.t0
        self.a1, self.e1 = cpu_seconds(self.api.pid), cpu_seconds(self.etcd.pid)
        self.m1 = (await self.client.get("/metrics")).text

    def figures(self, n: int) -> Figures:
        """Per operation, over n."""
        m0, m1 = self.m0, self.m1
        return Figures(
            1e6 * (self.a1 - self.a0) / n,
            1e6 * (self.e1 - self.e0) / n,
            n / self.elapsed,
            (etcd_calls(m1, "get") - etcd_calls(m0, "get")) / n,
            (etcd_calls(m1, "delete") - etcd_calls(m0, "delete")) / n,
        )


async def one_round(tree: Path, n: int, concurrency: int, watchers: int) -> Round:
    """Create n pods, then time their deletes (and the watchers' DELETED events) on one fresh apiserver."""
    with apiserver_from_tree(tree, "tinykube-deletes-") as (etcd, api, url):
        limits = httpx.Limits(max_connections=concurrency + watchers)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits, trust_env=False) as c:
            r = await c.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
            assert r.status_code == 201, r.text
            pods = f"/api/v1/namespaces/{NAMESPACE}/pods"
            gate = asyncio.Semaphore(concurrency)

            async def call(method: str, path: str, ok: int, **kw: object) -> None:
                async with gate:
                    r = await c.request(method, path, **kw)  # type: ignore[arg-type]
                    assert r.status_code == ok, r.text

            await asyncio.gather(*(call("POST", pods, 201, json=pod(i)) for i in range(n)))
            rv = (await c.get(pods, params={"limit": "1"})).json()["metadata"]["resourceVersion"]
            opened = asyncio.Event()

            async def watch() -> None:
                params = {"watch": "1", "resourceVersion": rv}
                async with c.stream("GET", pods, params=params, timeout=None) as answer:
                    opened.set()
                    seen = 0
                    async for line in answer.aiter_lines():
                        seen += line.startswith('{"type":"DELETED"')
                        if seen == n:
                            return

            tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
            if watchers:
                await asyncio.wait_for(opened.wait(), 10)
            async with Span(c, api, etcd) as deletes:
                await asyncio.gather(*(call("DELETE", f"{pods}/web-{i}", 200) for i in range(n)))
                await asyncio.wait_for(asyncio.gather(*tasks), 60)
            async with Span(c, api, etcd) as gets:
                await asyncio.gather(*(call("GET", f"{pods}/web-{i}", 404) for i in range(n)))
    return Round(deletes.figures(n), gets.figures(n))


def _line(name: str, op: str, r: Figures) -> str:
    return (
        f"{name:<10} {op:<7} apiserver {r.api_us:5.0f} µs  etcd {r.etcd_us:5.0f} µs per op  {r.rate:5.0f}/s  "
        f"etcd calls per op: get {r.etcd_gets:.2f}, delete {r.etcd_deletes:.2f}"
    )


def main() -> int:
    """Print the in-process costs, then the rounds and the medians per tree."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, help="a base checkout to compare with (ABBA rounds)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per tree (default 2)")
    ap.add_argument("-n", type=int, default=1500, help="pods deleted per round (default 1500)")
    ap.add_argument("-c", "--concurrency", type=int, default=16, help="concurrent deletes (default 16)")
    ap.add_argument("-w", "--watchers", type=int, default=0, help="JSON watchers of the pods (default 0)")
    args = ap.parse_args()
    print(event_object_costs())
    trees = [("base", args.base.resolve()), ("this tree", REPO)] if args.base else [("this tree", REPO)]
    rounds: dict[str, list[Round]] = {name: [] for name, _ in trees}
    print(
        f"\n{args.n} pod deletes per round, {args.concurrency} at a time, {args.watchers} JSON watchers; "
        "then a GET (404) of each deleted pod:"
    )
    for i in range(max(1, args.rounds)):
        for name, tree in trees if i % 2 == 0 else trees[::-1]:  # ABBA: neither tree always goes first
            r = asyncio.run(one_round(tree, args.n, args.concurrency, args.watchers))
            rounds[name].append(r)
            print(_line(name, "delete", r.deletes), flush=True)
            print(_line(name, "get 404", r.gets), flush=True)
    print("\nmedians:")
    for op in ("deletes", "gets"):
        for name, rs in rounds.items():
            spans = [getattr(r, op) for r in rs]
            med = Figures(*(statistics.median(getattr(f, k) for f in spans) for k in Figures.__dataclass_fields__))
            print(_line(name, "delete" if op == "deletes" else "get 404", med))
    return 0


if __name__ == "__main__":
    sys.exit(main())
