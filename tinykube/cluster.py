"""A whole local cluster as child processes: etcd, apiserver, scheduler, controller-manager, one
kubelet and one kube-proxy per node (plus optional simulated nodes), and the cluster DNS and
ingress add-ons and the metrics-server. Used by `tinykube up`, the benchmarks and the pytest plugin.

The cluster first claims a slot (tinykube/network.py), which fixes every address it uses, so
clusters side by side on one machine never collide. Each component is started with its flags,
then waited on (health endpoint, or the Node turning Ready); `stop()` stops them in reverse
order, leaves no process behind and gives the slot back.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tinykube.network import ClusterNetwork, SlotLock, claim_slot
from tinykube.procs import Process, free_port, start_apiserver, start_etcd, wait_ready

__all__ = ["Cluster", "ClusterSpec", "write_kubeconfig"]


def write_kubeconfig(path: Path, server: str) -> None:
    """A kubeconfig with one cluster/context named tinykube."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "tinykube", "cluster": {"server": server}}],
        "users": [{"name": "tinykube", "user": {}}],
        "contexts": [{"name": "tinykube", "context": {"cluster": "tinykube", "user": "tinykube"}}],
        "current-context": "tinykube",
    }
    path.write_text(json.dumps(config, indent=2))


@dataclass
class ClusterSpec:
    """What to run."""

    data_dir: Path
    port: int | None = None
    default_port: bool = False  # with no port: 8080 + slot (tinykube up) instead of a free one (tests)
    nodes: int = 1
    simulated_nodes: int = 0
    slot: int | None = None  # None: the data dir's recorded slot, else the lowest free one
    node_prefix: str = "node"
    scheduler: bool = True
    controller_manager: bool = True
    controllers: str = "*"
    kube_proxy: bool = True
    dns: bool = True
    ingress: bool = False
    dashboard: bool = False
    metrics_server: bool = True
    cluster_domain: str = "cluster.local"
    apiserver_args: Sequence[str] = ()
    controller_manager_args: Sequence[str] = ()
    kubelet_args: Sequence[str] = ()
    metrics_server_args: Sequence[str] = ()
    ready_timeout: float = 60.0
    log_level: str = "info"


@dataclass
class Cluster:
    """A running cluster; `start()` brings it up, `stop()` takes everything down."""

    spec: ClusterSpec
    processes: list[Process] = field(default_factory=list)
    server: str = ""
    etcd_url: str = ""
    health: dict[str, str] = field(default_factory=dict)
    slot: SlotLock | None = None
    restarts: dict[str, int] = field(default_factory=dict)
    launcher_pid: int | None = None  # recorded in pids.json so `tinykube down` can stop the launcher
    _backoff: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (not before, delay)

    @property
    def kubeconfig(self) -> Path:
        """The kubeconfig pointing at this cluster."""
        return self.spec.data_dir / "kubeconfig"

    @property
    def node_names(self) -> list[str]:
        """Names of the real (process-running) nodes."""
        return [f"{self.spec.node_prefix}-{i + 1}" for i in range(self.spec.nodes)]

    @property
    def network(self) -> ClusterNetwork:
        """The cluster's address plan (known once `start()` has claimed a slot)."""
        if self.slot is None:
            raise RuntimeError("the cluster has no slot yet: start() it first")
        return self.slot.network

    def node_ip(self, name: str) -> str:
        """Address of a real node, by name."""
        return self.network.node_ip(self.node_names.index(name))

    def _component(self, name: str, module: str, args: Sequence[str]) -> Process:
        argv = [sys.executable, "-m", module, "--server", self.server, "--log-level", self.spec.log_level, *args]
        proc = Process(name, argv, self.spec.data_dir / "logs" / f"{name}.log")
        self.processes.append(proc)
        return proc

    def start(self) -> Cluster:
        """Start every component and wait until the cluster is usable; on failure stop what started."""
        self.spec.data_dir.mkdir(parents=True, exist_ok=True)
        self.slot = claim_slot(self.spec.data_dir, self.spec.slot)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        spec, net = self.spec, self.network
        etcd, self.etcd_url = start_etcd(spec.data_dir, free_port(), free_port())
        self.processes.append(etcd)
        apiserver_args = ["--service-cluster-ip-range", net.service_range, *spec.apiserver_args]
        port = spec.port or (8080 + net.slot if spec.default_port else None)
        apiserver, self.server = start_apiserver(spec.data_dir, self.etcd_url, port, apiserver_args)
        self.processes.append(apiserver)
        write_kubeconfig(self.kubeconfig, self.server)
        (spec.data_dir / "etcd-url").write_text(self.etcd_url)
        waits: list[tuple[str, Process]] = []
        if spec.scheduler:
            waits.append(self._scheduler())
        if spec.controller_manager:
            port = free_port()
            args = [
                "--health-port",
                str(port),
                "--controllers",
                spec.controllers,
                "--load-balancer-ip-range",
                net.load_balancer_range,
                *spec.controller_manager_args,
            ]
            proc = self._component("controller-manager", "controller_manager", args)
            waits.append((f"http://127.0.0.1:{port}/healthz", proc))
        if spec.dns:
            waits.append(self._dns())
        if spec.metrics_server:
            waits.append(self._metrics_server())
        if spec.ingress:
            waits.append(self._ingress())
        if spec.dashboard:
            waits.append(self._dashboard())
        for i, node in enumerate(self.node_names):
            waits.append(self._kubelet(i, node))
            if spec.kube_proxy:
                waits.append(self._kube_proxy(i, node))
        if spec.simulated_nodes:
            health = free_port()
            args = [
                "--simulated-nodes",
                str(spec.simulated_nodes),
                "--node-name",
                f"{spec.node_prefix}-sim",
                "--health-port",
                str(health),
            ]
            proc = self._component("kubelet-simulated", "kubelet", args)
            waits.append((f"http://127.0.0.1:{health}/healthz", proc))
        for url, proc in waits:
            self.health[proc.name] = url
            wait_ready(url, proc, spec.ready_timeout)
        self.wait_nodes_ready(spec.nodes + spec.simulated_nodes)
        self.write_pids()

    def _kubelet(self, index: int, node: str) -> tuple[str, Process]:
        spec, net = self.spec, self.network
        health = free_port()
        args = [
            "--node-name",
            node,
            "--root-dir",
            str(spec.data_dir / "kubelet" / node),
            "--node-ip",
            net.node_ip(index),
            "--port",
            "10250",
            "--health-port",
            str(health),
            "--pod-cidr",
            net.pod_cidr(index),
            "--cluster-domain",
            spec.cluster_domain,
        ]
        if spec.dns:
            args += ["--cluster-dns", net.dns_service_ip]
        proc = self._component(f"kubelet-{node}", "kubelet", [*args, *spec.kubelet_args])
        return f"http://127.0.0.1:{health}/healthz", proc

    def _kube_proxy(self, index: int, node: str) -> tuple[str, Process]:
        ip = self.network.node_ip(index)
        args = ["--node-name", node, "--bind-address", ip, "--healthz-port", "10256", "--metrics-port", "10249"]
        return f"http://{ip}:10256/livez", self._component(f"kube-proxy-{node}", "kube_proxy", args)

    def _dns(self) -> tuple[str, Process]:
        net, health = self.network, free_port()
        args = [
            "--bind-address",
            net.dns_address,
            "--port",
            str(_privileged_or(53, 10053)),
            "--service-cluster-ip-range",
            net.service_range,
            "--cluster-domain",
            self.spec.cluster_domain,
            "--health-port",
            str(health),
        ]
        return f"http://{net.dns_address}:{health}/readyz", self._component("cluster-dns", "cluster_dns", args)

    def _metrics_server(self) -> tuple[str, Process]:
        address, health = self.network.metrics_address, free_port()
        args = ["--bind-address", address, "--port", "10250", "--health-port", str(health)]
        proc = self._component("metrics-server", "metrics_server", [*args, *self.spec.metrics_server_args])
        return f"http://{address}:{health}/readyz", proc

    def _ingress(self) -> tuple[str, Process]:
        net, health = self.network, free_port()
        args = ["--bind-address", net.ingress_address, "--port", str(_privileged_or(80, 10080))]
        args += ["--health-port", str(health)]
        return f"http://{net.ingress_address}:{health}/readyz", self._component(
            "ingress-controller", "ingress_controller", args
        )

    @property
    def dashboard_url(self) -> str:
        """The dashboard's page."""
        return f"http://{self.network.dashboard_address}:9090/"

    def _dashboard(self) -> tuple[str, Process]:
        address, health = self.network.dashboard_address, free_port()
        args = ["--bind-address", address, "--port", "9090", "--health-port", str(health)]
        (self.spec.data_dir / "dashboard-url").write_text(self.dashboard_url + "\n")
        return f"http://{address}:{health}/readyz", self._component("dashboard", "dashboard", args)

    def _scheduler(self) -> tuple[str, Process]:
        port = free_port()
        proc = self._component("scheduler", "scheduler", ["--health-port", str(port)])
        return f"http://127.0.0.1:{port}/healthz", proc

    def start_scheduler(self) -> Process:
        """Start a scheduler now (for clusters started with `scheduler=False`, e.g. benchmarks)."""
        url, proc = self._scheduler()
        self.health[proc.name] = url
        wait_ready(url, proc, self.spec.ready_timeout)
        self.write_pids()
        return proc

    def restart(self, name: str) -> Process:
        """Stop (if running) and start again the component called `name`, with the same command line;
        returns once it is healthy again (a kubelet has then also cleaned up after its predecessor)."""
        old = next(p for p in self.processes if p.name == name)
        old.stop()
        new = Process(old.name, old.argv, old.log_path)
        self.processes[self.processes.index(old)] = new
        self.write_pids()
        if name in self.health:
            wait_ready(self.health[name].replace("/healthz", "/readyz"), new, self.spec.ready_timeout)
        return new

    def wait_nodes_ready(self, count: int) -> None:
        """Block until `count` nodes report Ready=True (or raise with the kubelet logs)."""
        deadline = time.monotonic() + self.spec.ready_timeout
        ready = 0
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                items = httpx.get(f"{self.server}/api/v1/nodes", timeout=5).json().get("items") or []
            except (httpx.HTTPError, ValueError):
                items = []
            ready = sum(1 for n in items if _node_ready(n))
            if ready >= count:
                return
            time.sleep(0.1)
        logs = "\n".join(p.tail(10) for p in self.processes if p.name.startswith("kubelet"))
        raise RuntimeError(f"only {ready}/{count} nodes Ready after {self.spec.ready_timeout}s:\n{logs}")

    def supervise(self, now: float | None = None) -> list[str]:
        """Restart each component that has exited, as a kubelet restarts containers: at once the first
        time, then after a delay doubling from 1 s to 30 s (reset after 60 s of running). Returns
        the names started again now; `tinykube up` calls this every half second."""
        now = time.monotonic() if now is None else now
        started: list[str] = []
        for i, p in enumerate(self.processes):
            if p.alive():
                not_before, delay = self._backoff.get(p.name, (0.0, 0.0))
                if delay and now - not_before > 60:
                    self._backoff.pop(p.name, None)
                continue
            not_before, delay = self._backoff.get(p.name, (0.0, 0.0))
            if now < not_before:
                continue
            p.stop()
            self.processes[i] = Process(p.name, p.argv, p.log_path)
            self.restarts[p.name] = self.restarts.get(p.name, 0) + 1
            delay = min(max(delay * 2, 1.0), 30.0)
            self._backoff[p.name] = (now + delay, delay)
            started.append(p.name)
        if started:
            self.write_pids()
        return started

    def check_alive(self) -> None:
        """Raise if any component has exited."""
        for p in self.processes:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited with {p.proc.returncode}:\n{p.tail()}")

    def write_pids(self) -> None:
        """Record every child's pid in DIR/pids.json (for `tinykube down` and `status`)."""
        pids = {p.name: p.pid for p in self.processes}
        if self.launcher_pid:
            pids["launcher"] = self.launcher_pid
        (self.spec.data_dir / "pids.json").write_text(json.dumps(pids))
        (self.spec.data_dir / "restarts.json").write_text(json.dumps(self.restarts))

    def stop(self) -> None:
        """Stop every component, newest first; kubelets end their pods' processes."""
        for p in reversed(self.processes):
            p.stop(timeout=15)
        self.processes.clear()
        (self.spec.data_dir / "pids.json").unlink(missing_ok=True)
        if self.slot is not None:
            self.slot.release()
            self.slot = None

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _privileged_or(port: int, fallback: int) -> int:
    """`port` when this process may bind it (root), else `fallback` (an add-on's own listener; the
    Service port in front of it stays the standard one)."""
    return port if os.geteuid() == 0 else fallback


def _node_ready(node: dict) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False
