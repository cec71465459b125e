"""Benchmark of one apiserver process against two on the same ports (SO_REUSEPORT), measured in the same run.

Run from the repo root:

    .venv/bin/python bench/apiserver_scaling.py           # full: 3,000 creates and 6,000 gets per side and round
    .venv/bin/python bench/apiserver_scaling.py --quick   # small: 800 creates and 1,600 gets (< 2 min)

It starts its own etcd and apiserver as bench/apiserver.py does (TLS secure port with client certificates,
`--authorization-mode Node,RBAC`, no compaction), with `--permit-port-sharing`; side "2 processes" starts a
second apiserver on the same secure and insecure ports (its own identity, its own watch cache fed by etcd)
and waits for its identity Lease. On each side the same count of Pod creates and single-Pod gets runs over
the TLS port as the non-admin bench user (RBAC through a RoleBinding) on C concurrent workers, each with a
new keep-alive connection (which the kernel hands to one of the listening processes). Printed per side:
creates/s and gets/s; the apiservers' CPU per operation (from /proc, summed over the processes) and each
process's share; etcd's and the benchmark client's CPU per operation (the client is bench/apiserver.py's
`RawConnection`: hand-written HTTP/1.1, so the load generator costs far less than the servers it loads); the
share of the machine's CPUs they kept busy together, and for creates how many etcd committed per WAL fsync
(etcd's /metrics); and a create series ends once every process's watch cache has applied its writes (a GET
without resourceVersion on every connection and on the follower's port), so their decode and apply count as
the creates' cost, not the gets' that follow; and the ceiling those CPU costs put on each side on this
machine's CPUs with nothing else running, the comparison that does not depend on what else loads a shared machine
during the run (on 2 CPUs, also that ceiling's condition in parts: `budget`). A third side, "1+follower", serves
every request from the first process while a second one runs on a port of its own that no request reaches:
its CPU per operation is what following etcd (its watch cache, RBAC and the caches fed by it) costs each
extra process, the figure that, with the serving cost, says how N processes scale on N cores. Sides run in
rounds (two; `--rounds N`) of alternating order (2, 1+follower, 1, then 1, 1+follower, 2), processes started
and stopped between them, so drift weighs on every side.
See bench/README.md ("Horizontal apiserver").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchkit import load_apiserver_bench

from apiserver.identity_lease import identity_lease_name
from tinykube.procs import Process, free_port, start_apiserver, start_etcd

ab = load_apiserver_bench()
RawConnection = ab.RawConnection
BenchError = ab.BenchError
PoolResult = ab.PoolResult
cpu_seconds, make_secure_port, pod_body, run_pool = (
    ab.cpu_seconds,
    ab.make_secure_port,
    ab.pod_body,
    ab.run_pool,
)

NAMESPACE = ab.NAMESPACE
RBAC_API = ab.RBAC_API
SIDES = ("1", "1+follower", "2")
CPUS = os.cpu_count() or 1
IDENTITY_LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


@dataclass(frozen=True)
class Settings:
    """Counts and bounds of one run."""

    quick: bool
    concurrency: int
    creates: int  # per side and round
    gets: int  # per side and round
    budget: float  # seconds per series
    rounds: int = 2  # measured rounds, in alternating order

    @classmethod
    def make(cls, quick: bool, concurrency: int, rounds: int = 2) -> Settings:
        """The quick or the full profile."""
        if quick:
            return cls(True, concurrency, 800, 1600, 30.0, rounds)
        return cls(False, concurrency, 3000, 6000, 90.0, rounds)


@dataclass
class Series:
    """One operation on one side, summed over rounds: operations, wall time and CPU seconds."""

    ok: int = 0
    elapsed: float = 0.0
    api_cpu: list[float] = field(default_factory=list)  # per apiserver process
    etcd_cpu: float = 0.0
    client_cpu: float = 0.0
    fsyncs: float = 0.0  # etcd's WAL fsyncs

    def add(self, res: PoolResult, api: list[float], etcd: float, client: float, fsyncs: float) -> None:
        """Add one round."""
        if res.errors:
            raise BenchError(f"{res.errors} of {res.attempted} failed; first: {res.first_error}")
        self.ok += res.ok
        self.elapsed += res.elapsed
        self.api_cpu = [a + b for a, b in zip(self.api_cpu or [0.0] * len(api), api, strict=True)]
        self.etcd_cpu += etcd
        self.client_cpu += client
        self.fsyncs += fsyncs

    def busy(self, cpus: int) -> float:
        """The share of the machine's CPUs the apiservers, etcd and the client kept busy."""
        total = sum(self.api_cpu) + self.etcd_cpu + self.client_cpu
        return total / (self.elapsed * cpus) if self.elapsed else 0.0

    @property
    def rate(self) -> float:
        """Operations per second."""
        return self.ok / self.elapsed if self.elapsed else 0.0

    def per_op_ms(self, cpu: float) -> float:
        """CPU milliseconds per operation."""
        return 1000 * cpu / self.ok if self.ok else 0.0

    def ceiling(self, cpus: int) -> float:
        """Operations per second this side's CPU costs allow on `cpus` CPUs with nothing else running: the
        smallest of what the CPUs carry (apiservers, etcd and client together) and what each single-threaded
        process (every apiserver, the client) carries on one CPU of its own."""
        if not self.ok:
            return 0.0
        total = sum(self.api_cpu) + self.etcd_cpu + self.client_cpu
        busiest = max([*self.api_cpu, self.client_cpu])
        return min(cpus * self.ok / total, self.ok / busiest) if total and busiest else 0.0


@dataclass
class Side:
    """What was measured in one arrangement of apiserver processes."""

    label: str  # "1": one process; "1+follower": one serving, one only following etcd; "2": two serving
    creates: Series = field(default_factory=Series)
    gets: Series = field(default_factory=Series)


class ScalingBench:
    """One run: etcd, one apiserver always, a second one on the same ports for side 2."""

    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.s = settings
        self.tmp = tmp
        self.procs: list[Process] = []
        self.etcd: Process | None = None
        self.etcd_url = ""
        self.first: Process | None = None
        self.second: Process | None = None
        self.insecure = ""
        self.secure_args: list[str] = []
        self.secure = None
        self.port = 0
        self.created: list[int] = []  # pod numbers that exist
        self.next_pod = 0
        self.follower: Process | None = None
        self.follower_url = ""
        self.sides = {label: Side(label) for label in SIDES}

    # -- processes
    def _apiserver(self, name: str) -> Process:
        args = ["--etcd-compaction-interval", "0", "--log-level", "warning", *self.secure_args]
        args += ["--apiserver-identity", f"bench/{name}"]
        proc, url = start_apiserver(self.tmp, self.etcd_url, self.port, args, name=name, share_port=True)
        self.procs.append(proc)
        self.insecure = url
        return proc

    def start(self) -> None:
        """etcd and the first apiserver."""
        self.secure, self.secure_args = make_secure_port(self.tmp)
        self.etcd, self.etcd_url = start_etcd(self.tmp)
        self.procs.append(self.etcd)
        self.port = free_port()
        self.first = self._apiserver("apiserver")

    def stop(self) -> None:
        """Everything, newest first."""
        for p in reversed(self.procs):
            with contextlib.suppress(Exception):
                p.stop()

    async def _start_second(self) -> None:
        """Start apiserver-2 and wait until it has renewed its identity Lease (it has then bootstrapped)."""
        since = time.time()
        self.second = self._apiserver("apiserver-2")
        lease = f"{IDENTITY_LEASES}/{identity_lease_name('bench/apiserver-2')}"
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=self.insecure, timeout=10, trust_env=False) as c:
            while time.monotonic() < deadline:
                if not self.second.alive():
                    raise BenchError(f"apiserver-2 exited:\n{self.second.tail()}")
                r = await c.get(lease)
                if r.status_code == 200 and _ts(r.json()["spec"].get("renewTime") or "1970-01-01T00:00:00Z") >= since:
                    return
                await asyncio.sleep(0.2)
        raise BenchError("apiserver-2 did not renew its identity Lease within 60 s")

    def _stop_second(self) -> None:
        if self.second is not None:
            self.second.stop()
            self.procs.remove(self.second)
            self.second = None

    def _apiservers(self) -> list[Process]:
        return [p for p in (self.first, self.second, self.follower) if p is not None]

    def _start_follower(self) -> None:
        """An apiserver on its own insecure port that no request reaches: it only follows etcd (watch cache,
        RBAC and the other caches fed by it, its Lease), which is what each extra process costs the others."""
        args = ["--etcd-compaction-interval", "0", "--log-level", "warning", "--apiserver-identity", "bench/follower"]
        args += ["--endpoint-reconciler-type", "none"]
        self.follower, self.follower_url = start_apiserver(self.tmp, self.etcd_url, None, args, name="follower")
        self.procs.append(self.follower)

    def _stop_follower(self) -> None:
        if self.follower is not None:
            self.follower.stop()
            self.procs.remove(self.follower)
            self.follower = None

    async def arrange(self, label: str) -> None:
        """Start and stop the second process and the follower for side `label`."""
        if label != "2":
            self._stop_second()
        if label != "1+follower":
            self._stop_follower()
        if label == "2" and self.second is None:
            await self._start_second()
        if label == "1+follower" and self.follower is None:
            self._start_follower()

    # -- setup
    async def grant(self) -> None:
        """The bench namespace, and pods in it for the bench user through a Role and RoleBinding."""
        assert self.secure is not None
        async with httpx.AsyncClient(base_url=self.insecure, timeout=10, trust_env=False) as c:
            ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
            r = await c.post("/api/v1/namespaces", json=ns)
            if r.status_code not in (201, 409):
                raise BenchError(f"namespace: {r.status_code} {r.text[:200]}")
            role = {
                "metadata": {"name": "bench-pods"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get"]}],
            }
            binding = {
                "metadata": {"name": "bench-pods"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bench-pods"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": ab.BENCH_USER}],
            }
            for kind, body in (("roles", role), ("rolebindings", binding)):
                r = await c.post(f"{RBAC_API}/namespaces/{NAMESPACE}/{kind}", json=body)
                if r.status_code != 201:
                    raise BenchError(f"{kind}: {r.status_code} {r.text[:200]}")

    def _clients(self) -> list[RawConnection]:
        """New connections (spread by the kernel over the listening processes) on the secure port."""
        assert self.secure is not None
        tls = self.secure.tls()
        return [RawConnection(self.secure.url, tls, 30.0) for _ in range(self.s.concurrency)]

    # -- one side
    async def _series(
        self,
        series: Series,
        op: Callable[[int, int], Awaitable[None]],
        count: int,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Time `count` ops; with `settle`, the span ends once it returns (the writes' watch events applied)."""
        procs = self._apiservers()
        assert self.etcd is not None
        f0 = await self._fsyncs()
        a0 = [cpu_seconds(p.pid) for p in procs]
        e0, c0 = cpu_seconds(self.etcd.pid), time.process_time()
        res = await run_pool(op, count, self.s.concurrency, self.s.budget)
        if settle is not None:
            await settle()
        api = [cpu_seconds(p.pid) - a for p, a in zip(procs, a0, strict=True)]
        etcd, client = cpu_seconds(self.etcd.pid) - e0, time.process_time() - c0
        series.add(res, api, etcd, client, await self._fsyncs() - f0)

    async def _fsyncs(self) -> float:
        """etcd's WAL fsyncs so far (its /metrics)."""
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            text = (await client.get(f"{self.etcd_url}/metrics")).text
        for line in text.splitlines():
            if line.startswith("etcd_disk_wal_fsync_duration_seconds_count"):
                return float(line.rsplit(" ", 1)[1])
        raise BenchError("etcd's /metrics has no etcd_disk_wal_fsync_duration_seconds_count")

    async def side(self, label: str, measured: bool = True) -> None:
        """Creates then gets in the arrangement `label` (processes started or stopped as needed)."""
        await self.arrange(label)
        side = self.sides[label] if measured else Side(label)
        clients = self._clients()
        try:
            # every connection opened (and its TLS handshake done) before the clock starts
            await asyncio.gather(*(self._until_ok(c) for c in clients))
            start = self.next_pod
            count = self.s.creates if measured else max(50, self.s.concurrency * 4)
            self.next_pod += count

            pods = f"/api/v1/namespaces/{NAMESPACE}/pods"

            async def create(k: int, i: int) -> None:
                status, body = await clients[k].request("POST", pods, pod_body(start + i))
                if status != 201:
                    raise BenchError(f"create: {status} {body[:200]!r}")

            async def caught_up() -> None:
                # a GET without resourceVersion answers (found or not) once the process's watch cache has reached
                # etcd's current revision: on every connection (so every serving process) and the follower's port
                last = f"{pods}/{ab.pod_name(start + count - 1)}"
                follower = [RawConnection(self.follower_url, None, 30.0)] if self.follower else []
                try:
                    answers = await asyncio.gather(*(c.request("GET", last) for c in [*clients, *follower]))
                finally:
                    for conn in follower:
                        await conn.aclose()
                if bad := [status for status, _ in answers if status not in (200, 404)]:
                    raise BenchError(f"get after the creates: {bad[0]}")

            await self._series(side.creates, create, count, caught_up)
            self.created.extend(range(start, start + count))
            rng = random.Random(len(self.created))
            names = [ab.pod_name(rng.choice(self.created)) for _ in range(self.s.gets if measured else count)]

            async def get(k: int, i: int) -> None:
                status, body = await clients[k].request("GET", f"{pods}/{names[i]}")
                if status != 200:
                    raise BenchError(f"get: {status} {body[:200]!r}")

            await self._series(side.gets, get, len(names))
        finally:
            for c in clients:
                await c.aclose()

    async def _until_ok(self, client: RawConnection) -> None:
        deadline = time.monotonic() + 20
        while True:
            status, body = await client.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/absent")
            if status == 404:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"the bench user gets {status} on the secure port: {body[:200]!r}")
            await asyncio.sleep(0.1)

    async def run(self) -> None:
        """Warm both sides up, then the measured rounds in alternating order."""
        await self.grant()
        await self.side("1", measured=False)
        await self.side("2", measured=False)
        for r in range(self.s.rounds):
            for label in tuple(reversed(SIDES)) if r % 2 == 0 else SIDES:  # the warm-up left "2" running
                print(f"round {r + 1}: {label}", flush=True)
                await self.side(label)

    # -- report
    def render(self, elapsed: float) -> str:
        """The table, the per-process costs and the verdict."""
        lines = [
            f"{'side':<11} {'op':<7} {'ops/s':>7} {'apiserver CPU/op':>17}  {'per process (share)':<40} "
            f"{'etcd CPU/op':>11} {'client CPU/op':>13} {'CPUs busy':>9} {'ops/fsync':>9}"
        ]
        for label in SIDES:
            side = self.sides[label]
            for op, series in (("create", side.creates), ("get", side.gets)):
                total = sum(series.api_cpu) or 1e-9
                # creates per WAL fsync: how many writes etcd commits together (gets write nothing)
                per_fsync = f"{series.ok / series.fsyncs:.1f}" if op == "create" and series.fsyncs else "-"
                shares = " ".join(
                    f"p{i + 1} {series.per_op_ms(c):.3f} ms ({c / total:.0%})" for i, c in enumerate(series.api_cpu)
                )
                lines.append(
                    f"{label:<11} {op:<7} {series.rate:>7.0f} {series.per_op_ms(total):>14.3f} ms  {shares:<40} "
                    f"{series.per_op_ms(series.etcd_cpu):>8.3f} ms {series.per_op_ms(series.client_cpu):>10.3f} ms "
                    f"{series.busy(CPUS):>9.0%} {per_fsync:>9}"
                )
        one, two, fol = self.sides["1"], self.sides["2"], self.sides["1+follower"]
        lines.append("")
        ratios = {}
        for op in ("creates", "gets"):
            s1, s2, sf = getattr(one, op), getattr(two, op), getattr(fol, op)
            ratios[op] = s2.rate / s1.rate if s1.rate else 0.0
            serve, follow = s1.per_op_ms(sum(s1.api_cpu)), sf.per_op_ms(sf.api_cpu[1] if len(sf.api_cpu) > 1 else 0)
            lines.append(
                f"apiserver CPU per {op[:-1]}: {serve:.3f} ms in the process serving it; {follow:.3f} ms in each other "
                f"process (following etcd); 2 processes: {s2.per_op_ms(sum(s2.api_cpu)):.3f} ms summed"
            )
            lines.append(f"2 processes vs 1, {op}/s: {ratios[op]:.2f}x")
            c1, c2 = s1.ceiling(CPUS), s2.ceiling(CPUS)
            lines.append(
                f"  CPU ceiling on {CPUS} otherwise idle CPUs (from the CPU per {op[:-1]}): 1 process {c1:.0f}/s, "
                f"2 processes {c2:.0f}/s, {c2 / c1 if c1 else 0.0:.2f}x"
            )
            if CPUS == 2:
                lines.append("  " + budget(s1, s2, follow))
        lines.append(
            "2 processes not slower than 1 (within 5 %): "
            + ("yes" if all(r >= 0.95 for r in ratios.values()) else "NO")
        )
        lines.append(
            f"{self.s.concurrency} workers, {self.s.rounds} rounds of {self.s.creates} creates and {self.s.gets} gets "
            f"per side; {elapsed:.0f} s in all"
        )
        return "\n".join(lines)


def budget(one: Series, two: Series, follow: float) -> str:
    """On 2 CPUs, the ceiling's condition in parts. One process is bound by its own CPU and two by the machine's
    two (a2 + e2 + c2 <= 2 * a1); with a1 = s + w (serving, and following etcd's events of its own writes) and
    a2 = s + 2w + b, two reach one's ceiling when b + e2 + c2 <= s: what splitting the requests adds (b), with
    etcd's (e2) and the client's (c2) CPU per operation, fits in the serving cost. A cheaper serving path makes
    it harder (bench/README.md, "Session 23" and "Session 28")."""
    a1, a2 = one.per_op_ms(sum(one.api_cpu)), two.per_op_ms(sum(two.api_cpu))
    e2, c2 = two.per_op_ms(two.etcd_cpu), two.per_op_ms(two.client_cpu)
    serve, split = a1 - follow, a2 - a1 - follow
    return (
        f"2 reach 1's ceiling when b + e2 + c2 <= s: b {split:.3f} (splitting the requests) + e2 {e2:.3f} (etcd) "
        f"+ c2 {c2:.3f} (client) = {split + e2 + c2:.3f} ms against s {serve:.3f} ms (serving)"
    )


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main(argv: list[str] | None = None) -> int:
    """Run both sides and print the table; 0 on success."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="800 creates and 1,600 gets per side and round")
    p.add_argument("--concurrency", "-c", type=int, default=32, help="concurrent workers (default 32)")
    p.add_argument("--rounds", type=int, default=2, help="measured rounds, sides in alternating order (default 2)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (etcd data, logs)")
    args = p.parse_args(argv)
    settings = Settings.make(args.quick, max(1, args.concurrency), max(1, args.rounds))
    signal.signal(signal.SIGTERM, ab._terminate)
    tmp = Path(tempfile.mkdtemp(prefix="tinykube-scaling-"))
    bench = ScalingBench(settings, tmp)
    started = time.perf_counter()
    try:
        print(f"tinykube apiserver scaling benchmark ({'quick' if settings.quick else 'full'}); data in {tmp}")
        bench.start()
        uvloop.run(bench.run())
        print()
        print(bench.render(time.perf_counter() - started))
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (BenchError, RuntimeError) as e:
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        for proc in bench.procs:
            print(f"--- {proc.name} log tail ({proc.log_path}):\n{proc.tail(15)}", file=sys.stderr)
        return 1
    finally:
        bench.stop()
        ab._kill_leftover_children()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
