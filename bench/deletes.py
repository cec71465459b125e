"""Delete benchmark: apiserver and etcd CPU per pod delete, and what a DELETED watch event's object costs.

Run from the repo root:

    .venv/bin/python bench/deletes.py                      # this tree only, 2 rounds
    .venv/bin/python bench/deletes.py --base /tmp/x-base   # ABAB: base tree, this tree, base, this

`--base` is another checkout of the repo (e.g. `git archive main | tar -x -C /tmp/x-base`): its apiserver runs
from there, with this same script, in alternating rounds. Each round starts its own etcd and apiserver
(insecure port) in a temporary dir, creates N unscheduled pods (deleted at once, as upstream deletes a pod no
node runs), and deletes them on C concurrent workers, optionally with W JSON watchers of the namespace that
must see every DELETED event. It prints the apiserver's and etcd's CPU per delete (from /proc) and the etcd
calls the apiserver made per delete (its /metrics), per round and as medians per tree.

First, in this process: the CPU of the object a DELETED event carries (`StoredObject.at_revision`, the
previous object with the deletion's revision), beside what a decode of the previous object and an encode of
the result cost, as the event was built before session 28.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import timeit
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchkit import apiserver_from_tree

from apiserver.storage import StoredObject, _laid_out, splice_point
from tests.integration.helpers import etcd_calls

NAMESPACE = "deletes"
CLK_TCK = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process (from /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


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
class Round:
    """One round's figures."""

    api_us: float
    etcd_us: float
    rate: float
    etcd_gets: float
    etcd_deletes: float


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
            m0 = (await c.get("/metrics")).text
            a0, e0, t0 = cpu_seconds(api.pid), cpu_seconds(etcd.pid), time.perf_counter()
            await asyncio.gather(*(call("DELETE", f"{pods}/web-{i}", 200) for i in range(n)))
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
            elapsed = time.perf_counter() - t0
            a1, e1 = cpu_seconds(api.pid), cpu_seconds(etcd.pid)
            m1 = (await c.get("/metrics")).text
    return Round(
        1e6 * (a1 - a0) / n,
        1e6 * (e1 - e0) / n,
        n / elapsed,
        (etcd_calls(m1, "get") - etcd_calls(m0, "get")) / n,
        (etcd_calls(m1, "delete") - etcd_calls(m0, "delete")) / n,
    )


def _line(name: str, r: Round) -> str:
    return (
        f"{name:<10} apiserver {r.api_us:5.0f} µs  etcd {r.etcd_us:5.0f} µs per delete  {r.rate:5.0f} deletes/s  "
        f"etcd calls per delete: get {r.etcd_gets:.2f}, delete {r.etcd_deletes:.2f}"
    )


def main() -> int:
    """Print the in-process costs, then the rounds and the medians per tree."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, help="a base checkout to compare with (ABAB rounds)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per tree (default 2)")
    ap.add_argument("-n", type=int, default=1500, help="pods deleted per round (default 1500)")
    ap.add_argument("-c", "--concurrency", type=int, default=16, help="concurrent deletes (default 16)")
    ap.add_argument("-w", "--watchers", type=int, default=0, help="JSON watchers of the pods (default 0)")
    args = ap.parse_args()
    print(event_object_costs())
    trees = [("base", args.base.resolve()), ("this tree", REPO)] if args.base else [("this tree", REPO)]
    rounds: dict[str, list[Round]] = {name: [] for name, _ in trees}
    print(f"\n{args.n} pod deletes per round, {args.concurrency} at a time, {args.watchers} JSON watchers:")
    for _ in range(max(1, args.rounds)):
        for name, tree in trees:
            r = asyncio.run(one_round(tree, args.n, args.concurrency, args.watchers))
            rounds[name].append(r)
            print(_line(name, r), flush=True)
    print("\nmedians:")
    for name, rs in rounds.items():
        med = Round(*(statistics.median(getattr(r, f) for r in rs) for f in Round.__dataclass_fields__))
        print(_line(name, med))
    return 0


if __name__ == "__main__":
    sys.exit(main())
