"""The apiserver's CPU per pod write, in one process, and where it goes by layer (issue 15 items 2 and 4).

    .venv/bin/python bench/write_layers.py                       # this tree
    .venv/bin/python bench/write_layers.py --tree /tmp/base      # another checkout's code, same script
    .venv/bin/python bench/write_layers.py --profile             # and the CPU of each layer
    .venv/bin/python bench/write_layers.py --instructions -n 100 # instructions per request, under callgrind

It starts an etcd, builds the apiserver's app (`create_app`, the ServiceAccount plug-in off as in the other
benches) and runs its lifespan in this process, then sends, one at a time through the app's ASGI entry as the
insecure listener's requests, N pod creates (bench/apiserver.py's pod), N bindings, N JSON merge patches of
`pods/<n>/status` (bench/pod_writes.py's Running and Ready status) and N strategic merge patches of the same
status to other pods. Each series is timed with `time.process_time` (and the main thread's `time.thread_time`)
from its first request until the watch cache has applied the last write's event, so a figure holds the request,
the etcd client's share of the call and the cache's decode and apply of the event (no watcher is open: no
fan-out). The collector is tuned as `python -m apiserver` tunes it. R rounds; the median is printed. With
`--profile`, one more round runs with each layer's functions (LAYERS, and each admission plug-in's `admit` and
`validate`) wrapped in `time.thread_time` counters and prints their inclusive CPU per request, then one more under
cProfile (wall clock, inflated) and prints its top functions per operation. The wrappers add a little to every
figure and a loaded machine inflates them all: read them as shares.

`--instructions` runs the same rounds again under valgrind's callgrind (about 50 times slower), counting the
machine instructions this process executes in each series (instrumentation switched on for the series only,
with `callgrind_control`; PYTHONHASHSEED fixed). A CPU-time figure on a shared VM moves by 10 % from one
minute to the next; an instruction count moves by well under 1 %, so it can tell apart changes of a few µs. It
does not see cache misses or the kernel: confirm what it finds with the CPU figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from benchkit import CallgrindCounter, callgrind_argv, in_process_app, running_status, scope_of

NS = "bench"
PODS = f"/api/v1/namespaces/{NS}/pods"
OPS = ("create", "binding", "status merge", "status strategic")

# layer -> the functions ("module:Qualified.name") whose inclusive CPU is that layer
LAYERS: list[tuple[str, list[str]]] = [
    ("body decode", ["apiserver.codec:decode_body"]),
    ("create: field validation (type check, unknown fields, duplicates)", ["apiserver.openapi:validate_fields"]),
    ("type check + unknown fields (create: inside the line above)", ["apiserver.openapi:check_fields"]),
    ("  of which the type check", ["apiserver.typecheck:first_type_error"]),
    ("apiVersion/kind check", ["apiserver.registry:Registry._check_type"]),
    ("patch applied", ["apimachinery.patch:apply_patch"]),
    (
        "prepare + defaulting",
        ["apiserver.registry:Registry._prepare_create", "apiserver.registry:Registry._prepare_update"],
    ),
    ("admission (mutating)", ["apiserver.admission.chain:AdmissionChain.admit"]),
    ("admission (validating)", ["apiserver.admission.chain:AdmissionChain.validate"]),
    ("strategy validate (incl. pydantic)", ["apiserver.strategy:Strategy.validate"]),
    ("  of which pydantic", ["pydantic.main:BaseModel.model_validate"]),
    ("strategy validate_update", ["apiserver.kinds.pods:PodStrategy.validate_update"]),
    ("required-field fill", ["apiserver.strategy:Strategy.fill_required"]),
    ("managedFields", ["apiserver.managedfields:set_on_create", "apiserver.managedfields:track_update"]),
    ("unchanged check", ["apiserver.registry:Registry._unchanged"]),
    ("storage: encode", ["apiserver.storage:EtcdStorage._encode"]),
    ("response encode", ["apiserver.codec:json_response"]),
    ("watch cache: apply + fan-out", ["apiserver.watch_cache:WatchCache._apply"]),
]


class Timers:
    """Wrappers that add each layer's inclusive CPU (`time.process_time`) up, installed where callers find them."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.undo: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        """Wrap every function of LAYERS, in its module and wherever it was imported by name."""
        import importlib
        import inspect

        for _, names in LAYERS:
            for spec in names:
                mod_name, qual = spec.split(":")
                owner: Any = importlib.import_module(mod_name)
                *path, attr = qual.split(".")
                for part in path:
                    owner = getattr(owner, part)
                original = inspect.getattr_static(owner, attr)
                fn = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original
                wrapped = self._wrap(spec, fn)
                if isinstance(original, staticmethod):
                    wrapped = staticmethod(wrapped)
                elif isinstance(original, classmethod):
                    wrapped = classmethod(wrapped)
                self.undo.append((owner, attr, original))
                setattr(owner, attr, wrapped)
                if not path:  # a module function: also where it was imported with `from … import`
                    for module in list(sys.modules.values()):
                        if module is not owner and getattr(module, attr, None) is fn:
                            self.undo.append((module, attr, fn))
                            setattr(module, attr, wrapped)

    def install_plugins(self, chain: Any) -> list[str]:
        """Wrap each admission plug-in's `admit` and `validate` on the instance; the names of the rows."""
        rows = []
        for stage, plugins in (("admit", chain.mutating), ("validate", chain.validating)):
            for plugin in plugins:
                spec = f"  {stage}: {type(plugin).__name__}"
                rows.append(spec)
                self.undo.append((plugin, stage, None))
                setattr(plugin, stage, self._wrap(spec, getattr(plugin, stage)))
        return rows

    def uninstall(self) -> None:
        """Put every original back."""
        for owner, attr, original in reversed(self.undo):
            if original is None:  # set on the instance: its class's method shows again
                vars(owner).pop(attr, None)
            else:
                setattr(owner, attr, original)
        self.undo.clear()

    def _wrap(self, spec: str, fn: Any) -> Any:
        import functools
        import inspect

        spent, clock = self.spent, time.thread_time
        spent.setdefault(spec, 0.0)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                t = clock()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    spent[spec] += clock() - t

            return timed_async

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[spec] += clock() - t

        return timed


class _Body:
    """A request body as the apiserver's response cycle hands it over: its `receive`, with the `has_message`
    that says the body is in (the apiserver then reads it without a timer, as it does from the real server)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def has_message(self) -> bool:
        """The body is in."""
        return True

    async def receive(self) -> dict[str, Any]:
        """The whole body in one message."""
        return {"type": "http.request", "body": self.raw, "more_body": False}


class Driver:
    """The app in this process and a way to send it one request."""

    def __init__(self, app: Any, listener: Any) -> None:
        self.app, self.listener = app, listener
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        """Keep what the app answers."""
        self.sent.append(message)

    async def request(self, method: str, path: str, content_type: bytes, raw: bytes) -> dict[str, Any]:
        """One request through the listener: its start message and body."""
        self.sent.clear()
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(raw))]
        await self.listener(scope_of(path, method=method, headers=headers), _Body(raw).receive, self.send)
        return self.sent[0]


def pod_body(name: str, i: int) -> bytes:
    """bench/apiserver.py's pod."""
    labels = {"app": "bench", "shard": str(i % 10)}
    spec = {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}]}
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec})


def status_patch() -> bytes:
    """bench/pod_writes.py's status patch: what the simulated kubelet writes (Running and Ready)."""
    return orjson.dumps({"status": running_status(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))})


def series(op: str, prefix: str, n: int) -> list[tuple[str, str, bytes, bytes]]:
    """(method, path, content type, body) of one series of n requests about the pods named `prefix-<i>`."""
    names = [f"{prefix}-{i:05d}" for i in range(n)]
    if op == "create":
        return [("POST", PODS, b"application/json", pod_body(name, i)) for i, name in enumerate(names)]
    if op == "binding":
        out = []
        for i, name in enumerate(names):
            binding = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name},
                "target": {"kind": "Node", "name": f"node-{i % 10}"},
            }
            out.append(("POST", f"{PODS}/{name}/binding", b"application/json", orjson.dumps(binding)))
        return out
    mt = b"application/merge-patch+json" if op == "status merge" else b"application/strategic-merge-patch+json"
    return [("PATCH", f"{PODS}/{name}/status", mt, status_patch()) for name in names]


def rerun_under_callgrind(argv: list[str]) -> int:
    """This script again, under callgrind with instrumentation off until a series starts."""
    out_dir = Path(tempfile.mkdtemp(prefix="tinykube-callgrind-"))
    env = {**os.environ, "PYTHONHASHSEED": "0", "TINYKUBE_CALLGRIND_DIR": str(out_dir)}
    try:
        return os.spawnvpe(os.P_WAIT, "valgrind", [*callgrind_argv(out_dir), sys.executable, __file__, *argv], env)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


async def count_instructions(send_all: Any, settle: Any, n: int, rounds: int) -> None:
    """Each series `rounds` times under callgrind: instructions per request, median and every round."""
    cg = CallgrindCounter(os.getpid(), Path(os.environ["TINYKUBE_CALLGRIND_DIR"]))
    counts: dict[str, list[float]] = {op: [] for op in OPS}
    for r in range(rounds):
        for op in OPS:
            if op in ("create", "binding"):
                await send_all(series(op, f"i{r}b", n), op)
            reqs = series(op, f"i{r}b" if op == "status strategic" else f"i{r}a", n)
            await settle()
            await cg.start()
            await send_all(reqs, op)
            await settle()
            counts[op].append(await cg.stop() / n)
    print(f"thousands of instructions per request (callgrind, this process), {n} per series:")
    for op in OPS:
        runs = " ".join(f"{v / 1000:.0f}" for v in counts[op])
        print(f"  {op:<18} {statistics.median(counts[op]) / 1000:9.1f}   (rounds: {runs})")


async def run(n: int, rounds: int, profile: bool) -> None:
    """Start etcd and the app, time each series, print the figures."""
    async with in_process_app("tinykube-writes-", tune_gc=True) as (app, listener):
        d = Driver(app, listener)
        wc = app.state.registry.cache
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
        first = await d.request("POST", "/api/v1/namespaces", b"application/json", orjson.dumps(ns))
        if first["status"] != 201:
            raise RuntimeError(f"namespace: {d.sent}")

        async def send_all(reqs: list[tuple[str, str, bytes, bytes]], what: str) -> None:
            for method, path, ct, raw in reqs:
                r = await d.request(method, path, ct, raw)
                if r["status"] >= 300:
                    raise RuntimeError(f"{what} {path}: {d.sent}")

        async def settle() -> None:
            """Wait until the watch cache has applied every write so far."""
            await wc.wait_for_revision(await wc.current_revision())

        async def one_round(
            tag: str, profs: dict[str, cProfile.Profile] | None = None, timers: Timers | None = None
        ) -> dict[str, tuple[float, float, dict[str, float]]]:
            """Each series once: op -> (process CPU µs, main thread CPU µs per request, layer CPU seconds)."""
            out: dict[str, tuple[float, float, dict[str, float]]] = {}
            for op in OPS:
                if op in ("create", "binding"):  # the second set of pods, untimed, for the strategic series
                    await send_all(series(op, f"{tag}b", n), op)
                # the strategic series patches the second set (the first is Running already)
                reqs = series(op, f"{tag}b" if op == "status strategic" else f"{tag}a", n)
                await settle()
                prof = profs[op] if profs is not None else None
                if timers is not None:
                    timers.spent.update(dict.fromkeys(timers.spent, 0.0))
                t0, th0 = time.process_time(), time.thread_time()
                if prof is not None:
                    prof.enable()
                await send_all(reqs, op)
                await settle()
                if prof is not None:
                    prof.disable()
                spent = (time.process_time() - t0) / n * 1e6, (time.thread_time() - th0) / n * 1e6
                out[op] = (*spent, dict(timers.spent) if timers is not None else {})
            return out

        await one_round("warm")
        if os.environ.get("TINYKUBE_CALLGRIND_DIR"):
            await count_instructions(send_all, settle, n, rounds)
            return
        results: dict[str, list[tuple[float, float]]] = {op: [] for op in OPS}
        for r in range(rounds):
            for op, (us, thread_us, _) in (await one_round(f"r{r}")).items():
                results[op].append((us, thread_us))
        print(f"µs of CPU per request (this process: app, etcd client, watch cache), {n} per series:")
        print(f"  {'':<18} {'process':>7} {'main thread':>11}")
        for op in OPS:
            runs = " ".join(f"{v:.0f}/{t:.0f}" for v, t in results[op])
            process = statistics.median(v for v, _ in results[op])
            thread = statistics.median(t for _, t in results[op])
            print(f"  {op:<18} {process:7.0f} {thread:11.0f}   (rounds, process/thread: {runs})")
        if profile:
            timers = Timers()
            timers.install()
            plugin_rows = timers.install_plugins(app.state.registry.admission)
            try:
                layered = await one_round("layers", timers=timers)
            finally:
                timers.uninstall()
            show_layers(layered, n, plugin_rows)
            profs = {op: cProfile.Profile() for op in OPS}
            await one_round("prof", profs)
            for op in OPS:
                print(f"\n{op}: cProfile (wall clock, inflated), top functions by own time")
                pstats.Stats(profs[op]).sort_stats("tottime").print_stats(30)


def show_layers(layered: dict[str, tuple[float, float, dict[str, float]]], n: int, plugins: list[str]) -> None:
    """Print each layer's inclusive CPU per request, per operation."""
    print(f"\nµs of CPU per request by layer (inclusive, time.thread_time wrappers; one round of {n}):")
    print(f"  {'layer':<58}" + "".join(f"{op:>17}" for op in OPS))
    for layer, names in LAYERS + [(p, [p]) for p in plugins]:
        row = [sum(layered[op][2][spec] for spec in names) / n * 1e6 for op in OPS]
        if any(v >= 0.5 for v in row):
            print(f"  {layer:<58}" + "".join(f"{v:17.1f}" for v in row))
    for label, k in (("the whole series, main thread", 1), ("the whole series, process", 0)):
        print(f"  {label:<58}" + "".join(f"{layered[op][k]:17.1f}" for op in OPS))


def main(argv: list[str] | None = None) -> int:
    """Parse the options, import the chosen tree's code, run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parent.parent), help="whose code to time")
    parser.add_argument("-n", type=int, default=500, help="requests per series (default 500)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5; the median is shown)")
    parser.add_argument("--profile", action="store_true", help="one more round under cProfile, tallied by layer")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions per request under valgrind's callgrind"
    )
    args = parser.parse_args(argv)
    if args.instructions and not shutil.which("callgrind_control"):
        print("valgrind (with callgrind_control) is not installed: apt-get install valgrind", file=sys.stderr)
        return 2
    if args.instructions and not os.environ.get("TINYKUBE_CALLGRIND_DIR"):
        rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--instructions"]
        return rerun_under_callgrind([*rest, "--instructions"])
    sys.path.insert(0, str(Path(args.tree).resolve()))
    asyncio.run(run(args.n, args.rounds, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
