"""Benchmark of the cluster DNS against dnsmasq serving the same names, measured in the same run.

Run from the repo root:

    .venv/bin/python bench/dns.py            # 1,000 Services, 10 s per measurement, 2 rounds
    .venv/bin/python bench/dns.py --quick    # 1,000 Services, 4 s per measurement, 1 round

It starts its own etcd and apiserver in a temporary directory, creates N Services through the API
(namespace `bench`, `svc-0` .. `svc-<N-1>`), starts `python -m cluster_dns` on a 127.231.x.53
address and dnsmasq (Debian's `dnsmasq-base`) on 127.231.x.54 with `--no-resolv --no-hosts
--addn-hosts FILE`, where FILE maps the same N names to the same ClusterIPs. Both are then driven
by `dnsperf` (Debian's `dnsperf`) with one query file (every name once, shuffled, type A), in
alternating rounds so that machine noise hits both alike:

1. saturation: `dnsperf -l T` with dnsperf's default 100 queries outstanding: queries/s and the
   average latency it reports;
2. fixed rate: `dnsperf -l T -Q RATE -v` (default 10,000 queries/s): per-query latencies from the
   verbose lines, p50 and p99 (nearest rank), and queries lost.

Both servers are warmed with one pass over the names first (the cluster DNS builds its wire
answers on the first query of a name). dnsperf and dnsmasq are installed with apt-get when missing
(as root). Targets from the issue: at least 0.3x dnsmasq's rate, at least 10,000 queries/s, and
p99 under 5 ms. See bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and this file (dns.py) would shadow
# dnspython's `dns` package; the folder holds nothing else this script imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from types import FrameType

import dns.message
import dns.query
import dns.rcode
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinykube.procs import Process, free_port, start_apiserver, start_etcd, wait_ready

NAMESPACE = "bench"
ZONE = "cluster.local"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """Something could not be measured."""


@dataclass
class Row:
    """One line of the result table."""

    figure: str
    tinykube: float | None
    baseline: float | None
    unit: str
    baseline_label: str
    lower_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        """tinykube / baseline."""
        if self.tinykube is None or not self.baseline:
            return None
        return self.tinykube / self.baseline


@dataclass
class Report:
    """Table rows, notes and warnings."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """A DNS server under test."""

    name: str
    address: str
    port: int
    pid: int


@dataclass(frozen=True)
class PerfResult:
    """What one dnsperf run reported."""

    qps: float
    completed: int
    lost: int
    avg_latency: float
    latencies: tuple[float, ...] = ()
    cpu: float = 0.0  # CPU seconds the server used during the run


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process used so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (0 if unavailable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def percentile(samples: list[float] | tuple[float, ...], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ensure_tools() -> tuple[str, str]:
    """Paths of dnsperf and dnsmasq, installing the Debian packages when missing."""
    dnsperf, dnsmasq = shutil.which("dnsperf"), shutil.which("dnsmasq") or shutil.which("/usr/sbin/dnsmasq")
    if dnsperf and dnsmasq:
        return dnsperf, dnsmasq
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError("dnsperf and dnsmasq are needed: sudo apt-get install dnsperf dnsmasq-base")
    print("installing dnsperf and dnsmasq-base with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "dnsperf", "dnsmasq-base"], check=True, env=env, timeout=600)
    dnsperf, dnsmasq = shutil.which("dnsperf"), shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not dnsperf or not Path(dnsmasq).exists():
        raise BenchError("apt-get did not install dnsperf and dnsmasq")
    return dnsperf, dnsmasq


async def create_services(api_url: str, count: int, concurrency: int = 16) -> dict[str, str]:
    """Create the namespace and `count` Services through the API; name -> ClusterIP."""
    ips: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=api_url, timeout=30, trust_env=False) as api:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        r = await api.post("/api/v1/namespaces", json=namespace)
        if r.status_code not in (201, 409):
            raise BenchError(f"creating namespace: {r.status_code} {r.text[:200]}")
        todo = iter(range(count))

        async def worker() -> None:
            for i in todo:
                body = {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"svc-{i}"},
                    "spec": {"selector": {"app": f"a{i}"}, "ports": [{"name": "http", "port": 80}]},
                }
                r = await api.post(f"/api/v1/namespaces/{NAMESPACE}/services", json=body)
                if r.status_code != 201:
                    raise BenchError(f"creating svc-{i}: {r.status_code} {r.text[:200]}")
                ips[f"svc-{i}"] = r.json()["spec"]["clusterIP"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ips


def wait_answers(target: Target, name: str, want: str, timeout: float = 60.0) -> None:
    """Wait until `target` answers `name` A with `want`."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            r = dns.query.udp(dns.message.make_query(name, "A"), target.address, port=target.port, timeout=1)
            got = [rd.to_text() for rrset in r.answer for rd in rrset]
            if got == [want]:
                return
            last = f"{dns.rcode.to_text(r.rcode())} {got}"
        except Exception as e:
            last = repr(e)
        time.sleep(0.1)
    raise BenchError(f"{target.name} did not answer {name} with {want} within {timeout}s (last: {last})")


def dnsperf(binary: str, target: Target, queries: Path, seconds: float, rate: int = 0, runs: int = 0) -> PerfResult:
    """Run dnsperf against a target and parse its report (and per-query latencies when rate-limited)."""
    argv = [binary, "-s", target.address, "-p", str(target.port), "-d", str(queries), "-t", "2"]
    argv += ["-n", str(runs)] if runs else ["-l", f"{seconds:g}"]
    if rate:
        argv += ["-Q", str(rate), "-v"]
    cpu0 = cpu_seconds(target.pid)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    cpu = cpu_seconds(target.pid) - cpu0
    out = proc.stdout

    def number(label: str) -> float:
        m = re.search(re.escape(label) + r":\s+([0-9.]+)", out)
        if m is None:
            raise BenchError(f"dnsperf output has no '{label}':\n{out[-2000:]}\n{proc.stderr[-2000:]}")
        return float(m.group(1))

    latencies = tuple(float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if line.startswith("> "))
    return PerfResult(
        qps=number("Queries per second"),
        completed=int(number("Queries completed")),
        lost=int(number("Queries lost")),
        avg_latency=number("Average Latency (s)"),
        latencies=latencies,
        cpu=cpu,
    )


def start_cluster_dns(tmp: Path, api_url: str) -> tuple[Process, Target]:
    """`python -m cluster_dns` on a random 127.231.x.53 and a free port."""
    address, port, health = f"127.231.{random.randint(1, 254)}.53", free_port(), free_port()
    (tmp / "resolv.conf").write_text("")  # nothing is forwarded in this benchmark
    argv = [sys.executable, "-m", "cluster_dns", "--server", api_url, "--bind-address", address, "--port", str(port)]
    argv += ["--service-cluster-ip-range", "127.96.0.0/16", "--health-port", str(health)]
    argv += ["--resolv-conf", str(tmp / "resolv.conf"), "--log-level", "warning"]
    proc = Process("cluster-dns", argv, tmp / "logs" / "cluster-dns.log", env={"PYTHONPATH": str(ROOT)})
    wait_ready(f"http://{address}:{health}/readyz", proc)
    return proc, Target("cluster-dns", address, port, proc.pid)


def start_dnsmasq(tmp: Path, dnsmasq_bin: str, ips: dict[str, str]) -> tuple[Process, Target]:
    """dnsmasq serving the same names from a hosts file, on another loopback address."""
    hosts = tmp / "hosts"
    hosts.write_text("".join(f"{ip} {name}.{NAMESPACE}.svc.{ZONE}\n" for name, ip in sorted(ips.items())))
    hosts.chmod(0o644)
    address, port = f"127.231.{random.randint(1, 254)}.54", free_port()
    argv = [dnsmasq_bin, "--keep-in-foreground", "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}"]
    argv += [f"--listen-address={address}", "--bind-interfaces", f"--port={port}", "--pid-file="]
    argv += ["--local-ttl=5", "--log-facility=-", "--user=root"]
    proc = Process("dnsmasq", argv, tmp / "logs" / "dnsmasq.log")
    return proc, Target("dnsmasq", address, port, proc.pid)


def fmt(value: float | None, unit: str) -> str:
    """A figure with its unit."""
    if value is None:
        return "n/a"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:,.0f}{unit}"


def render(report: Report) -> str:
    """The table, notes and warnings."""
    headers = ("figure", "tinykube", "baseline", "ratio", "baseline is")
    lines = [
        (
            r.figure,
            fmt(r.tinykube, r.unit),
            fmt(r.baseline, r.unit),
            "n/a" if r.ratio is None else f"{r.ratio:.3g}x",
            r.baseline_label,
        )
        for r in report.rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(headers)]
    aligns = ("<", ">", ">", ">", "<")

    def line(cells: tuple[str, ...]) -> str:
        return " | ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths, strict=True)).rstrip()

    out = [line(headers), "-+-".join("-" * w for w in widths), *(line(row) for row in lines), ""]
    out.append("ratio = tinykube / baseline (for ms lower is better; for /s higher is better)")
    out += [f"note: {n}" for n in report.notes]
    out += [f"WARNING: {w}" for w in report.warnings]
    return "\n".join(out)


def run(args: argparse.Namespace, tmp: Path, procs: list[Process]) -> Report:
    """Every phase; the report."""
    dnsperf_bin, dnsmasq_bin = ensure_tools()
    version = subprocess.run([dnsmasq_bin, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    etcd, etcd_url = start_etcd(tmp)
    procs.append(etcd)
    apiserver, api_url = start_apiserver(tmp, etcd_url, extra=["--log-level", "warning"])
    procs.append(apiserver)
    t0 = time.perf_counter()
    ips = asyncio.run(create_services(api_url, args.services))
    print(f"created {len(ips)} Services through the API in {time.perf_counter() - t0:.1f} s", flush=True)
    dns_proc, ours = start_cluster_dns(tmp, api_url)
    procs.append(dns_proc)
    masq_proc, masq = start_dnsmasq(tmp, dnsmasq_bin, ips)
    procs.append(masq_proc)
    last = f"svc-{args.services - 1}"
    for target in (ours, masq):
        wait_answers(target, f"{last}.{NAMESPACE}.svc.{ZONE}.", ips[last])
    names = [f"{name}.{NAMESPACE}.svc.{ZONE} A\n" for name in ips]
    random.Random(1).shuffle(names)
    queries = tmp / "queries.txt"
    queries.write_text("".join(names))
    for target in (ours, masq):  # warm-up: one pass over every name
        warm = dnsperf(dnsperf_bin, target, queries, 30, runs=1)
        if warm.lost:
            raise BenchError(f"{target.name} lost {warm.lost} of {len(names)} warm-up queries")

    sat: dict[str, list[PerfResult]] = {ours.name: [], masq.name: []}
    fixed: dict[str, list[PerfResult]] = {ours.name: [], masq.name: []}
    for rnd in range(args.rounds):
        for target in (ours, masq) if rnd % 2 == 0 else (masq, ours):
            print(f"round {rnd + 1}: {target.name} saturation ...", flush=True)
            sat[target.name].append(dnsperf(dnsperf_bin, target, queries, args.duration))
            print(f"round {rnd + 1}: {target.name} at {args.rate:,} q/s ...", flush=True)
            fixed[target.name].append(dnsperf(dnsperf_bin, target, queries, args.duration, rate=args.rate))

    report = Report()
    release = version.split("version ")[-1].split()[0] if "version " in version else "?"
    label = f"dnsmasq {release}: the same {len(ips):,} names from a hosts file"

    def mean(rs: list[PerfResult], f: str) -> float:
        return sum(getattr(r, f) for r in rs) / len(rs)

    def lat(rs: list[PerfResult], p: float) -> float | None:
        samples = [x for r in rs for x in r.latencies]
        return percentile(samples, p) * 1000 if samples else None

    o, m = sat[ours.name], sat[masq.name]
    fo, fm = fixed[ours.name], fixed[masq.name]
    rows = [
        (f"A queries/s, {len(ips):,} Services, 100 outstanding", mean(o, "qps"), mean(m, "qps"), "/s"),
        ("  average latency at that load", mean(o, "avg_latency") * 1000, mean(m, "avg_latency") * 1000, "ms"),
        (f"A queries/s offered at {args.rate:,} q/s", mean(fo, "qps"), mean(fm, "qps"), "/s"),
    ]
    report.rows += [Row(figure, ours_v, base_v, unit, label, unit == "ms") for figure, ours_v, base_v, unit in rows]
    report.rows.append(Row(f"  p50 latency at {args.rate:,} q/s", lat(fo, 50), lat(fm, 50), "ms", label, True))
    report.rows.append(Row(f"  p99 latency at {args.rate:,} q/s", lat(fo, 99), lat(fm, 99), "ms", label, True))
    for target, runs in ((ours, o + fo), (masq, m + fm)):
        queries_done = sum(r.completed for r in runs)
        cpu = sum(r.cpu for r in runs)
        lost = sum(r.lost for r in runs)
        report.notes.append(
            f"{target.name}: {queries_done:,} queries answered, {lost} lost, {cpu:.1f} CPU s "
            f"({cpu / max(queries_done, 1) * 1e6:.1f} µs of CPU per query), RSS {rss_mib(target.pid):.0f} MiB"
        )
    report.notes.append(
        f"{args.rounds} round(s) of {args.duration:g} s per measurement, alternating; dnsperf 2.x, "
        f"{os.cpu_count()} CPUs shared by the servers, dnsperf and anything else running (load average "
        f"{os.getloadavg()[0]:.1f} at the end)"
    )
    qps, ratio = report.rows[0].tinykube or 0, report.rows[0].ratio or 0
    p99 = report.rows[4].tinykube
    checks = [
        (f"rate >= 0.3x dnsmasq ({ratio:.2f}x)", ratio >= 0.3),
        (f">= 10,000 queries/s ({qps:,.0f}/s)", qps >= 10_000),
        (f"p99 < 5 ms at {args.rate:,} q/s ({p99:.2f} ms)" if p99 is not None else "p99 n/a", (p99 or 1e9) < 5),
    ]
    report.notes.append("targets: " + "; ".join(f"{text} {'met' if ok else 'MISSED'}" for text, ok in checks))
    return report


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="4 s per measurement, 1 round")
    p.add_argument("--services", type=int, default=1000, help="Services to create (default 1000)")
    p.add_argument("--duration", type=float, default=None, help="seconds per measurement (default 10, quick 4)")
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 2, quick 1)")
    p.add_argument("--rate", type=int, default=10_000, help="queries/s of the fixed-rate run (default 10000)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, hosts file)")
    args = p.parse_args(argv)
    args.duration = args.duration or (4.0 if args.quick else 10.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; 0 on success."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    tmp = Path(tempfile.mkdtemp(prefix="tinykube-bench-dns-"))
    procs: list[Process] = []
    try:
        print(f"tinykube cluster DNS benchmark; data in {tmp}", flush=True)
        report = run(args, tmp, procs)
        print()
        print(render(report))
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping", file=sys.stderr)
        return 130
    except (BenchError, RuntimeError, subprocess.SubprocessError) as e:
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
