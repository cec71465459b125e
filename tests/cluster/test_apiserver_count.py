"""`tinykube up --apiserver-count 2`: two apiserver processes behind the same secure and insecure ports
(SO_REUSEPORT), each with its identity Lease, supervised and restarted by the launcher, listed by status."""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from tinykube.cli import app
from tinykube.cluster import Cluster, ClusterSpec


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A control plane of etcd and two apiservers only (no nodes, no controllers, no add-ons)."""
    spec = ClusterSpec(
        data_dir=tmp_path_factory.mktemp("apiserver-count"),
        nodes=0,
        apiserver_count=2,
        scheduler=False,
        controller_manager=False,
        kube_proxy=False,
        dns=False,
        metrics_server=False,
    )
    with Cluster(spec) as c:
        yield c


def _admin(cluster: Cluster) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cluster.pki.ca.cert))
    admin = cluster.pki.client("admin")
    ctx.load_cert_chain(admin.cert, admin.key)
    return ctx


def _serving_processes(url: str, verify: ssl.SSLContext | bool, tries: int = 60) -> set[str]:
    """The distinct processes (by process_start_time_seconds) that answer `url`/metrics over new connections."""
    seen: set[str] = set()
    for _ in range(tries):
        with httpx.Client(verify=verify, timeout=10) as http:  # a new connection each time
            text = http.get(f"{url}/metrics").text
        m = re.search(r"^process_start_time_seconds (\S+)$", text, re.M)
        assert m, text[:500]
        seen.add(m.group(1))
        if len(seen) == 2:
            break
    return seen


def test_both_apiservers_serve_the_secure_and_the_insecure_port(two: Cluster) -> None:
    assert [p.name for p in two.processes if p.name.startswith("apiserver")] == ["apiserver", "apiserver-2"]
    assert all(p.alive() for p in two.processes)
    assert len(_serving_processes(two.secure_server, _admin(two))) == 2
    assert len(_serving_processes(two.server, False)) == 2


def test_each_apiserver_has_an_identity_lease_and_status_lists_them(two: Cluster) -> None:
    leases = two.apiserver_identities()
    assert len(leases) == 2
    assert len({x["spec"]["holderIdentity"] for x in leases}) == 2
    result = CliRunner().invoke(app, ["status", "--data-dir", str(two.spec.data_dir)])
    assert result.exit_code == 0, result.output
    assert re.search(r"^apiserver-2\s+pid \d+\s+running", result.output, re.M), result.output
    for lease in leases:
        assert f"apiserver identity {lease['metadata']['name']}: renewed" in result.output
    # one address for both: the Endpoints list it once
    ep = httpx.get(f"{two.server}/api/v1/namespaces/default/endpoints/kubernetes", timeout=5).json()
    assert ep["subsets"][0]["addresses"] == [{"ip": two.network.apiserver_address}]


def test_the_launcher_restarts_an_apiserver_that_died_and_it_takes_its_lease_back(two: Cluster) -> None:
    before = {x["metadata"]["name"]: x["spec"]["holderIdentity"] for x in two.apiserver_identities()}
    victim = next(p for p in two.processes if p.name == "apiserver-2")
    victim.kill()
    assert two.supervise() == ["apiserver-2"]
    deadline = time.monotonic() + two.spec.ready_timeout
    while True:  # the new process has bootstrapped once it holds a Lease under a holderIdentity of its own
        after = {x["metadata"]["name"]: x["spec"]["holderIdentity"] for x in two.apiserver_identities()}
        if set(after.values()) - set(before.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert after.keys() == before.keys()  # the restarted process renews the Lease of its identity
    assert sum(after[name] != before[name] for name in before) == 1
    assert len(_serving_processes(two.server, False)) == 2


def test_a_token_issued_by_one_apiserver_is_accepted_by_both(two: Cluster) -> None:
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}
    r = httpx.post(f"{two.server}/api/v1/namespaces/default/serviceaccounts", json=sa, timeout=10)
    assert r.status_code == 201, r.text
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    r = httpx.post(f"{two.server}/api/v1/namespaces/default/serviceaccounts/robot/token", json=request, timeout=10)
    assert r.status_code == 201, r.text
    token = r.json()["status"]["token"]
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    ca = ssl.create_default_context(cafile=str(two.pki.ca.cert))
    users = set()
    # 30 new connections, which the kernel spreads over both processes (all on one: odds 2^-29)
    for _ in range(30):
        with httpx.Client(verify=ca, timeout=10, headers={"Authorization": f"Bearer {token}"}) as http:
            r = http.post(f"{two.secure_server}/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review)
            assert r.status_code == 201, r.text
            users.add(r.json()["status"]["userInfo"]["username"])
    assert users == {"system:serviceaccount:default:robot"}
