"""Address plan of a cluster on one machine, and the slot that keeps two clusters apart.

Every cluster on a machine holds a *slot* k (0-31): an exclusive lock on a file under the
system's temp dir, kept for the cluster's lifetime and recorded in its data dir so a restarted
cluster gets its addresses back. From k come all of its ranges, none shared with another slot:

| what                    | slot k                   | k = 0            |
|-------------------------|--------------------------|------------------|
| node i's address        | 127.0.(100+k).i          | 127.0.100.1 …    |
| pod network             | 127.(1+k).0.0/16         | 127.1.0.0/16     |
| node i's podCIDR        | 127.(1+k).(i-1).0/24     | 127.1.0.0/24 …   |
| Service range           | 127.(96+k).0.0/16        | 127.96.0.0/16    |
| load-balancer pool      | 127.200.k.0/24           | 127.200.0.0/24   |
| cluster DNS add-on      | 127.0.(100+k).253        |                  |
| ingress controller      | 127.0.(100+k).252        |                  |
| dashboard               | 127.0.(100+k).251:9090   |                  |
| apiserver (secure port) | 127.0.(100+k).254:6443   | 127.0.100.254    |
| metrics-server          | 127.0.(100+k).250:10250  |                  |
| simulated node i        | 127.(128+i//256).(i%256).1, port 20250+k | 127.128.0.1:20250 … |

Ports then need no choosing: a node's kubelet (10250), kube-proxy (10256, 10249) and NodePorts
bind its own address; ClusterIPs and load-balancer IPs are the cluster's own. Simulated nodes (up to
5,000, one /24 podCIDR each, their InternalIP its first address) are too many to give every slot
addresses of its own: every slot's simulated node i has the same address, and the slot picks the
port their stats are served on (each Node's `daemonEndpoints.kubeletEndpoint.Port` says which).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["SLOTS", "ClusterNetwork", "SlotLock", "claim_slot"]

SLOTS = 32


@dataclass(frozen=True)
class ClusterNetwork:
    """The addresses and ranges of the cluster in slot `slot`."""

    slot: int

    def __post_init__(self) -> None:
        if not 0 <= self.slot < SLOTS:
            raise ValueError(f"slot must be in 0..{SLOTS - 1}, not {self.slot}")

    def node_ip(self, index: int) -> str:
        """Address of node `index` (0-based)."""
        if not 0 <= index < 250:
            raise ValueError("at most 250 nodes run processes")
        return f"127.0.{100 + self.slot}.{index + 1}"

    @property
    def pod_network(self) -> str:
        """The cluster's pod CIDR."""
        return f"127.{1 + self.slot}.0.0/16"

    def pod_cidr(self, index: int) -> str:
        """The /24 podCIDR of node `index` (0-based)."""
        return f"127.{1 + self.slot}.{index}.0/24"

    @property
    def service_range(self) -> str:
        """The Service cluster-IP range."""
        return f"127.{96 + self.slot}.0.0/16"

    def service_ip(self, n: int) -> str:
        """The n-th address of the Service range (1: `kubernetes`, 10: `kube-dns`)."""
        return str(ipaddress.ip_network(self.service_range).network_address + n)

    @property
    def dns_service_ip(self) -> str:
        """ClusterIP of kube-system/kube-dns (the 10th address, as kubeadm picks it)."""
        return self.service_ip(10)

    @property
    def load_balancer_range(self) -> str:
        """Pool of LoadBalancer ingress IPs."""
        return f"127.200.{self.slot}.0/24"

    @property
    def dns_address(self) -> str:
        """Where the cluster DNS add-on listens."""
        return f"127.0.{100 + self.slot}.253"

    @property
    def dashboard_address(self) -> str:
        """Where the dashboard add-on serves its page (port 9090)."""
        return f"127.0.{100 + self.slot}.251"

    @property
    def apiserver_address(self) -> str:
        """Where the apiserver serves its secure port (6443) and what the `kubernetes` Endpoints name."""
        return f"127.0.{100 + self.slot}.254"

    def node_ips(self) -> list[str]:
        """Every node address the slot has room for (the apiserver's serving certificate names them all)."""
        return [self.node_ip(i) for i in range(250)]

    @property
    def metrics_address(self) -> str:
        """Where the metrics-server add-on serves the Metrics API (port 10250)."""
        return f"127.0.{100 + self.slot}.250"

    @property
    def simulated_kubelet_port(self) -> int:
        """The port the cluster's simulated nodes serve their stats on (their addresses are every slot's)."""
        return 20250 + self.slot

    @property
    def ingress_address(self) -> str:
        """Where the ingress controller add-on listens."""
        return f"127.0.{100 + self.slot}.252"


class SlotLock:
    """An exclusive hold on one slot; released by `release()` or when the process ends."""

    def __init__(self, slot: int, handle: IO[str]) -> None:
        self.slot = slot
        self._handle: IO[str] | None = handle

    @property
    def network(self) -> ClusterNetwork:
        """The address plan of this slot."""
        return ClusterNetwork(self.slot)

    def release(self) -> None:
        """Give the slot back."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _lock_dir() -> Path:
    d = Path(os.environ.get("TINYKUBE_SLOT_DIR") or Path(tempfile.gettempdir()) / "tinykube-slots")
    d.mkdir(mode=0o1777, parents=True, exist_ok=True)
    return d


def _try_lock(slot: int) -> SlotLock | None:
    path = _lock_dir() / f"slot-{slot}.lock"
    handle = open(path, "a+")  # held open: the lock lasts as long as the file is open
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666)
    return SlotLock(slot, handle)


def claim_slot(data_dir: Path, wanted: int | None = None) -> SlotLock:
    """Hold a slot for the cluster in `data_dir`: `wanted`, else the one recorded there (a cluster
    coming back keeps its addresses), else the lowest free one. Raises RuntimeError when taken."""
    record = data_dir / "slot"
    if wanted is None and record.exists():
        with contextlib.suppress(ValueError):
            wanted = int(record.read_text().strip())
    if wanted is not None:
        ClusterNetwork(wanted)  # validates the range
        lock = _try_lock(wanted)
        if lock is None:
            raise RuntimeError(
                f"slot {wanted} (node addresses 127.0.{100 + wanted}.x) is used by another tinykube cluster here"
            )
    else:
        lock = next((lk for lk in map(_try_lock, range(SLOTS)) if lk is not None), None)
        if lock is None:
            raise RuntimeError(f"all {SLOTS} tinykube slots on this machine are in use")
    data_dir.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{lock.slot}\n")
    return lock
