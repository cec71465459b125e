"""The apiserver's CPU per request of a pod's life: create, get, binding, status write, Event.

Run from the repo root:

    .venv/bin/python bench/pod_writes.py                  # 1,000 pods, 3 rounds, insecure port and TLS
    .venv/bin/python bench/pod_writes.py --pods 400 --rounds 1 --profile /tmp/prof

Every request a pod costs the apiserver in a running cluster, one kind at a time, C concurrent: the create
(the client), a GET, the binding (the scheduler), a JSON merge patch of `pods/<name>/status` to Running and
Ready (the simulated kubelet's write), and an events.k8s.io/v1 `Scheduled` Event (the scheduler's). It starts
its own etcd and apiserver as bench/apiserver.py does, and prints each operation's rate and the apiserver's
and etcd's CPU per request (from /proc), the median of the rounds, over the insecure port and over TLS with a
client certificate and RBAC (issue 15 measures with the security pipeline on). No watcher is open: this is
the cost of the request itself, without the fan-out. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchkit import load_apiserver_bench, running_status

ab = load_apiserver_bench()
BenchError, CpuTally = ab.BenchError, ab.CpuTally
http_client, run_pool, py_spy = ab.http_client, ab.run_pool, ab.py_spy

NAMESPACE = "bench"
OPS = ("create", "get", "binding", "status", "event")
JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}
WRITER_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "bench-pod-writes"},
    "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get"]},
        {"apiGroups": [""], "resources": ["pods/binding"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    ],
}


def status_patch(name: str) -> bytes:
    """What the simulated kubelet writes: Running and Ready, with addresses and a container status."""
    return orjson.dumps({"status": running_status(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))})


def scheduled_event(name: str, i: int) -> bytes:
    """The scheduler's events.k8s.io/v1 `Scheduled` Event about pod `name`."""
    return orjson.dumps(
        {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{time.time_ns():x}", "namespace": NAMESPACE},
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
            "regarding": {"kind": "Pod", "namespace": NAMESPACE, "name": name, "apiVersion": "v1"},
            "reason": "Scheduled",
            "action": "Binding",
            "note": f"Successfully assigned {NAMESPACE}/{name} to node-{i % 10}",
            "type": "Normal",
            "reportingController": "default-scheduler",
            "reportingInstance": "default-scheduler-bench",
        }
    )


class PodWrites:
    """Rounds of the five operations against one etcd and apiserver."""

    def __init__(self, stack: Any, pods: int, rounds: int, concurrency: int, profile: Path | None) -> None:
        self.stack = stack
        self.pods, self.rounds, self.concurrency, self.profile = pods, rounds, concurrency, profile
        # (port, op) -> per round: (requests/s, apiserver CPU ms per request, etcd CPU ms per request)
        self.results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}

    def clients(self, port: str) -> list[httpx.AsyncClient]:
        """One keep-alive connection per worker, on the insecure port or over TLS as the bench user."""
        if port == "tls":
            tls = self.stack.secure.tls()
            return [http_client(self.stack.secure.url, 30.0, tls) for _ in range(self.concurrency)]
        return [http_client(self.stack.api_url, 30.0) for _ in range(self.concurrency)]

    async def setup(self) -> None:
        """The namespace, and the bench user's right to every operation (a ClusterRoleBinding)."""
        async with http_client(self.stack.api_url, 30.0) as c:
            user = ab.BENCH_USER
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "bench-pod-writes"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-pod-writes"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
            }
            for path, body in (
                ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
                ("/apis/rbac.authorization.k8s.io/v1/clusterroles", WRITER_ROLE),
                ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding),
            ):
                r = await c.post(path, content=orjson.dumps(body), headers=JSON)
                if r.status_code != 201:
                    raise BenchError(f"POST {path}: {r.status_code} {r.text[:200]}")

    def requests(self, prefix: str) -> dict[str, Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]]:
        """Each operation as a call on a client for pod number i."""
        base = f"/api/v1/namespaces/{NAMESPACE}/pods"

        def name(i: int) -> str:
            return ab.pod_name(i, prefix)

        def binding(i: int) -> bytes:
            target = {"kind": "Node", "name": f"node-{i % 10}"}
            meta = {"name": name(i)}
            return orjson.dumps({"apiVersion": "v1", "kind": "Binding", "metadata": meta, "target": target})

        return {
            "create": lambda c, i: c.post(base, content=ab.pod_body(i, prefix), headers=JSON),
            "get": lambda c, i: c.get(f"{base}/{name(i)}"),
            "binding": lambda c, i: c.post(f"{base}/{name(i)}/binding", content=binding(i), headers=JSON),
            "status": lambda c, i: c.patch(f"{base}/{name(i)}/status", content=status_patch(name(i)), headers=MERGE),
            "event": lambda c, i: c.post(
                f"/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events",
                content=scheduled_event(name(i), i),
                headers=JSON,
            ),
        }

    async def round(self, port: str, number: int) -> None:
        """Every operation once over N fresh pods."""
        clients = self.clients(port)
        try:
            for op, call in self.requests(f"{port}{number}").items():

                async def one(worker: int, i: int, call: Any = call, op: str = op) -> None:
                    r = await call(clients[worker], i)
                    if r.status_code >= 300:
                        raise BenchError(f"{op} {i}: {r.status_code} {r.text[:200]}")

                tally = CpuTally(self.stack.apiserver, self.stack.etcd)
                out = self.profile / f"{op}-{port}-{number}.txt" if self.profile else None
                with py_spy(self.stack.apiserver.pid, out), tally.span():
                    result = await run_pool(one, self.pods, self.concurrency, 120.0)
                if result.errors:
                    raise BenchError(f"{op} over {port}: {result.errors} errors, first: {result.first_error}")
                n = result.attempted
                self.results.setdefault((port, op), []).append(
                    (n / result.elapsed, tally.api_cpu / n * 1e3, tally.etcd_cpu / n * 1e3)
                )
        finally:
            for c in clients:
                await c.aclose()

    async def run(self) -> str:
        """Set up, run the rounds (the ports alternating), render the table."""
        await self.setup()
        for number in range(self.rounds):
            for port in ("insecure", "tls") if number % 2 == 0 else ("tls", "insecure"):
                await self.round(port, number)
        return self.render()

    def render(self) -> str:
        """The table: per operation and port, the median over rounds."""
        head = f"{'operation':>9} | {'port':>8} | {'requests/s':>10} | {'apiserver CPU/request':>21} | "
        lines = [head + f"{'etcd CPU/request':>16}"]
        for op in OPS:
            for port in ("insecure", "tls"):
                runs = self.results[port, op]
                rate, api, etcd = (statistics.median(r[k] for r in runs) for k in range(3))
                each = " ".join(f"{r[1]:.3f}" for r in runs)
                lines.append(
                    f"{op:>9} | {port:>8} | {rate:>8,.0f}/s | {api:>18.3f} ms | {etcd:>13.3f} ms   (rounds: {each})"
                )
        lines.append("")
        lines.append(
            f"note: {self.pods} pods per round, {self.rounds} round(s), C={self.concurrency}; medians of the rounds; "
            "apiserver and etcd CPU from /proc"
        )
        for op in OPS:
            api = statistics.median(r[1] for r in self.results["tls", op])
            lines.append(f"apiserver CPU per {op}: {api:.3f} ms (TLS + x509 + RBAC)")
        return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pods", type=int, default=1000, help="pods per round (default 1000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; the median is printed (default 3)")
    p.add_argument("--concurrency", "-c", type=int, default=32, help="concurrent requests (default 32)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (etcd data, logs)")
    p.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="py-spy the apiserver into DIR/<op>-<port>-<n>.txt"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start etcd and the apiserver, run the rounds, print the table; 0 on success."""
    args = parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)

    def bench(stack: Any) -> str:
        writes = PodWrites(stack, args.pods, max(1, args.rounds), max(1, args.concurrency), args.profile)
        return asyncio.run(writes.run())

    return ab.run_on_apiserver("tinykube pod-writes benchmark", "tinykube-podwrites-", args.keep, bench)


if __name__ == "__main__":
    sys.exit(main())
