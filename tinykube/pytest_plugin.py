"""pytest plugin (entry point `pytest11`): a whole tinykube cluster as a session fixture.

    def test_my_operator(tinykube_cluster):
        subprocess.run(["kubectl", "--kubeconfig", str(tinykube_cluster.kubeconfig), "apply", "-f", "x.yaml"])

`tinykube_cluster` starts etcd, the apiserver, scheduler, controller-manager and kubelets (real
processes, in a temp dir, on free ports) once per session and stops them after. Options:
`--tinykube-nodes N` (default 1), `--tinykube-simulated-nodes N` (default 0) and
`--tinykube-apiserver-count N` (default 1: apiserver processes sharing the ports).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from client.config import load_config
from client.rest import ApiClient
from tinykube.cluster import Cluster, ClusterSpec

__all__ = ["TinykubeCluster", "pytest_addoption", "tinykube_cluster"]


@dataclass
class TinykubeCluster:
    """What the fixture yields: where the cluster is and a way to talk to it."""

    kubeconfig: Path
    server: str
    node_names: list[str]
    cluster: Cluster

    def api(self) -> ApiClient:
        """A new async tinykube ApiClient on the cluster (use as `async with cluster.api() as api:`)."""
        return ApiClient(load_config(self.kubeconfig))


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the cluster size options."""
    group = parser.getgroup("tinykube")
    group.addoption("--tinykube-nodes", type=int, default=1, help="nodes running real pods (default 1)")
    group.addoption("--tinykube-simulated-nodes", type=int, default=0, help="simulated nodes (default 0)")
    group.addoption(
        "--tinykube-apiserver-count", type=int, default=1, help="apiserver processes on the same ports (default 1)"
    )


@pytest.fixture(scope="session")
def tinykube_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TinykubeCluster]:
    """A running tinykube cluster for the whole test session."""
    spec = ClusterSpec(
        data_dir=tmp_path_factory.mktemp("tinykube"),
        nodes=request.config.getoption("--tinykube-nodes"),
        simulated_nodes=request.config.getoption("--tinykube-simulated-nodes"),
        apiserver_count=request.config.getoption("--tinykube-apiserver-count"),
    )
    cluster = Cluster(spec).start()
    try:
        yield TinykubeCluster(cluster.kubeconfig, cluster.server, cluster.node_names, cluster)
    finally:
        cluster.stop()
