"""Fixtures for the whole-cluster tests: a real 2-node cluster from the launcher, and kubectl on it.

The cluster runs every component as a real process (etcd, apiserver, scheduler, controller-manager,
two kubelets with the process runtime). Node-failure timings are shortened by flags so that the
failover test takes seconds, not minutes.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.conftest import Kubectl
from tinykube.cluster import Cluster, ClusterSpec

T = TypeVar("T")

# A node whose kubelet stops renewing its Lease is Unknown after this many seconds, and its pods are
# evicted this many seconds after that (real defaults: 40 s and 300 s; the apiserver's
# DefaultTolerationSeconds gives every pod that toleration).
NODE_GRACE = 8
EVICTION = 4


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running two-node tinykube cluster for the session."""
    spec = ClusterSpec(
        data_dir=tmp_path_factory.mktemp("cluster"),
        nodes=2,
        ingress=True,
        dashboard=True,
        apiserver_args=(
            "--default-unreachable-toleration-seconds",
            str(EVICTION),
            "--default-not-ready-toleration-seconds",
            str(EVICTION),
        ),
        controller_manager_args=(
            "--node-monitor-grace-period",
            str(NODE_GRACE),
            "--pod-eviction-timeout",
            str(EVICTION),
        ),
        kubelet_args=("--node-lease-duration", "4", "--node-status-update-frequency", "2"),
    )
    with Cluster(spec) as c:
        yield c


@pytest.fixture(scope="session")
def kube(kubectl_binary: Path, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """The real kubectl, pointed at the cluster by its kubeconfig."""
    return kubectl_on(kubectl_binary, cluster, tmp_path_factory.mktemp("kubectl-cluster"))


def kubectl_on(kubectl_binary: Path, cluster: Cluster, root: Path) -> Kubectl:
    """The real kubectl on a launcher cluster (its kubeconfig), with a home and cache under `root`."""
    home = root / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": str(cluster.kubeconfig),
        "LANG": "C.UTF-8",
    }
    return Kubectl(kubectl_binary, cluster.server, root / "cache", home, env)


@pytest.fixture(scope="session")
def chttp(cluster: Cluster) -> Iterator[httpx.Client]:
    """A synchronous HTTP client on the cluster's apiserver."""
    with httpx.Client(base_url=cluster.server, timeout=10) as client:
        yield client


@pytest.fixture
def cns(chttp: httpx.Client) -> Iterator[str]:
    """A fresh namespace; its pods are deleted at the end so no process outlives the test."""
    name = f"c-{uuid.uuid4().hex[:8]}"
    r = chttp.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    yield name
    chttp.delete(f"/api/v1/namespaces/{name}")


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last={last!r}")


def events_of(kube: Kubectl, ns: str, name: str, *wanted: str, timeout: float = 15.0) -> str:
    """`kubectl get events` of the object `name` once it shows every text in `wanted`: the components record
    events from queues of their own, apart from the object's status, so they may trail it."""

    def shown() -> str | None:
        out = kube.ok("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")
        return out if all(w in out for w in wanted) else None

    return wait_for(shown, timeout, f"the events of {name} showing {wanted}")


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose command line contains `marker`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(
                (line for line in (entry / "status").read_text().splitlines() if line.startswith("State:")), ""
            )
        except OSError:
            continue
        if marker in cmdline and "zombie" not in state:
            pids.append(int(entry.name))
    return pids
