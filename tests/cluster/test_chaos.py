"""Chaos: kill -9 a random component every few seconds while a writer creates objects and a
Deployment rolls; the launcher's supervision brings every part back, no acknowledged write is
lost, the Deployment converges and nothing is left running afterwards."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import processes_with, wait_for
from tests.e2e.conftest import Kubectl
from tinykube.cluster import Cluster, ClusterSpec

VICTIMS = ("etcd", "apiserver", "scheduler", "controller-manager", "kubelet-node-1", "kube-proxy-node-1", "cluster-dns")
CHAOS_SECONDS = 24.0

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: roller}
spec:
  replicas: 2
  selector: {matchLabels: {app: roller}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: roller}}
    spec:
      containers:
      - {name: c, image: busybox:1, command: ["sleep", "3600"]}
"""


class Writer(threading.Thread):
    """Creates ConfigMaps as fast as the apiserver takes them; remembers every acknowledged one."""

    def __init__(self, server: str) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.acked: list[str] = []
        self.failed = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.server, timeout=3) as c:
            while not self.stopping.is_set():
                name = f"w-{uuid.uuid4().hex[:10]}"
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}}
                try:
                    r = c.post("/api/v1/namespaces/default/configmaps", json=body)
                except httpx.HTTPError:
                    self.failed += 1
                    self.stopping.wait(0.05)  # the apiserver is down: do not spin
                    continue
                if r.status_code == 201:
                    self.acked.append(name)
                else:
                    self.failed += 1


class Supervisor(threading.Thread):
    """What `tinykube up` does every half second: restart what exited."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            with self.lock:
                self.cluster.supervise()


@pytest.fixture
def chaos_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    spec = ClusterSpec(
        data_dir=tmp_path_factory.mktemp("chaos"),
        nodes=1,
        controller_manager_args=("--node-monitor-grace-period", "40"),
    )
    with Cluster(spec) as c:
        yield c
    assert processes_with(str(spec.data_dir)) == [], "a process of the chaos cluster outlived stop()"


def test_kill_random_components_under_load(chaos_cluster: Cluster, kubectl_binary: Path, tmp_path: Path) -> None:
    cluster = chaos_cluster
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(cluster.kubeconfig)}
    kube = Kubectl(kubectl_binary, cluster.server, tmp_path / "cache", tmp_path, env)
    kube.ok("apply", "-f", "-", input=DEPLOYMENT)
    kube.ok("rollout", "status", "deploy/roller", "--timeout=60s", timeout=70)

    rng = random.Random(int(time.time()))
    writer, supervisor = Writer(cluster.server), Supervisor(cluster)
    writer.start()
    supervisor.start()
    killed: list[str] = []
    try:
        kube.ok("set", "image", "deploy/roller", "c=busybox:2")
        deadline = time.monotonic() + CHAOS_SECONDS
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(2.0, 4.0))
            victim = rng.choice(VICTIMS)
            with supervisor.lock:
                proc = next(p for p in cluster.processes if p.name == victim)
                proc.kill()
            killed.append(victim)
    finally:
        writer.stopping.set()
        writer.join(10)

    # every part serves again: the apiserver answers and every component's health endpoint too
    def healthy() -> bool:
        with supervisor.lock:
            procs = list(cluster.processes)
        if not all(p.alive() for p in procs):
            return False
        for url in [f"{cluster.server}/readyz", *cluster.health.values()]:
            try:
                if httpx.get(url, timeout=2).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        return True

    wait_for(healthy, 60, f"every component healthy again after killing {killed}")
    supervisor.stopping.set()
    supervisor.join(5)

    assert writer.acked, "the writer got no create through"
    stored = {
        cm["metadata"]["name"]
        for cm in httpx.get(f"{cluster.server}/api/v1/namespaces/default/configmaps", timeout=10).json()["items"]
    }
    lost = [n for n in writer.acked if n not in stored]
    assert not lost, f"{len(lost)} acknowledged writes lost (killed {killed})"
    kube.ok("rollout", "status", "deploy/roller", "--timeout=90s", timeout=100)
    images = kube.ok("get", "pods", "-l", "app=roller", "-o", "jsonpath={.items[*].spec.containers[0].image}")
    wait_for(
        lambda: (
            kube.ok("get", "pods", "-l", "app=roller", "-o", "jsonpath={.items[*].spec.containers[0].image}")
            == "busybox:2 busybox:2"
        ),
        60,
        f"only the new ReplicaSet's 2 pods left (had {images})",
    )
    assert set(cluster.restarts) >= set(killed)
