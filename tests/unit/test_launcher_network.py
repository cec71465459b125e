"""The launcher's address plan, slot locks and supervision of crashed components."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from tinykube.cluster import Cluster, ClusterSpec
from tinykube.network import SLOTS, ClusterNetwork, claim_slot
from tinykube.procs import Process


@pytest.fixture(autouse=True)
def slot_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "slots"
    monkeypatch.setenv("TINYKUBE_SLOT_DIR", str(d))
    return d


def test_slot_zero_keeps_the_classic_ranges() -> None:
    net = ClusterNetwork(0)
    assert net.node_ip(0) == "127.0.100.1"
    assert net.pod_cidr(1) == "127.1.1.0/24"
    assert net.service_range == "127.96.0.0/16"
    assert net.dns_service_ip == "127.96.0.10"
    assert net.service_ip(1) == "127.96.0.1"
    assert net.load_balancer_range == "127.200.0.0/24"


def test_no_two_slots_share_an_address() -> None:
    ranges = []
    for k in range(SLOTS):
        net = ClusterNetwork(k)
        ranges += [
            ipaddress.ip_network(net.pod_network),
            ipaddress.ip_network(net.service_range),
            ipaddress.ip_network(net.load_balancer_range),
            ipaddress.ip_network(f"127.0.{100 + k}.0/24"),  # node and add-on addresses
        ]
    for i, a in enumerate(ranges):
        for b in ranges[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    for k in range(SLOTS):
        net = ClusterNetwork(k)
        assert ipaddress.ip_address(net.pod_cidr(5).split("/")[0]) in ipaddress.ip_network(net.pod_network)


def test_slot_out_of_range() -> None:
    with pytest.raises(ValueError):
        ClusterNetwork(SLOTS)


def test_two_clusters_get_two_slots_and_a_data_dir_keeps_its_own(tmp_path: Path) -> None:
    a = claim_slot(tmp_path / "a")
    b = claim_slot(tmp_path / "b")
    assert {a.slot, b.slot} == {0, 1}
    with pytest.raises(RuntimeError, match="used by another tinykube cluster"):
        claim_slot(tmp_path / "c", wanted=a.slot)
    b.release()
    a.release()
    # b's data dir remembers slot 1 even though 0 is free again
    again = claim_slot(tmp_path / "b")
    assert again.slot == 1
    again.release()


def test_supervise_restarts_with_backoff(tmp_path: Path) -> None:
    cluster = Cluster(ClusterSpec(data_dir=tmp_path))
    proc = Process("sleeper", ["sleep", "60"], tmp_path / "logs" / "sleeper.log")
    cluster.processes.append(proc)
    try:
        assert cluster.supervise(now=100.0) == []
        proc.kill()
        assert cluster.supervise(now=100.0) == ["sleeper"]
        first = cluster.processes[0]
        assert first.alive() and first.pid != proc.pid
        first.kill()
        assert cluster.supervise(now=100.5) == []  # within the 1 s backoff
        assert cluster.supervise(now=101.1) == ["sleeper"]
        assert cluster.restarts == {"sleeper": 2}
        assert cluster.processes[0].alive()
    finally:
        cluster.stop()
