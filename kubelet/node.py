"""The kubelet's Node and Lease: pure builders (reused for simulated nodes) and the registration/heartbeat loop."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
import os
import platform
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from apimachinery.errors import StatusError
from apimachinery.quantity import parse_quantity
from client.request import Obj, PatchType
from client.rest import ApiClient

__all__ = [
    "KUBELET_VERSION",
    "NodeAgent",
    "NodeInfo",
    "default_allocatable",
    "host_capacity",
    "host_node_info",
    "lease_object",
    "micro_time",
    "node_conditions",
    "node_object",
    "rfc3339",
    "simulated_node_info",
]

log = logging.getLogger("kubelet.node")

KUBELET_VERSION = "v1.35.0-tinykube"
RUNTIME_VERSION = "process://tinykube"
LEASE_NAMESPACE = "kube-node-lease"
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}
_MI = 2**20


def rfc3339(t: datetime | None = None) -> str:
    """metav1.Time text (seconds, UTC)."""
    return (t or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(t: datetime | None = None) -> str:
    """metav1.MicroTime text (microseconds, UTC)."""
    return (t or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class NodeInfo:
    """status.nodeInfo of a Node."""

    machine_id: str = ""
    system_uuid: str = ""
    boot_id: str = ""
    kernel_version: str = ""
    os_image: str = ""
    operating_system: str = "linux"
    architecture: str = "amd64"
    kubelet_version: str = KUBELET_VERSION
    container_runtime_version: str = RUNTIME_VERSION
    kube_proxy_version: str = ""
    """Deprecated; a 1.35 kubelet clears it (DisableNodeKubeProxyVersion is on by default since 1.33), but the
    Go field has no omitempty, so it is always written."""

    def to_dict(self) -> Obj:
        """The API form (every field, in the order of Go's NodeSystemInfo)."""
        return {
            "machineID": self.machine_id,
            "systemUUID": self.system_uuid,
            "bootID": self.boot_id,
            "kernelVersion": self.kernel_version,
            "osImage": self.os_image,
            "containerRuntimeVersion": self.container_runtime_version,
            "kubeletVersion": self.kubelet_version,
            "kubeProxyVersion": self.kube_proxy_version,
            "operatingSystem": self.operating_system,
            "architecture": self.architecture,
        }


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def host_node_info(node_name: str) -> NodeInfo:
    """nodeInfo of this machine (reads /etc and /proc; systemUUID is per node name so nodes on one host differ)."""
    machine_id = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id") or uuid.uuid4().hex
    os_image = ""
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_image = line.split("=", 1)[1].strip().strip('"')
    return NodeInfo(
        machine_id=machine_id,
        system_uuid=str(uuid.uuid5(uuid.NAMESPACE_OID, f"{machine_id}/{node_name}")),
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        kernel_version=platform.release(),
        os_image=os_image or platform.platform(),
        operating_system="linux",
        architecture=_ARCH.get(platform.machine().lower(), platform.machine().lower()),
    )


@functools.cache
def _host_facts() -> NodeInfo:
    return host_node_info("")


def simulated_node_info(node_name: str, runtime_version: str = "simulated://tinykube") -> NodeInfo:
    """nodeInfo of a simulated node: this host's kernel, OS and architecture, ids derived from the node name."""
    host = _host_facts()
    ids = uuid.uuid5(uuid.NAMESPACE_OID, f"tinykube-simulated/{node_name}")
    return NodeInfo(
        machine_id=ids.hex,
        system_uuid=str(ids),
        boot_id=str(uuid.uuid5(ids, host.boot_id or "boot")),
        kernel_version=host.kernel_version,
        os_image=host.os_image,
        operating_system=host.operating_system,
        architecture=host.architecture,
        container_runtime_version=runtime_version,
    )


def host_capacity(root_dir: Path, cpu: str = "", memory: str = "", max_pods: int = 110) -> dict[str, str]:
    """status.capacity from this host, with cpu / memory overridden when given."""
    mem_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    probe = root_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    disk_kib = shutil.disk_usage(probe).total // 1024
    return {
        "cpu": cpu or str(os.cpu_count() or 1),
        "ephemeral-storage": f"{disk_kib}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": memory or f"{mem_kib}Ki",
        "pods": str(max_pods),
    }


def _ki(value: Decimal) -> str:
    return f"{max(int(value // 1024), 0)}Ki"


def default_allocatable(capacity: Mapping[str, str]) -> dict[str, str]:
    """Allocatable as a kubelet without reservations computes it: memory less the 100Mi hard
    eviction threshold, ephemeral-storage less 10%, the rest as capacity."""
    out = dict(capacity)
    if "memory" in capacity:
        out["memory"] = _ki(parse_quantity(capacity["memory"]) - 100 * _MI)
    if "ephemeral-storage" in capacity:
        eph = parse_quantity(capacity["ephemeral-storage"])
        out["ephemeral-storage"] = str(int(eph * Decimal("0.9")))
    return out


_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


def node_conditions(now: str, transitions: Mapping[str, str] | None = None) -> list[Obj]:
    """The four kubelet conditions (no pressure, Ready) heartbeating at `now`; `transitions` keeps
    each condition's lastTransitionTime (by type) from the previous status."""
    transitions = transitions or {}
    out = [
        {
            "type": t,
            "status": "False",
            "lastHeartbeatTime": now,
            "lastTransitionTime": transitions.get(t, now),
            "reason": reason,
            "message": message,
        }
        for t, reason, message in _CONDITIONS
    ]
    out.append(
        {
            "type": "Ready",
            "status": "True",
            "lastHeartbeatTime": now,
            "lastTransitionTime": transitions.get("Ready", now),
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
        }
    )
    return out


def node_object(
    name: str,
    *,
    address: str,
    kubelet_port: int,
    pod_cidr: str,
    capacity: Mapping[str, str],
    allocatable: Mapping[str, str] | None = None,
    node_info: NodeInfo | None = None,
    labels: Mapping[str, str] | None = None,
    taints: list[Obj] | None = None,
    now: str = "",
) -> Obj:
    """A Node as a kubelet registers it (labels, podCIDR, capacity, addresses, nodeInfo, Ready)."""
    info = node_info or NodeInfo()
    now = now or rfc3339()
    node_labels = {
        "beta.kubernetes.io/arch": info.architecture,
        "beta.kubernetes.io/os": info.operating_system,
        "kubernetes.io/arch": info.architecture,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": info.operating_system,
        **(labels or {}),
    }
    spec: Obj = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]} if pod_cidr else {}
    if taints:
        spec["taints"] = copy.deepcopy(taints)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "capacity": dict(capacity),
            "allocatable": dict(allocatable if allocatable is not None else default_allocatable(capacity)),
            "conditions": node_conditions(now),
            "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "nodeInfo": info.to_dict(),
        },
    }


def lease_object(node_name: str, duration_seconds: int, *, node_uid: str = "", renew_time: str = "") -> Obj:
    """The node's Lease in kube-node-lease (holder = the node, owned by the Node)."""
    meta: Obj = {"name": node_name, "namespace": LEASE_NAMESPACE}
    if node_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": int(duration_seconds),
            "renewTime": renew_time or micro_time(),
        },
    }


@dataclass
class NodeAgent:
    """Registers the Node (or adopts an existing one), then heartbeats its status and Lease."""

    api: ApiClient
    node: Obj
    status_frequency: float = 10.0
    lease_duration: float = 40.0
    uid: str = ""
    registered: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        """The node name."""
        return self.node["metadata"]["name"]

    async def register(self) -> Obj:
        """Create the Node, or adopt the existing one (refreshing its labels, spec and status)."""
        desired = self.node
        try:
            node = await self.api.create("nodes", desired)
            log.info("registered node %s", self.name)
        except StatusError as e:
            if e.code != 409:
                raise
            node = await self.api.get("nodes", self.name)
            node = copy.deepcopy(node)
            node["metadata"].setdefault("labels", {}).update(desired["metadata"]["labels"])
            node["metadata"].setdefault("annotations", {}).update(desired["metadata"]["annotations"])
            for key in ("podCIDR", "podCIDRs"):
                if key in desired["spec"] and not node.setdefault("spec", {}).get(key):
                    node["spec"][key] = desired["spec"][key]
            node = await self.api.update("nodes", node)
            log.info("adopted existing node %s", self.name)
        self.uid = node["metadata"]["uid"]
        if not (node.get("status") or {}).get("nodeInfo"):
            # the server dropped the status on create: write it through /status
            node = await self.api.update_status("nodes", {**node, "status": desired["status"]})
        else:
            await self.heartbeat(node)
        self.registered.set()
        return node

    async def heartbeat(self, node: Obj | None = None) -> None:
        """Refresh the conditions' lastHeartbeatTime and the rest of the status (re-registering a deleted Node)."""
        if node is None:
            try:
                node = await self.api.get("nodes", self.name)
            except StatusError as e:
                if e.code != 404:
                    raise
                log.warning("node %s was deleted; registering it again", self.name)
                await self.register()
                return
        old = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
        now = rfc3339()
        transitions = {}
        for c in node_conditions(now):
            prev = old.get(c["type"])
            if prev and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
                transitions[c["type"]] = prev["lastTransitionTime"]
        status = {**self.node["status"], "conditions": node_conditions(now, transitions)}
        await self.api.patch("nodes", self.name, {"status": status}, subresource="status", patch_type=PatchType.MERGE)

    async def renew_lease(self) -> None:
        """Create or renew the node Lease."""
        lease = lease_object(self.name, int(self.lease_duration), node_uid=self.uid)
        try:
            current = await self.api.get("leases", self.name, LEASE_NAMESPACE)
        except StatusError as e:
            if e.code != 404:
                raise
            await self.api.create("leases", lease, LEASE_NAMESPACE)
            return
        current = copy.deepcopy(current)
        current["spec"] = {**(current.get("spec") or {}), **lease["spec"]}
        if self.uid and not current["metadata"].get("ownerReferences"):
            current["metadata"]["ownerReferences"] = lease["metadata"]["ownerReferences"]
        await self.api.update("leases", current, LEASE_NAMESPACE)

    async def run(self) -> None:
        """Register (retrying), then heartbeat status and Lease until cancelled."""
        delay = 0.5
        while True:
            try:
                await self.register()
                break
            except (StatusError, OSError, Exception) as e:  # keep trying: the apiserver may not be up yet
                log.warning("node registration failed: %s; retrying in %.1fs", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 7.0)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._loop(self.renew_lease, self.lease_duration / 4))
            tg.create_task(self._loop(self.heartbeat, self.status_frequency, initial=self.status_frequency))

    @staticmethod
    async def _loop(fn: Any, period: float, initial: float = 0.0) -> None:
        await asyncio.sleep(initial)
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                try:
                    await fn()
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.warning("%s failed: %s", getattr(fn, "__name__", fn), e)
            await asyncio.sleep(period)
