"""Benchmark of the tinykube apiserver against raw etcd, measured in the same run.

Run from the repo root:

    .venv/bin/python bench/apiserver.py           # full: 1k and 10k pods, 100 watchers x 200 events
    .venv/bin/python bench/apiserver.py --quick   # small: 1k pods, 20 watchers x 50 events (< 60 s)

It starts its own etcd and apiserver in a temporary directory (both on 127.0.0.1 only), and
prints one table of figures, each beside a baseline measured in the same run against the same
etcd, with the ratio tinykube / baseline:

1. Pod creates/s over HTTP vs raw etcd puts/s (aetcd) of the same stored JSON size.
2. Single-Pod gets/s over HTTP vs raw etcd gets/s (+ JSON decoding).
3. Full-list latency p50/p99 (as JSON and as a meta.k8s.io Table) at 1k and 10k pods vs a
   raw etcd prefix range read of the same keys with JSON decoding.
4. Watch fan-out: N HTTP watchers x M pod updates, events delivered per second in total vs one
   raw etcd watch replaying the same M events; plus how many etcd watches the apiserver holds.
5. Peak RSS (VmHWM) of the apiserver after the 10k-pod phase vs etcd's.

Every loop is bounded in count and in time; the processes are stopped on errors and Ctrl-C.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import aetcd
import httpx
import orjson

from tinykube.procs import Process, start_apiserver, start_etcd

NAMESPACE = "bench"
POD_PREFIX = f"/registry/pods/{NAMESPACE}/"
RAW_PREFIX = "/bench-raw/pods/"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"
MiB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The benchmark could not measure something (a server misbehaved or a bound was hit)."""


@dataclass(frozen=True)
class Settings:
    """Sizes, concurrency and time bounds of one run."""

    quick: bool
    concurrency: int
    pod_counts: tuple[int, ...]  # list phases; pods are created up to each count in turn
    raw_puts: int
    gets: int
    list_reps: dict[int, int]
    watchers: int
    events: int
    create_budget: float  # seconds for all pod creates
    op_budget: float  # seconds per throughput series
    list_budget: float  # seconds per latency series
    watch_budget: float  # seconds for watch registration and delivery, each

    @classmethod
    def make(cls, quick: bool, concurrency: int, watchers: int | None, events: int | None) -> Settings:
        """The quick or the full profile, with optional overrides."""
        if quick:
            return cls(
                quick=True,
                concurrency=concurrency,
                pod_counts=(1000,),
                raw_puts=1000,
                gets=1000,
                list_reps={1000: 15},
                watchers=watchers or 20,
                events=events or 50,
                create_budget=30.0,
                op_budget=10.0,
                list_budget=8.0,
                watch_budget=15.0,
            )
        return cls(
            quick=False,
            concurrency=concurrency,
            pod_counts=(1000, 10_000),
            raw_puts=5000,
            gets=5000,
            list_reps={1000: 50, 10_000: 20},
            watchers=watchers or 100,
            events=events or 200,
            create_budget=300.0,
            op_budget=30.0,
            list_budget=60.0,
            watch_budget=60.0,
        )


@dataclass
class Row:
    """One line of the result table; `higher_is_better` only affects the ratio's wording."""

    figure: str
    tinykube: float | None
    baseline: float | None
    unit: str
    baseline_label: str
    higher_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        """tinykube / baseline."""
        if self.tinykube is None or not self.baseline:
            return None
        return self.tinykube / self.baseline


@dataclass
class Report:
    """Everything measured: table rows, informational notes and warnings."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PoolResult:
    """Outcome of a bounded concurrent run of one operation."""

    attempted: int
    errors: int
    elapsed: float
    first_error: str

    @property
    def ok(self) -> int:
        """Operations that succeeded."""
        return self.attempted - self.errors

    @property
    def rate(self) -> float:
        """Successful operations per second."""
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0


# --- measuring helpers -------------------------------------------------------------------


async def run_pool(op: Callable[[int], Awaitable[None]], count: int, concurrency: int, budget: float) -> PoolResult:
    """Run `op(i)` for i in [0, count) with `concurrency` workers, stopping early after `budget` s."""
    next_i = 0
    errors = 0
    first_error = ""
    deadline = time.perf_counter() + budget

    async def worker() -> None:
        nonlocal next_i, errors, first_error
        while next_i < count and time.perf_counter() < deadline:
            i = next_i
            next_i += 1
            try:
                await op(i)
            except Exception as e:  # counted and reported: one bad request must not hide the rest
                errors += 1
                first_error = first_error or f"{type(e).__name__}: {e}"

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return PoolResult(next_i, errors, time.perf_counter() - start, first_error)


async def time_series(op: Callable[[], Awaitable[None]], reps: int, budget: float) -> list[float]:
    """Latencies (s) of `reps` sequential calls after one warm-up call, stopping after `budget` s."""
    await op()
    samples: list[float] = []
    deadline = time.perf_counter() + budget
    for _ in range(reps):
        if time.perf_counter() > deadline:
            break
        start = time.perf_counter()
        await op()
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def proc_status(pid: int, field_name: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmHWM, VmRSS) in bytes; 0 if unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process (from /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


@contextlib.contextmanager
def cpu_note(report: Report, label: str, apiserver: Process, etcd: Process) -> Iterator[None]:
    """Record the CPU seconds the apiserver, etcd and this benchmark used during a phase."""
    a0, e0, b0, t0 = cpu_seconds(apiserver.pid), cpu_seconds(etcd.pid), time.process_time(), time.perf_counter()
    yield
    wall = time.perf_counter() - t0
    a, e, b = cpu_seconds(apiserver.pid) - a0, cpu_seconds(etcd.pid) - e0, time.process_time() - b0
    report.notes.append(
        f"{label}: {wall:.2f} s wall; CPU apiserver {a:.2f} s ({a / wall:.0%}), "
        f"etcd {e:.2f} s ({e / wall:.0%}), bench client {b:.2f} s ({b / wall:.0%})"
    )


def metric_value(text: str, name: str, labels: str = "") -> float | None:
    """The value of one sample in Prometheus text format (`labels` like `resource="pods"`)."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" ([0-9.eE+-]+)$"
    for line in text.splitlines():
        m = re.match(pattern, line)
        if m:
            return float(m.group(1))
    return None


def pod_body(i: int) -> bytes:
    """The JSON body of pod number i."""
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod_name(i), "labels": {"app": "bench", "shard": str(i % 10)}},
            "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}]},
        }
    )


def pod_name(i: int) -> str:
    """The name of pod number i."""
    return f"pod-{i:05d}"


# --- the benchmark -------------------------------------------------------------------------


class Bench:
    """One run against one etcd and one apiserver."""

    def __init__(self, settings: Settings, etcd: Process, etcd_url: str, apiserver: Process, api_url: str) -> None:
        self.s = settings
        self.etcd, self.etcd_url = etcd, etcd_url
        self.apiserver, self.api_url = apiserver, api_url
        self.report = Report()
        self.pods = 0  # pods created so far: pod-00000 .. pod-{pods-1}
        self.create_ok = 0
        self.create_time = 0.0
        self.create_errors = 0
        self.api: httpx.AsyncClient
        self.raw: aetcd.Client

    def _require_alive(self) -> None:
        for p in (self.etcd, self.apiserver):
            if not p.alive():
                raise BenchError(f"{p.name} exited ({p.proc.returncode}):\n{p.tail()}")

    def _cpu(self, label: str) -> contextlib.AbstractContextManager[None]:
        return cpu_note(self.report, label, self.apiserver, self.etcd)

    async def run(self) -> Report:
        """Every phase in order; returns the report."""
        host, _, port = self.etcd_url.removeprefix("http://").partition(":")
        limits = httpx.Limits(max_connections=self.s.concurrency, max_keepalive_connections=self.s.concurrency)
        self.raw = aetcd.Client(
            host=host, port=int(port), timeout=30, options={"grpc.max_receive_message_length": 512 * MiB}
        )
        self.report.notes.append(
            f"apiserver RSS at start: {proc_status(self.apiserver.pid, 'VmRSS') / MiB:.1f} MiB; "
            f"{os.cpu_count()} CPUs shared by etcd, apiserver and this client"
        )
        async with httpx.AsyncClient(base_url=self.api_url, limits=limits, timeout=30.0, trust_env=False) as api:
            self.api = api
            try:
                await self.raw.connect()
                await self._create_namespace()
                await self._grow_to(self.s.pod_counts[0])
                await self._bench_puts()
                await self._bench_gets()
                for count in self.s.pod_counts:
                    await self._grow_to(count)
                    await self._bench_lists(count)
                self._create_row()
                self._rss_row()
                await self._bench_watch()
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.raw.delete_prefix(RAW_PREFIX.encode()), 10)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.raw.close(), 5)
        return self.report

    # -- 1. creates vs puts
    async def _create_namespace(self) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        r = await self.api.post("/api/v1/namespaces", json=body)
        if r.status_code not in (201, 409):
            raise BenchError(f"creating namespace {NAMESPACE}: {r.status_code} {r.text[:300]}")

    async def _grow_to(self, count: int) -> None:
        """Create pods until `count` exist (bounded by the create time budget)."""
        if count <= self.pods:
            return
        start_index = self.pods
        budget = max(1.0, self.s.create_budget - self.create_time)

        async def create(i: int) -> None:
            r = await self.api.post(
                f"/api/v1/namespaces/{NAMESPACE}/pods",
                content=pod_body(start_index + i),
                headers={"Content-Type": "application/json"},
            )
            if r.status_code != 201:
                raise BenchError(f"create {pod_name(start_index + i)}: {r.status_code} {r.text[:200]}")

        with self._cpu(f"create pods {start_index}..{count}"):
            res = await run_pool(create, count - start_index, self.s.concurrency, budget)
        self._require_alive()
        self.create_ok += res.ok
        self.create_time += res.elapsed
        self.create_errors += res.errors
        if res.errors:
            self.report.warnings.append(f"{res.errors} pod creates failed; first: {res.first_error}")
        # Names are handed out in order, so the first `attempted` exist unless a create failed.
        self.pods = start_index + res.attempted
        if res.attempted < count - start_index:
            self.report.warnings.append(
                f"create budget ({self.s.create_budget:.0f} s) ran out at {self.pods} pods (wanted {count})"
            )

    async def _stored_value(self, i: int) -> bytes:
        got = await self.raw.get((POD_PREFIX + pod_name(i)).encode())
        if got is None:
            raise BenchError(f"pod {pod_name(i)} is not in etcd")
        return got.value

    async def _bench_puts(self) -> None:
        """Raw etcd puts of the very value the apiserver stored for pod 0, same concurrency."""
        payload = await self._stored_value(0)
        self.payload_size = len(payload)

        async def put(i: int) -> None:
            await self.raw.put(f"{RAW_PREFIX}raw-{i:05d}".encode(), payload)

        with self._cpu("raw etcd puts"):
            self.put_result = await run_pool(put, self.s.raw_puts, self.s.concurrency, self.s.op_budget)
        if self.put_result.errors:
            self.report.warnings.append(f"{self.put_result.errors} raw puts failed: {self.put_result.first_error}")

    def _create_row(self) -> None:
        rate = self.create_ok / self.create_time if self.create_time else None
        self.report.rows.append(
            Row(
                f"Pod creates/s, C={self.s.concurrency} ({self.create_ok} pods)",
                rate,
                self.put_result.rate,
                "/s",
                f"etcd puts/s, {self.payload_size} B values",
            )
        )

    # -- 2. gets
    async def _bench_gets(self) -> None:
        n = self.pods

        async def get(i: int) -> None:
            r = await self.api.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{pod_name(i % n)}")
            if r.status_code != 200:
                raise BenchError(f"get {pod_name(i % n)}: {r.status_code}")
            orjson.loads(r.content)

        async def raw_get(i: int) -> None:
            got = await self.raw.get((POD_PREFIX + pod_name(i % n)).encode())
            if got is None:
                raise BenchError(f"raw get {pod_name(i % n)}: missing")
            orjson.loads(got.value)

        with self._cpu("HTTP gets"):
            api = await run_pool(get, self.s.gets, self.s.concurrency, self.s.op_budget)
        with self._cpu("raw etcd gets"):
            raw = await run_pool(raw_get, self.s.gets, self.s.concurrency, self.s.op_budget)
        for name, res in (("HTTP gets", api), ("raw gets", raw)):
            if res.errors:
                self.report.warnings.append(f"{res.errors} {name} failed: {res.first_error}")
        self.report.rows.append(
            Row(f"Pod gets/s, C={self.s.concurrency} ({api.ok} gets)", api.rate, raw.rate, "/s", "etcd gets/s + decode")
        )

    # -- 3. lists
    async def _bench_lists(self, count: int) -> None:
        n = self.pods
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"

        async def list_json() -> None:
            r = await self.api.get(path)
            items = orjson.loads(r.content).get("items")
            if r.status_code != 200 or len(items or []) != n:
                raise BenchError(f"list: {r.status_code}, {len(items or [])} items, expected {n}")

        async def list_table() -> None:
            r = await self.api.get(path, headers={"Accept": TABLE_ACCEPT})
            rows = orjson.loads(r.content).get("rows")
            if r.status_code != 200 or len(rows or []) != n:
                raise BenchError(f"Table list: {r.status_code}, {len(rows or [])} rows, expected {n}")

        async def list_raw() -> None:
            got = await self.raw.get_prefix(POD_PREFIX.encode())
            items = [orjson.loads(kv.value) for kv in got]
            if len(items) != n:
                raise BenchError(f"raw range: {len(items)} keys, expected {n}")

        reps, budget = self.s.list_reps[count], self.s.list_budget
        with self._cpu(f"lists at {n} pods"):
            raw = await time_series(list_raw, reps, budget)
            as_json = await time_series(list_json, reps, budget)
            as_table = await time_series(list_table, reps, budget)
        self._require_alive()
        size = len((await self.api.get(path)).content)
        table_size = len((await self.api.get(path, headers={"Accept": TABLE_ACCEPT})).content)
        self.report.notes.append(
            f"list at {n} pods: JSON {size / MiB:.1f} MiB, Table {table_size / MiB:.1f} MiB; "
            f"samples JSON {len(as_json)}, Table {len(as_table)}, raw {len(raw)}"
        )
        for kind, samples in (("JSON", as_json), ("Table", as_table)):
            for p in (50, 99):
                self.report.rows.append(
                    Row(
                        f"list {n} pods as {kind}, p{p}",
                        percentile(samples, p) * 1e3,
                        percentile(raw, p) * 1e3,
                        "ms",
                        f"etcd prefix range + JSON decode, p{p}",
                        higher_is_better=False,
                    )
                )

    # -- 5. memory
    def _rss_row(self) -> None:
        api_hwm = proc_status(self.apiserver.pid, "VmHWM")
        etcd_hwm = proc_status(self.etcd.pid, "VmHWM")
        self.report.rows.append(
            Row(
                f"apiserver peak RSS (VmHWM) at {self.pods} pods",
                api_hwm / MiB,
                etcd_hwm / MiB,
                "MiB",
                "etcd peak RSS (VmHWM)",
                higher_is_better=False,
            )
        )
        self.report.notes.append(
            f"stored pod JSON in etcd: {self.pods} x ~{self.payload_size} B = "
            f"{self.pods * self.payload_size / MiB:.1f} MiB"
        )

    # -- 4. watch fan-out
    async def _registered_watchers(self) -> float:
        r = await self.api.get("/metrics")
        return metric_value(r.text, "apiserver_registered_watchers", 'resource="pods"') or 0.0

    async def _etcd_watchers(self) -> float | None:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as c:
            r = await c.get(f"{self.etcd_url}/metrics")
        return metric_value(r.text, "etcd_debugging_mvcc_watcher_total")

    async def _bench_watch(self) -> None:
        n_watch, m_events = self.s.watchers, self.s.events
        budget = self.s.watch_budget
        # The M updates: pod JSON with a changed annotation, written straight to etcd so that the
        # apiserver's CPU goes to fan-out alone and every watcher sees the very same M events.
        keys = [(POD_PREFIX + pod_name(j % self.pods)).encode() for j in range(m_events)]
        current = {k: orjson.loads(await self._stored_value(j % self.pods)) for j, k in enumerate(keys)}
        payloads = []
        for j, k in enumerate(keys):
            obj = current[k]
            obj["metadata"].setdefault("annotations", {})["bench/seq"] = str(j)
            payloads.append(orjson.dumps(obj))
        r = await self.api.get(f"/api/v1/namespaces/{NAMESPACE}/pods", params={"limit": "1"})
        rv = int(r.json()["metadata"]["resourceVersion"])

        got = [0] * n_watch
        done_at: list[float | None] = [None] * n_watch
        registered_watchers = 0.0
        etcd_watchers: float | None = None
        limits = httpx.Limits(max_connections=n_watch + 1, max_keepalive_connections=0)
        timeout = httpx.Timeout(budget, connect=10.0)

        async def watcher(k: int, client: httpx.AsyncClient) -> None:
            params = {"watch": "1", "resourceVersion": str(rv)}
            async with client.stream("GET", f"/api/v1/namespaces/{NAMESPACE}/pods", params=params) as resp:
                if resp.status_code != 200:
                    raise BenchError(f"watch {k}: HTTP {resp.status_code}")
                async for line in resp.aiter_lines():
                    if not line:
                        continue
                    ev = orjson.loads(line)
                    if ev["type"] == "ERROR":
                        raise BenchError(f"watch {k}: {ev['object'].get('message')}")
                    if ev["type"] != "BOOKMARK":
                        got[k] += 1
                    if got[k] >= m_events:
                        done_at[k] = time.perf_counter()
                        return
            raise BenchError(f"watch {k} ended after {got[k]} of {m_events} events")

        async def raw_watch(start_revision: int, deadline: float) -> tuple[int, float]:
            """Count the M events on one raw etcd watch; (events, perf_counter at the last one)."""
            watch = await self.raw.watch_prefix(POD_PREFIX.encode(), start_revision=start_revision)
            count, last = 0, 0.0
            try:
                async with asyncio.timeout(max(0.1, deadline - time.perf_counter())):
                    async for _ev in watch:
                        count += 1
                        last = time.perf_counter()
                        if count >= m_events:
                            break
            except TimeoutError:
                pass
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(watch.cancel(), 5)
            return count, last

        async def put(j: int) -> None:
            await self.raw.put(keys[j], payloads[j])

        async with httpx.AsyncClient(base_url=self.api_url, limits=limits, timeout=timeout, trust_env=False) as wc:
            tasks = [asyncio.create_task(watcher(k, wc), name=f"watcher-{k}") for k in range(n_watch)]
            try:
                # Registration: wait until the apiserver reports N client watches on pods.
                deadline = time.perf_counter() + budget
                while time.perf_counter() < deadline:
                    registered_watchers = await self._registered_watchers()
                    failed = [t for t in tasks if t.done()]
                    if failed:
                        await failed[0]  # raises the watcher's error
                        raise BenchError("a watcher ended before any event was written")
                    if registered_watchers >= n_watch:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise BenchError(f"only {registered_watchers:.0f} of {n_watch} watches registered in {budget} s")
                etcd_watchers = await self._etcd_watchers()  # before this benchmark opens its own

                with self._cpu(f"watch fan-out {n_watch} x {m_events}"):
                    t0 = time.perf_counter()
                    live = asyncio.create_task(raw_watch(rv + 1, t0 + budget))
                    writes = await run_pool(put, m_events, self.s.concurrency, budget)
                    t_written = time.perf_counter()
                    finished, _ = await asyncio.wait(tasks, timeout=max(0.1, t0 + budget - time.perf_counter()))
                    live_count, live_last = await live
                for t in finished:
                    if t.exception() is not None:
                        self.report.warnings.append(f"{t.get_name()}: {t.exception()}")
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        if writes.errors:
            raise BenchError(f"{writes.errors} update writes failed: {writes.first_error}")

        # Baseline capacity: one raw etcd watch replaying the same M events from history.
        t1 = time.perf_counter()
        replay_count, replay_last = await raw_watch(rv + 1, t1 + budget)
        replay_rate = replay_count / (replay_last - t1) if replay_count and replay_last > t1 else None

        delivered = sum(got)
        complete = [d for d in done_at if d is not None]
        t_end = max(complete) if len(complete) == n_watch else time.perf_counter()
        if len(complete) < n_watch:
            self.report.warnings.append(
                f"watch: only {len(complete)} of {n_watch} watchers got all {m_events} events "
                f"within {budget:.0f} s ({delivered} of {n_watch * m_events} delivered)"
            )
        if live_count < m_events:
            self.report.warnings.append(f"raw live etcd watch got {live_count} of {m_events} events")
        self.report.rows.append(
            Row(
                f"watch fan-out {n_watch} watchers x {m_events} events, events/s delivered",
                delivered / (t_end - t0),
                replay_rate,
                "/s",
                "1 etcd watch events/s (replay)",
            )
        )
        self.report.rows.append(
            Row(
                "watch: last write -> last event at every watcher",
                (t_end - t_written) * 1e3,
                (live_last - t_written) * 1e3 if live_count >= m_events else None,
                "ms",
                "same, 1 live etcd watch",
                higher_is_better=False,
            )
        )
        self.report.rows.append(
            Row(
                "etcd watches held by apiserver (per N client watches)",
                etcd_watchers,
                registered_watchers,
                "",
                "client watches registered",
                higher_is_better=False,
            )
        )
        self.report.notes.append(
            f"watch: {m_events} updates written to etcd in {(t_written - t0) * 1e3:.0f} ms; "
            f"{delivered} of {n_watch * m_events} events delivered"
        )
        # Closed watches must be unregistered (no leak of cache watchers).
        deadline = time.perf_counter() + 10
        left = await self._registered_watchers()
        while left > 0 and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
            left = await self._registered_watchers()
        if left > 0:
            self.report.warnings.append(f"{left:.0f} client watches still registered 10 s after clients closed")
        self._require_alive()


# --- output --------------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    """A figure with its unit, at a sensible precision."""
    if value is None:
        return "n/a"
    if unit in ("/s", ""):
        return f"{value:,.0f}{unit}"
    if unit == "ms":
        return f"{value:,.1f} ms" if value < 1000 else f"{value:,.0f} ms"
    return f"{value:,.1f} {unit}"


def render(report: Report, settings: Settings, elapsed: float) -> str:
    """The plain-text table, notes, warnings and a one-line summary."""
    headers = ("figure", "tinykube", "baseline", "ratio", "baseline is")
    lines = [
        (r.figure, fmt(r.tinykube, r.unit), fmt(r.baseline, r.unit), _ratio(r), r.baseline_label) for r in report.rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in lines)) if lines else len(h) for i, h in enumerate(headers)]
    aligns = ("<", ">", ">", ">", "<")

    def line(cells: tuple[str, ...]) -> str:
        return " | ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths, strict=True)).rstrip()

    out = [line(headers), "-+-".join("-" * w for w in widths)]
    out += [line(row) for row in lines]
    out.append("")
    out.append("ratio = tinykube / baseline (for ms and MiB lower is better; for /s higher is better)")
    out += [f"note: {n}" for n in report.notes]
    out += [f"WARNING: {w}" for w in report.warnings]
    out.append("")
    out.append(summary(report, settings, elapsed))
    return "\n".join(out)


def _ratio(r: Row) -> str:
    ratio = r.ratio
    return "n/a" if ratio is None else f"{ratio:.3g}x"


def summary(report: Report, settings: Settings, elapsed: float) -> str:
    """One line: the headline ratios."""
    by_start = {r.figure.split(",")[0].split(" (")[0]: r for r in report.rows}
    parts = []
    for key, label in (("Pod creates/s", "creates"), ("Pod gets/s", "gets")):
        r = by_start.get(key)
        if r and r.ratio is not None:
            parts.append(f"{label} {r.ratio:.2f}x etcd")
    lists = [r for r in report.rows if r.figure.startswith("list") and r.figure.endswith("JSON, p50")]
    if lists and lists[-1].ratio is not None:
        parts.append(f"{lists[-1].figure.split(' as')[0]} p50 {lists[-1].ratio:.1f}x etcd range")
    fan = next((r for r in report.rows if r.figure.startswith("watch fan-out")), None)
    if fan and fan.tinykube is not None:
        parts.append(f"watch fan-out {fan.tinykube:,.0f} events/s")
    rss = next((r for r in report.rows if "RSS" in r.figure), None)
    if rss and rss.tinykube is not None:
        parts.append(f"peak RSS {rss.tinykube:.0f} MiB")
    mode = "quick" if settings.quick else "full"
    status = f", {len(report.warnings)} warning(s)" if report.warnings else ""
    return f"summary ({mode}, {elapsed:.0f} s{status}): " + "; ".join(parts)


# --- main ----------------------------------------------------------------------------------


def _kill_leftover_children() -> None:
    """SIGKILL (by pid) any child process still running, e.g. an etcd whose start was interrupted
    before `start_etcd` returned its handle; each child leads its own process group."""
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            ppid = int(text[text.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            pid = int(stat.parent.name)
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1k pods only, 20 watchers x 50 events (< 60 s)")
    p.add_argument("--concurrency", "-c", type=int, default=32, help="concurrent requests (default 32)")
    p.add_argument("--watchers", type=int, default=None, help="watchers N (default 100, quick 20)")
    p.add_argument("--events", type=int, default=None, help="updates M seen by every watcher (default 200, quick 50)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (etcd data, logs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start etcd and the apiserver, run every phase, print the table; 0 on success."""
    args = parse_args(argv)
    settings = Settings.make(args.quick, max(1, args.concurrency), args.watchers, args.events)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="tinykube-bench-"))
    procs: list[Process] = []
    try:
        print(f"tinykube apiserver benchmark ({'quick' if settings.quick else 'full'}); data in {tmp}", flush=True)
        etcd, etcd_url = start_etcd(tmp)
        procs.append(etcd)
        apiserver, api_url = start_apiserver(
            tmp, etcd_url, extra=["--etcd-compaction-interval", "0", "--log-level", "warning"]
        )
        procs.append(apiserver)
        print(f"etcd {etcd_url} (pid {etcd.pid}), apiserver {api_url} (pid {apiserver.pid})", flush=True)
        report = asyncio.run(Bench(settings, etcd, etcd_url, apiserver, api_url).run())
        print()
        print(render(report, settings, time.perf_counter() - started))
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping etcd and the apiserver", file=sys.stderr)
        return 130
    except (BenchError, RuntimeError) as e:
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        for p in procs:
            print(f"--- {p.name} log tail ({p.log_path}):\n{p.tail(15)}", file=sys.stderr)
        return 1
    finally:
        for p in reversed(procs):
            with contextlib.suppress(Exception):
                p.stop()
        _kill_leftover_children()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
