"""The CPU of requests to a version served by conversion (events.k8s.io/v1 Events, autoscaling/v1 HPAs) against
the same requests to the storage version, in one process (no socket, no uvicorn).

    .venv/bin/python bench/converted_path.py                       # this tree
    .venv/bin/python bench/converted_path.py --tree /tmp/base      # another checkout's code, same script

It starts an etcd, builds the apiserver's app (`create_app`, the ServiceAccount plug-in off as in the other
benches), runs its lifespan in this process and sends each request through the insecure listener's ASGI entry,
one at a time. Each converted request alternates with the same request to the storage version (events.k8s.io/v1
with core/v1, autoscaling/v1 with autoscaling/v2), so both see the same machine; each request is timed
(`time.process_time`, the collector paused, N of each per timing, R timings) and the medians are printed with the
median difference, the conversion's own cost. Creates make new objects; the PATCH is the scheduler's series
update (a merge patch of `series` on one Event); GET and LIST read through the watch cache (`resourceVersion=0`),
LIST a namespace of 50 Events. `--profile PREFIX` writes a cProfile (CPU time) of each pair's timings.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from benchkit import in_process_app, scope_of

NS = "bench"
EVENTS_V1 = f"/apis/events.k8s.io/v1/namespaces/{NS}/events"
EVENTS_CORE = f"/api/v1/namespaces/{NS}/events"
LISTED = "listed"
EVENTS_V1_LISTED = f"/apis/events.k8s.io/v1/namespaces/{LISTED}/events"
EVENTS_CORE_LISTED = f"/api/v1/namespaces/{LISTED}/events"
HPA_V1 = f"/apis/autoscaling/v1/namespaces/{NS}/horizontalpodautoscalers"
HPA_V2 = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
NOW = "2026-01-01T00:00:00.000000Z"


def v1_event(ns: str, name: str) -> dict[str, Any]:
    """The scheduler's `Scheduled` Event, as its recorder writes it."""
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "eventTime": NOW,
        "regarding": {"kind": "Pod", "apiVersion": "v1", "namespace": ns, "name": "web-1", "uid": "u-1"},
        "reason": "Scheduled",
        "action": "Binding",
        "note": "Successfully assigned bench/web-1 to node-1",
        "type": "Normal",
        "reportingController": "default-scheduler",
        "reportingInstance": "default-scheduler-host",
    }


def core_event(ns: str, name: str) -> dict[str, Any]:
    """A kubelet's core/v1 Event."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": ns, "name": "web-1", "uid": "u-1"},
        "reason": "Pulled",
        "message": "image pulled",
        "type": "Normal",
        "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "source": {"component": "kubelet", "host": "node-1"},
    }


def hpa_v2(name: str) -> dict[str, Any]:
    """The same HorizontalPodAutoscaler in autoscaling/v2."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
                }
            ],
        },
    }


def hpa_v1(name: str) -> dict[str, Any]:
    """An autoscaling/v1 HorizontalPodAutoscaler."""
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "targetCPUUtilizationPercentage": 60,
        },
    }


Request = tuple[dict[str, Any], bytes]  # a scope and its body


def post(path: str, obj: dict[str, Any]) -> Request:
    """A JSON POST of `obj`."""
    raw = orjson.dumps(obj)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    return scope_of(path, method="POST", headers=headers), raw


def patch(path: str, obj: dict[str, Any]) -> Request:
    """A merge patch."""
    raw = orjson.dumps(obj)
    headers = [(b"content-type", b"application/merge-patch+json"), (b"content-length", b"%d" % len(raw))]
    return scope_of(path, method="PATCH", headers=headers), raw


def get(path: str) -> Request:
    """A GET the watch cache answers."""
    return scope_of(path, b"resourceVersion=0"), b""


async def run(n: int, repeats: int, only: set[str], profile: str = "") -> None:
    """Start etcd and the app, time each operation, print the table."""
    async with in_process_app("tinykube-convpath-") as (_app, listener):
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def call(req: Request, expect: int) -> None:
            scope, raw = req
            done = False

            async def receive() -> dict[str, Any]:
                nonlocal done
                if done:
                    await asyncio.Event().wait()
                done = True
                return {"type": "http.request", "body": raw, "more_body": False}

            sent.clear()
            await listener(scope, receive, send)
            if sent[0]["status"] != expect:
                raise RuntimeError(f"{scope['method']} {scope['path']}: {sent}")

        for name in (NS, LISTED):
            await call(
                post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
                201,
            )
        for i in range(50):
            await call(post(EVENTS_V1_LISTED, v1_event(LISTED, f"e{i}")), 201)
        await call(post(EVENTS_V1, v1_event(NS, "target")), 201)
        await call(post(HPA_V1, hpa_v1("target")), 201)
        for path in (f"{EVENTS_V1}/target", f"{HPA_V1}/target"):  # the cache holds it once a GET finds it
            for _ in range(200):
                try:
                    await call(get(path), 200)
                    break
                except RuntimeError:
                    await asyncio.sleep(0.05)
        await call(post(EVENTS_CORE, core_event(NS, "core-target")), 201)
        await call(post(HPA_V2, hpa_v2("target2")), 201)
        count = iter(range(10**9))

        def series(path: str) -> Callable[[int], Request]:
            return lambda _: patch(path, {"series": {"count": next(count) + 2, "lastObservedTime": NOW}})

        # each converted request beside the same request to the storage version, the two alternating
        pairs: list[tuple[str, tuple[Callable[[int], Request], Callable[[int], Request]], int]] = [
            ("Event GET", (lambda i: get(f"{EVENTS_V1}/target"), lambda i: get(f"{EVENTS_CORE}/target")), 200),
            ("Event LIST of 50", (lambda i: get(EVENTS_V1_LISTED), lambda i: get(EVENTS_CORE_LISTED)), 200),
            ("HPA GET", (lambda i: get(f"{HPA_V1}/target"), lambda i: get(f"{HPA_V2}/target")), 200),
            (
                "Event create",
                (
                    lambda i: post(EVENTS_V1, v1_event(NS, f"v{i}")),
                    lambda i: post(EVENTS_CORE, core_event(NS, f"c{i}")),
                ),
                201,
            ),
            ("Event PATCH series", (series(f"{EVENTS_V1}/target"), series(f"{EVENTS_CORE}/core-target")), 200),
            ("HPA create", (lambda i: post(HPA_V1, hpa_v1(f"v{i}")), lambda i: post(HPA_V2, hpa_v2(f"w{i}"))), 201),
        ]
        times: dict[str, tuple[list[float], list[float]]] = {}
        serial = iter(range(10**9))
        # the reads first, then the writes (the cache's scans grow with the objects the creates add); each
        # operation's repeats in a row
        for label, makers, expect in pairs:
            if only and not any(o in label for o in only):
                continue
            for _ in range(repeats):
                reqs = [(k, makers[k](next(serial))) for _ in range(n) for k in (0, 1)]
                await asyncio.sleep(0.5)  # the watch cache's work for the writes before is done
                spent = [0.0, 0.0]
                gc.collect()
                gc.disable()
                profiler = cProfile.Profile(time.process_time) if profile else None
                if profiler is not None:
                    profiler.enable()
                for k, req in reqs:
                    start = time.process_time()
                    await call(req, expect)
                    spent[k] += time.process_time() - start
                if profiler is not None:
                    profiler.disable()
                gc.enable()
                if profiler is not None:
                    slug = "".join(c if c.isalnum() else "-" for c in label).strip("-").lower()
                    profiler.dump_stats(f"{profile}-{slug}.prof")
                pair = times.setdefault(label, ([], []))
                pair[0].append(spent[0] / n * 1e6)
                pair[1].append(spent[1] / n * 1e6)
        print(f"µs per request, median of {repeats} timings of {n} each, alternating:")
        print(f"  {'request':<20} {'converted':>10} {'storage':>9} {'difference':>11}")
        for label, (conv, stor) in times.items():
            diff = statistics.median(c - s for c, s in zip(conv, stor, strict=True))
            print(f"  {label:<20} {statistics.median(conv):10.1f} {statistics.median(stor):9.1f} {diff:11.1f}")


def main(argv: list[str] | None = None) -> int:
    """Parse the options, import the chosen tree's code, run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parent.parent), help="whose code to time")
    parser.add_argument("-n", type=int, default=1000, help="requests per timing (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per operation (default 3; the median)")
    parser.add_argument("--profile", default="", help="write a cProfile of each operation to PREFIX-<op>.prof")
    parser.add_argument("--only", action="append", default=[], help="operations whose label holds this")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.tree).resolve()))
    asyncio.run(run(args.n, args.repeats, set(args.only), args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
