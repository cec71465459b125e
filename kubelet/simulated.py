"""Simulated nodes (like kubemark's hollow nodes or KWOK): one process registers N Nodes, renews
their Leases, and reports the pods bound to them Running and Ready without starting anything.

For scale tests and benchmarks of the control plane: the scheduler, controllers and apiserver
see real Node and Pod objects that behave like a healthy cluster's. Deleted pods are removed at
once (no processes to stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Hashable
from datetime import UTC, datetime

from apimachinery.errors import StatusError
from apimachinery.quantity import parse_quantity
from client.component import ComponentOptions, run_component
from client.events import now_rfc3339
from client.informer import Informer
from client.request import DeleteOptions, Obj, PatchType, Preconditions
from client.rest import ApiClient
from client.workqueue import WorkQueue, default_controller_rate_limiter, process_items
from kubelet.auth import AuthOptions
from kubelet.node import simulated_node_info
from kubelet.simulated_stats import SimulatedStats, StatsServer

__all__ = ["SimulatedNodes", "run_simulated", "simulated_addresses", "simulated_cidrs", "simulated_node"]

log = logging.getLogger("kubelet.simulated")

KUBELET_PORT = 10250
FIRST_OCTET = 128


def simulated_cidrs(prefix: str, count: int, first_octet: int = FIRST_OCTET) -> dict[str, str]:
    """The pod CIDR of each simulated node `<prefix>-<i>`, by name."""
    return {f"{prefix}-{i}": f"127.{first_octet + i // 256}.{i % 256}.0/24" for i in range(count)}


def simulated_addresses(prefix: str, count: int, first_octet: int = FIRST_OCTET) -> dict[str, str]:
    """Each simulated node's InternalIP (the first address of its pod CIDR), by name: where its stats are
    served (and what its serving certificate must name)."""
    cidrs = simulated_cidrs(prefix, count, first_octet)
    return {n: str(next(ipaddress.ip_network(c).hosts())) for n, c in cidrs.items()}


def simulated_node(
    name: str, pod_cidr: str, cpu: str, memory: str, max_pods: int, kubelet_port: int = KUBELET_PORT
) -> Obj:
    """A Ready Node object as a healthy kubelet would register it: its InternalIP is the first address of its
    pod CIDR (the hostIP its pods report), and nodeInfo carries every field a real kubelet writes."""
    now = now_rfc3339()
    info = simulated_node_info(name)
    resources = {"cpu": cpu, "memory": memory, "pods": str(max_pods), "ephemeral-storage": "100Gi"}

    def cond(type_: str, status: str, reason: str, message: str) -> Obj:
        return {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": info.architecture,
                "type": "simulated",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "tinykube.io/simulated": "true"},
        },
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": str(next(ipaddress.ip_network(pod_cidr).hosts()))},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "nodeInfo": info.to_dict(),
            "conditions": [
                cond(
                    "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"
                ),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
        },
    }


def _running_status(pod: Obj, pod_ip: str, host_ip: str) -> Obj:
    now = now_rfc3339()
    spec = pod.get("spec") or {}
    conds = [
        {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
        for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
    ]
    containers = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            "containerID": f"simulated://{c['name']}",
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": now}},
        }
        for c in spec.get("containers") or []
    ]
    return {
        "phase": "Running",
        "conditions": conds,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": now,
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    }


class SimulatedNodes:
    """N hollow nodes in one process."""

    def __init__(
        self,
        api: ApiClient,
        prefix: str,
        count: int,
        *,
        cpu: str = "32",
        memory: str = "256Gi",
        max_pods: int = 110,
        lease_duration: int = 40,
        workers: int = 16,
        first_octet: int = FIRST_OCTET,
        kubelet_port: int = KUBELET_PORT,
    ) -> None:
        self.api = api
        self.cidrs = simulated_cidrs(prefix, count, first_octet)
        self.names = list(self.cidrs)
        self.cpu, self.memory, self.max_pods = cpu, memory, max_pods
        self.lease_duration = lease_duration
        self.kubelet_port = kubelet_port
        self.workers = workers
        self._next_ip: dict[str, int] = dict.fromkeys(self.names, 2)
        self.queue: WorkQueue[Hashable] = WorkQueue(default_controller_rate_limiter())
        self.pods = Informer(api, "pods")
        self.registered = asyncio.Event()

    async def run(self) -> None:
        """Register, then heartbeat and serve pods until cancelled."""
        await asyncio.gather(*(self._register(n) for n in self.names))
        self.registered.set()
        self.pods.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n), on_delete=lambda _o: None)
        self.pods.start()
        tasks = [asyncio.create_task(self._heartbeat())]
        tasks += [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shut_down()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await self.pods.stop()

    async def _register(self, name: str) -> None:
        body = simulated_node(name, self.cidrs[name], self.cpu, self.memory, self.max_pods, self.kubelet_port)
        try:
            created = await self.api.create("nodes", body)
        except StatusError as e:
            if e.code != 409:
                raise
            created = await self.api.get("nodes", name)
        created["status"] = body["status"]
        await self.api.update_status("nodes", created)
        await self._renew(name)

    async def _renew(self, name: str) -> None:
        spec = {"holderIdentity": name, "leaseDurationSeconds": self.lease_duration, "renewTime": _micro_now()}
        try:
            await self.api.patch("leases", name, {"spec": spec}, namespace="kube-node-lease")
        except StatusError as e:
            if e.code != 404:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}, "spec": spec}
            await self.api.create("leases", body, namespace="kube-node-lease")

    async def _heartbeat(self) -> None:
        period = self.lease_duration / 4
        while True:
            await asyncio.sleep(period)
            results = await asyncio.gather(*(self._renew(n) for n in self.names), return_exceptions=True)
            for r in results:
                if isinstance(r, Exception):
                    log.warning("lease renewal failed: %s", r)

    def addresses(self) -> dict[str, str]:
        """Each node's InternalIP (the first address of its pod CIDR), by node name."""
        return {n: str(next(ipaddress.ip_network(c).hosts())) for n, c in self.cidrs.items()}

    def _enqueue(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") in self.cidrs:
            meta = pod["metadata"]
            self.queue.add(f"{meta['namespace']}/{meta['name']}")

    async def _worker(self) -> None:
        await process_items(self.queue, lambda key: self._sync(str(key)), log)

    async def _sync(self, key: str) -> None:
        pod = self.pods.store.get(key)
        if pod is None:
            return
        meta, node = pod["metadata"], pod["spec"]["nodeName"]
        if meta.get("deletionTimestamp"):
            opts = DeleteOptions(grace_period_seconds=0, preconditions=Preconditions(uid=meta["uid"]))
            with contextlib.suppress(StatusError):
                await self.api.delete("pods", meta["name"], meta["namespace"], options=opts)
            return
        if (pod.get("status") or {}).get("phase") == "Running":
            return
        net = ipaddress.ip_network(self.cidrs[node])
        host_ip = str(net.network_address + 1)
        pod_ip = str(net.network_address + self._next_ip[node])
        self._next_ip[node] = self._next_ip[node] % 250 + 2
        await self.api.patch(
            "pods",
            meta["name"],
            {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": _running_status(pod, pod_ip, host_ip)},
            namespace=meta["namespace"],
            subresource="status",
            patch_type=PatchType.MERGE,
        )


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_simulated(
    opts: ComponentOptions,
    prefix: str,
    count: int,
    cpu: str,
    memory: str,
    max_pods: int,
    kubelet_port: int = KUBELET_PORT,
    housekeeping_interval: float = 10.0,
    auth: AuthOptions | None = None,
) -> None:
    """Run `count` simulated nodes named `<prefix>-<i>` as a component process; each serves plausible
    resource stats at its InternalIP and `kubelet_port` (kubelet/simulated_stats.py), with the TLS and
    the authentication and authorization a kubelet's server has under the same flags (`auth`)."""
    auth = auth or AuthOptions()
    ready = asyncio.Event()
    opts.ready = ready.is_set

    async def main(api: ApiClient) -> None:
        nodes = SimulatedNodes(api, prefix, count, cpu=cpu, memory=memory, max_pods=max_pods, kubelet_port=kubelet_port)
        waiter = asyncio.create_task(nodes.registered.wait())
        waiter.add_done_callback(lambda _: ready.set())
        stats = SimulatedStats(
            nodes.addresses(),
            nodes.pods.store.list,
            memory_capacity=int(parse_quantity(memory)),
            interval=housekeeping_interval,
        )
        by_address = {ip: name for name, ip in nodes.addresses().items()}
        server = StatsServer(
            list(by_address),
            kubelet_port,
            stats.latest,
            tls=auth.tls(),
            auth=auth.build(api, lambda address: by_address.get(address, "")),
        )
        tasks = []
        if housekeeping_interval > 0:
            await server.start()
            tasks.append(asyncio.create_task(stats.run(), name="simulated-stats"))
        try:
            await nodes.run()
        finally:
            for t in tasks:
                t.cancel()
            await server.stop()

    run_component(opts, main)
