"""The client's own CPU per request: `client.rest.ApiClient` over TLS with a client certificate, as components use it.

Run from the repo root (the base is another checkout, e.g. `git archive main | tar -x -C /tmp/base`):

    .venv/bin/python bench/client_requests.py                       # this tree's client, 400 requests, 4 rounds
    .venv/bin/python bench/client_requests.py --base /tmp/base      # base and this alternately (ABAB)
    .venv/bin/python bench/client_requests.py --profile /tmp/prof   # + cProfile by layer, per request
    .venv/bin/python bench/client_requests.py --loop uvloop         # the clients on uvloop, as most components

Every component (scheduler, kubelets, controller-manager, kube-proxy, DNS) talks to the apiserver through
`client/`; on two cores its CPU competes with the apiserver's. This starts etcd and one apiserver (this tree's,
TLS with client certificates and Node,RBAC as bench/pod_writes.py's secure port), and one client process per
tree (`python bench/client_requests.py --worker` with that tree first on sys.path, so it imports that tree's
`client`). Each round, each client process in turn (the order flips every round) times N requests of each kind,
one at a time and C concurrent: a core/v1 Event create (the kubelet's `client/events.py` write), a JSON merge
PATCH of pods/status (the kubelet's status write), a pods/binding create (the scheduler's), and a GET. The
figure is the client process's CPU per request (`time.process_time`), its main thread's (`time.thread_time`:
the event loop, where the components' own work competes) and its system CPU (getrusage), in µs, the median
over rounds. The clients run on asyncio's loop (the kubelet's) or with `--loop uvloop` on uvloop (the
scheduler's, controller-manager's and the other components' through client/component.py). With `--profile`
each client runs one more round (not in the table) under cProfile (CPU clock) and prints its profile's own
time per request by layer (ApiClient, httpx, the transport, TLS, the event loop, ...): cProfile inflates
every call, so the layers' shares matter, not their sum.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit import running_status

OPS = ("event", "status", "binding", "get")
MODES = ("seq", "conc")
NAMESPACE = "bench"
HERE = Path(__file__).resolve().parent.parent
ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "bench-client-requests"},
    "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get"]},
        {"apiGroups": [""], "resources": ["pods/binding"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ],
}
# where a function's own time goes, by the file it is in (first match wins)
LAYERS = (
    ("ApiClient", ("/client/rest.py", "/client/request.py", "/client/config.py", "/apimachinery/")),
    ("transport", ("/client/transport.py", "httptools")),
    ("TLS", ("/ssl.py", "sslproto.py", "/tlsreads.py", "_ssl.")),
    ("httpx", ("/httpx/",)),
    ("orjson", ("orjson",)),
    ("bench", ("client_requests.py",)),
    ("event loop, sockets", ("/asyncio/", "select", "selectors.py", "socket")),
    ("builtins", ("~:",)),  # len, isinstance, str and bytes methods, ... called from any layer
)


# --- the client process (imports only the tree it is given) ---------------------------------------------


def _pod(name: str) -> dict[str, Any]:
    spec = {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}}, "spec": spec}


def _event(pod: str, i: int) -> dict[str, Any]:
    """What client/events.py writes for a kubelet's `Started`."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ref = {"kind": "Pod", "apiVersion": "v1", "name": pod, "uid": f"uid-{i}", "resourceVersion": "1"}
    ref.update(namespace=NAMESPACE, fieldPath="spec.containers{main}")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{pod}.{time.time_ns():x}", "namespace": NAMESPACE},
        "involvedObject": ref,
        "reason": "Started",
        "message": "Started container main",
        "type": "Normal",
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": {"component": "kubelet", "host": "node-1"},
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
    }


def _status(now: str) -> dict[str, Any]:
    """The simulated kubelet's status write: Running and Ready."""
    return {"status": running_status(now)}


async def _pool(call: Any, n: int, c: int) -> None:
    """`call(i)` for i in 0..n-1, at most `c` at once."""
    nxt = iter(range(n))

    async def worker() -> None:
        for i in nxt:
            await call(i)

    await asyncio.gather(*(worker() for _ in range(c)))


def _calls(api: Any, names: list[str], now: str) -> dict[str, Any]:
    """Each op as a call for pod number i."""
    from client.request import PatchType

    return {
        "event": lambda i: api.create("events", _event(names[i], i), NAMESPACE),
        "status": lambda i: api.patch(
            "pods", names[i], _status(now), NAMESPACE, patch_type=PatchType.MERGE, subresource="status"
        ),
        "binding": lambda i: api.request(  # as the scheduler sends it
            "POST", f"/api/v1/namespaces/{NAMESPACE}/pods/{names[i]}/binding", body=_binding(names[i], i)
        ),
        "get": lambda i: api.get("pods", names[i], NAMESPACE),
    }


async def _worker_round(api: Any, n: int, c: int, tag: str, profiler: Any) -> dict[str, list[float]]:
    """Each op N times (one at a time, then C at once): {"op/mode": [process, main thread, system, wall µs]}."""
    out: dict[str, list[float]] = {}
    for mode, conc in (("seq", 1), ("conc", c)):
        names = [f"{tag}-{mode}-{i:05d}" for i in range(n)]
        pods = [_pod(name) for name in names]
        await _pool(lambda i, pods=pods: api.create("pods", pods[i], NAMESPACE), n, c)  # untimed: the pods to bind
        calls = _calls(api, names, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        for op in OPS:
            if profiler is not None:
                profiler.enable()
            p0, t0, s0, w0 = (
                time.process_time(),
                time.thread_time(),
                resource.getrusage(resource.RUSAGE_SELF).ru_stime,
                time.perf_counter(),
            )
            await _pool(calls[op], n, conc)
            p1, t1, s1, w1 = (
                time.process_time(),
                time.thread_time(),
                resource.getrusage(resource.RUSAGE_SELF).ru_stime,
                time.perf_counter(),
            )
            if profiler is not None:
                profiler.disable()
            out[f"{op}/{mode}"] = [(p1 - p0) / n * 1e6, (t1 - t0) / n * 1e6, (s1 - s0) / n * 1e6, (w1 - w0) / n * 1e6]
    return out


def _binding(name: str, i: int) -> dict[str, Any]:
    target = {"apiVersion": "v1", "kind": "Node", "name": f"node-{i % 10}"}
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": NAMESPACE}, "target": target}


def worker_main(args: argparse.Namespace) -> int:
    """The client process: rounds asked for on stdin, one JSON line of figures each on stdout."""
    sys.path.insert(0, str(Path(args.tree).resolve()))
    import cProfile

    import orjson

    from client.config import Config
    from client.rest import ApiClient

    config = Config(server=args.server, ca_file=args.ca, cert_file=args.cert, key_file=args.key)

    async def run() -> None:
        async with ApiClient(config, user_agent="bench-client-requests") as api:
            await api.request("GET", "/version")  # the first TLS connection, outside the clock
            loop = asyncio.get_running_loop()
            while line := await loop.run_in_executor(None, sys.stdin.readline):
                ask = orjson.loads(line)
                profiler = cProfile.Profile(time.process_time) if ask.get("profile") else None
                result = await _worker_round(api, ask["n"], ask["c"], ask["tag"], profiler)
                if profiler is not None:
                    result["_layers"] = _layers(profiler, ask["n"] * len(MODES) * len(OPS))  # type: ignore[assignment]
                    profiler.dump_stats(ask["profile"])
                sys.stdout.write(orjson.dumps(result).decode() + "\n")
                sys.stdout.flush()

    if args.loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    else:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run())
    return 0


def _layers(profiler: Any, requests: int) -> dict[str, float]:
    """The profile's own (tottime) µs per request by layer."""
    import pstats

    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for (filename, _, func), (_, _, tottime, _, _) in stats.items():
        where = f"{filename}:{func}"
        layer = next((name for name, keys in LAYERS if any(k in where for k in keys)), "other")
        out[layer] = out.get(layer, 0.0) + tottime / requests * 1e6
    return out


# --- the driver ------------------------------------------------------------------------------------------


class Client:
    """One tree's client process."""

    def __init__(self, name: str, tree: Path, server: str, pki: Any, client_file: str, loop: str) -> None:
        pair = pki.client(client_file)
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "--tree", str(tree), "--server", server]
        argv += ["--loop", loop]
        argv += ["--ca", str(pki.ca.cert), "--cert", str(pair.cert), "--key", str(pair.key)]
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tree)

    def round(self, n: int, c: int, tag: str, profile: str = "") -> dict[str, Any]:
        """One round in the client process; its figures."""
        import orjson

        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(orjson.dumps({"n": n, "c": c, "tag": tag, "profile": profile}).decode() + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} client process exited ({self.proc.wait()})")
        return orjson.loads(line)

    def stop(self) -> None:
        """Close its stdin (it exits), kill it if it does not."""
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def render(results: dict[tuple[str, str], list[list[float]]], trees: list[str], args: argparse.Namespace) -> str:
    """The table: median µs of CPU per request, process and main thread, per tree."""
    lines = [
        f"client CPU µs per request over TLS (client certificate) on {args.loop}, {args.requests} requests of each "
        "kind per round, "
        f"C=1 (seq) and C={args.concurrency} (conc), {args.rounds} rounds, median: the process's CPU, "
        "its main thread's, the process's system CPU, and wall time per request",
    ]
    head = f"{'request':>14}"
    for t in trees:
        head += f" | {t + ' cpu':>9} {t + ' main':>10} {'sys':>5} {'wall':>6}"
    if len(trees) == 2:
        head += " | this/base"
    lines.append(head)
    for mode in MODES:
        for op in OPS:
            key = f"{op}/{mode}"
            row = f"{key:>14}"
            meds = []
            for t in trees:
                figs = results[(t, key)]
                med = [statistics.median(f[k] for f in figs) for k in range(4)]
                meds.append(med)
                row += f" | {med[0]:9.0f} {med[1]:10.0f} {med[2]:5.0f} {med[3]:6.0f}"
            if len(trees) == 2:
                row += f" | {meds[1][0] / meds[0][0]:.2f}"
            lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start etcd, the apiserver and the client processes; alternate the rounds; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="a base checkout: its client runs too, alternately with this tree's")
    parser.add_argument("--requests", "-n", type=int, default=400, help="requests of each kind per round (400)")
    parser.add_argument("--concurrency", "-c", type=int, default=16, help="concurrent requests in conc mode (16)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds (default 4)")
    parser.add_argument("--profile", metavar="DIR", help="one more round under cProfile: pstats files and layers")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the clients' event loop: asyncio (default; the kubelet's) or uvloop (the other components')",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for flag in ("--tree", "--server", "--ca", "--cert", "--key"):
        parser.add_argument(flag, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args)

    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE / "bench"))
    import apiserver_ab
    import orjson
    import pod_writes

    from tinykube.procs import Process, start_etcd

    ab = pod_writes.ab
    trees = {"this": HERE} if not args.base else {"base": Path(args.base).resolve(), "this": HERE}
    tmp = Path(tempfile.mkdtemp(prefix="tinykube-clientreq-"))
    procs: list[Process] = []
    clients: list[Client] = []
    try:
        etcd, etcd_url = start_etcd(tmp)
        procs.append(etcd)
        secure, secure_args = ab.make_secure_port(tmp)
        apiserver, url = apiserver_ab.start_tree(HERE, tmp, etcd_url, secure_args, "apiserver")
        procs.append(apiserver)
        insecure = f"http://127.0.0.1:{apiserver_ab._insecure_port(apiserver)}"

        async def setup() -> None:
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "bench-client-requests"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": ROLE["metadata"]["name"],
                },  # type: ignore[index]
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": ab.BENCH_USER}],
            }
            async with ab.http_client(insecure, 30.0) as c:
                for path, body in (
                    ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
                    ("/apis/rbac.authorization.k8s.io/v1/clusterroles", ROLE),
                    ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding),
                ):
                    r = await c.post(path, content=orjson.dumps(body), headers=pod_writes.JSON)
                    if r.status_code != 201:
                        raise ab.BenchError(f"POST {path}: {r.status_code} {r.text[:200]}")

        asyncio.run(setup())
        clients = [Client(name, tree, url, secure.pki, secure.client_file, args.loop) for name, tree in trees.items()]
        results: dict[tuple[str, str], list[list[float]]] = {}
        for number in range(args.rounds):
            order = clients if number % 2 == 0 else list(reversed(clients))
            for cl in order:
                figs = cl.round(args.requests, args.concurrency, f"{cl.name}{number}")
                for key, fig in figs.items():
                    results.setdefault((cl.name, key), []).append(fig)
                line = ", ".join(f"{k} {v[0]:.0f}" for k, v in figs.items())
                print(f"round {number + 1} {cl.name}: {line} (load {os.getloadavg()[0]:.1f})", flush=True)
        print(render(results, list(trees), args))
        if args.profile:
            out = Path(args.profile)
            out.mkdir(parents=True, exist_ok=True)
            for cl in clients:
                figs = cl.round(args.requests, args.concurrency, f"{cl.name}prof", str(out / f"{cl.name}.pstats"))
                layers = figs["_layers"]
                total = sum(layers.values())
                parts = ", ".join(f"{k} {v:.0f}" for k, v in sorted(layers.items(), key=lambda kv: -kv[1]))
                print(f"{cl.name} under cProfile, own µs per request by layer (all ops): {parts}; total {total:.0f}")
                print(f"  pstats: {out / (cl.name + '.pstats')}")
        return 0
    except (ab.BenchError, RuntimeError) as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        for p in procs:
            print(f"--- {p.name} log tail ({p.log_path}):\n{p.tail(15)}", file=sys.stderr)
        return 1
    finally:
        for cl in clients:
            cl.stop()
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # etcd's data and the logs (their tails are printed on a failure)


if __name__ == "__main__":
    sys.exit(main())
