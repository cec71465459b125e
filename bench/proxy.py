"""Benchmark of kube-proxy's userspace data path: through a ClusterIP beside straight to the backend.

Run from the repo root:

    .venv/bin/python bench/proxy.py            # 3 rounds of 3 s per phase (about 1 min)
    .venv/bin/python bench/proxy.py --quick    # 1 round of 2 s per phase (about 20 s)

It starts its own etcd, apiserver and, as in a 2-node cluster, two real `python -m kube_proxy`
(node addresses 127.232.R.201 and .202, Service range 127.232.R.0/25, R random; `--nodes N`), a
backend process (uvloop) with a bulk port (streams bytes until the client hangs up) and
request/response ports (answer `ping\\n` with `pong\\n`), and selector-less Services whose
EndpointSlices point at those ports. The same client code (uvloop, in this process) then measures,
alternating direct and proxied phases in each round:

1. bulk transfer: bytes/s received over 1 stream, and over 4 parallel streams, for a fixed time;
2. new connections/s: C workers each looping connect, `ping`/`pong`, close (client closes first),
   through a ClusterIP that every node's kube-proxy serves (SO_REUSEPORT), and through one that only
   node-1's serves (internalTrafficPolicy Local, endpoint on node-1).

Each row is the median over the rounds, beside the baseline measured in the same rounds. Notes give
the CPU seconds the proxy, the backend and this client used in each proxied phase (all share the
machine's cores). Every loop is bounded in time; the processes are stopped on errors and Ctrl-C.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinykube.procs import Process, start_apiserver, start_etcd, wait_ready

MiB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
CHUNK = b"x" * MiB
NAMESPACE = "bench"
TARGET_RATIO = 0.5
TARGET_CONNS = 2000.0


class BenchError(RuntimeError):
    """The benchmark could not measure something."""


# --- backend process ----------------------------------------------------------------------


class _BulkWriter(asyncio.Protocol):
    """Writes CHUNK after CHUNK while the socket takes them, until the client hangs up."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.paused = False
        transport.set_write_buffer_limits(4 * MiB)  # type: ignore[attr-defined]
        self.pump()

    def pump(self) -> None:
        while not self.paused and not self.t.is_closing():
            self.t.write(CHUNK)  # type: ignore[attr-defined]

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.pump()

    def data_received(self, data: bytes) -> None:
        pass


class _Pong(asyncio.Protocol):
    """Answers a `ping` line with `pong`; closes when the client does."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        if b"\n" in data:
            self.t.write(b"pong\n")  # type: ignore[attr-defined]


def run_backend(host: str, bulk_port: int, rr_ports: list[int]) -> None:
    """The backend process: serve the bulk port and every request/response port until SIGTERM."""
    import uvloop

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await loop.create_server(_BulkWriter, host, bulk_port, backlog=4096)
        for port in rr_ports:
            await loop.create_server(_Pong, host, port, backlog=4096)
        print("ready", flush=True)
        await stop.wait()

    uvloop.run(serve())


# --- clients -------------------------------------------------------------------------------


class _BulkReader(asyncio.BufferedProtocol):
    """Counts bytes received into one reused buffer."""

    def __init__(self) -> None:
        self.buf = memoryview(bytearray(MiB))
        self.received = 0
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.received += nbytes

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


async def bulk_rate(host: str, port: int, streams: int, seconds: float, meter: CpuMeter | None = None) -> float:
    """Bytes/s received over `streams` parallel connections after a short warm-up (the `meter`
    measures CPU over the same window)."""
    loop = asyncio.get_running_loop()
    readers: list[_BulkReader] = []
    transports = []
    try:
        for _ in range(streams):
            t, r = await asyncio.wait_for(loop.create_connection(_BulkReader, host, port), 5)
            transports.append(t)
            readers.append(r)
        await asyncio.sleep(0.3)
        if any(r.lost.done() for r in readers):
            raise BenchError(f"a bulk stream to {host}:{port} closed early")
        if meter:
            meter.start()
        start_bytes, start = sum(r.received for r in readers), time.perf_counter()
        await asyncio.sleep(seconds)
        got, elapsed = sum(r.received for r in readers) - start_bytes, time.perf_counter() - start
        if meter:
            meter.stop(got / MiB)
    finally:
        for t in transports:
            t.abort()
    return got / elapsed


class _Ping(asyncio.Protocol):
    """Sends `ping`, closes on `pong`."""

    def __init__(self, done: asyncio.Future[bool]) -> None:
        self.done = done
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        transport.write(b"ping\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if b"\n" in data:
            self.answered = True
            self.t.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.answered)


@dataclass
class ConnResult:
    """Outcome of a connection-rate phase."""

    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    first_error: str = ""

    @property
    def rate(self) -> float:
        """Completed request/response connections per second."""
        return self.ok / self.elapsed if self.elapsed else 0.0


async def conn_rate(host: str, port: int, workers: int, seconds: float, meter: CpuMeter | None = None) -> ConnResult:
    """New connections/s: `workers` loops of connect, ping/pong, close, for `seconds` (the `meter`
    measures CPU over the same window)."""
    loop = asyncio.get_running_loop()
    res = ConnResult()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            done: asyncio.Future[bool] = loop.create_future()
            try:
                async with asyncio.timeout(5):
                    await loop.create_connection(lambda d=done: _Ping(d), host, port)
                    answered = await done
            except (OSError, TimeoutError) as e:
                res.errors += 1
                res.first_error = res.first_error or f"{type(e).__name__}: {e}"
                continue
            if answered:
                res.ok += 1
            else:
                res.errors += 1
                res.first_error = res.first_error or "closed without an answer"

    if meter:
        meter.start()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    res.elapsed = time.perf_counter() - start
    if meter:
        meter.stop(res.ok)
    return res


# --- the benchmark -------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


class CpuMeter:
    """CPU seconds used by kube-proxy, the backend and this client over one measured window."""

    def __init__(self, proxy_pids: list[int], backend_pid: int) -> None:
        self.proxy_pids, self.backend_pid = proxy_pids, backend_pid
        self.proxy = self.backend = self.client = self.wall = self.units = 0.0
        self._t0: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def _proxies(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.proxy_pids)

    def start(self) -> None:
        """Begin the window."""
        self._t0 = (self._proxies(), cpu_seconds(self.backend_pid), time.process_time(), time.perf_counter())

    def stop(self, units: float) -> None:
        """End the window, in which `units` (connections, MiB) were done."""
        p0, b0, c0, w0 = self._t0
        self.proxy, self.backend = self._proxies() - p0, cpu_seconds(self.backend_pid) - b0
        self.client, self.wall = time.process_time() - c0, time.perf_counter() - w0
        self.units = units

    def per_unit(self, who: str) -> float:
        """CPU seconds per unit of `who` ("proxy" or "endpoints" = backend + client)."""
        cpu = self.proxy if who == "proxy" else self.backend + self.client
        return cpu / self.units if self.units else 0.0

    def shares(self) -> str:
        """Each process's CPU as a share of one core over the window."""
        w = self.wall or 1.0
        return f"kube-proxies {self.proxy / w:.0%}, backend {self.backend / w:.0%}, client {self.client / w:.0%}"


@dataclass
class Row:
    """One line of the result table."""

    figure: str
    tinykube: float
    baseline: float
    unit: str
    baseline_label: str

    @property
    def ratio(self) -> float:
        """tinykube / baseline."""
        return self.tinykube / self.baseline if self.baseline else 0.0


@dataclass
class Report:
    """Rows, notes and warnings."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Setup:
    """Addresses of one run."""

    octet: int

    def ip(self, host: int) -> str:
        """127.232.R.host."""
        return f"127.232.{self.octet}.{host}"


class Bench:
    """Direct and proxied phases against one backend and the nodes' kube-proxies."""

    def __init__(
        self, args: argparse.Namespace, proxies: list[Process], backend: Process, addrs: dict[str, tuple[str, int]]
    ):
        self.args = args
        self.proxies, self.backend = proxies, backend
        self.addrs = addrs
        self.report = Report()
        self.values: dict[str, list[float]] = {}
        self.meters: dict[str, list[CpuMeter]] = {}

    def _alive(self) -> None:
        for p in (*self.proxies, self.backend):
            if not p.alive():
                raise BenchError(f"{p.name} exited ({p.proc.returncode}):\n{p.tail()}")

    def _meter(self, key: str) -> CpuMeter:
        meter = CpuMeter([p.pid for p in self.proxies], self.backend.pid)  # every proxy: the kernel picks one
        self.meters.setdefault(key, []).append(meter)
        return meter

    async def _bulk(self, key: str, host: str, port: int, streams: int) -> None:
        value = await bulk_rate(host, port, streams, self.args.seconds, self._meter(key))
        self.values.setdefault(key, []).append(value)
        self._alive()

    async def _conns(self, key: str, host: str, port: int) -> None:
        res = await conn_rate(host, port, self.args.concurrency, self.args.seconds, self._meter(key))
        if res.errors:
            self.report.warnings.append(
                f"{res.errors} of {res.ok + res.errors} connections to {host}:{port} failed; first: {res.first_error}"
            )
        self.values.setdefault(key, []).append(res.rate)
        self._alive()

    async def run(self) -> Report:
        """Every round of every phase; the table rows are medians over rounds."""
        n = len(self.proxies)
        for rnd in range(self.args.rounds):
            for streams in (1, 4):
                for side in ("direct", "proxied"):
                    await self._bulk(f"bulk{streams}-{side}", *self.addrs[f"bulk-{side}"], streams)
            await self._conns("rr-direct", *self.addrs[f"rr-direct-{rnd}"])
            await self._conns("rr-proxied-1", *self.addrs[f"rr-proxied-1-{rnd}"])
            if n > 1:
                await self._conns(f"rr-proxied-{n}", *self.addrs[f"rr-proxied-{n}-{rnd}"])
        self._rows()
        return self.report

    def _median(self, key: str) -> float:
        return statistics.median(self.values[key])

    def _cost(self, key: str, who: str) -> float:
        return statistics.median(m.per_unit(who) for m in self.meters[key])

    def _rows(self) -> None:
        same = "same client straight to the backend"
        rows = self.report.rows
        for streams in (1, 4):
            name = f"bulk transfer, {streams} stream{'s' if streams > 1 else ''} through the ClusterIP"
            rows.append(
                Row(
                    name,
                    self._median(f"bulk{streams}-proxied") / MiB,
                    self._median(f"bulk{streams}-direct") / MiB,
                    "MiB/s",
                    same,
                )
            )
        n = len(self.proxies)
        for k in sorted({1, n}, reverse=True):
            who = f"{n} nodes' kube-proxies (SO_REUSEPORT)" if k > 1 else "1 node's kube-proxy"
            rows.append(
                Row(
                    f"new connections/s through a ClusterIP served by {who}",
                    self._median(f"rr-proxied-{k}"),
                    self._median("rr-direct"),
                    "/s",
                    same,
                )
            )
        self.report.notes.append(
            f"new connections: C={self.args.concurrency} workers each looping connect, send ping, read pong, close"
        )
        conn_cost = self._cost("rr-proxied-1", "proxy")
        byte_cost = self._cost("bulk1-proxied", "proxy")
        rows.append(
            Row(
                "kube-proxy CPU per proxied connection (1 proxy)",
                conn_cost * 1e6,
                self._cost("rr-direct", "endpoints") * 1e6,
                "us",
                "client + backend CPU per direct connection",
            )
        )
        rows.append(
            Row(
                "kube-proxy CPU per MiB forwarded (1 stream)",
                byte_cost * 1e3,
                self._cost("bulk1-direct", "endpoints") * 1e3,
                "ms",
                "client + backend CPU per MiB direct",
            )
        )
        if conn_cost and byte_cost:
            self.report.notes.append(
                f"kube-proxy's own capacity on one free core, from its CPU cost: {1 / conn_cost:,.0f} new "
                f"connections/s, {1 / byte_cost:,.0f} MiB/s"
            )
        for direct, proxied in [("bulk1-direct", "bulk1-proxied"), ("bulk4-direct", "bulk4-proxied")] + [
            ("rr-direct", f"rr-proxied-{k}") for k in sorted({1, n})
        ]:
            ratios = [p / d for p, d in zip(self.values[proxied], self.values[direct], strict=True) if d]
            if ratios:
                self.report.notes.append(
                    f"{proxied} / {direct} round by round: "
                    + ", ".join(f"{r:.2f}" for r in ratios)
                    + f" (median {statistics.median(ratios):.2f})"
                )
        for key in sorted(self.values):
            unit, scale = ("/s", 1.0) if key.startswith("rr") else ("MiB/s", 1 / MiB)
            per = ", ".join(f"{v * scale:,.0f}{unit}" for v in self.values[key])
            last = self.meters[key][-1].shares()
            self.report.notes.append(f"{key}: per round {per}; CPU in the last round: {last}")


# --- setup ---------------------------------------------------------------------------------


async def create_services(api_url: str, backend_ip: str, ports: dict[str, tuple[int, str]]) -> dict[str, str]:
    """Services (port 80, name → (backend port, internalTrafficPolicy)) with EndpointSlices to the
    backend on node-1; their ClusterIPs."""
    ips = {}
    async with httpx.AsyncClient(base_url=api_url, timeout=10, trust_env=False) as api:
        r = await api.post(
            "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        )
        if r.status_code not in (201, 409):
            raise BenchError(f"namespace: {r.status_code} {r.text[:200]}")
        for name, (port, policy) in ports.items():
            svc = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name},
                "spec": {"ports": [{"name": "tcp", "port": 80}], "internalTrafficPolicy": policy},
            }
            r = await api.post(f"/api/v1/namespaces/{NAMESPACE}/services", json=svc)
            if r.status_code != 201:
                raise BenchError(f"service {name}: {r.status_code} {r.text[:200]}")
            ips[name] = r.json()["spec"]["clusterIP"]
            eps = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [backend_ip], "conditions": {"ready": True}, "nodeName": "node-1"}],
                "ports": [{"name": "tcp", "port": port, "protocol": "TCP"}],
            }
            r = await api.post(f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices", json=eps)
            if r.status_code != 201:
                raise BenchError(f"endpointslice {name}: {r.status_code} {r.text[:200]}")
    return ips


async def wait_routed(host: str, port: int, timeout: float = 20.0) -> None:
    """Wait until a ping through `host:port` gets its pong."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = await conn_rate(host, port, 1, 0.01)
        if res.ok:
            return
        await asyncio.sleep(0.1)
    raise BenchError(f"{host}:{port} did not route within {timeout:.0f} s")


async def wait_all_proxies_listen(addresses: list[str], listeners: int, timeout: float = 20.0) -> None:
    """Wait until the proxies together hold `listeners` TCP listeners (each has synced every Service)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5, trust_env=False) as c:
        while True:
            total = 0.0
            for addr in addresses:
                for line in (await c.get(f"http://{addr}:10249/metrics")).text.splitlines():
                    if line.startswith('kubeproxy_userspace_listeners{protocol="TCP"}'):
                        total += float(line.split()[-1])
            if total >= listeners:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"the kube-proxies hold {total:.0f} listeners, not {listeners}, after {timeout:.0f} s")
            await asyncio.sleep(0.1)


def free_port_on(host: str) -> int:
    """A free TCP port on `host`."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def bench_main(args: argparse.Namespace, tmp: Path, procs: list[Process]) -> Report:
    """Start everything, route, measure."""
    setup = Setup(random.randrange(256))
    node_ip, backend_ip = setup.ip(201), setup.ip(131)
    etcd, etcd_url = await asyncio.to_thread(start_etcd, tmp)
    procs.append(etcd)
    api, api_url = await asyncio.to_thread(
        start_apiserver,
        tmp,
        etcd_url,
        None,
        ["--service-cluster-ip-range", f"127.232.{setup.octet}.0/25", "--log-level", "warning"],
    )
    procs.append(api)
    # every round's connection-rate phases get their own ports (and Services), so that the TIME_WAIT
    # sockets one phase leaves do not slow the next one's port allocation
    n = args.nodes
    bulk_port = free_port_on(backend_ip)
    rr_ports = [[free_port_on(backend_ip) for _ in range(3)] for _ in range(args.rounds)]  # direct, 1, n
    backend = Process(
        "backend",
        [sys.executable, __file__, "--backend", backend_ip, str(bulk_port), *(str(p) for r in rr_ports for p in r)],
        tmp / "logs" / "backend.log",
    )
    procs.append(backend)
    proxies = []
    for i in range(1, n + 1):
        argv = [sys.executable, "-m", "kube_proxy", "--server", api_url, "--node-name", f"node-{i}"]
        argv += ["--bind-address", setup.ip(200 + i), "--log-level", "warning"]
        proxies.append(Process(f"kube-proxy-{i}", argv, tmp / "logs" / f"kube-proxy-{i}.log"))
        procs.append(proxies[-1])
    for i, proxy in enumerate(proxies, 1):
        await asyncio.to_thread(wait_ready, f"http://{setup.ip(200 + i)}:10249/readyz", proxy)
    # internalTrafficPolicy Local with the endpoint on node-1: only node-1's proxy binds that ClusterIP
    services = {"bulk": (bulk_port, "Cluster")}
    for r in range(args.rounds):
        services[f"rr1-{r}"] = (rr_ports[r][1], "Local")
        if n > 1:
            services[f"rr{n}-{r}"] = (rr_ports[r][2], "Cluster")
    ips = await create_services(api_url, backend_ip, services)
    addrs = {"bulk-direct": (backend_ip, bulk_port), "bulk-proxied": (ips["bulk"], 80)}
    for r in range(args.rounds):
        addrs[f"rr-direct-{r}"] = (backend_ip, rr_ports[r][0])
        for k in {1, n}:
            addrs[f"rr-proxied-{k}-{r}"] = (ips[f"rr{k}-{r}"], 80)
            await wait_routed(ips[f"rr{k}-{r}"], 80)
    await wait_all_proxies_listen(
        [setup.ip(200 + i) for i in range(1, n + 1)], len(ips) + (n - 1) * (len(ips) - args.rounds)
    )
    pids = ", ".join(str(p.pid) for p in proxies)
    print(f"{n} kube-proxies (pids {pids}); ClusterIPs {ips}; backend {backend_ip}", flush=True)
    report = await Bench(args, proxies, backend, addrs).run()
    node_ip = setup.ip(201)
    async with httpx.AsyncClient(timeout=5, trust_env=False) as c:
        text = (await c.get(f"http://{node_ip}:10249/metrics")).text
    for line in text.splitlines():
        if line.startswith(
            ("kubeproxy_sync_proxy_rules_duration_seconds_sum", "kubeproxy_sync_proxy_rules_duration_seconds_count")
        ):
            report.notes.append(line)
    report.notes.append(f"{os.cpu_count()} CPUs shared by etcd, apiserver, kube-proxies, the backend and this client")
    return report


# --- output --------------------------------------------------------------------------------


def fmt(value: float, unit: str) -> str:
    """A figure with its unit."""
    if unit == "/s":
        return f"{value:,.0f}{unit}"
    return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"


def render(report: Report, args: argparse.Namespace, elapsed: float) -> str:
    """The table, notes, warnings and the targets."""
    headers = ("figure", "tinykube", "baseline", "ratio", "baseline is")
    lines = [
        (r.figure, fmt(r.tinykube, r.unit), fmt(r.baseline, r.unit), f"{r.ratio:.3g}x", r.baseline_label)
        for r in report.rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(headers)]
    aligns = ("<", ">", ">", ">", "<")

    def line(cells: tuple[str, ...]) -> str:
        return " | ".join(f"{c:{al}{w}}" for c, al, w in zip(cells, aligns, widths, strict=True)).rstrip()

    out = [line(headers), "-+-".join("-" * w for w in widths), *(line(r) for r in lines), ""]
    out.append(f"medians over {args.rounds} round(s) of {args.seconds:g} s per phase; ratio = tinykube / baseline")
    out += [f"note: {n}" for n in report.notes]
    out += [f"WARNING: {w}" for w in report.warnings]
    bulk, conns = report.rows[0], report.rows[2]  # the most proxies serving the ClusterIP come first
    verdict = [
        f"throughput {bulk.ratio:.0%} of direct (target >= {TARGET_RATIO:.0%}): "
        + ("met" if bulk.ratio >= TARGET_RATIO else "NOT met"),
        f"new connections {conns.tinykube:,.0f}/s (target >= {TARGET_CONNS:,.0f}/s): "
        + ("met" if conns.tinykube >= TARGET_CONNS else "NOT met"),
    ]
    out.append("")
    out.append(f"summary ({elapsed:.0f} s): " + "; ".join(verdict))
    return "\n".join(out)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 round of 2 s per phase")
    p.add_argument("--rounds", type=int, default=None, help="rounds of every phase (default 3, quick 1)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per phase (default 3, quick 2)")
    p.add_argument("--concurrency", "-c", type=int, default=16, help="connection-rate workers (default 16)")
    p.add_argument("--nodes", type=int, default=2, help="nodes, so kube-proxies serving each ClusterIP (default 2)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    p.add_argument("--backend", nargs="+", metavar="HOST BULK_PORT RR_PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.rounds = max(1, args.rounds or (1 if args.quick else 3))
    args.seconds = max(0.5, args.seconds or (2.0 if args.quick else 3.0))
    args.nodes = max(1, args.nodes)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with --backend, be the backend process); 0 on success."""
    args = parse_args(argv)
    if args.backend:
        host, bulk, *rr = args.backend
        run_backend(host, int(bulk), [int(p) for p in rr])
        return 0
    import uvloop

    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="tinykube-bench-proxy-"))
    procs: list[Process] = []
    try:
        print(f"tinykube kube-proxy benchmark; data in {tmp}", flush=True)
        report = uvloop.run(bench_main(args, tmp, procs))
        print()
        print(render(report, args, time.perf_counter() - started))
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the processes", file=sys.stderr)
        return 130
    except (BenchError, RuntimeError, OSError) as e:
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        for p in procs:
            print(f"--- {p.name} log tail ({p.log_path}):\n{p.tail(15)}", file=sys.stderr)
        return 1
    finally:
        for p in reversed(procs):
            with contextlib.suppress(Exception):
                p.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
