"""The kubelet: registers the node, watches the pods bound to it and runs one worker per pod."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from client.events import EventRecorder
from client.informer import InformerFactory
from client.request import Obj, Selectors
from client.rest import ApiClient
from client.urgency import Urgency
from kubelet.dns import DNSConfigurer
from kubelet.image_pull import ImageManager
from kubelet.node import NodeAgent, default_allocatable, host_capacity, host_node_info, node_object
from kubelet.object_watch import PodObjects
from kubelet.pod_sync import SyncDeps
from kubelet.process_runtime import ProcessRuntime
from kubelet.runtime import ContainerRuntime
from kubelet.service_env import service_env
from kubelet.tokens import TokenManager
from kubelet.volumes import VolumeManager
from kubelet.worker import PodWorker, pods_differ_semantically

__all__ = ["STATUS_WRITERS", "Kubelet", "KubeletConfig"]

log = logging.getLogger("kubelet")

STATUS_WRITERS = 4  # pod status writes in flight at once


@dataclass
class KubeletConfig:
    """The kubelet's settings (its command-line flags)."""

    node_name: str
    root_dir: Path
    pod_cidr: str
    node_ip: str = "127.0.0.1"
    """The node's InternalIP: pods' hostIP, hostNetwork pods' IP; the kubelet server binds it."""
    address: str = ""
    """Where the kubelet server listens ("" = node_ip)."""
    port: int = 10250
    cpu: str = ""
    memory: str = ""
    max_pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Obj] = field(default_factory=list)
    status_frequency: float = 10.0
    lease_duration: float = 40.0
    shutdown_grace: float = 5.0
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    resolv_conf: str = "/etc/resolv.conf"
    """The host resolv.conf pods' DNS config starts from ("" = none)."""

    @property
    def bind_address(self) -> str:
        """The kubelet server's listen address."""
        return self.address or self.node_ip


class Kubelet:
    """Node agent: Node + Lease heartbeat, pod informer, per-pod workers on a container runtime."""

    def __init__(self, api: ApiClient, cfg: KubeletConfig, runtime: ContainerRuntime | None = None) -> None:
        self.api = api
        self.cfg = cfg
        self.address = cfg.node_ip
        self.dns = DNSConfigurer(cfg.cluster_dns, cfg.cluster_domain, cfg.resolv_conf)
        cfg.root_dir.mkdir(parents=True, exist_ok=True)
        self.runtime: ContainerRuntime = runtime or ProcessRuntime(cfg.root_dir, cfg.pod_cidr)
        capacity = host_capacity(cfg.root_dir, cfg.cpu, cfg.memory, cfg.max_pods)
        self.allocatable: Mapping[str, str] = default_allocatable(capacity)
        node = node_object(
            cfg.node_name,
            address=cfg.node_ip,
            kubelet_port=cfg.port,
            pod_cidr=cfg.pod_cidr,
            capacity=capacity,
            allocatable=dict(self.allocatable),
            node_info=host_node_info(cfg.node_name),
            labels=cfg.labels,
            taints=cfg.taints,
        )
        self.agent = NodeAgent(api, node, cfg.status_frequency, cfg.lease_duration)
        # starting containers and writing their status come first; events trail a burst (bounded)
        self.urgency = Urgency()
        self.events = EventRecorder(api, "kubelet", host=cfg.node_name, urgency=self.urgency)
        self.factory = InformerFactory(api)
        self.pods = self.factory.informer("pods", selectors=Selectors.of(fields={"spec.nodeName": cfg.node_name}))
        # only what this node's pods use, one object at a time: the Node authorizer allows no more
        self.objects = PodObjects(api, self._on_config)
        self.services = self.factory.informer("services")
        self.volumes = VolumeManager(self.get_configmap, self.get_secret, self.allocatable)
        self.tokens = TokenManager(api)
        self.workers: dict[str, PodWorker] = {}
        # pod status writes go out a few at a time, first come first served (as upstream's status manager
        # writes one by one): a burst of pods then gets Ready in the order their containers started instead of
        # all at the end, over a few kept-alive connections instead of one new TLS connection per pod
        self.status_slots = asyncio.Semaphore(STATUS_WRITERS)
        # probes: no certificate checks (as the kubelet's), no proxies from the environment
        self.http = httpx.AsyncClient(verify=False, follow_redirects=False, trust_env=False)
        self.synced = False
        self.sync_deps = SyncDeps(
            runtime=self.runtime,
            api=api,
            events=self.events,
            objects=self.objects,
            volumes=self.volumes,
            tokens=self.tokens,
            dns=self.dns,
            images=ImageManager(self.runtime),
            http=self.http,
            status_slots=self.status_slots,
            urgency=self.urgency,
            node_ip=cfg.node_ip,
            allocatable=self.allocatable,
            get_configmap=self.get_configmap,
            get_secret=self.get_secret,
            service_env=self.service_env,
            node_event=self.node_event,
        )

    # --- lookups for env and volumes ---------------------------------------------------------

    def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The ConfigMap as last seen (watched while a pod of this node uses it)."""
        return self.objects.configmaps.get(namespace, name)

    def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The Secret as last seen (watched while a pod of this node uses it)."""
        return self.objects.secrets.get(namespace, name)

    def service_env(self, namespace: str, enable_service_links: bool) -> dict[str, str]:
        """The Service variables of a container of a pod in `namespace` (from the informer cache)."""
        return service_env(self.services.store.list(), namespace, enable_service_links)

    def node_event(self, type_: str, reason: str, message: str) -> None:
        """Record an Event about this node (its reference carries the node name as uid, as the kubelet's)."""
        name = self.cfg.node_name
        self.events.record({"kind": "Node", "metadata": {"name": name, "uid": name}}, type_, reason, message)

    # --- pod events ----------------------------------------------------------------------------

    def _on_pod(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        self.objects.track(pod)
        worker = self.workers.get(uid)
        if worker is None:
            worker = self.workers[uid] = PodWorker(self.sync_deps, pod, self.worker_done)
            worker.start()
        else:
            worker.update(pod)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        worker = self.workers.get(new["metadata"]["uid"])
        if worker is not None and not pods_differ_semantically(old, new):
            # the status alone changed, most often by this kubelet's own status write: as upstream's pod config
            # makes it a RECONCILE, not an UPDATE, it starts no sync (a burst's pods were each synced once more)
            worker.reconcile(new)
            return
        self._on_pod(new)

    def _on_pod_delete(self, pod: Obj) -> None:
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.remove()

    def _on_config(self) -> None:
        if self.synced:
            for w in self.workers.values():
                w.kick()

    def _on_exit(self, uid: str, _container_id: str) -> None:
        worker = self.workers.get(uid)
        if worker is not None:
            worker.kick()

    def worker_done(self, worker: PodWorker) -> None:
        """A worker finished (its pod is gone)."""
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]
            self.objects.forget(worker.uid)

    def ready(self) -> bool:
        """Registered and synced."""
        return self.synced and self.agent.registered.is_set()

    # --- main ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled; on the way out every container is stopped."""
        await self.runtime.start()
        self.runtime.on_exit(self._on_exit)
        self.events.start()
        agent = asyncio.create_task(self.agent.run(), name="node-agent")
        try:
            await self.agent.registered.wait()
            self.factory.start()
            # a container's env needs the Services seen at least once (KUBERNETES_SERVICE_HOST above all)
            await self.services.wait_for_sync()
            self.pods.add_handler(self._on_pod, self._on_pod_update, self._on_pod_delete)
            await self.pods.wait_for_sync()
            self.synced = True
            await self._remove_orphans()
            await agent
        finally:
            await self.shutdown(agent)

    async def _remove_orphans(self) -> None:
        known = {p["metadata"]["uid"] for p in self.pods.store.list()}
        for sb in self.runtime.sandboxes():
            if sb.uid not in known:
                log.info("removing sandbox of vanished pod %s/%s", sb.namespace, sb.name)
                await self.runtime.remove_pod_sandbox(sb.uid)

    async def shutdown(self, agent: asyncio.Task[None] | None = None) -> None:
        """Stop workers, probes and every container (tinykube leaves no process behind)."""
        if agent is not None:
            agent.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await agent
        await asyncio.gather(*(w.stop() for w in list(self.workers.values())), return_exceptions=True)
        await self.runtime.shutdown(self.cfg.shutdown_grace)
        await self.factory.shutdown()
        await self.objects.stop()
        await self.events.stop()
        await self.http.aclose()
