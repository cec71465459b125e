"""The CPU of one API request in each ASGI layer of the apiserver, in one process (no socket, no uvicorn).

    .venv/bin/python bench/request_layers.py                       # this tree
    .venv/bin/python bench/request_layers.py --tree /tmp/base      # another checkout's code, same script

It starts an etcd, builds the apiserver's app (`create_app`, the ServiceAccount plug-in off as in the other
benches) and runs its lifespan in this process, creates one pod, then sends GETs of that pod and of a missing one
(both `?resourceVersion=0`: answered from the watch cache, no etcd call) into each layer in turn, from the listener
wrapper down to the API route, as the insecure port's requests (the stages inside it get a context as
request_info builds it, and the insecure port's user). For each entry point it times N requests with the
collector paused (`time.process_time`), R times, and prints the median: a layer's inclusive figure and its own
(inclusive minus the next layer's). What uvicorn, the protocol and the socket add is not here: bench/apiserver_ab.py
measures whole requests. Own figures of a few µs are within the noise of a shared machine (they can come out
negative); the inclusive ones are the steadier.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from benchkit import in_process_app, scope_of

PODS = "/api/v1/namespaces/bench/pods"


async def run(n: int, repeats: int) -> None:
    """Start etcd and the app, time each layer, print the table."""
    from apiserver.chain.authentication import UNSECURED
    from apiserver.chain.listener import INSECURE
    from apiserver.chain.request_info import LISTENER_KEY
    from apiserver.context import CONTEXT_KEY

    async with in_process_app("tinykube-layers-") as (app, listener):
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def no_body() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}
        container = {"name": "c", "image": "busybox"}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [container]}}
        for path, obj in (("/api/v1/namespaces", namespace), (PODS, pod)):
            raw = orjson.dumps(obj)
            length = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]

            async def body(raw: bytes = raw) -> dict[str, Any]:
                return {"type": "http.request", "body": raw, "more_body": False}

            sent.clear()
            await listener(scope_of(path, method="POST", headers=length), body, send)
            if sent[0]["status"] != 201:
                raise RuntimeError(f"POST {path}: {sent}")
        for _ in range(200):  # the watch cache holds the pod once a GET from it finds it
            sent.clear()
            await listener(scope_of(f"{PODS}/p", b"resourceVersion=0"), no_body, send)
            if sent[0]["status"] == 200:
                break
            await asyncio.sleep(0.05)
        layers: list[tuple[str, Any]] = [("Listener", listener)]
        layer: Any = listener._api  # the app's own outermost middleware, found by the first request
        while layer is not None:
            layers.append((type(layer).__name__, layer))
            if hasattr(layer, "endpoint"):  # ApiRoute: the handler is inside it
                break
            layer = layer.chain if hasattr(layer, "chain") else getattr(layer, "app", None)
        first_stage = next(obj for name, obj in layers if name == "RequestInfoStage")
        inside = False
        entries: list[tuple[str, Any, bool]] = []
        for name, obj in layers:
            entries.append((name, obj, inside))
            inside = inside or name == "RequestInfoStage"

        for path, expect in ((f"{PODS}/p", 200), (f"{PODS}/nope", 404)):
            times: dict[str, list[float]] = {}
            for _ in range(repeats):
                for name, entry, needs_context in entries:
                    scopes = []
                    for _ in range(n):
                        s = scope_of(path, b"resourceVersion=0")
                        s.update({LISTENER_KEY: INSECURE, "app": app})
                        if needs_context:
                            ctx = s[CONTEXT_KEY] = first_stage.context(s)
                            ctx.user = ctx.authenticated_user = UNSECURED
                        scopes.append(s)
                    sent.clear()
                    gc.collect()
                    gc.disable()
                    start = time.process_time()
                    for s in scopes:
                        await entry(s, no_body, send)
                    spent = time.process_time() - start
                    gc.enable()
                    if sent[0]["status"] != expect:
                        raise RuntimeError(f"GET {path} through {name}: {sent[0]}")
                    times.setdefault(name, []).append(spent / n * 1e6)
            median = {name: statistics.median(v) for name, v in times.items()}
            print(f"GET {path}?resourceVersion=0 ({expect}), µs per request, median of {repeats} timings of {n}:")
            print(f"  {'layer':<20} {'inclusive':>9} {'own':>7}")
            names = [name for name, _, _ in entries]
            for i, name in enumerate(names):
                below = median[names[i + 1]] if i + 1 < len(names) else 0.0
                print(f"  {name:<20} {median[name]:9.1f} {median[name] - below:7.1f}")


def main(argv: list[str] | None = None) -> int:
    """Parse the options, import the chosen tree's code, run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parent.parent), help="whose code to time")
    parser.add_argument("-n", type=int, default=4000, help="requests per timing (default 4000)")
    parser.add_argument("--repeats", type=int, default=7, help="timings per layer (default 7; the median is shown)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.tree).resolve()))
    asyncio.run(run(args.n, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
