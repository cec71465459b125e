"""A whole local cluster as child processes: etcd, apiserver, scheduler, controller-manager and
one kubelet per node (plus optional simulated nodes). Used by `tinykube up` and the pytest plugin.

Each component is started with its flags, then waited on (health endpoint, or the Node turning
Ready); `stop()` stops them in reverse order and leaves no process behind.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

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
    nodes: int = 1
    simulated_nodes: int = 0
    pod_network: str = "127.1.0.0/16"
    node_prefix: str = "node"
    scheduler: bool = True
    controller_manager: bool = True
    controllers: str = "*"
    apiserver_args: Sequence[str] = ()
    controller_manager_args: Sequence[str] = ()
    kubelet_args: Sequence[str] = ()
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

    @property
    def kubeconfig(self) -> Path:
        """The kubeconfig pointing at this cluster."""
        return self.spec.data_dir / "kubeconfig"

    @property
    def node_names(self) -> list[str]:
        """Names of the real (process-running) nodes."""
        return [f"{self.spec.node_prefix}-{i + 1}" for i in range(self.spec.nodes)]

    def pod_cidr(self, index: int) -> str:
        """The /24 podCIDR of node `index` inside the pod network."""
        net = ipaddress.ip_network(self.spec.pod_network)
        return str(list(net.subnets(new_prefix=24))[index])

    def _component(self, name: str, module: str, args: Sequence[str]) -> Process:
        argv = [sys.executable, "-m", module, "--server", self.server, "--log-level", self.spec.log_level, *args]
        proc = Process(name, argv, self.spec.data_dir / "logs" / f"{name}.log")
        self.processes.append(proc)
        return proc

    def start(self) -> Cluster:
        """Start every component and wait until the cluster is usable; on failure stop what started."""
        self.spec.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        spec = self.spec
        etcd, self.etcd_url = start_etcd(spec.data_dir, free_port(), free_port())
        self.processes.append(etcd)
        apiserver, self.server = start_apiserver(spec.data_dir, self.etcd_url, spec.port, spec.apiserver_args)
        self.processes.append(apiserver)
        write_kubeconfig(self.kubeconfig, self.server)
        (spec.data_dir / "etcd-url").write_text(self.etcd_url)
        waits: list[tuple[str, Process]] = []
        if spec.scheduler:
            waits.append(self._scheduler())
        if spec.controller_manager:
            port = free_port()
            args = ["--health-port", str(port), "--controllers", spec.controllers, *spec.controller_manager_args]
            proc = self._component("controller-manager", "controller_manager", args)
            waits.append((f"http://127.0.0.1:{port}/healthz", proc))
        for i, node in enumerate(self.node_names):
            health = free_port()
            args = [
                "--node-name",
                node,
                "--root-dir",
                str(spec.data_dir / "kubelet" / node),
                "--port",
                str(free_port()),
                "--health-port",
                str(health),
                "--pod-cidr",
                self.pod_cidr(i),
                *spec.kubelet_args,
            ]
            proc = self._component(f"kubelet-{node}", "kubelet", args)
            waits.append((f"http://127.0.0.1:{health}/healthz", proc))
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

    def check_alive(self) -> None:
        """Raise if any component has exited."""
        for p in self.processes:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited with {p.proc.returncode}:\n{p.tail()}")

    def write_pids(self) -> None:
        """Record every child's pid in DIR/pids.json (for `tinykube down` and `status`)."""
        pids = {p.name: p.pid for p in self.processes}
        (self.spec.data_dir / "pids.json").write_text(json.dumps(pids))

    def stop(self) -> None:
        """Stop every component, newest first; kubelets end their pods' processes."""
        for p in reversed(self.processes):
            p.stop(timeout=15)
        self.processes.clear()
        (self.spec.data_dir / "pids.json").unlink(missing_ok=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _node_ready(node: dict) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False
