"""The pure Node and Lease builders, pod CIDR defaults and IP allocation."""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path

import pytest

from kubelet.ipam import IPAM, default_pod_cidr
from kubelet.node import NodeInfo, default_allocatable, lease_object, node_object
from kubelet.simulated import simulated_node

# Go's NodeSystemInfo, in field order: none of them omitempty
NODE_INFO_FIELDS = [
    "machineID",
    "systemUUID",
    "bootID",
    "kernelVersion",
    "osImage",
    "containerRuntimeVersion",
    "kubeletVersion",
    "kubeProxyVersion",
    "operatingSystem",
    "architecture",
]


def test_node_object() -> None:
    node = node_object(
        "n1",
        address="127.0.0.1",
        kubelet_port=10250,
        pod_cidr="127.1.0.0/24",
        capacity={"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "100Gi"},
        node_info=NodeInfo(machine_id="m", boot_id="b", architecture="arm64"),
        labels={"role": "worker"},
        taints=[{"key": "k", "effect": "NoSchedule"}],
        now="T",
    )
    assert node["metadata"]["labels"] == {
        "beta.kubernetes.io/arch": "arm64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "arm64",
        "kubernetes.io/hostname": "n1",
        "kubernetes.io/os": "linux",
        "role": "worker",
    }
    assert node["spec"] == {
        "podCIDR": "127.1.0.0/24",
        "podCIDRs": ["127.1.0.0/24"],
        "taints": [{"key": "k", "effect": "NoSchedule"}],
    }
    st = node["status"]
    assert st["allocatable"]["memory"] == f"{(4 * 2**30 - 100 * 2**20) // 1024}Ki"
    assert st["allocatable"]["cpu"] == "2"
    assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert st["addresses"] == [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "n1"}]
    assert st["nodeInfo"]["kubeletVersion"] == "v1.35.0-tinykube"
    assert st["nodeInfo"]["containerRuntimeVersion"] == "process://tinykube"
    assert list(st["nodeInfo"]) == NODE_INFO_FIELDS
    assert st["nodeInfo"]["kubeProxyVersion"] == ""  # cleared by a 1.35 kubelet, but always written
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready == {
        "type": "Ready",
        "status": "True",
        "lastHeartbeatTime": "T",
        "lastTransitionTime": "T",
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
    }
    assert [c["type"] for c in st["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]


def test_default_allocatable() -> None:
    alloc = default_allocatable({"cpu": "4", "memory": "1Gi", "ephemeral-storage": "1000", "pods": "110"})
    assert alloc == {"cpu": "4", "memory": f"{924 * 1024}Ki", "ephemeral-storage": "900", "pods": "110"}


def test_lease_object() -> None:
    lease = lease_object("n1", 40, node_uid="uid-1", renew_time="2026-01-01T00:00:00.000000Z")
    assert lease["metadata"] == {
        "name": "n1",
        "namespace": "kube-node-lease",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-1"}],
    }
    assert lease["spec"] == {
        "holderIdentity": "n1",
        "leaseDurationSeconds": 40,
        "renewTime": "2026-01-01T00:00:00.000000Z",
    }


def test_default_pod_cidr_in_loopback_not_127_0() -> None:
    for name in ("a", "b", "node-1", "kind-worker", "x" * 50):
        net = ipaddress.ip_network(default_pod_cidr(name))
        assert net.subnet_of(ipaddress.ip_network("127.0.0.0/8"))
        assert not net.subnet_of(ipaddress.ip_network("127.0.0.0/16"))
        assert net.prefixlen == 24
    assert default_pod_cidr("a") == default_pod_cidr("a")


def test_ipam(tmp_path: Path) -> None:
    ipam = IPAM("127.5.6.0/24", tmp_path / "ipam")
    a, b = ipam.allocate("uid-a"), ipam.allocate("uid-b")
    assert (a, b) == ("127.5.6.2", "127.5.6.3")
    assert ipam.allocate("uid-a") == a
    ipam.release("uid-a")
    again = IPAM("127.5.6.0/24", tmp_path / "ipam")
    assert again.allocate("uid-c") == "127.5.6.2"
    assert again.allocated() == {"127.5.6.2": "uid-c", "127.5.6.3": "uid-b"}


def test_ipam_records_in_one_file_lowest_free_first(tmp_path: Path) -> None:
    ipam = IPAM("127.5.6.0/24", tmp_path / "ipam")
    ips = [ipam.allocate(f"uid-{i}") for i in range(200)]
    assert ips == [f"127.5.6.{i}" for i in range(2, 202)]
    for i in (7, 3, 150):
        ipam.release(f"uid-{i}")
    assert [ipam.allocate(u) for u in ("new-a", "new-b", "new-c", "new-d")] == [
        "127.5.6.5",
        "127.5.6.9",
        "127.5.6.152",
        "127.5.6.202",
    ]
    # no file per address (creating a file costs more CPU than the allocation itself)
    assert [f.name for f in (tmp_path / "ipam").iterdir()] == ["owners"]
    again = IPAM("127.5.6.0/24", tmp_path / "ipam")
    assert again.allocated() == ipam.allocated()
    assert again.allocate("new-e") == "127.5.6.203"
    with pytest.raises(RuntimeError, match="no free IP"):
        for i in range(60):
            again.allocate(f"more-{i}")
    again.release("uid-0")
    assert again.allocate("last") == "127.5.6.2"


def test_ipam_reads_the_file_per_address_records_of_earlier_versions(tmp_path: Path) -> None:
    d = tmp_path / "ipam"
    d.mkdir()
    (d / "127.5.6.2").write_text("uid-old")
    (d / "127.5.6.4").write_text("uid-other\n")
    ipam = IPAM("127.5.6.0/24", d)
    assert ipam.allocated() == {"127.5.6.2": "uid-old", "127.5.6.4": "uid-other"}
    assert ipam.allocate("uid-new") == "127.5.6.3"
    assert sorted(f.name for f in d.iterdir()) == ["owners"]
    assert IPAM("127.5.6.0/24", d).allocated() == {
        "127.5.6.2": "uid-old",
        "127.5.6.3": "uid-new",
        "127.5.6.4": "uid-other",
    }


def test_ipam_journal_is_compacted(tmp_path: Path) -> None:
    ipam = IPAM("127.5.6.0/24", tmp_path / "ipam")
    ipam.allocate("keep")
    for i in range(3000):
        ipam.allocate(f"pod-{i}")
        ipam.release(f"pod-{i}")
    assert len((tmp_path / "ipam" / "owners").read_text().splitlines()) < 1100
    assert IPAM("127.5.6.0/24", tmp_path / "ipam").allocated() == {"127.5.6.2": "keep"}


def test_simulated_node_reports_every_node_info_field() -> None:
    a = simulated_node("sim-0", "127.128.0.0/24", "32", "256Gi", 110)
    b = simulated_node("sim-1", "127.128.1.0/24", "32", "256Gi", 110)
    info = a["status"]["nodeInfo"]
    assert list(info) == NODE_INFO_FIELDS
    assert info["kubeProxyVersion"] == "" and info["kubeletVersion"] == "v1.35.0-tinykube"
    assert info["containerRuntimeVersion"] == "simulated://tinykube"
    assert all(info[k] for k in NODE_INFO_FIELDS if k != "kubeProxyVersion")
    assert len(info["machineID"]) == 32 and str(uuid.UUID(info["systemUUID"])) == info["systemUUID"]
    assert info["machineID"] != b["status"]["nodeInfo"]["machineID"]
    assert a["status"]["addresses"] == [
        {"type": "InternalIP", "address": "127.128.0.1"},
        {"type": "Hostname", "address": "sim-0"},
    ]
    assert a["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
