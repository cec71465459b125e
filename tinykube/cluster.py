"""A whole local cluster as child processes: etcd, apiserver, scheduler, controller-manager, one
kubelet and one kube-proxy per node (plus optional simulated nodes), and the cluster DNS and
ingress add-ons and the metrics-server. Used by `tinykube up`, the benchmarks and the pytest plugin.

The cluster first claims a slot (tinykube/network.py), which fixes every address it uses, so
clusters side by side on one machine never collide. Each component is started with its flags,
then waited on (health endpoint, or the Node turning Ready); `stop()` stops them in reverse
order, leaves no process behind and gives the slot back.

Security as kubeadm sets it up: the cluster PKI is made once under DIR/pki (tinykube/pki.py); the
apiserver serves HTTPS on its slot address, port 6443, checking client certificates against the
cluster CA and signing ServiceAccount tokens; the admin kubeconfig (DIR/kubeconfig) and each
component's own (DIR/kubeconfigs/NAME.kubeconfig, its own client certificate) point there. Each
kubelet serves HTTPS with a certificate of the cluster CA and lets in only callers it can authenticate
(client certificate of the cluster CA, or a token the apiserver vouches for) and the apiserver
authorizes (`nodes/proxy`, `nodes/log`, `nodes/stats`, `nodes/metrics`); the apiserver reaches it with
kubeadm's apiserver-kubelet-client certificate, the metrics-server with its own. The insecure port
stays on 127.0.0.1 for the launcher and for local tools: it has full access and nothing inside the
cluster uses it.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from tinykube.network import ClusterNetwork, SlotLock, claim_slot
from tinykube.pki import (
    APISERVER_KUBELET_CLIENT,
    CertPair,
    ClusterPKI,
    ServingIdentity,
    addon_identities,
    client_identities,
    kubelet_serving,
)
from tinykube.procs import Process, free_port, poller, start_apiserver, start_etcd, wait_ready

__all__ = ["SECURE_PORT", "Cluster", "ClusterSpec", "write_kubeconfig"]

SECURE_PORT = 6443


def write_kubeconfig(
    path: Path,
    server: str,
    *,
    ca: Path | None = None,
    client: CertPair | None = None,
    user: str = "tinykube",
) -> None:
    """A kubeconfig with one cluster/context named tinykube: the server, the CA to trust it with and the client
    certificate to present, embedded (kubeadm's way: the file alone is the credential). Private: mode 0600."""
    cluster: dict[str, str] = {"server": server}
    if ca is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    credentials: dict[str, str] = {}
    if client is not None:
        credentials["client-certificate-data"] = base64.b64encode(client.cert_pem()).decode()
        credentials["client-key-data"] = base64.b64encode(client.key_pem()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "tinykube", "cluster": cluster}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "tinykube", "context": {"cluster": "tinykube", "user": user}}],
        "current-context": "tinykube",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(config, indent=2))
    tmp.replace(path)


def _runs_controller(spec: str, name: str) -> bool:
    """Whether a `--controllers` list (`*`, names, `-name`) selects controller `name`."""
    chosen = False
    for item in (p.strip() for p in spec.split(",")):
        if item == "*" or item == name:
            chosen = True
        elif item == f"-{name}":
            chosen = False
    return chosen


@dataclass
class ClusterSpec:
    """What to run."""

    data_dir: Path
    port: int | None = None
    default_port: bool = False  # with no port: 8080 + slot (tinykube up) instead of a free one (tests)
    nodes: int = 1
    simulated_nodes: int = 0
    apiserver_count: int = 1  # apiserver processes sharing the secure and insecure ports (SO_REUSEPORT)
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
    # as kubeadm's clusters: kubelets by the Node authorizer, everyone else by RBAC
    authorization_mode: str = "Node,RBAC"
    apiserver_args: Sequence[str] = ()
    controller_manager_args: Sequence[str] = ()
    kubelet_args: Sequence[str] = ()
    container_runtime: str = "process"  # the kubelets' --container-runtime (process, docker, auto)
    metrics_server_args: Sequence[str] = ()
    ready_timeout: float = 60.0
    log_level: str = "info"


@dataclass
class Cluster:
    """A running cluster; `start()` brings it up, `stop()` takes everything down."""

    spec: ClusterSpec
    processes: list[Process] = field(default_factory=list)
    server: str = ""  # the insecure port (127.0.0.1, full access): for the launcher and local tools
    secure_server: str = ""  # https on the slot's apiserver address: what kubeconfigs and components use
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
    def pki(self) -> ClusterPKI:
        """The cluster's certificates and keys (DIR/pki)."""
        return ClusterPKI(self.spec.data_dir / "pki")

    def component_kubeconfig(self, name: str) -> Path:
        """The kubeconfig of one component (its own client certificate)."""
        return self.spec.data_dir / "kubeconfigs" / f"{name}.kubeconfig"

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

    @property
    def simulated_prefix(self) -> str:
        """The name prefix of the simulated nodes (`<prefix>-<i>`)."""
        return f"{self.spec.node_prefix}-sim"

    def _serving_identities(self) -> list[ServingIdentity]:
        """Each kubelet's serving certificate (the simulated nodes' process: one naming all their addresses)."""
        net = self.network
        servers = [kubelet_serving(n, [net.node_ip(i)]) for i, n in enumerate(self.node_names)]
        if self.spec.simulated_nodes:
            from kubelet.simulated import simulated_addresses

            ips = list(simulated_addresses(self.simulated_prefix, self.spec.simulated_nodes).values())
            servers.append(kubelet_serving(self.simulated_prefix, ips, file="kubelet-simulated"))
        return servers

    def _kubelet_auth_args(self, serving: str) -> list[str]:
        """A kubelet's TLS and auth flags, as kubeadm sets them: HTTPS, client certificates of the cluster CA,
        tokens by TokenReview, no anonymous requests, every request authorized by the apiserver."""
        pki = self.pki
        return [
            "--tls-cert-file",
            str(pki.serving(serving).cert),
            "--tls-private-key-file",
            str(pki.serving(serving).key),
            "--client-ca-file",
            str(pki.ca.cert),
            "--no-anonymous-auth",
            "--authentication-token-webhook",
            "--authorization-mode",
            "Webhook",
        ]

    def _component(self, name: str, module: str, args: Sequence[str], identity: str) -> Process:
        """Start a component talking to the secure port as `identity` (its kubeconfig's name)."""
        kubeconfig = self.component_kubeconfig(identity)
        argv = [sys.executable, "-m", module, "--kubeconfig", str(kubeconfig), "--log-level", self.spec.log_level]
        proc = Process(name, [*argv, *args], self.spec.data_dir / "logs" / f"{name}.log")
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

    def _credentials(self) -> None:
        """Make (or reuse) the PKI and write the admin's and every component's kubeconfig."""
        spec, net, pki = self.spec, self.network, self.pki
        domain = spec.cluster_domain
        pki.ensure(
            ips=["127.0.0.1", net.apiserver_address, *net.node_ips(), net.service_ip(1)],
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                f"kubernetes.default.svc.{domain}",
            ],
            clients=[*client_identities(self.node_names), APISERVER_KUBELET_CLIENT],
            servers=self._serving_identities(),
        )
        self.secure_server = f"https://{net.apiserver_address}:{SECURE_PORT}"
        write_kubeconfig(self.kubeconfig, self.secure_server, ca=pki.ca.cert, client=pki.client("admin"), user="admin")
        for ident in client_identities(self.node_names):
            if ident.file != "admin":
                path = self.component_kubeconfig(ident.file)
                write_kubeconfig(
                    path, self.secure_server, ca=pki.ca.cert, client=pki.client(ident.file), user=ident.user
                )
        if spec.simulated_nodes:
            # one process acting for many nodes: no single node identity fits it, so it runs as the admin
            path = self.component_kubeconfig("kubelet-simulated")
            write_kubeconfig(path, self.secure_server, ca=pki.ca.cert, client=pki.client("admin"), user="admin")
        # the dashboard trusts the server, but has no credentials of its own: the page's go up
        write_kubeconfig(self.component_kubeconfig("dashboard"), self.secure_server, ca=pki.ca.cert, user="dashboard")

    def _apiserver_args(self) -> list[str]:
        spec, net, pki = self.spec, self.network, self.pki
        issuer = f"https://kubernetes.default.svc.{spec.cluster_domain}"
        args = [
            "--service-cluster-ip-range",
            net.service_range,
            "--secure-port",
            str(SECURE_PORT),
            "--bind-address",
            net.apiserver_address,
            "--advertise-address",
            net.apiserver_address,
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
            issuer,
            "--api-audiences",
            issuer,
            "--authorization-mode",
            spec.authorization_mode,
            "--kubelet-client-certificate",
            str(pki.client(APISERVER_KUBELET_CLIENT.file).cert),
            "--kubelet-client-key",
            str(pki.client(APISERVER_KUBELET_CLIENT.file).key),
            "--kubelet-certificate-authority",
            str(pki.ca.cert),
        ]
        if not (spec.controller_manager and _runs_controller(spec.controllers, "serviceaccount")):
            # nothing would make the default ServiceAccounts: pods could never be admitted
            args += ["--disable-admission-plugins", "ServiceAccount"]
        return [*args, *spec.apiserver_args]

    @property
    def apiserver_names(self) -> list[str]:
        """The apiserver processes' names: `apiserver`, then `apiserver-2` … `apiserver-N`."""
        return ["apiserver", *(f"apiserver-{i}" for i in range(2, self.spec.apiserver_count + 1))]

    def _start_apiservers(self) -> None:
        """Start `apiserver_count` apiservers on the same ports; with more than one, each has its own identity
        (its Lease name) and the launcher waits until every one has written its identity Lease."""
        spec, net = self.spec, self.network
        if spec.apiserver_count < 1:
            raise ValueError("apiserver_count must be at least 1")
        port = spec.port or (8080 + net.slot if spec.default_port else None)
        shared = spec.apiserver_count > 1
        since = time.time()
        for name in self.apiserver_names:
            args = self._apiserver_args()
            if shared:
                args += ["--apiserver-identity", f"{socket.gethostname()}/{name}"]
            proc, self.server = start_apiserver(
                spec.data_dir, self.etcd_url, port, args, service_accounts=True, name=name, share_port=shared
            )
            port = int(self.server.rsplit(":", 1)[1])
            self.processes.append(proc)
            self._wait_secure(proc)
        if shared:
            self.wait_apiserver_identities(spec.apiserver_count, since)

    def apiserver_identities(self, http: httpx.Client | None = None) -> list[dict]:
        """The kube-apiserver identity Leases in kube-system (through the insecure port)."""
        params = {"labelSelector": "apiserver.kubernetes.io/identity=kube-apiserver"}
        url = f"{self.server}/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
        if http is None:
            with poller(timeout=5) as own:
                return self.apiserver_identities(own)
        r = http.get(url, params=params)
        r.raise_for_status()
        return r.json().get("items") or []

    def wait_apiserver_identities(self, count: int, since: float) -> None:
        """Block until `count` identity Leases have been renewed after `since` (a time.time())."""
        deadline = time.monotonic() + self.spec.ready_timeout
        live = 0
        with poller(timeout=5) as http:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    leases = self.apiserver_identities(http)
                except (httpx.HTTPError, ValueError):
                    leases = []
                live = sum(1 for lease in leases if _renewed_after(lease, since))
                if live >= count:
                    return
                time.sleep(0.1)
        logs = "\n".join(p.tail(10) for p in self.processes if p.name.startswith("apiserver"))
        raise RuntimeError(f"only {live}/{count} apiservers have renewed their identity Lease:\n{logs}")

    def _start(self) -> None:
        spec, net = self.spec, self.network
        self._credentials()
        etcd, self.etcd_url = start_etcd(spec.data_dir, free_port(), free_port())
        self.processes.append(etcd)
        self._start_apiservers()
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
            args += ["--root-ca-file", str(self.pki.ca.cert)]
            proc = self._component("controller-manager", "controller_manager", args, "kube-controller-manager")
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
                self.simulated_prefix,
                "--port",
                str(self.network.simulated_kubelet_port),
                "--health-port",
                str(health),
                *self._kubelet_auth_args("kubelet-simulated"),
            ]
            proc = self._component("kubelet-simulated", "kubelet", args, "kubelet-simulated")
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
            *self._kubelet_auth_args(f"kubelet-{node}"),
        ]
        if spec.dns:
            args += ["--cluster-dns", net.dns_service_ip]
        if spec.container_runtime != "process":
            args += ["--container-runtime", spec.container_runtime]
        proc = self._component(f"kubelet-{node}", "kubelet", [*args, *spec.kubelet_args], f"kubelet-{node}")
        return f"http://127.0.0.1:{health}/healthz", proc

    def _kube_proxy(self, index: int, node: str) -> tuple[str, Process]:
        ip = self.network.node_ip(index)
        args = ["--node-name", node, "--bind-address", ip, "--healthz-port", "10256", "--metrics-port", "10249"]
        return f"http://{ip}:10256/livez", self._component(f"kube-proxy-{node}", "kube_proxy", args, "kube-proxy")

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
        proc = self._component("cluster-dns", "cluster_dns", args, addon_identities()["cluster-dns"].file)
        return f"http://{net.dns_address}:{health}/readyz", proc

    def _metrics_server(self) -> tuple[str, Process]:
        address, health = self.network.metrics_address, free_port()
        args = ["--bind-address", address, "--port", "10250", "--health-port", str(health)]
        ident = addon_identities()["metrics-server"].file
        proc = self._component("metrics-server", "metrics_server", [*args, *self.spec.metrics_server_args], ident)
        return f"http://{address}:{health}/readyz", proc

    def _ingress(self) -> tuple[str, Process]:
        net, health = self.network, free_port()
        args = ["--bind-address", net.ingress_address, "--port", str(_privileged_or(80, 10080))]
        args += ["--health-port", str(health)]
        ident = addon_identities()["ingress-controller"].file
        return f"http://{net.ingress_address}:{health}/readyz", self._component(
            "ingress-controller", "ingress_controller", args, ident
        )

    @property
    def dashboard_url(self) -> str:
        """The dashboard's page."""
        return f"http://{self.network.dashboard_address}:9090/"

    def _dashboard(self) -> tuple[str, Process]:
        address, health = self.network.dashboard_address, free_port()
        args = ["--bind-address", address, "--port", "9090", "--health-port", str(health)]
        (self.spec.data_dir / "dashboard-url").write_text(self.dashboard_url + "\n")
        return f"http://{address}:{health}/readyz", self._component("dashboard", "dashboard", args, "dashboard")

    def _scheduler(self) -> tuple[str, Process]:
        port = free_port()
        proc = self._component("scheduler", "scheduler", ["--health-port", str(port)], "kube-scheduler")
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

    def _wait_secure(self, apiserver: Process) -> None:
        """Wait until the secure port answers /readyz to the admin's certificate."""
        ctx = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        admin = self.pki.client("admin")
        ctx.load_cert_chain(admin.cert, admin.key)
        deadline = time.monotonic() + self.spec.ready_timeout
        with poller(verify=ctx) as http:
            while time.monotonic() < deadline:
                if not apiserver.alive():
                    raise RuntimeError(f"apiserver exited with {apiserver.proc.returncode}:\n{apiserver.tail()}")
                try:
                    if http.get(f"{self.secure_server}/readyz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"the apiserver's secure port {self.secure_server} is not ready:\n{apiserver.tail()}")

    def wait_nodes_ready(self, count: int) -> None:
        """Block until `count` nodes report Ready=True (or raise with the kubelet logs)."""
        deadline = time.monotonic() + self.spec.ready_timeout
        ready = 0
        with poller(timeout=5) as http:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    items = http.get(f"{self.server}/api/v1/nodes").json().get("items") or []
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
        """Stop every component: the others all at once, then the apiservers, then etcd, so that kubelets
        end their pods and leaders release their Leases while the apiserver still answers."""
        tiers: list[list[Process]] = [[], [], []]
        for p in self.processes:
            tiers[2 if p.name == "etcd" else 1 if p.name.startswith("apiserver") else 0].append(p)
        for tier in tiers:
            for p in tier:
                p.terminate()
            for p in tier:
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


def _renewed_after(lease: dict, since: float) -> bool:
    renewed = (lease.get("spec") or {}).get("renewTime")
    if not renewed:
        return False
    return datetime.fromisoformat(renewed.replace("Z", "+00:00")).timestamp() >= since


def _node_ready(node: dict) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False
