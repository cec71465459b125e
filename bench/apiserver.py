"""Benchmark of the tinykube apiserver against raw etcd, measured in the same run.

Run from the repo root:

    .venv/bin/python bench/apiserver.py           # full: 1k and 10k pods, 100 watchers x 200 events
    .venv/bin/python bench/apiserver.py --quick   # small: 1k pods, 20 watchers x 100 events (< 60 s)

It starts its own etcd and apiserver in a temporary directory (both on 127.0.0.1 only; the
apiserver serves its plain insecure port and a TLS secure port with client certificates and
`--authorization-mode Node,RBAC`), and prints one table of figures, each beside a baseline measured
in the same run against the same etcd, with the ratio tinykube / baseline:

1. Pod creates/s over HTTP vs raw etcd puts/s (aetcd) of the same stored JSON size.
2. Single-Pod gets/s over HTTP vs raw etcd gets/s (+ JSON decoding).
3. Full-list latency p50/p99 (as JSON and as a meta.k8s.io Table) at 1k and 10k pods vs a
   raw etcd prefix range read of the same keys with JSON decoding.
4. Watch fan-out: N HTTP watchers x M pod updates, events delivered per second in total vs one
   raw etcd watch receiving the same M updates; plus how many etcd watches the apiserver holds.
5. Peak RSS (VmHWM) of the apiserver after the 10k-pod phase vs etcd's.
6. The security pipeline: Pod creates/s and gets/s over the TLS port as a non-admin user (x509 client
   certificate, every request authorized by RBAC through a RoleBinding) vs the same over the insecure
   port, same apiserver, counts and concurrency, rounds in alternating order. These requests are written
   and read by hand (`RawConnection`), so the load generator costs far less than the apiserver, and a create
   series ends once the watch cache has applied its creates: the apiserver CPU per create and per get printed
   at the end come from here.

Every loop is bounded in count and in time; the processes are stopped on errors and Ctrl-C.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import math
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import aetcd
import httpx
import orjson
import uvloop

from client.transport import KeepAliveTransport
from tinykube.pki import ClientIdentity, ClusterPKI
from tinykube.procs import Process, free_port, start_apiserver, start_etcd

NAMESPACE = "bench"
POD_PREFIX = f"/registry/pods/{NAMESPACE}/"
RAW_PREFIX = "/bench-raw/pods/"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"
RBAC_API = "/apis/rbac.authorization.k8s.io/v1"
BENCH_USER = "bench-user"  # CN of the client certificate of section 6; no group (authn adds system:authenticated)
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
SECURITY_ROUNDS = 2  # section 6 runs insecure, TLS, then TLS, insecure (ABBA): drift weighs on both sides alike
MiB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")

if importlib.util.find_spec("sniffio") is None:
    # httpcore 1.0 runs `import sniffio` each time it makes a lock (several per request); without
    # sniffio installed every attempt is a failed import that scans sys.path. A None entry in
    # sys.modules makes that import fail at once. This only trims the benchmark client's overhead.
    sys.modules["sniffio"] = None  # type: ignore[assignment]


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
    sec_creates: int  # section 6: pod creates on each side (TLS and insecure), over all rounds
    sec_gets: int  # section 6: pod gets on each side
    create_budget: float  # seconds for all pod creates
    op_budget: float  # seconds per throughput series
    list_budget: float  # seconds per latency series
    watch_budget: float  # seconds for watch registration and delivery, each
    profile_dir: Path | None = None  # --profile: py-spy records the apiserver during section 6's series

    @classmethod
    def make(
        cls, quick: bool, concurrency: int, watchers: int | None, events: int | None, profile_dir: Path | None = None
    ) -> Settings:
        """The quick or the full profile, with optional overrides."""
        if quick:
            return cls(
                profile_dir=profile_dir,
                quick=True,
                concurrency=concurrency,
                pod_counts=(1000,),
                raw_puts=2000,
                gets=2000,
                list_reps={1000: 20},
                watchers=watchers or 20,
                events=events or 100,
                sec_creates=2000,  # section 6's series are its CPU figures: long enough that /proc's 10 ms ticks
                sec_gets=6000,  # are ~1 % of each (at 1,000 gets a series lasted ~0.1 s)
                create_budget=30.0,
                op_budget=10.0,
                list_budget=8.0,
                watch_budget=15.0,
            )
        return cls(
            profile_dir=profile_dir,
            quick=False,
            concurrency=concurrency,
            pod_counts=(1000, 10_000),
            raw_puts=5000,
            gets=5000,
            list_reps={1000: 50, 10_000: 20},
            watchers=watchers or 100,
            events=events or 200,
            sec_creates=4000,
            sec_gets=5000,
            create_budget=300.0,
            op_budget=30.0,
            list_budget=60.0,
            watch_budget=60.0,
        )


@dataclass
class Row:
    """One line of the result table."""

    figure: str
    tinykube: float | None
    baseline: float | None
    unit: str
    baseline_label: str
    section: int = 0  # which of the six benchmarks (1-6) it belongs to; the table is sorted by it

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
    cpu_per_op: list[str] = field(default_factory=list)  # `apiserver CPU per create: X ms (side)` lines


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


async def run_pool(
    op: Callable[[int, int], Awaitable[None]], count: int, concurrency: int, budget: float
) -> PoolResult:
    """Run `op(worker, i)` for i in [0, count) on `concurrency` workers (numbered from 0),
    stopping early after `budget` seconds."""
    next_i = 0
    errors = 0
    first_error = ""
    deadline = time.perf_counter() + budget

    async def worker(k: int) -> None:
        nonlocal next_i, errors, first_error
        while next_i < count and time.perf_counter() < deadline:
            i = next_i
            next_i += 1
            try:
                await op(k, i)
            except Exception as e:  # counted and reported: one bad request must not hide the rest
                errors += 1
                first_error = first_error or f"{type(e).__name__}: {e}"

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
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


_DESCRIBE = "import os, sys; print(sys.version.split()[0], os.path.realpath(sys._base_executable))"


def interpreter(python: str | None = None) -> str:
    """An interpreter's version and its binary, resolved (`python`, else this one, which runs the apiserver): figures
    from two interpreters are not comparable."""
    if python is None:
        version, binary = sys.version.split()[0], os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    else:
        out = subprocess.run([python, "-c", _DESCRIBE], capture_output=True, text=True, timeout=30, check=True)
        version, binary = out.stdout.split()
    return f"Python {version} ({binary})"


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


@dataclass
class CpuTally:
    """Wall time and the CPU seconds of the apiserver, etcd and this benchmark, summed over spans."""

    apiserver: Process
    etcd: Process
    wall: float = 0.0
    api_cpu: float = 0.0
    etcd_cpu: float = 0.0
    client_cpu: float = 0.0

    @contextlib.contextmanager
    def span(self) -> Iterator[None]:
        """Add the block's wall and CPU time."""
        a0, e0 = cpu_seconds(self.apiserver.pid), cpu_seconds(self.etcd.pid)
        b0, t0 = time.process_time(), time.perf_counter()
        yield
        self.wall += time.perf_counter() - t0
        self.api_cpu += cpu_seconds(self.apiserver.pid) - a0
        self.etcd_cpu += cpu_seconds(self.etcd.pid) - e0
        self.client_cpu += time.process_time() - b0

    def __str__(self) -> str:
        wall = self.wall or 1e-9
        a, e, b = self.api_cpu, self.etcd_cpu, self.client_cpu
        return (
            f"{self.wall:.2f} s wall; CPU apiserver {a:.2f} s ({a / wall:.0%}), "
            f"etcd {e:.2f} s ({e / wall:.0%}), bench client {b:.2f} s ({b / wall:.0%})"
        )


@contextlib.contextmanager
def py_spy(pid: int, out: Path | None) -> Iterator[None]:
    """Sample `pid` with py-spy into `out` (collapsed stacks, one count per line) for the block's
    duration; nothing when `out` is None. py-spy runs non-blocking: it does not pause the apiserver."""
    if out is None:
        yield
        return
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [binary, "record", "--pid", str(pid), "--rate", "400", "--nonblocking", "--format", "raw", "-o", str(out)]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # attached before the series starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            _, err = spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        if not out.exists():
            print(f"py-spy wrote no profile to {out}: {err.decode(errors='replace')[-300:]}", file=sys.stderr)


@contextlib.contextmanager
def cpu_note(report: Report, label: str, apiserver: Process, etcd: Process) -> Iterator[None]:
    """Record the CPU seconds the apiserver, etcd and this benchmark used during a phase."""
    tally = CpuTally(apiserver, etcd)
    with tally.span():
        yield
    report.notes.append(f"{label}: {tally}")


def combine(results: list[PoolResult]) -> PoolResult:
    """Several runs of one operation as one (counts and times added)."""
    return PoolResult(
        sum(r.attempted for r in results),
        sum(r.errors for r in results),
        sum(r.elapsed for r in results),
        next((r.first_error for r in results if r.first_error), ""),
    )


def metric_value(text: str, name: str, labels: str = "") -> float | None:
    """The value of one sample in Prometheus text format (`labels` like `resource="pods"`)."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" ([0-9.eE+-]+)$"
    for line in text.splitlines():
        m = re.match(pattern, line)
        if m:
            return float(m.group(1))
    return None


def http_client(
    base_url: str, timeout: float | httpx.Timeout, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    """An HTTP client with one keep-alive connection, ignoring proxy environment variables; for
    https, `verify` is an SSL context trusting the cluster CA and holding the client certificate.

    Its transport is the repo's `KeepAliveTransport` (client/transport.py, httptools), not httpx's
    default httpcore pool: a load generator must cost far less than the server it measures, and
    httpcore took about as much CPU per request as the apiserver serving it (bench/README.md)."""
    if verify is False:
        tls: ssl.SSLContext | None = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    else:
        tls = verify if isinstance(verify, ssl.SSLContext) else None
    transport = KeepAliveTransport(tls, max_connections=1, max_idle_connections=1)
    return LeanClient(base_url=base_url, transport=transport, timeout=timeout, trust_env=False)


class LeanClient(httpx.AsyncClient):
    """httpx's AsyncClient whose `send` hands the request straight to the transport: no auth flow,
    redirects, event hooks, cookie jar or request log, none of which the benchmark uses (its clients
    set none, and the apiserver answers no request with a redirect or a cookie)."""

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        """Send `request` as it is; the body is read unless `stream`."""
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        request.extensions.setdefault("timeout", self.timeout.as_dict())
        response = await self._transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response


class RawConnection:
    """One kept-alive HTTP/1.1 connection whose requests are written and read by hand: section 6's load generator.

    Even over the repo's transport, httpx's request and response objects cost this process about as much CPU
    per GET as the apiserver spent serving it (~150 us, bench/README.md "Session 16"); the two cores are shared
    with etcd and the apiserver, so that client held the apiserver below a full core, where every request pays
    its own loop wake-ups. Only what the apiserver answers here is read: a head and a Content-Length body."""

    def __init__(self, url: str, tls: ssl.SSLContext | None, timeout: float) -> None:
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        self._addr = (host, int(port))
        self._tls = tls
        self._timeout = timeout
        self._host = f"Host: {host}:{port}\r\nUser-Agent: tinykube-bench\r\nAccept: application/json\r\n".encode()
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        """Send one request (a body of `content_type`); its status and body. A GET on a connection the server
        closed while it was idle is sent again once, on a new connection."""
        head = b"%s %s HTTP/1.1\r\n%s" % (method.encode(), path.encode(), self._host)
        if body is not None:
            head += b"Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type.encode(), len(body))
        message = head + b"\r\n" + (body or b"")
        async with asyncio.timeout(self._timeout):
            if self._conn is not None and not self._conn[0].at_eof():
                if method != "GET":  # a write is not sent twice (net/http's isReplayable)
                    return await self._exchange(self._conn, message)
                with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                    return await self._exchange(self._conn, message)
                self._conn[1].close()
            self._conn = await asyncio.open_connection(*self._addr, ssl=self._tls)
            return await self._exchange(self._conn, message)

    @staticmethod
    async def _exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], message: bytes) -> tuple[int, bytes]:
        reader, writer = conn
        writer.write(message)
        head = await reader.readuntil(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length is None:
            raise BenchError(f"an answer without Content-Length: {head[:200]!r}")
        return int(head[9:12]), await reader.readexactly(length)

    async def aclose(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None


def pod_body(i: int, prefix: str = "pod") -> bytes:
    """The JSON body of pod number i."""
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod_name(i, prefix), "labels": {"app": "bench", "shard": str(i % 10)}},
            "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}]},
        }
    )


def pod_name(i: int, prefix: str = "pod") -> str:
    """The name of pod number i (`pod-00042`); section 6 creates its own under other prefixes."""
    return f"{prefix}-{i:05d}"


@dataclass(frozen=True)
class SecurePort:
    """The apiserver's TLS port and how the benchmark's non-admin user reaches it."""

    url: str  # https://127.0.0.1:<port>
    pki: ClusterPKI
    client_file: str  # the client certificate's file name in the PKI (CN = BENCH_USER)

    def tls(self) -> ssl.SSLContext:
        """Trust the cluster CA, present the client certificate (one context shared by the clients)."""
        ctx = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        pair = self.pki.client(self.client_file)
        ctx.load_cert_chain(pair.cert, pair.key)
        return ctx


def bench_user_policy() -> list[tuple[str, dict[str, Any]]]:
    """(roles or rolebindings, the object) letting BENCH_USER create, get, list and watch pods in NAMESPACE."""
    role = {
        "metadata": {"name": "bench-pods"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch"]}],
    }
    binding = {
        "metadata": {"name": "bench-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bench-pods"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": BENCH_USER}],
    }
    return [("roles", role), ("rolebindings", binding)]


def make_secure_port(tmp: Path) -> tuple[SecurePort, list[str]]:
    """The CA, serving certificate, ServiceAccount keys and the bench user's client certificate
    (tinykube.pki, as the launcher makes them), and the apiserver flags of a secure port on loopback
    with client certificates and Node,RBAC authorization (the launcher's, minus the cluster network)."""
    pki = ClusterPKI(tmp / "pki")
    ident = ClientIdentity(BENCH_USER, BENCH_USER)
    pki.ensure(ips=["127.0.0.1"], dns_names=["localhost"], clients=[ident])
    port = free_port()
    args = [
        "--secure-port",
        str(port),
        "--bind-address",
        "127.0.0.1",
        "--tls-cert-file",
        str(pki.apiserver.cert),
        "--tls-private-key-file",
        str(pki.apiserver.key),
        "--client-ca-file",
        str(pki.ca.cert),
        "--service-account-key-file",
        str(pki.sa_pub),
        "--service-account-signing-key-file",
        str(pki.sa_key),
        "--service-account-issuer",
        SA_ISSUER,
        "--api-audiences",
        SA_ISSUER,
        "--authorization-mode",
        "Node,RBAC",
    ]
    return SecurePort(f"https://127.0.0.1:{port}", pki, ident.file), args


# --- the benchmark -------------------------------------------------------------------------


class Bench:
    """One run against one etcd and one apiserver."""

    def __init__(
        self, settings: Settings, etcd: Process, etcd_url: str, apiserver: Process, api_url: str, secure: SecurePort
    ) -> None:
        self.s = settings
        self.etcd, self.etcd_url = etcd, etcd_url
        self.apiserver, self.api_url = apiserver, api_url
        self.secure = secure
        self.report = Report()
        self.pods = 0  # pods created so far: pod-00000 .. pod-{pods-1}
        self.create_ok = 0
        self.create_time = 0.0
        self.payload_size = 0  # bytes of the JSON the apiserver stored for pod 0
        self.put_result: PoolResult | None = None
        self.clients: list[httpx.AsyncClient] = []  # one keep-alive connection each
        self.raw: aetcd.Client

    def api(self, worker: int = 0) -> httpx.AsyncClient:
        """The HTTP client of one worker."""
        return self.clients[worker]

    def _require_alive(self) -> None:
        for p in (self.etcd, self.apiserver):
            if not p.alive():
                raise BenchError(f"{p.name} exited ({p.proc.returncode}):\n{p.tail()}")

    def _cpu(self, label: str) -> contextlib.AbstractContextManager[None]:
        return cpu_note(self.report, label, self.apiserver, self.etcd)

    async def run(self) -> Report:
        """Every phase in order; returns the report."""
        host, _, port = self.etcd_url.removeprefix("http://").partition(":")
        self.raw = aetcd.Client(
            host=host, port=int(port), timeout=30, options={"grpc.max_receive_message_length": 512 * MiB}
        )
        self.report.notes.append(
            f"apiserver RSS at start: {proc_status(self.apiserver.pid, 'VmRSS') / MiB:.1f} MiB; "
            f"{os.cpu_count()} CPUs shared by etcd, apiserver and this client; {interpreter()}"
        )
        async with contextlib.AsyncExitStack() as stack:
            # One client (one connection) per worker: a single httpx pool of C connections costs
            # several times more client CPU per request (httpcore rescans its pool on every request).
            for _ in range(self.s.concurrency):
                self.clients.append(await stack.enter_async_context(http_client(self.api_url, 30.0)))
            try:
                await self.raw.connect()
                await self._create_namespace()
                await self._grow_to(self.s.pod_counts[0])
                await self._bench_puts()
                await self._probe_foreign_revision()
                await self._bench_gets()
                for count in self.s.pod_counts:
                    await self._grow_to(count)
                    await self._bench_lists(count)
                self._create_row()
                self._rss_row()
                await self._bench_watch()
                await self._bench_security()  # last: its pods must not change the list phases' counts
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.raw.delete_prefix(RAW_PREFIX.encode()), 10)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.raw.close(), 5)
        return self.report

    # -- 1. creates vs puts
    async def _create_namespace(self) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        r = await self.api().post("/api/v1/namespaces", json=body)
        if r.status_code not in (201, 409):
            raise BenchError(f"creating namespace {NAMESPACE}: {r.status_code} {r.text[:300]}")

    async def _grow_to(self, count: int) -> None:
        """Create pods until `count` exist (bounded by the create time budget)."""
        if count <= self.pods:
            return
        start_index = self.pods
        budget = max(1.0, self.s.create_budget - self.create_time)

        async def create(k: int, i: int) -> None:
            r = await self.api(k).post(
                f"/api/v1/namespaces/{NAMESPACE}/pods",
                content=pod_body(start_index + i),
                headers={"Content-Type": "application/json"},
            )
            if r.status_code != 201:
                raise BenchError(f"create {pod_name(start_index + i)}: {r.status_code} {r.text[:200]}")

        with self._cpu(f"create pods {start_index}..{count}"):
            res = await run_pool(create, count - start_index, self.s.concurrency, budget)
        self._require_alive()
        if res.errors:  # the later phases count on every pod being there
            raise BenchError(f"{res.errors} of {res.attempted} pod creates failed; first: {res.first_error}")
        self.create_ok += res.ok
        self.create_time += res.elapsed
        self.pods = start_index + res.attempted  # names are handed out in order
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

        async def put(k: int, i: int) -> None:
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
                self.put_result.rate if self.put_result else None,
                "/s",
                f"etcd puts/s, {self.payload_size} B values",
                section=1,
            )
        )

    async def _probe_foreign_revision(self) -> None:
        """Time one list right after the raw puts (keys outside /registry/), then write through the
        apiserver so that its watch cache has seen etcd's newest revision again.

        A consistent list waits until the watch cache reaches etcd's current revision; writes
        outside /registry/ raise that revision without the cache (which watches /registry/) ever
        seeing an event for it, so the list can only time out and fall back to etcd.
        """
        start = time.perf_counter()
        r = await self.api().get(f"/api/v1/namespaces/{NAMESPACE}/pods", params={"limit": "1"})
        elapsed = time.perf_counter() - start
        if r.status_code != 200:
            raise BenchError(f"list after raw puts: {r.status_code} {r.text[:200]}")
        if elapsed > 1.0:
            self.report.warnings.append(
                f"a list right after etcd writes outside /registry/ took {elapsed:.2f} s (normally ms): the "
                "watch cache waits for an etcd revision it never sees (apiserver/registry.py _list_cache -> "
                "watch_cache.wait_for_revision, 3 s timeout), then reads etcd"
            )
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench-sync"}, "data": {"t": str(start)}}
        r = await self.api().post(f"/api/v1/namespaces/{NAMESPACE}/configmaps", json=body)
        if r.status_code != 201:
            raise BenchError(f"sync write: {r.status_code} {r.text[:200]}")

    # -- 2. gets
    async def _bench_gets(self) -> None:
        n = self.pods

        async def get(k: int, i: int) -> None:
            r = await self.api(k).get(f"/api/v1/namespaces/{NAMESPACE}/pods/{pod_name(i % n)}")
            if r.status_code != 200:
                raise BenchError(f"get {pod_name(i % n)}: {r.status_code}")
            orjson.loads(r.content)

        async def raw_get(k: int, i: int) -> None:
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
            Row(
                f"Pod gets/s, C={self.s.concurrency} ({api.ok} gets)",
                api.rate,
                raw.rate,
                "/s",
                "etcd gets/s + JSON decode",
                section=2,
            )
        )

    # -- 3. lists
    async def _bench_lists(self, count: int) -> None:
        n = self.pods
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"

        async def list_json() -> None:
            r = await self.api().get(path)
            items = orjson.loads(r.content).get("items")
            if r.status_code != 200 or len(items or []) != n:
                raise BenchError(f"list: {r.status_code}, {len(items or [])} items, expected {n}")

        async def list_table() -> None:
            r = await self.api().get(path, headers={"Accept": TABLE_ACCEPT})
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
        size = len((await self.api().get(path)).content)
        table_size = len((await self.api().get(path, headers={"Accept": TABLE_ACCEPT})).content)
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
                        section=3,
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
                section=5,
            )
        )
        self.report.notes.append(
            f"stored pod JSON in etcd: {self.pods} x ~{self.payload_size} B = "
            f"{self.pods * self.payload_size / MiB:.1f} MiB"
        )

    # -- 4. watch fan-out
    async def _registered_watchers(self) -> float:
        r = await self.api().get("/metrics")
        return metric_value(r.text, "apiserver_registered_watchers", 'resource="pods"') or 0.0

    async def _collector(self) -> tuple[float, float]:
        """The apiserver's cyclic collector so far, from its /metrics (prometheus_client's GC collector):
        (collections, objects it freed from reference cycles), all generations."""
        text = (await self.api().get("/metrics")).text

        def total(name: str) -> float:
            return sum(metric_value(text, name, f'generation="{g}"') or 0.0 for g in range(3))

        return total("python_gc_collections_total"), total("python_gc_objects_collected_total")

    async def _etcd_watchers(self) -> float | None:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as c:
            r = await c.get(f"{self.etcd_url}/metrics")
        return metric_value(r.text, "etcd_debugging_mvcc_watcher_total")

    async def _bench_watch(self) -> None:
        n_watch, m_events = self.s.watchers, self.s.events
        budget = self.s.watch_budget
        # The M updates: pod JSON with a changed annotation, written straight to etcd so that the
        # apiserver's CPU goes to fan-out alone and every watcher sees the very same M events.
        # Round 0 is watched through the apiserver, round 1 (same keys and sizes) by the baseline.
        keys = [(POD_PREFIX + pod_name(j % self.pods)).encode() for j in range(m_events)]
        current = {k: orjson.loads(await self._stored_value(j % self.pods)) for j, k in enumerate(keys)}
        payloads: list[list[bytes]] = [[], []]
        for round_, out in enumerate(payloads):
            for j, k in enumerate(keys):
                obj = current[k]
                obj["metadata"].setdefault("annotations", {})["bench/seq"] = f"{round_}-{j:05d}"
                out.append(orjson.dumps(obj))
        r = await self.api().get(f"/api/v1/namespaces/{NAMESPACE}/pods", params={"limit": "1"})
        rv = int(r.json()["metadata"]["resourceVersion"])

        got = [0] * n_watch
        done_at: list[float | None] = [None] * n_watch
        registered_watchers = 0.0
        etcd_watchers: float | None = None
        timeout = httpx.Timeout(budget, connect=10.0)

        async def watcher(k: int, client: httpx.AsyncClient) -> None:
            """Read the stream line by line and count event lines. Each line is one compact JSON
            WatchEvent that starts with its type, so only that prefix is looked at: the client's
            cost per event stays small beside the server's."""
            params = {"watch": "1", "resourceVersion": str(rv)}
            async with client.stream("GET", f"/api/v1/namespaces/{NAMESPACE}/pods", params=params) as resp:
                if resp.status_code != 200:
                    raise BenchError(f"watch {k}: HTTP {resp.status_code}")
                pending = b""
                async for chunk in resp.aiter_raw():
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        head = line[:40]
                        if head.startswith(b'{"type":"ERROR"'):
                            raise BenchError(f"watch {k}: {orjson.loads(line)['object'].get('message')}")
                        if not head.startswith(b'{"type":"BOOKMARK"'):
                            got[k] += 1
                    if got[k] >= m_events:
                        done_at[k] = time.perf_counter()
                        return
            raise BenchError(f"watch {k} ended after {got[k]} of {m_events} events")

        async def raw_count(watch: Any, deadline: float) -> tuple[int, float]:
            """Count the M events on one raw etcd watch; (events, perf_counter at the last one)."""
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
            return count, last

        async def put(k: int, j: int) -> None:
            await self.raw.put(keys[j], payloads[0][j])

        async def put_baseline(k: int, j: int) -> None:
            await self.raw.put(keys[j], payloads[1][j])

        async with contextlib.AsyncExitStack() as stack:
            wcs = [await stack.enter_async_context(http_client(self.api_url, timeout)) for _ in range(n_watch)]
            tasks = [asyncio.create_task(watcher(k, wcs[k]), name=f"watcher-{k}") for k in range(n_watch)]
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
                etcd_watchers = await self._etcd_watchers()

                with self._cpu(f"watch fan-out {n_watch} x {m_events}"):
                    t0 = time.perf_counter()
                    writes = await run_pool(put, m_events, self.s.concurrency, budget)
                    t_written = time.perf_counter()
                    finished, _ = await asyncio.wait(tasks, timeout=max(0.1, t0 + budget - time.perf_counter()))
                for t in finished:
                    if t.exception() is not None:
                        self.report.warnings.append(f"{t.get_name()}: {t.exception()}")
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        if writes.errors:
            raise BenchError(f"{writes.errors} update writes failed: {writes.first_error}")

        # Baseline: one raw etcd watch, opened (synced, from the next revision) before the first
        # write, receiving M updates written the same way, with no HTTP watcher in this process.
        raw_watch = await self.raw.watch_prefix(POD_PREFIX.encode())
        try:
            with self._cpu(f"raw etcd watch x {m_events}"):
                b0 = time.perf_counter()
                live = asyncio.create_task(raw_count(raw_watch, b0 + budget))
                base_writes = await run_pool(put_baseline, m_events, self.s.concurrency, budget)
                b_written = time.perf_counter()
                live_count, live_last = await live
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(raw_watch.cancel(), 5)
        if base_writes.errors:
            raise BenchError(f"{base_writes.errors} baseline writes failed: {base_writes.first_error}")

        delivered = sum(got)
        complete = [d for d in done_at if d is not None]
        t_end = max(complete) if len(complete) == n_watch else time.perf_counter()
        if len(complete) < n_watch:
            self.report.warnings.append(
                f"watch: only {len(complete)} of {n_watch} watchers got all {m_events} events "
                f"within {budget:.0f} s ({delivered} of {n_watch * m_events} delivered)"
            )
        raw_ok = live_count >= m_events
        if not raw_ok:
            self.report.warnings.append(f"raw etcd watch got {live_count} of {m_events} events")
        raw_rate = m_events / (live_last - b0) if raw_ok else None
        self.report.rows += [
            Row(
                f"watch {n_watch} watchers x {m_events} updates: events/s delivered in total",
                delivered / (t_end - t0),
                raw_rate,
                "/s",
                "1 etcd watch events/s, same updates",
                section=4,
            ),
            Row(
                "watch: events/s at the slowest watcher",
                m_events / (t_end - t0) if len(complete) == n_watch else None,
                raw_rate,
                "/s",
                "1 etcd watch events/s, same updates",
                section=4,
            ),
            Row(
                "watch: last write -> last event at every watcher",
                (t_end - t_written) * 1e3,
                (live_last - b_written) * 1e3 if raw_ok else None,
                "ms",
                "same, at the etcd watch",
                section=4,
            ),
            Row(
                "etcd watches held by the apiserver",
                etcd_watchers,
                registered_watchers,
                "",
                "client watches registered (pods)",
                section=4,
            ),
        ]
        self.report.notes.append(
            f"watch: {m_events} updates written straight to etcd (C={self.s.concurrency}) in "
            f"{(t_written - t0) * 1e3:.0f} ms; {delivered} of {n_watch * m_events} events delivered; "
            f"etcd_debugging_mvcc_watcher_total={etcd_watchers} with {registered_watchers:.0f} client watches open"
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

    # -- 6. the security pipeline
    async def _until_status(self, client: httpx.AsyncClient, path: str, code: int, timeout: float) -> int:
        """GET `path` until it answers `code` (at most `timeout` s); the last status seen."""
        deadline = time.perf_counter() + timeout
        status = 0
        while True:
            with contextlib.suppress(httpx.TransportError):
                status = (await client.get(path)).status_code
            if status == code or time.perf_counter() > deadline:
                return status
            await asyncio.sleep(0.05)

    async def _grant_bench_user(self, probe: str) -> None:
        """Check that the secure port authenticates the bench user and that RBAC denies it, then
        allow it pods (create/get/list/watch) in the bench namespace through a Role and RoleBinding
        made on the insecure port, and wait until RBAC (which follows the watch cache) lets it in."""
        async with http_client(self.secure.url, 10.0, verify=self.secure.tls()) as c:
            status = await self._until_status(c, "/readyz", 200, 10.0)
            if status != 200:
                raise BenchError(f"the secure port {self.secure.url} answers /readyz with {status or 'no connection'}")
            r = await c.get(probe)
            if r.status_code != 403:
                raise BenchError(f"{BENCH_USER} got {probe} before any RoleBinding: HTTP {r.status_code} (RBAC off?)")
            for kind, body in bench_user_policy():
                r = await self.api().post(f"{RBAC_API}/namespaces/{NAMESPACE}/{kind}", json=body)
                if r.status_code != 201:
                    raise BenchError(f"creating {kind} bench-pods: {r.status_code} {r.text[:200]}")
            status = await self._until_status(c, probe, 200, 10.0)
            if status != 200:
                raise BenchError(f"{BENCH_USER} still gets {status} for {probe} 10 s after its RoleBinding")
            r = await c.get("/api/v1/namespaces/kube-system/secrets")
            if r.status_code != 403:
                raise BenchError(f"{BENCH_USER} listing secrets in kube-system: HTTP {r.status_code}, expected 403")

    @staticmethod
    async def _touch(clients: list[RawConnection], probe: str, side: str) -> float:
        """One untimed GET on every connection, so each series starts on open, warm connections; seconds taken.

        A connection the server closed while it was idle (past its keep-alive, 90 s as upstream's) is opened
        again by that GET."""
        t0 = time.perf_counter()
        try:
            got = await asyncio.gather(*(c.request("GET", probe) for c in clients))
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as e:
            raise BenchError(f"{side} warm-up get of {probe}: {type(e).__name__}: {e}") from e
        if bad := [code for code, _ in got if code != 200]:
            raise BenchError(f"{side} warm-up get of {probe}: HTTP {bad[0]}")
        return time.perf_counter() - t0

    @staticmethod
    async def _cache_caught_up(conn: RawConnection, last: str, side: str) -> None:
        """Wait until the apiserver's watch cache has applied every write so far: a GET without resourceVersion
        (of `last`, the series' last pod) reads etcd's revision and is answered once the cache has reached it.

        Under a burst of creates the cache lags (its etcd stream is read one message per turn of a busy event
        loop): thousands of events at the end of a series. Their decode and apply is part of what a create
        costs, so each create series' CPU span ends here, and the next series does not pay for them."""
        status, body = await conn.request("GET", last)
        if status != 200:
            raise BenchError(f"{side} get of {last} after the creates: {status} {body[:200]!r}")

    async def _bench_security(self) -> None:
        """The same creates and gets over the insecure port and over the TLS port as BENCH_USER
        (x509 authentication, RBAC authorization), on fresh connections of both kinds, opened and
        warmed before each timed series, in SECURITY_ROUNDS rounds of alternating order."""
        conc = self.s.concurrency
        probe = f"/api/v1/namespaces/{NAMESPACE}/pods/{pod_name(0)}"
        await self._grant_bench_user(probe)
        n = self.pods
        sides = ("insecure", "tls")
        prefix = {"insecure": "plain", "tls": "https"}  # the same length: the same body sizes
        created = dict.fromkeys(sides, 0)
        results: dict[tuple[str, str], list[PoolResult]] = {
            (op, side): [] for op in ("create", "get") for side in sides
        }
        cpu = {key: CpuTally(self.apiserver, self.etcd) for key in results}
        budget = self.s.op_budget / SECURITY_ROUNDS

        pods = f"/api/v1/namespaces/{NAMESPACE}/pods"

        def create_op(clients: list[RawConnection], side: str) -> Callable[[int, int], Awaitable[None]]:
            start = created[side]

            async def create(k: int, i: int) -> None:
                status, body = await clients[k].request("POST", pods, pod_body(start + i, prefix[side]))
                if status != 201:
                    raise BenchError(f"{side} create {pod_name(start + i, prefix[side])}: {status} {body[:200]!r}")

            return create

        def get_op(clients: list[RawConnection], side: str, offset: int) -> Callable[[int, int], Awaitable[None]]:
            async def get(k: int, i: int) -> None:
                name = pod_name((offset + i) % n)
                status, body = await clients[k].request("GET", f"{pods}/{name}")
                if status != 200:
                    raise BenchError(f"{side} get {name}: {status} {body[:200]!r}")
                orjson.loads(body)

            return get

        collector = await self._collector()
        async with contextlib.AsyncExitStack() as stack:
            tls = self.secure.tls()
            clients: dict[str, list[RawConnection]] = {
                "insecure": [RawConnection(self.api_url, None, 30.0) for _ in range(conc)],
                "tls": [RawConnection(self.secure.url, tls, 30.0) for _ in range(conc)],
            }
            for conn in (c for side in sides for c in clients[side]):
                stack.push_async_callback(conn.aclose)
            opened: dict[str, float] = {}
            for side in sides:  # one connection per worker: TCP (and the TLS handshake) once
                opened[side] = await self._touch(clients[side], probe, side)
            for op, total in (("create", self.s.sec_creates), ("get", self.s.sec_gets)):
                per_round = max(1, total // SECURITY_ROUNDS)
                for round_ in range(SECURITY_ROUNDS):
                    for side in sides if round_ % 2 == 0 else sides[::-1]:
                        if op == "create":
                            fn = create_op(clients[side], side)
                        else:
                            fn = get_op(clients[side], side, round_ * per_round)
                        await self._touch(clients[side], probe, side)  # reopen what idled out meanwhile
                        with py_spy(self.apiserver.pid, self._profile_path(op, side, round_)), cpu[op, side].span():
                            res = await run_pool(fn, per_round, conc, budget)
                            if op == "create":  # the creates' watch events, which the cache applies after them
                                last = f"{pods}/{pod_name(created[side] + res.attempted - 1, prefix[side])}"
                                await self._cache_caught_up(clients[side][0], last, side)
                        if op == "create":
                            created[side] += res.attempted
                        results[op, side].append(res)
                        self._require_alive()
        (collections, freed), (collections_before, freed_before) = await self._collector(), collector
        collections, freed = collections - collections_before, freed - freed_before
        totals = {key: combine(rounds) for key, rounds in results.items()}
        for (op, side), res in totals.items():
            if res.errors:  # a refused or failed request would make the two sides do different work
                raise BenchError(f"{res.errors} of {res.attempted} {side} {op}s failed; first: {res.first_error}")
        self._security_rows(totals, cpu, opened)
        touches = len(sides) + 2 * SECURITY_ROUNDS * len(sides)  # `_touch`: one untimed GET on every connection
        requests = sum(res.attempted for res in totals.values()) + touches * conc + 1  # and the /metrics read
        self.report.notes.append(
            f"the apiserver's cyclic collector over these {requests} requests (its /metrics): {collections:.0f} "
            f"collections, {freed:.0f} objects freed from reference cycles ({freed / requests:.1f} a request)"
        )

    def _profile_path(self, op: str, side: str, round_: int) -> Path | None:
        if self.s.profile_dir is None:
            return None
        return self.s.profile_dir / f"{op}-{side}-{round_}.txt"

    def _security_rows(
        self, res: dict[tuple[str, str], PoolResult], cpu: dict[tuple[str, str], CpuTally], opened: dict[str, float]
    ) -> None:
        conc = self.s.concurrency
        wanted = {
            op: max(1, n // SECURITY_ROUNDS) * SECURITY_ROUNDS
            for op, n in (("create", self.s.sec_creates), ("get", self.s.sec_gets))
        }
        for op, what in (("create", "creates"), ("get", "gets")):
            tls, plain = res[op, "tls"], res[op, "insecure"]
            self.report.rows.append(
                Row(
                    f"Pod {what}/s over TLS + x509 + RBAC, C={conc} ({tls.ok} {'pods' if op == 'create' else 'gets'})",
                    tls.rate,
                    plain.rate,
                    "/s",
                    f"the same over the insecure port ({plain.ok})",
                    section=6,
                )
            )
            for side, label in (("insecure", "the insecure port"), ("tls", "TLS + x509 + RBAC")):
                tally, ok = cpu[op, side], res[op, side].ok
                per_op = f"; apiserver CPU {tally.api_cpu / ok * 1e6:,.0f} us per {op}" if ok else ""
                if ok:
                    self.report.cpu_per_op.append(
                        f"apiserver CPU per {op}: {tally.api_cpu / ok * 1e3:.3f} ms ({label})"
                    )
                self.report.notes.append(f"{what} over {label}: {tally}{per_op}")
                if res[op, side].attempted < wanted[op]:
                    self.report.warnings.append(
                        f"security pipeline: the time bound stopped the {what} over {label} at "
                        f"{res[op, side].attempted} of {wanted[op]}"
                    )
        costs = []
        for op, what in (("create", "creates"), ("get", "gets")):
            tls, plain = res[op, "tls"].rate, res[op, "insecure"].rate
            if plain:
                costs.append(f"{what} {(1 - tls / plain) * 100:.1f} %")
        self.report.notes.append(
            f"security pipeline: user {BENCH_USER} (client certificate, no groups), allowed pods through RoleBinding "
            f"bench-pods -> Role bench-pods, refused before it and for kube-system secrets (403); "
            f"{SECURITY_ROUNDS} rounds, insecure/TLS order alternating; opening {conc} connections + one get each: "
            f"TLS {opened['tls'] * 1e3:.0f} ms, insecure {opened['insecure'] * 1e3:.0f} ms (not timed below)"
        )
        self.report.notes.append(
            "security pipeline cost (throughput lost over TLS + x509 + RBAC, the bar is at most 15 %): "
            + ", ".join(costs)
        )


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
        (r.figure, fmt(r.tinykube, r.unit), fmt(r.baseline, r.unit), _ratio(r), r.baseline_label)
        for r in sorted(report.rows, key=lambda r: r.section)
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
    out += report.cpu_per_op
    out.append("")
    out.append(summary(report, settings, elapsed))
    return "\n".join(out)


def _ratio(r: Row) -> str:
    ratio = r.ratio
    return "n/a" if ratio is None else f"{ratio:.3g}x"


def summary(report: Report, settings: Settings, elapsed: float) -> str:
    """One line: the headline figures and ratios."""

    def pick(section: int, text: str = "") -> Row | None:
        rows = [r for r in report.rows if r.section == section and text in r.figure and r.ratio is not None]
        return rows[-1] if rows else None

    parts = []
    if r := pick(1):
        parts.append(f"creates {r.tinykube:,.0f}/s ({r.ratio:.2f}x etcd puts)")
    if r := pick(2):
        parts.append(f"gets {r.tinykube:,.0f}/s ({r.ratio:.2f}x etcd gets)")
    if r := pick(3, "JSON, p50"):
        parts.append(f"{r.figure.split(' as')[0]} p50 {r.tinykube:,.0f} ms ({r.ratio:.1f}x etcd range)")
    if r := pick(4, "in total"):
        parts.append(f"watch {r.tinykube:,.0f} events/s to {settings.watchers} watchers ({r.ratio:.1f}x 1 etcd watch)")
    if r := pick(5):
        parts.append(f"peak RSS {r.tinykube:.0f} MiB ({r.ratio:.1f}x etcd)")
    if (c := pick(6, "creates")) and (g := pick(6, "gets")):
        parts.append(f"TLS + x509 + RBAC creates {c.ratio:.2f}x, gets {g.ratio:.2f}x the insecure port")
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
    p.add_argument("--quick", action="store_true", help="1k pods only, 20 watchers x 100 events (< 60 s)")
    p.add_argument("--concurrency", "-c", type=int, default=32, help="concurrent requests (default 32)")
    p.add_argument("--watchers", type=int, default=None, help="watchers N (default 100, quick 20)")
    p.add_argument("--events", type=int, default=None, help="updates M seen by every watcher (default 200, quick 100)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (etcd data, logs)")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample the apiserver with py-spy during section 6 into DIR/<op>-<side>-<round>.txt (collapsed stacks)",
    )
    return p.parse_args(argv)


@dataclass
class Stack:
    """What a benchmark runs against: etcd and an apiserver with the secure port, in a temporary dir."""

    tmp: Path
    secure: SecurePort
    etcd: Process
    etcd_url: str
    apiserver: Process
    api_url: str


def run_on_apiserver(title: str, prefix: str, keep: bool, body: Callable[[Stack], str]) -> int:
    """Start etcd and the apiserver (insecure and secure ports) in a temporary dir, print what `body`
    returns; on failure the processes' log tails; stop everything (and remove the dir unless `keep`).
    The exit status: 0, 1 on a benchmark failure, 130 when interrupted."""
    signal.signal(signal.SIGTERM, _terminate)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    procs: list[Process] = []
    try:
        print(f"{title}; data in {tmp}", flush=True)
        secure, secure_args = make_secure_port(tmp)
        etcd, etcd_url = start_etcd(tmp)
        procs.append(etcd)
        apiserver, api_url = start_apiserver(
            tmp, etcd_url, extra=["--etcd-compaction-interval", "0", "--log-level", "warning", *secure_args]
        )
        procs.append(apiserver)
        print(
            f"etcd {etcd_url} (pid {etcd.pid}), apiserver {api_url} and {secure.url} (pid {apiserver.pid})", flush=True
        )
        text = body(Stack(tmp, secure, etcd, etcd_url, apiserver, api_url))
        print()
        print(text)
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
        if keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Start etcd and the apiserver, run every phase, print the table; 0 on success."""
    args = parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    settings = Settings.make(args.quick, max(1, args.concurrency), args.watchers, args.events, args.profile)
    started = time.perf_counter()

    def bench(s: Stack) -> str:
        report = uvloop.run(Bench(settings, s.etcd, s.etcd_url, s.apiserver, s.api_url, s.secure).run())
        return render(report, settings, time.perf_counter() - started)

    title = f"tinykube apiserver benchmark ({'quick' if settings.quick else 'full'})"
    return run_on_apiserver(title, "tinykube-bench-", args.keep, bench)


if __name__ == "__main__":
    sys.exit(main())
