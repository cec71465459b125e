"""Two clusters with simulated nodes on one machine: each cluster's nodes are served by its own simulated kubelet.

Every slot's simulated node i has the same address (127.128.x.1); the slot picks the port. Before, both clusters'
nodes said port 10250: the second cluster's simulated kubelet could not bind it, and its metrics-server scraped
the first cluster's kubelet, whose certificate its CA does not know.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tinykube.cluster import Cluster, ClusterSpec


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Cluster]]:
    """Two clusters of two simulated nodes each (no real node, no add-ons), up at the same time."""
    with ExitStack() as stack:
        pair = []
        for n in range(2):
            spec = ClusterSpec(
                data_dir=tmp_path_factory.mktemp(f"simulated-{n}"),
                nodes=0,
                simulated_nodes=2,
                kube_proxy=False,
                dns=False,
                metrics_server=False,
                controller_manager=False,
            )
            pair.append(stack.enter_context(Cluster(spec)))
        yield pair


def test_each_clusters_simulated_nodes_answer_with_its_own_certificate(clusters: list[Cluster]) -> None:
    ports = set()
    for cluster in clusters:
        with httpx.Client(base_url=cluster.server, timeout=10) as api:
            nodes = api.get("/api/v1/nodes").json()["items"]
        assert len(nodes) == 2
        trust = ssl.create_default_context(cafile=str(cluster.pki.ca.cert))
        for node in nodes:
            port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
            address = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
            ports.add(port)
            # the TLS handshake verifies the serving certificate against this cluster's CA; any HTTP answer will do
            with httpx.Client(verify=trust, timeout=10) as kubelet:
                r = kubelet.get(f"https://{address}:{port}/healthz")
            assert r.status_code in (200, 401, 403), r.text
    assert len(ports) == 2  # one port per cluster
