"""Simulated nodes (like kubemark's hollow nodes or KWOK): one process registers N Nodes, renews
their Leases, and reports the pods bound to them Running and Ready without starting anything.

For scale tests and benchmarks of the control plane: the scheduler, controllers and apiserver
see real Node and Pod objects that behave like a healthy cluster's. Deleted pods are removed at
once (no processes to stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import logging
import random
from collections.abc import Hashable

from apimachinery.errors import StatusError
from apimachinery.quantity import parse_quantity
from client.component import ComponentOptions, run_component
from client.events import now_rfc3339
from client.informer import Informer
from client.request import DeleteOptions, Obj, PatchType, Preconditions, Selectors
from client.rest import ApiClient
from client.workqueue import WorkQueue, default_controller_rate_limiter, process_items
from kubelet.auth import AuthOptions
from kubelet.node import LEASE_NAMESPACE, lease_object, micro_time, simulated_node_info
from kubelet.simulated_stats import SimulatedStats, StatsServer

__all__ = ["SimulatedNodes", "run_simulated", "simulated_addresses", "simulated_cidrs", "simulated_node"]

log = logging.getLogger("kubelet.simulated")

KUBELET_PORT = 10250
FIRST_OCTET = 128
RENEW_JITTER = 0.04  # upstream's node lease controller: wait.JitterUntil(sync, renewInterval, 0.04)


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
        {"type": t, "status": "True", "lastTransitionTime": now}  # no lastProbeTime: see kubelet/status.py
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
    """N hollow nodes in one process: `workers` pod status writers, `concurrency` registrations and lease
    renewals in flight at once."""

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
        concurrency: int = 16,
        first_octet: int = FIRST_OCTET,
        kubelet_port: int = KUBELET_PORT,
    ) -> None:
        self.api = api
        self.cidrs = simulated_cidrs(prefix, count, first_octet)
        self._networks = {n: ipaddress.ip_network(c) for n, c in self.cidrs.items()}  # parsed once, not per pod
        self.names = list(self.cidrs)
        self.cpu, self.memory, self.max_pods = cpu, memory, max_pods
        self.lease_duration = lease_duration
        self.kubelet_port = kubelet_port
        self.workers = workers
        self.concurrency = concurrency
        """Node registrations, and lease renewals, in flight at once."""
        self._rng = random.Random()
        self._next_ip: dict[str, int] = dict.fromkeys(self.names, 2)
        self.queue: WorkQueue[Hashable] = WorkQueue(default_controller_rate_limiter())
        # bound pods only (as KWOK's pod controller): a pending pod's creation is none of a node's business
        self.pods = Informer(api, "pods", selectors=Selectors.of(fields="spec.nodeName!="))
        self.registered = asyncio.Event()

    async def run(self) -> None:
        """Register, then heartbeat and serve pods until cancelled."""
        await self._register_all()
        self.registered.set()
        self.pods.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n), on_delete=lambda _o: None)
        self.pods.start()
        tasks = [asyncio.create_task(self._renewals())]
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

    async def _register_all(self) -> None:
        """Register every node, `concurrency` at a time: all at once would queue in the client's connection pool
        (whose bookkeeping is quadratic in the waiting requests) and in the apiserver."""
        names = iter(self.names)

        async def registrar() -> None:
            for name in names:  # one iterator shared by the registrars: each name is taken once
                await self._register(name)

        await asyncio.gather(*(registrar() for _ in range(min(self.concurrency, len(self.names)))))

    async def _register(self, name: str) -> None:
        """Create the Node with its status (as a kubelet registers), then its Lease: two writes."""
        body = simulated_node(name, self.cidrs[name], self.cpu, self.memory, self.max_pods, self.kubelet_port)
        try:
            node = await self.api.create("nodes", body)
        except StatusError as e:
            if e.code != 409:
                raise
            node = {**await self.api.get("nodes", name), "status": {}}
        if not (node.get("status") or {}).get("nodeInfo"):  # an existing Node: write our status over it
            node = await self.api.update_status("nodes", {**node, "status": body["status"]})
        lease = lease_object(name, self.lease_duration, node_uid=node["metadata"]["uid"])
        try:
            await self.api.create("leases", lease, namespace=LEASE_NAMESPACE)
        except StatusError as e:
            if e.code != 409:
                raise
            await self._renew(name)

    async def _renew(self, name: str) -> None:
        spec = {"holderIdentity": name, "leaseDurationSeconds": self.lease_duration, "renewTime": micro_time()}
        try:
            await self.api.patch("leases", name, {"spec": spec}, namespace=LEASE_NAMESPACE)
        except StatusError as e:
            if e.code != 404:
                raise
            await self.api.create("leases", lease_object(name, self.lease_duration), namespace=LEASE_NAMESPACE)

    async def _renewals(self) -> None:
        """Renew each Lease every renew interval (a quarter of its duration), as upstream's per-node lease
        controller does (`wait.JitterUntil(sync, renewInterval, 0.04)`): the nodes' first renewals are spread
        evenly over one interval, each next one comes an interval (plus up to 4 % jitter) after the last, and
        at most `concurrency` are in flight (a renewal falling behind delays the next, it does not pile up)."""
        if not self.names:
            return
        loop = asyncio.get_running_loop()
        interval = self.lease_duration / 4
        step = interval / len(self.names)
        start = loop.time() + interval
        due = [(start + i * step, name) for i, name in enumerate(self.names)]  # sorted: already a heap
        ready: asyncio.Queue[str] = asyncio.Queue(maxsize=self.concurrency)

        async def renewer() -> None:
            while True:
                name = await ready.get()
                try:
                    await self._renew(name)
                except Exception as e:  # one node's renewal failing must not stop the others'
                    log.warning("lease renewal of %s failed: %s", name, e)

        renewers = [asyncio.create_task(renewer()) for _ in range(min(self.concurrency, len(self.names)))]
        try:
            while True:
                when, name = heapq.heappop(due)
                if (delay := when - loop.time()) > 0:
                    await asyncio.sleep(delay)
                await ready.put(name)
                nxt = max(when, loop.time()) + interval * (1 + RENEW_JITTER * self._rng.random())
                heapq.heappush(due, (nxt, name))
        finally:
            for t in renewers:
                t.cancel()
            await asyncio.gather(*renewers, return_exceptions=True)

    def addresses(self) -> dict[str, str]:
        """Each node's InternalIP (the first address of its pod CIDR), by node name."""
        return {n: str(next(net.hosts())) for n, net in self._networks.items()}

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
        net = self._networks[node]
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
    lease_duration: int = 40,
) -> None:
    """Run `count` simulated nodes named `<prefix>-<i>` as a component process; each serves plausible
    resource stats at its InternalIP and `kubelet_port` (kubelet/simulated_stats.py), with the TLS and
    the authentication and authorization a kubelet's server has under the same flags (`auth`)."""
    auth = auth or AuthOptions()
    ready = asyncio.Event()
    opts.ready = ready.is_set

    async def main(api: ApiClient) -> None:
        nodes = SimulatedNodes(
            api,
            prefix,
            count,
            cpu=cpu,
            memory=memory,
            max_pods=max_pods,
            lease_duration=lease_duration,
            kubelet_port=kubelet_port,
        )
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
        if housekeeping_interval > 0:
            await server.start()
        try:
            await nodes.run()
        finally:
            await server.stop()

    run_component(opts, main)
