"""The fault matrix: kill -9 each component of a launcher cluster once, under a steady write load.

Run from the repo root:

    .venv/bin/python bench/faults.py            # every component, 10 s baselines, 5 s of writes before each kill
    .venv/bin/python bench/faults.py --quick    # the same victims, 5 s baselines, 2 s before each kill

It starts a one-node cluster through the launcher (`tinykube.cluster.Cluster`, default flags, in a
temporary directory) and supervises it as `tinykube up` does: `Cluster.start()` does not restart
anything by itself, so a thread calls `cluster.supervise()` every 0.5 s (`--supervise-interval`).
A writer thread creates ConfigMaps through the admin kubeconfig (the TLS port, the admin's client
certificate) one after another, as fast as the apiserver accepts them, and records every attempt.

First the baseline: the writer's rate with no fault. Then, one victim after another (etcd,
apiserver, scheduler, controller-manager, kubelet-node-1, kube-proxy-node-1, cluster-dns,
metrics-server), waiting until the whole cluster is healthy between them:

1. the writer labels its ConfigMaps with the victim's name and writes for a few seconds;
2. the victim's process group gets SIGKILL;
3. back after: for etcd and the apiserver, the first write started after the kill that the
   apiserver acknowledges; for the others, until the launcher has started it again and its health
   endpoint answers 200;
4. writes refused: the writer's attempts that ended in an error between the kill and "back";
5. acknowledged writes lost: the victim's acknowledged ConfigMaps missing from a list afterwards;
6. a functional check of what the victim does (see bench/README.md).

At the end every ConfigMap acknowledged in the whole run is listed again, and the baseline is
measured a second time. Every wait has a timeout; the cluster is stopped (and the temporary
directory removed, unless `--keep`) on success, on errors and on Ctrl-C or SIGTERM, and the
script checks that no process of the cluster, pods included, is left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from client.config import Config, load_kubeconfig
from tinykube.cluster import Cluster, ClusterSpec

# bench/ comes first on sys.path when this runs as a script, and bench/dns.py would shadow dnspython's
# `dns` package, which the DNS check imports: take the folder off (nothing else is imported from it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

T = TypeVar("T")

NS = "faults"
PHASE_LABEL = "faults.tinykube.io/phase"
NODE = "node-1"
VICTIMS = (
    "etcd",
    "apiserver",
    "scheduler",
    "controller-manager",
    f"kubelet-{NODE}",
    f"kube-proxy-{NODE}",
    "cluster-dns",
    "metrics-server",
)
WRITE_TIMEOUT = 5.0  # seconds for one ConfigMap create
BACK_TIMEOUT = 90.0  # seconds for a victim to come back
CHECK_TIMEOUT = 60.0  # seconds for a functional check
HEALTHY_TIMEOUT = 120.0  # seconds for the whole cluster to be healthy between victims


class BenchError(RuntimeError):
    """The benchmark could not go on (the cluster did not come back within a bound)."""


def poll(check: Callable[[], T | None], timeout: float, interval: float = 0.05) -> T | None:
    """Call `check` until it returns something truthy (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, OSError):
            value = check()
            if value:
                return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def client(cfg: Config, timeout: float = 10.0) -> httpx.Client:
    """An HTTP client with the kubeconfig's server, CA and client certificate."""
    return httpx.Client(base_url=cfg.server, verify=cfg.verify(), timeout=timeout, trust_env=False)


# --- the writer and the supervisor -----------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """One create attempt: when it started and ended, under which phase, and its error ("" if acknowledged)."""

    start: float
    end: float
    phase: str
    name: str
    error: str


class Writer(threading.Thread):
    """Creates ConfigMaps one after another as fast as the apiserver takes them; records every attempt."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(name="writer", daemon=True)
        self.cfg = cfg
        self.phase = "setup"
        self.writes: list[Write] = []  # appended by this thread only; read as a snapshot (list(...))
        self.stopping = threading.Event()

    def run(self) -> None:
        seq = 0
        with client(self.cfg, WRITE_TIMEOUT) as c:
            while not self.stopping.is_set():
                phase = self.phase
                seq += 1
                name = f"{phase}-{seq:06d}"
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name, "labels": {PHASE_LABEL: phase}},
                    "data": {"seq": str(seq)},
                }
                start = time.monotonic()
                try:
                    r = c.post(f"/api/v1/namespaces/{NS}/configmaps", json=body)
                    error = "" if r.status_code == 201 else f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    error = type(e).__name__
                self.writes.append(Write(start, time.monotonic(), phase, name, error))
                if error:
                    self.stopping.wait(0.05)  # the apiserver is down or refusing: do not spin

    def acked_after(self, t: float) -> Write | None:
        """The first acknowledged write that started at or after `t`."""
        return next((w for w in list(self.writes) if w.start >= t and not w.error), None)


class Supervisor(threading.Thread):
    """What `tinykube up` does every half second: restart what exited (`Cluster.supervise`)."""

    def __init__(self, cluster: Cluster, interval: float) -> None:
        super().__init__(name="supervisor", daemon=True)
        self.cluster = cluster
        self.interval = interval
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.started: list[tuple[float, str]] = []  # (when, component) for every restart
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            with self.lock:
                try:
                    names = self.cluster.supervise()
                except Exception as e:  # keep supervising; reported at the end
                    self.errors.append(f"{type(e).__name__}: {e}")
                    continue
            now = time.monotonic()
            self.started.extend((now, n) for n in names)

    def process(self, name: str) -> Any:
        """The current process of component `name`."""
        with self.lock:
            return next(p for p in self.cluster.processes if p.name == name)


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Result:
    """One line of the matrix."""

    victim: str
    phase: str  # the writer's label in this victim's window (the victim's name, -2, -3 … when repeated)
    back: float | None = None  # seconds from the kill
    refused: int = 0
    acked: int = 0
    lost: int | None = None
    check: str = ""
    notes: list[str] = field(default_factory=list)


def _pod(name: str, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}],
        "terminationGracePeriodSeconds": 1,
    }
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _seq(name: str) -> int:
    """The writer's sequence number in a ConfigMap's name (PHASE-NNNNNN)."""
    return int(name.rsplit("-", 1)[1])


def _node_ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class FaultMatrix:
    """Drives one run on a started cluster."""

    def __init__(self, cluster: Cluster, args: argparse.Namespace) -> None:
        self.cluster = cluster
        self.args = args
        self.cfg = load_kubeconfig(cluster.kubeconfig)
        self.api = client(self.cfg)
        self.writer = Writer(self.cfg)
        self.supervisor = Supervisor(cluster, args.supervise_interval)
        self.results: list[Result] = []
        self.baselines: list[tuple[str, float, int, int, float]] = []  # (label, rate, acked, failed, seconds)
        self.deployment_replicas = 1
        self.checks = 0
        self.total_failed = 0
        self.total_acked = 0
        self.total_lost: int | None = None  # None until the final list (or when it failed)

    def close(self) -> None:
        """Stop the writer and the supervisor (before the cluster is stopped)."""
        self.writer.stopping.set()
        self.supervisor.stopping.set()
        for t in (self.writer, self.supervisor):
            if t.is_alive():
                t.join(WRITE_TIMEOUT + 5)
        self.api.close()

    # setup and health

    def setup(self) -> None:
        """The namespace, its default ServiceAccount and a 1-replica Deployment (for the scale check)."""
        r = self.api.post(
            "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
        )
        r.raise_for_status()
        sa = f"/api/v1/namespaces/{NS}/serviceaccounts/default"
        if not poll(lambda: self.api.get(sa).status_code == 200, CHECK_TIMEOUT, 0.2):
            raise BenchError(f"no default ServiceAccount in namespace {NS} after {CHECK_TIMEOUT:.0f} s")
        dep = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "scaler"},
            "spec": {
                "replicas": self.deployment_replicas,
                "selector": {"matchLabels": {"app": "scaler"}},
                "template": {"metadata": {"labels": {"app": "scaler"}}, "spec": _pod("x")["spec"]},
            },
        }
        self.api.post(f"/apis/apps/v1/namespaces/{NS}/deployments", json=dep).raise_for_status()
        if not poll(lambda: self._deployment_available(self.deployment_replicas), CHECK_TIMEOUT, 0.2):
            raise BenchError(f"Deployment {NS}/scaler not available after {CHECK_TIMEOUT:.0f} s")
        self.writer.start()
        self.supervisor.start()

    def unhealthy(self) -> str:
        """Why the cluster is not healthy now ("" when it is): a component down, a health endpoint
        not answering 200, the node not Ready, or no write acknowledged in the last few seconds."""
        with self.supervisor.lock:
            procs = list(self.cluster.processes)
        down = [p.name for p in procs if not p.alive()]
        if down:
            return f"not running: {', '.join(down)}"
        for name, url in [("apiserver", f"{self.cluster.server}/readyz"), *self.cluster.health.items()]:
            try:
                code = httpx.get(url, timeout=2, trust_env=False).status_code
            except httpx.HTTPError as e:
                return f"{name}: {type(e).__name__}"
            if code != 200:
                return f"{name}: HTTP {code}"
        try:
            node = self.api.get(f"/api/v1/nodes/{NODE}").json()
        except (httpx.HTTPError, ValueError) as e:
            return f"node: {type(e).__name__}"
        if not _node_ready(node):
            return f"node {NODE} not Ready"
        if self.writer.acked_after(time.monotonic() - 3) is None:
            return "no write acknowledged in the last 3 s"
        return ""

    def wait_healthy(self, what: str) -> None:
        deadline = time.monotonic() + HEALTHY_TIMEOUT
        reason = self.unhealthy()
        while reason:
            if time.monotonic() > deadline:
                raise BenchError(f"the cluster is not healthy {HEALTHY_TIMEOUT:.0f} s {what}: {reason}")
            time.sleep(0.25)
            reason = self.unhealthy()

    # baseline

    def baseline(self, label: str) -> None:
        """The writer's rate with no fault over `--baseline` seconds."""
        self.writer.phase = label
        time.sleep(1.0)  # the writer is in this phase now
        start = time.monotonic()
        time.sleep(self.args.baseline)
        end = time.monotonic()
        window = [w for w in list(self.writer.writes) if start <= w.end < end]
        acked = sum(1 for w in window if not w.error)
        self.baselines.append((label, acked / (end - start), acked, len(window) - acked, end - start))

    # one victim

    def victim(self, name: str) -> Result:
        repeats = sum(1 for r in self.results if r.victim == name)
        res = Result(name, f"{name}-{repeats + 1}" if repeats else name)
        self.writer.phase = res.phase
        time.sleep(self.args.before)
        rv = self.api.get(f"/api/v1/namespaces/{NS}/configmaps", params={"limit": "1"}).json()["metadata"][
            "resourceVersion"
        ]
        rv_time = time.monotonic()  # writes started after this are newer than rv (a write racing the list may not be)
        restarts_before = dict(self.cluster.restarts)
        with self.supervisor.lock:
            proc = next(p for p in self.cluster.processes if p.name == name)
            pid = proc.pid
            killed = time.monotonic()
            proc.kill()
        print(f"# {name}: killed pid {pid} (SIGKILL to its process group)", file=sys.stderr, flush=True)

        back_at = self._wait_back(name, killed, restarts_before)
        if back_at is None:
            res.notes.append(f"not back within {BACK_TIMEOUT:.0f} s")
        else:
            res.back = back_at - killed
        writes = list(self.writer.writes)
        until = back_at if back_at is not None else time.monotonic()
        outage = [w for w in writes if w.error and killed <= w.end <= until]
        res.refused = len(outage)
        if outage:
            kinds = Counter(w.error for w in outage)
            res.notes.append("refused: " + ", ".join(f"{n} x {k}" for k, n in kinds.most_common()))
        restarted_at = next((t for t, n in list(self.supervisor.started) if n == name and t >= killed), None)
        if restarted_at is not None:
            res.notes.append(f"the launcher started it again {restarted_at - killed:.2f} s after the kill")

        if back_at is not None:
            res.check = self._check(res, rv, rv_time, killed, back_at)
        else:
            res.check = "skipped (not back)"

        acked = [w.name for w in list(self.writer.writes) if w.phase == res.phase and not w.error]
        listed = self._listed(res.phase)
        res.acked = len(acked)
        res.lost = None if listed is None else sum(1 for n in acked if n not in listed)
        if listed is None:
            res.notes.append("could not list the ConfigMaps afterwards")
        others = {
            n: c - restarts_before.get(n, 0)
            for n, c in self.cluster.restarts.items()
            if n != name and c > restarts_before.get(n, 0)
        }
        if others:
            res.notes.append("also restarted: " + ", ".join(f"{n} (x{c})" for n, c in sorted(others.items())))
        return res

    def _wait_back(self, name: str, killed: float, restarts_before: dict[str, int]) -> float | None:
        """When `name` was back (monotonic time), or None after BACK_TIMEOUT."""
        if name in ("etcd", "apiserver"):
            w = poll(lambda: self.writer.acked_after(killed), BACK_TIMEOUT)
            return w.end if w else None
        url = self.cluster.health[name]

        def back() -> float | None:
            if self.cluster.restarts.get(name, 0) <= restarts_before.get(name, 0):
                return None
            if not self.supervisor.process(name).alive():
                return None
            if httpx.get(url, timeout=1, trust_env=False).status_code != 200:
                return None
            return time.monotonic()

        return poll(back, BACK_TIMEOUT)

    def _listed(self, phase: str | None) -> set[str] | None:
        params = {"labelSelector": f"{PHASE_LABEL}={phase}"} if phase else {}

        def names() -> set[str] | None:
            r = self.api.get(f"/api/v1/namespaces/{NS}/configmaps", params=params, timeout=60)
            return {cm["metadata"]["name"] for cm in r.json()["items"]} if r.status_code == 200 else None

        return poll(names, CHECK_TIMEOUT, 0.5)

    # functional checks: each returns the text of the table's last column

    def _check(self, res: Result, rv: str, rv_time: float, killed: float, back_at: float) -> str:
        self.checks += 1
        name = res.victim
        if name in ("etcd", "apiserver"):
            return self._check_watch(res, rv, rv_time, killed)
        if name == "scheduler":
            return self._check_scheduled(back_at)
        if name == "controller-manager":
            return self._check_scale(back_at)
        if name.startswith("kubelet-"):
            return self._check_running(back_at)
        if name.startswith("kube-proxy-"):
            return self._check_cluster_ip(back_at)
        if name == "cluster-dns":
            return self._check_dns(back_at)
        if name == "metrics-server":
            return self._check_metrics(back_at)
        return "none"

    def _check_watch(self, res: Result, rv: str, rv_time: float, killed: float) -> str:
        """A watch from the resourceVersion read before the kill gets every write acknowledged since
        (up to a second after the victim was back). The writer is sequential, so a write's sequence
        number orders it: once the watch delivers a later write, every earlier one is due."""
        time.sleep(1.0)
        phase = res.phase
        expected = {
            w.name: w for w in list(self.writer.writes) if w.phase == phase and not w.error and w.start > rv_time
        }
        last = max((_seq(n) for n in expected), default=0)
        seen: set[str] = set()
        params = {
            "watch": "1",
            "resourceVersion": rv,
            "labelSelector": f"{PHASE_LABEL}={phase}",
            "allowWatchBookmarks": "false",
            "timeoutSeconds": str(int(CHECK_TIMEOUT)),
        }
        what = "watch from before the kill"
        deadline = time.monotonic() + CHECK_TIMEOUT
        try:
            with self.api.stream(
                "GET", f"/api/v1/namespaces/{NS}/configmaps", params=params, timeout=httpx.Timeout(10, read=5)
            ) as r:
                if r.status_code != 200:
                    return f"{what}: HTTP {r.status_code}"
                for line in r.iter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        relist = (
                            " (the new watch cache starts now: clients relist)" if status.get("code") == 410 else ""
                        )
                        return f"{what}: {status.get('code')} {status.get('reason')}{relist}"
                    name = event["object"]["metadata"]["name"]
                    seen.add(name)
                    if _seq(name) > last or expected.keys() <= seen or time.monotonic() > deadline:
                        break
        except httpx.HTTPError as e:
            return f"{what}: {type(e).__name__} ({len(expected.keys() & seen)}/{len(expected)} writes seen)"
        missed = sorted(expected.keys() - seen, key=_seq)
        if missed:
            res.notes.append(
                "acknowledged but not delivered by the watch: "
                + ", ".join(
                    f"{n} (sent {expected[n].start - killed:+.3f} s, acknowledged {expected[n].end - killed:+.3f} s"
                    " from the kill)"
                    for n in missed[:5]
                )
            )
        return f"{what}: {len(expected) - len(missed)}/{len(expected)} writes seen" + (" !" if missed else "")

    def _since(self, back_at: float) -> str:
        return f"{time.monotonic() - back_at:.1f} s after back"

    def _check_scheduled(self, back_at: float) -> str:
        name = f"sched-{self.checks}"
        self.api.post(f"/api/v1/namespaces/{NS}/pods", json=_pod(name)).raise_for_status()
        path = f"/api/v1/namespaces/{NS}/pods/{name}"
        node = poll(lambda: self.api.get(path).json()["spec"].get("nodeName"), CHECK_TIMEOUT, 0.1)
        self._delete_pod(name)
        return f"new pod bound to {node}, {self._since(back_at)}" if node else "FAILED: new pod not bound"

    def _check_scale(self, back_at: float) -> str:
        old, self.deployment_replicas = self.deployment_replicas, self.deployment_replicas + 1
        self.api.patch(
            f"/apis/apps/v1/namespaces/{NS}/deployments/scaler",
            json={"spec": {"replicas": self.deployment_replicas}},
            headers={"content-type": "application/merge-patch+json"},
        ).raise_for_status()
        ok = poll(lambda: self._deployment_available(self.deployment_replicas), CHECK_TIMEOUT, 0.1)
        what = f"Deployment scaled {old} -> {self.deployment_replicas} (available)"
        return f"{what}, {self._since(back_at)}" if ok else f"FAILED: {what}"

    def _deployment_available(self, replicas: int) -> bool:
        d = self.api.get(f"/apis/apps/v1/namespaces/{NS}/deployments/scaler").json()
        st = d.get("status") or {}
        return (
            st.get("observedGeneration", 0) >= d["metadata"].get("generation", 1)
            and st.get("availableReplicas") == replicas
            and st.get("replicas") == replicas
        )

    def _check_running(self, back_at: float) -> str:
        name = f"run-{self.checks}"
        self.api.post(f"/api/v1/namespaces/{NS}/pods", json=_pod(name, NODE)).raise_for_status()
        path = f"/api/v1/namespaces/{NS}/pods/{name}"
        ok = poll(lambda: (self.api.get(path).json().get("status") or {}).get("phase") == "Running", CHECK_TIMEOUT, 0.1)
        self._delete_pod(name)
        return f"new pod on {NODE} Running, {self._since(back_at)}" if ok else "FAILED: new pod not Running"

    def _delete_pod(self, name: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            self.api.delete(f"/api/v1/namespaces/{NS}/pods/{name}", params={"gracePeriodSeconds": "0"})

    def _check_cluster_ip(self, back_at: float) -> str:
        """GET /readyz through the `kubernetes` Service's ClusterIP, which kube-proxy forwards."""
        ip = self.cluster.network.service_ip(1)
        verify = self.cfg.verify()

        def through() -> bool:
            return httpx.get(f"https://{ip}:443/readyz", verify=verify, timeout=2, trust_env=False).status_code == 200

        ok = poll(through, CHECK_TIMEOUT, 0.1)
        what = f"GET https://{ip}:443/readyz (ClusterIP of kubernetes)"
        return f"{what} 200, {self._since(back_at)}" if ok else f"FAILED: {what}"

    def _dns_port(self) -> int:
        argv = self.supervisor.process("cluster-dns").argv
        return int(argv[argv.index("--port") + 1])

    def _check_dns(self, back_at: float) -> str:
        """An A query for kubernetes.default's FQDN at the cluster DNS address (dnspython)."""
        import dns.message
        import dns.query
        import dns.rdatatype

        fqdn = f"kubernetes.default.svc.{self.cluster.spec.cluster_domain}."
        want, address, port = self.cluster.network.service_ip(1), self.cluster.network.dns_address, self._dns_port()

        def answered() -> bool:
            reply = dns.query.udp(dns.message.make_query(fqdn, dns.rdatatype.A), address, timeout=1.0, port=port)
            return any(rr.address == want for rrset in reply.answer for rr in rrset)

        ok = poll(answered, CHECK_TIMEOUT, 0.1)
        what = f"A {fqdn.rstrip('.')}"
        return f"{what} -> {want}, {self._since(back_at)}" if ok else f"FAILED: {what}"

    def _check_metrics(self, back_at: float) -> str:
        """The node's usage through the aggregated Metrics API (it needs two scrapes, --metric-resolution apart)."""
        path = f"/apis/metrics.k8s.io/v1beta1/nodes/{NODE}"
        ok = poll(lambda: self.api.get(path).status_code == 200, CHECK_TIMEOUT, 0.25)
        return f"GET {path} 200, {self._since(back_at)}" if ok else f"FAILED: GET {path}"

    # the whole run

    def run(self) -> None:
        self.setup()
        self.wait_healthy("before the baseline")
        self.baseline("baseline")
        for name in self.args.victims:
            self.wait_healthy(f"before killing {name}")
            print(f"# {name}: writing for {self.args.before:g} s, then kill -9", file=sys.stderr, flush=True)
            res = self.victim(name)
            self.results.append(res)
            back = "not back" if res.back is None else f"back after {res.back:.2f} s"
            print(f"# {name}: {back}; {res.check}", file=sys.stderr, flush=True)
        self.wait_healthy("after the last victim")
        self.baseline("baseline-after")
        self.writer.stopping.set()
        self.writer.join(WRITE_TIMEOUT + 5)
        writes = list(self.writer.writes)
        acked = [w.name for w in writes if not w.error]
        listed = self._listed(None)
        self.total_failed = sum(1 for w in writes if w.error)
        self.total_acked = len(acked)
        self.total_lost = None if listed is None else sum(1 for n in acked if n not in listed)

    def render(self, elapsed: float) -> str:
        head = ("victim", "back after s", "writes refused during outage", "acknowledged writes lost", "check")
        rows = [head]
        for r in self.results:
            lost = "?" if r.lost is None else f"{r.lost} of {r.acked:,}"
            back = "-" if r.back is None else f"{r.back:.2f}"
            rows.append((r.victim, back, f"{r.refused:,}", lost, r.check))
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        right = (False, True, True, True, False)

        def line(row: tuple[str, ...]) -> str:
            cells = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)]
            return " | ".join(cells).rstrip()

        out = [line(rows[0]), "-+-".join("-" * w for w in widths)]
        out += [line(row) for row in rows[1:]]
        out.append("")
        for label, rate, acked, failed, secs in self.baselines:
            when = "before the first kill" if label == "baseline" else "after the last victim"
            out.append(
                f"baseline ({when}): {rate:,.0f} writes/s acknowledged with no fault "
                f"({acked:,} in {secs:.1f} s, {failed} failed), one writer through the admin kubeconfig"
            )
        for r in self.results:
            if r.notes:
                out.append(f"note: {r.victim}: " + "; ".join(r.notes))
        outside = self.total_failed - sum(r.refused for r in self.results)
        out.append(
            f"note: {self.total_failed:,} failed writes in the whole run, {outside:,} of them outside the outages above"
        )
        if self.supervisor.errors:
            out.append("note: supervise() raised: " + "; ".join(self.supervisor.errors[:3]))
        lost = "?" if self.total_lost is None else f"{self.total_lost:,}"
        restarts = ", ".join(f"{n} x{c}" for n, c in sorted(self.cluster.restarts.items()))
        out.append(
            f"summary ({elapsed:.0f} s): {len(self.results)} victims; {self.total_acked:,} writes acknowledged in the "
            f"run, {lost} of them missing from the final list; launcher restarts: {restarts or 'none'}"
        )
        return "\n".join(out)


# --- main ------------------------------------------------------------------------------------


def _cluster_processes(data_dir: Path, pod_network_prefix: str) -> list[int]:
    """Pids of live processes of the cluster: a command line naming its data dir, or a pod's
    process (the kubelet gives every container POD_IP from the cluster's pod network)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "Z":
            continue
        pod = any(e.startswith(f"POD_IP={pod_network_prefix}".encode()) for e in environ)
        if str(data_dir) in cmdline or pod:
            pids.append(int(entry.name))
    return pids


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="5 s baselines, 2 s of writes before each kill")
    p.add_argument("--baseline", type=float, default=None, help="seconds of each baseline (default 10, quick 5)")
    p.add_argument("--before", type=float, default=None, help="seconds of writes before each kill (default 5, quick 2)")
    p.add_argument(
        "--supervise-interval", type=float, default=0.5, help="seconds between supervise() calls (tinykube up: 0.5)"
    )
    p.add_argument(
        "--victims",
        default=",".join(VICTIMS),
        help=f"comma-separated components to kill (default: {','.join(VICTIMS)})",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (etcd data, logs)")
    args = p.parse_args(argv)
    args.baseline = args.baseline or (5.0 if args.quick else 10.0)
    args.before = args.before or (2.0 if args.quick else 5.0)
    args.victims = [v.strip() for v in args.victims.split(",") if v.strip()]
    unknown = [v for v in args.victims if v not in VICTIMS]
    if unknown:
        p.error(f"unknown victim(s) {', '.join(unknown)}; choose from {', '.join(VICTIMS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Start the cluster, run the matrix, print the table; 0 on success."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="tinykube-faults-"))
    spec = ClusterSpec(data_dir=tmp / "cluster", nodes=1, ingress=False, dashboard=False)
    cluster = Cluster(spec)
    matrix: FaultMatrix | None = None
    pod_prefix = ""
    code = 0
    try:
        print(f"tinykube fault matrix ({'quick' if args.quick else 'full'}); data in {tmp}", flush=True)
        cluster.start()
        net = cluster.network
        pod_prefix = net.pod_network.rsplit(".", 2)[0] + "."  # 127.(1+slot).
        print(f"cluster up: apiserver {cluster.secure_server}, slot {net.slot}, 1 node", flush=True)
        matrix = FaultMatrix(cluster, args)
        matrix.run()
        print()
        print(matrix.render(time.monotonic() - started))
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the cluster", file=sys.stderr)
        code = 130
    except (BenchError, RuntimeError, httpx.HTTPError) as e:
        print(f"\nbenchmark failed: {type(e).__name__}: {e}", file=sys.stderr)
        if matrix is not None and matrix.results:
            print(matrix.render(time.monotonic() - started), file=sys.stderr)
        for p in cluster.processes:
            if not p.alive():
                print(f"--- {p.name} exited; log tail ({p.log_path}):\n{p.tail(15)}", file=sys.stderr)
        code = 1
    finally:
        if matrix is not None:
            matrix.close()
        cluster.stop()
        left = _cluster_processes(tmp, pod_prefix) if pod_prefix else _cluster_processes(tmp, "127.255.255.")
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        print(f"processes left behind after stop(): {len(left)}" + (" (killed)" if left else ""), flush=True)
        if left and code == 0:
            code = 1
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
