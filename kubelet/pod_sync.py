"""Syncing one pod: makes the runtime match the pod spec (sandbox, volumes, init containers in order,
containers with restart policy and crash-loop back-off, probes, graceful termination) and writes status.

The plan of each pass comes from `pod_actions.compute_pod_actions`; this module carries it out through
the `runtime.ContainerRuntime` interface, so it works the same on every runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from apimachinery.errors import StatusError
from apimachinery.quantity import parse_quantity
from client.events import EventRecorder
from client.request import DeleteOptions, Obj, PatchType, Preconditions
from client.rest import ApiClient
from client.urgency import Urgency
from kubelet.dns import (
    DNSConfigurer,
    host_network_hosts,
    kernel_nodename,
    managed_hosts,
    pod_hostname_and_domain,
    resolv_conf_text,
)
from kubelet.envvars import ConfigError, container_env, expand_command, expand_list
from kubelet.expansion import expand
from kubelet.hooks import hook_failure_message, run_hook
from kubelet.image_pull import ImageManager
from kubelet.journal import write_file
from kubelet.object_watch import PodObjects
from kubelet.pod_actions import ContainerFacts, PodActions, PodRuntimeStatus, compute_pod_actions
from kubelet.probes import ProbeWorker
from kubelet.runtime import (
    ContainerConfig,
    ContainerRuntime,
    ContainerState,
    ContainerStatus,
    CreateContainerError,
    Mount,
    Sandbox,
    SandboxConfig,
)
from kubelet.status import ContainerView, container_status, pod_status, status_changed
from kubelet.tokens import TokenError, TokenManager, token_sources
from kubelet.volumes import VolumeError, VolumeManager

__all__ = ["PodSync", "SyncDeps", "go_duration", "read_host_file"]

log = logging.getLogger("kubelet.sync")

BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0
OBJECTS_TIMEOUT = 10.0  # seconds a sync waits for the first list of a ConfigMap or Secret it uses
ETC_HOSTS = "/etc/hosts"
ETC_HOSTS_FILE = "etc-hosts"
RESOLV_CONF = "resolv.conf"


_host_files: dict[str, tuple[tuple[int, int, int], str]] = {}


def read_host_file(path: str) -> str:
    """A host file's text (/etc/resolv.conf, /etc/hosts), read again only once a stat shows it changed."""
    st = os.stat(path)
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    cached = _host_files.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    text = Path(path).read_text()
    _host_files[path] = (key, text)
    return text


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(seconds: float) -> str:
    """A whole number of seconds as Go's time.Duration prints it (10s, 1m20s, 5m0s)."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"


@dataclass
class _CState:
    """What the worker remembers of one container across its instances."""

    name: str
    init: bool
    sidecar: bool = False
    id: str = ""
    instances: int = 0
    restart_count: int = 0
    last_terminated: Obj = field(default_factory=dict)
    waiting: tuple[str, str] | None = None
    backoff: float = 0.0
    backoff_updated: float = 0.0
    recorded_exit: str = ""
    probes: dict[str, ProbeWorker] = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    kill_reason: str = ""
    ephemeral: bool = False
    """An ephemeral container (`kubectl debug`): started once, never restarted."""


@dataclass(frozen=True)
class SyncDeps:
    """Everything syncing a pod needs from the kubelet, passed in explicitly."""

    runtime: ContainerRuntime
    api: ApiClient
    events: EventRecorder
    objects: PodObjects
    volumes: VolumeManager
    tokens: TokenManager
    dns: DNSConfigurer
    images: ImageManager
    http: httpx.AsyncClient
    status_slots: asyncio.Semaphore
    urgency: Urgency
    """Marks starts and status writes in flight, which the kubelet's event writer lets go first."""
    node_ip: str
    """The node's InternalIP: the pods' hostIP, a hostNetwork pod's IP."""
    allocatable: Mapping[str, str]
    get_configmap: Callable[[str, str], Mapping[str, Any] | None]
    get_secret: Callable[[str, str], Mapping[str, Any] | None]
    service_env: Callable[[str, bool], dict[str, str]]
    node_event: Callable[[str, str, str], None]


class PodSync:
    """Makes the runtime match one pod and reports its status (upstream's SyncPod / SyncTerminatingPod /
    SyncTerminatedPod); the pod worker calls it, one call at a time."""

    def __init__(self, deps: SyncDeps, pod: Obj, requeue: Callable[[float], None]) -> None:
        self.deps = deps
        self.runtime = deps.runtime
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self._requeue = requeue
        self._last_status: Obj | None = None
        self._start_time = (pod.get("status") or {}).get("startTime") or ""
        self._sandbox: Sandbox | None = None
        self._volume_paths: dict[str, Path] = {}
        self._volume_error = ""
        self._token_due: float | None = None
        self._finishing = False
        self._failure: tuple[str, str] | None = None
        self._deadline_timer = False
        self.containers: dict[str, _CState] = {}
        spec = pod.get("spec") or {}
        old = {
            s.get("name"): s
            for s in [
                *((pod.get("status") or {}).get("initContainerStatuses") or []),
                *((pod.get("status") or {}).get("containerStatuses") or []),
            ]
        }
        ephemeral_statuses = (pod.get("status") or {}).get("ephemeralContainerStatuses") or []
        self._old_ephemeral: dict[str, Obj] = {s.get("name"): s for s in ephemeral_statuses}
        for init, key in ((True, "initContainers"), (False, "containers")):
            for c in spec.get(key) or []:
                cs = _CState(c["name"], init, sidecar=init and c.get("restartPolicy") == "Always")
                prev = old.get(c["name"]) or {}
                if prev.get("containerID"):  # adopted after a kubelet restart: keep counting restarts
                    cs.restart_count = int(prev.get("restartCount") or 0)
                    cs.instances = 1
                    cs.last_terminated = dict((prev.get("lastState") or {}).get("terminated") or {})
                self.containers[c["name"]] = cs

    # --- plumbing ------------------------------------------------------------------------

    @property
    def key(self) -> str:
        """`namespace/name` of the pod."""
        m = self.pod["metadata"]
        return f"{m.get('namespace')}/{m.get('name')}"

    def kick(self) -> None:
        """Ask the pod worker for a sync now."""
        self._requeue(0.0)

    def kick_later(self, delay: float) -> None:
        """Ask the pod worker for a sync after `delay` seconds."""
        self._requeue(delay)

    def stop(self) -> None:
        """Stop the probes (the worker ends or the kubelet exits)."""
        self._stop_all_probes()

    def _event(self, type_: str, reason: str, message: str, container: str = "", init: bool = False) -> None:
        obj = {**self.pod, "kind": "Pod", "apiVersion": "v1"}
        cs = self.containers.get(container)
        key = "ephemeralContainers" if cs is not None and cs.ephemeral else "initContainers" if init else "containers"
        path = f"spec.{key}{{{container}}}" if container else ""
        self.deps.events.record(obj, type_, reason, message, field_path=path)

    @property
    def spec(self) -> Obj:
        """The pod spec."""
        return self.pod.get("spec") or {}

    def _pod_ref(self) -> str:
        m = self.pod["metadata"]
        return f"{m.get('name')}_{m.get('namespace')}({self.uid})"

    # --- sync ----------------------------------------------------------------------------

    def _track_ephemeral(self) -> None:
        """Remember the ephemeral containers added to the spec since the last sync."""
        for c in self.spec.get("ephemeralContainers") or []:
            if c.get("name") in self.containers:
                continue
            cs = _CState(c["name"], False, ephemeral=True)
            if (self._old_ephemeral.get(c["name"]) or {}).get("containerID"):
                cs.instances = 1  # it ran under a previous kubelet: ephemeral containers never run again
            self.containers[c["name"]] = cs

    def runtime_status(self) -> PodRuntimeStatus:
        """What compute_pod_actions starts from: the runtime's containers and this pod's bookkeeping."""
        self._track_ephemeral()
        facts = {}
        for name, cs in self.containers.items():
            st = self._status(cs)
            facts[name] = ContainerFacts(
                state=st.state if st is not None else None,
                exit_code=st.exit_code if st is not None else 0,
                started=cs.started,
                ran=bool(cs.instances),
                kill_reason=cs.kill_reason,
            )
        phase = (self._last_status or {}).get("phase") or (self.pod.get("status") or {}).get("phase") or ""
        return PodRuntimeStatus(
            sandbox_ready=self._sandbox is not None and self.runtime.sandbox_ready(self.uid),
            sandbox_created=self._sandbox is not None,
            phase=phase,
            finishing=self._finishing,
            containers=facts,
        )

    async def sync_pod(self, pod: Obj) -> None:
        """One reconciliation pass of a pod that is not being deleted."""
        self.pod = pod
        actions = compute_pod_actions(pod, self.runtime_status())
        starting = actions.create_sandbox or actions.init_to_start or actions.containers_to_start
        with self.deps.urgency if starting else contextlib.nullcontext():
            await self._sync_pod(pod, actions)

    async def _sync_pod(self, pod: Obj, actions: PodActions) -> None:
        meta = pod.get("metadata") or {}
        if actions.kill_pod:
            # terminal: nothing runs again; whatever still runs (a sidecar) is stopped
            if any(self._running(cs) for cs in self.containers.values()):
                self._finishing = True
                self._stop_all_probes()
                await self._kill_all(self._grace())
            if any(cs.id for cs in self.containers.values()):
                await self._write_status()
            # else: finished before this kubelet started; its final status stays as written
            return
        if actions.sandbox_changed:
            self._event("Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            self._stop_all_probes()
            await self._kill_all(self._grace())
            if not actions.create_sandbox:
                await self._write_status()
                return
        if actions.create_sandbox:
            try:
                hostname = self._hostname()
            except ValueError as e:
                self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
                await self._write_status()
                return
            try:
                self._sandbox = await self.runtime.run_pod_sandbox(
                    SandboxConfig(
                        self.uid,
                        meta.get("namespace", ""),
                        meta.get("name", ""),
                        host_ip=self.deps.node_ip if self.spec.get("hostNetwork") else "",
                        hostname=hostname,
                    )
                )
            except RuntimeError as e:
                self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
                await self._write_status()
                self.kick_later(2.0)
                return
            await self._write_resolv_conf(self._sandbox)
        assert self._sandbox is not None
        if not self._start_time:
            self._start_time = _ts(time.time())
        # the ConfigMaps and Secrets it uses are listed before env and volumes are made from them
        await self.deps.objects.wait_for(self.pod, OBJECTS_TIMEOUT)
        try:
            tokens = await self._tokens()
            if self.spec.get("volumes"):
                self._volume_paths = await asyncio.to_thread(
                    self.deps.volumes.setup, self.pod, self._sandbox.volumes_dir, tokens
                )
            else:  # nothing to set up: no trip through a thread (each sync of each pod of a burst made one)
                self._volume_paths = {}
            self._volume_error = ""
        except VolumeError as e:
            if str(e) != self._volume_error:
                self._event("Warning", "FailedMount", str(e))
            self._volume_error = str(e)
            await self._write_status()
            self.kick_later(2.0)
            return
        if await self._deadline_exceeded():
            await self._write_status()
            return
        # a fresh plan: a probe may have failed while volumes were set up
        await self._kill_for_probes(compute_pod_actions(pod, self.runtime_status()).containers_to_kill)
        by_name = {c["name"]: c for key in ("initContainers", "containers") for c in self.spec.get(key) or []}
        for cs in self.containers.values():
            st = self._status(cs)
            if st is not None and st.state is ContainerState.EXITED:
                self._record_exit(cs, st)
        # init containers one step at a time; a step that started something is followed by a fresh plan
        # (a sidecar without startupProbe lets the next init container start in the same sync)
        for _ in range(len(by_name) + 1):
            actions = compute_pod_actions(pod, self.runtime_status())
            started = False
            for name in actions.init_to_start:
                started = await self._ensure(by_name[name], self.containers[name]) or started
            if actions.initialized or not started:
                break
        if actions.initialized:
            for c in self.spec.get("containers") or []:
                cs = self.containers[c["name"]]
                if c["name"] in actions.containers_to_start:
                    await self._ensure(c, cs)
                elif not self._running(cs):
                    cs.waiting = None  # finished for good
            if actions.finish:
                await self._finish(actions.sidecars_to_stop)
        ephemeral = {c["name"]: c for c in self.spec.get("ephemeralContainers") or []}
        for name in actions.ephemeral_to_start:
            await self._start(ephemeral[name], self.containers[name], None)
        await self._write_status()

    async def _tokens(self) -> dict[tuple[str, int], bytes]:
        """The pod's projected ServiceAccount tokens, and a sync scheduled for when one must be renewed."""
        try:
            tokens, due = await self.deps.tokens.for_pod(self.pod)
        except TokenError as e:
            name = next((v for v, _, _ in token_sources(self.pod)), "")
            raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from e
        if due is not None and due != self._token_due:  # one timer per renewal, not one per sync
            self._token_due = due
            self.kick_later(due - time.time())
        return tokens

    async def _deadline_exceeded(self) -> bool:
        """activeDeadlineSeconds: past it, every container is stopped and the pod fails."""
        deadline = self.spec.get("activeDeadlineSeconds")
        if deadline is None or not self._start_time:
            return False
        started = datetime.strptime(self._start_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        left = started + float(deadline) - time.time()
        if left > 0:
            if not self._deadline_timer:
                self._deadline_timer = True
                self.kick_later(left + 0.05)
            return False
        if self._failure is None:
            message = "Pod was active on the node longer than the specified deadline"
            self._failure = ("DeadlineExceeded", message)
            self._finishing = True
            self._event("Warning", "DeadlineExceeded", message)
            self._stop_all_probes()
            for cs in self.containers.values():
                if self._running(cs):
                    self._event("Normal", "Killing", f"Stopping container {cs.name}", cs.name, cs.init)
            await self._kill_all(self._grace())
        return True

    async def _finish(self, sidecars: list[str]) -> None:
        """Every regular container has finished for good: the sidecars are stopped (the pod goes terminal)."""
        self._finishing = True
        grace = float(self.spec.get("terminationGracePeriodSeconds", 30))
        for name in sidecars:
            cs = self.containers[name]
            if self._running(cs):
                self._event("Normal", "Killing", f"Stopping container {cs.name}", cs.name, True)
                self._stop_probes(cs)
                await self._kill(cs, grace)

    def _exec_fn(self, cid: str) -> Any:
        async def exec_fn(command: list[str], timeout: float) -> tuple[int, bytes]:
            return await self.runtime.exec_sync(cid, command, timeout)

        return exec_fn

    def _container_spec(self, name: str) -> Obj:
        every = [c for key in ("initContainers", "containers", "ephemeralContainers") for c in self.spec.get(key) or []]
        return next((c for c in every if c.get("name") == name), {})

    async def _kill(self, cs: _CState, grace: float) -> None:
        """Stop one container: its preStop hook first (within the grace period), then SIGTERM, then SIGKILL."""
        if not self._running(cs):
            return
        c = self._container_spec(cs.name)
        handler = (c.get("lifecycle") or {}).get("preStop")
        start = time.monotonic()
        if handler and grace > 0:
            pod_ip = self._sandbox.ip if self._sandbox else ""
            try:
                ok, err, out = await asyncio.wait_for(
                    run_hook(handler, c, pod_ip, self._exec_fn(cs.id), self.deps.http, grace), grace
                )
            except TimeoutError:
                ok, err, out = False, f"PreStopHook did not complete within {int(grace)}s", ""
            if not ok:
                msg = hook_failure_message(handler, cs.name, self._pod_ref(), err, out)
                self._event("Warning", "FailedPreStopHook", msg, cs.name, cs.init)
        # as the kubelet does, SIGTERM always gets at least 2 seconds after the hook
        left = max(grace - (time.monotonic() - start), 2.0) if grace > 0 else 0.0
        await self.runtime.stop_container(cs.id, left)

    async def _kill_all(self, grace: float) -> None:
        await asyncio.gather(*(self._kill(cs, grace) for cs in self.containers.values()))

    async def _post_start(self, c: Obj, cs: _CState) -> bool:
        """Run the postStart hook; on failure the container is killed (and restarted per policy)."""
        handler = (c.get("lifecycle") or {}).get("postStart")
        if not handler:
            return True
        pod_ip = self._sandbox.ip if self._sandbox else ""
        ok, err, out = await run_hook(handler, c, pod_ip, self._exec_fn(cs.id), self.deps.http, self._grace())
        if ok:
            return True
        msg = hook_failure_message(handler, cs.name, self._pod_ref(), err, out)
        self._event("Warning", "FailedPostStartHook", msg, cs.name, cs.init)
        await self.runtime.stop_container(cs.id, self._grace())
        return False

    def _grace(self) -> float:
        return float(self.spec.get("terminationGracePeriodSeconds", 30))

    def _running(self, cs: _CState) -> bool:
        st = self._status(cs)
        return st is not None and st.state is ContainerState.RUNNING

    def _status(self, cs: _CState) -> ContainerStatus | None:
        return self.runtime.container_status(cs.id) if cs.id else None

    def _record_exit(self, cs: _CState, st: ContainerStatus) -> None:
        if cs.recorded_exit != st.id:
            cs.recorded_exit = st.id
            self._stop_probes(cs)
            cs.ready = False
            cs.started = False

    async def _ensure(self, c: Obj, cs: _CState) -> bool:
        """Start or restart (after its crash-loop back-off) one container the plan says must run; True if it was."""
        st = self._status(cs)
        if st is not None and st.state is ContainerState.RUNNING:
            return False
        if st is not None and st.state is ContainerState.EXITED:
            now = time.time()
            if cs.backoff and now - cs.backoff_updated > BACKOFF_RESET:
                cs.backoff = 0.0
            if cs.backoff and now < st.finished_at + cs.backoff:
                if cs.waiting is None or cs.waiting[0] != "CrashLoopBackOff":
                    self._event(
                        "Warning",
                        "BackOff",
                        f"Back-off restarting failed container {cs.name} in pod {self._pod_ref()}",
                        cs.name,
                        cs.init,
                    )
                cs.waiting = (
                    "CrashLoopBackOff",
                    f"back-off {go_duration(cs.backoff)} restarting failed container={cs.name} pod={self._pod_ref()}",
                )
                self.kick_later(st.finished_at + cs.backoff - now + 0.05)
                return False
            cs.backoff = BACKOFF_INITIAL if not cs.backoff else min(cs.backoff * 2, BACKOFF_MAX)
            cs.backoff_updated = now
        return await self._start(c, cs, st)

    def _hostname(self) -> str:
        """The containers' hostname: the node's for hostNetwork pods, else the pod's (ValueError if invalid)."""
        if self.spec.get("hostNetwork"):
            return socket.gethostname()
        name, domain = pod_hostname_and_domain(self.pod, self.deps.dns.cluster_domain)
        return kernel_nodename(name, domain, bool(self.spec.get("setHostnameAsFQDN")))

    async def _write_resolv_conf(self, sb: Sandbox) -> None:
        """The sandbox's resolv.conf from the pod's DNS policy (written once, as the runtime does)."""
        dns = self.deps.dns
        host_text = ""
        if dns.resolver_config:
            try:
                host_text = read_host_file(dns.resolver_config)
            except OSError as e:
                log.warning("cannot read %s for pod %s: %s", dns.resolver_config, self.key, e)
        config, events = dns.pod_dns(self.pod, host_text)
        for ev in events:
            if ev.target == "node":
                self.deps.node_event("Warning", ev.reason, ev.message)
            else:
                self._event("Warning", ev.reason, ev.message)
        text = resolv_conf_text(config, host_text)
        write_file(sb.dir / RESOLV_CONF, text)  # a small file: cheaper here than through a thread

    async def _write_hosts(self, sb: Sandbox) -> None:
        """The pod's managed /etc/hosts (rewritten before each container start, as the kubelet does)."""
        aliases = self.spec.get("hostAliases") or []
        if self.spec.get("hostNetwork"):
            try:
                host_hosts = read_host_file(ETC_HOSTS)
            except OSError:
                host_hosts = ""
            text = host_network_hosts(host_hosts, aliases)
        else:
            name, domain = pod_hostname_and_domain(self.pod, self.deps.dns.cluster_domain)
            text = managed_hosts([sb.ip], name, domain, aliases)
        write_file(sb.dir / ETC_HOSTS_FILE, text)  # a small file: cheaper here than through a thread

    def _mounts(self, c: Obj, env: dict[str, str]) -> list[Mount]:
        out = []
        targets = {os.path.normpath(vm.get("mountPath") or "/") for vm in c.get("volumeMounts") or []}
        assert self._sandbox is not None
        # the kubelet's hosts file and the sandbox's resolv.conf, unless a volume is mounted there
        for source, target in ((ETC_HOSTS_FILE, ETC_HOSTS), (RESOLV_CONF, "/etc/resolv.conf")):
            if target not in targets and (self._sandbox.dir / source).exists():
                out.append(Mount(self._sandbox.dir / source, target))
        for vm in c.get("volumeMounts") or []:
            src = self._volume_paths.get(vm.get("name", ""))
            if src is None:
                continue
            sub = vm.get("subPath") or ""
            if vm.get("subPathExpr"):
                sub = expand(vm["subPathExpr"], env)
            if sub:
                src = src / sub.lstrip("/")
                if not src.exists():
                    src.mkdir(parents=True, exist_ok=True)
            out.append(Mount(src, vm.get("mountPath", ""), bool(vm.get("readOnly"))))
        return out

    async def _start(self, c: Obj, cs: _CState, previous: ContainerStatus | None) -> bool:
        image = c.get("image", "")
        assert self._sandbox is not None
        ip = self._sandbox.ip
        pod = {
            **self.pod,
            "status": {
                **(self.pod.get("status") or {}),
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "hostIP": self.deps.node_ip,
                "hostIPs": [{"ip": self.deps.node_ip}],
            },
        }
        try:
            env = container_env(
                pod,
                c,
                configmaps=self.deps.get_configmap,
                secrets=self.deps.get_secret,
                allocatable=self.deps.allocatable,
                services=self.deps.service_env(
                    (self.pod.get("metadata") or {}).get("namespace", ""),
                    self.spec.get("enableServiceLinks", True) is not False,
                ),
            )
            await self._write_hosts(self._sandbox)
        except (ConfigError, ValueError) as e:
            if cs.waiting != ("CreateContainerConfigError", str(e)):
                self._event("Warning", "Failed", f"Error: {e}", cs.name, cs.init)
            cs.waiting = ("CreateContainerConfigError", str(e))
            self.kick_later(2.0)
            return False
        pulled = await self.deps.images.ensure(
            self.uid, c, lambda type_, reason, message: self._event(type_, reason, message, cs.name, cs.init)
        )
        if not pulled.ok:
            cs.waiting = (pulled.reason, pulled.message)
            if pulled.retry_in:
                self.kick_later(pulled.retry_in)
            return False
        limits = (c.get("resources") or {}).get("limits") or {}
        config = ContainerConfig(
            name=cs.name,
            image=image,
            argv=expand_command(c, env),
            env=env,
            working_dir=c.get("workingDir") or "",
            mounts=self._mounts(c, env),
            attempt=cs.restart_count + (1 if cs.instances else 0),
            init=cs.init,
            command=expand_list(c.get("command"), env),
            args=expand_list(c.get("args"), env),
            memory_limit=int(parse_quantity(limits["memory"])) if limits.get("memory") else 0,
            nano_cpus=int(parse_quantity(limits["cpu"]) * 1_000_000_000) if limits.get("cpu") else 0,
            stdin=c.get("stdin") is True,
            stdin_once=c.get("stdinOnce") is True,
            tty=c.get("tty") is True,
            target_container=c.get("targetContainerName") or "",
        )
        if previous is not None:
            cs.last_terminated = _terminated(previous, self.runtime.runtime_type)
        old_id = cs.id
        try:
            cid = await self.runtime.create_container(self.uid, config)
        except CreateContainerError as e:
            if cs.waiting != ("CreateContainerError", str(e)):
                self._event("Warning", "Failed", f"Error: {e}", cs.name, cs.init)
            cs.waiting = ("CreateContainerError", str(e))
            return False
        self._event("Normal", "Created", f"Created container: {cs.name}", cs.name, cs.init)
        await self.runtime.start_container(cid)
        if cs.instances:
            cs.restart_count += 1
        cs.instances += 1
        cs.id = cid
        cs.waiting = None
        cs.kill_reason = ""
        if old_id:
            await self.runtime.remove_container(old_id)
        st = self.runtime.container_status(cid)
        if st is not None and st.reason == "StartError":
            self._event("Warning", "Failed", f"Error: {st.message}", cs.name, cs.init)
            return True
        self._event("Normal", "Started", f"Started container {cs.name}", cs.name, cs.init)
        if not await self._post_start(c, cs):
            return True
        if not cs.init or cs.sidecar:
            self._start_probes(c, cs)
        return True

    # --- probes --------------------------------------------------------------------------

    def _start_probes(self, c: Obj, cs: _CState) -> None:
        self._stop_probes(cs)
        cs.started = "startupProbe" not in c
        cs.ready = "readinessProbe" not in c
        cid = cs.id
        pod_ip = self._sandbox.ip if self._sandbox else ""

        async def exec_fn(command: list[str], timeout: float) -> tuple[int, bytes]:
            return await self.runtime.exec_sync(cid, command, timeout)

        def on_change(kind: str, result: bool) -> None:
            if cs.id != cid:
                return
            if kind == "readiness":
                cs.ready = result
            elif kind == "startup":
                cs.started = result
                if not result:
                    cs.kill_reason = "startup"
            elif kind == "liveness" and not result:
                cs.kill_reason = "liveness"
            self.kick()

        def on_failure(kind: str, message: str) -> None:
            if cs.id == cid:
                self._event("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {message}", cs.name)

        def gate() -> bool:
            return cs.started

        for kind in ("startup", "liveness", "readiness"):
            probe = c.get(f"{kind}Probe")
            if probe:
                w = ProbeWorker(
                    kind,
                    probe,
                    c,
                    pod_ip,
                    exec_fn,
                    self.deps.http,
                    on_change,
                    on_failure,
                    gate=(lambda: True) if kind == "startup" else gate,
                )
                cs.probes[kind] = w
                w.start()

    def _stop_probes(self, cs: _CState) -> None:
        for w in cs.probes.values():
            w.stop()
        cs.probes.clear()

    def _stop_all_probes(self) -> None:
        for cs in self.containers.values():
            self._stop_probes(cs)

    async def _kill_for_probes(self, to_kill: Mapping[str, str]) -> None:
        """Kill the running containers whose liveness or startup probe failed (they restart per policy)."""
        by_name = {c["name"]: c for c in self.spec.get("containers") or []}
        for cs in self.containers.values():
            cs.kill_reason = ""
        for name, reason in to_kill.items():
            cs = self.containers[name]
            if not self._running(cs):
                continue
            self._event("Normal", "Killing", f"Container {cs.name} failed {reason} probe, will be restarted", cs.name)
            self._stop_probes(cs)
            cs.ready = False
            probe = by_name.get(cs.name, {}).get(f"{reason}Probe") or {}
            grace = probe.get("terminationGracePeriodSeconds", self.spec.get("terminationGracePeriodSeconds", 30))
            await self._kill(cs, float(grace))

    # --- termination -------------------------------------------------------------------------

    async def sync_terminating_pod(self, pod: Obj, removed: bool) -> None:
        """Stop every container (preStop hooks, then SIGTERM, SIGKILL after the grace period) and the sandbox."""
        self.pod = pod
        meta = pod.get("metadata") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.spec.get("terminationGracePeriodSeconds", 30)
        if removed:
            grace = min(float(grace), 2.0)
        self._stop_all_probes()
        for cs in self.containers.values():
            if self._running(cs):
                self._event("Normal", "Killing", f"Stopping container {cs.name}", cs.name, cs.init)
        await self._kill_all(float(grace))
        await self.runtime.stop_pod_sandbox(self.uid, 0)

    async def sync_terminated_pod(self, pod: Obj, removed: bool) -> None:
        """Nothing runs any more: the pod object goes (grace 0), then its sandbox, volumes and tokens."""
        meta = pod.get("metadata") or {}
        if not removed:
            try:
                await self.deps.api.delete(
                    "pods",
                    meta["name"],
                    meta["namespace"],
                    options=DeleteOptions(grace_period_seconds=0, preconditions=Preconditions(uid=self.uid)),
                )
            except StatusError as e:
                if e.code not in (404, 409):
                    raise
        await self.runtime.remove_pod_sandbox(self.uid)
        self.deps.volumes.forget(self.uid)
        self.deps.tokens.forget(self.uid)
        self.deps.images.forget(self.uid)

    # --- status ------------------------------------------------------------------------------

    def _view(self, c: Obj, cs: _CState, init_pending: bool) -> ContainerView:
        image = c.get("image", "")
        view = ContainerView(
            name=cs.name,
            image=image,
            restart_count=cs.restart_count,
            image_id="sha256:" + hashlib.sha256(image.encode()).hexdigest(),
        )
        st = self._status(cs)
        if st is not None and st.image_id:
            view.image_id = st.image_id
        if cs.last_terminated:
            view.last_state = {"terminated": cs.last_terminated}
        if st is not None:
            view.container_id = f"{self.runtime.runtime_type}://{st.id}"
        if st is not None and st.state is ContainerState.RUNNING:
            view.state = {"running": {"startedAt": _ts(st.started_at)}}
            view.started = cs.started and not cs.ephemeral  # no probes judge an ephemeral container
            view.ready = cs.ready and cs.started and not cs.ephemeral
        elif cs.waiting is not None:
            reason, message = cs.waiting
            view.state = {"waiting": {"reason": reason, "message": message}}
            if st is not None and st.state is ContainerState.EXITED:
                view.last_state = {"terminated": _terminated(st, self.runtime.runtime_type)}
        elif st is not None and st.state is ContainerState.EXITED:
            view.state = {"terminated": _terminated(st, self.runtime.runtime_type)}
            view.ready = cs.init and not cs.sidecar and st.exit_code == 0  # a completed init container is ready
        else:
            reason = "PodInitializing" if (init_pending or cs.init) else "ContainerCreating"
            view.state = {"waiting": {"reason": reason}}
        return view

    def _views(self) -> tuple[list[ContainerView], list[ContainerView]]:
        init = [self._view(c, self.containers[c["name"]], True) for c in self.spec.get("initContainers") or []]
        sidecars = {cs.name for cs in self.containers.values() if cs.sidecar}
        pending = any(
            not (v.started if v.name in sidecars else v.terminated and v.terminated.get("exitCode", 1) == 0)
            for v in init
        )
        regular = [self._view(c, self.containers[c["name"]], pending) for c in self.spec.get("containers") or []]
        for v in init:
            if not v.running and v.state.get("waiting", {}).get("reason") == "PodInitializing" and not v.container_id:
                v.state = {"waiting": {"reason": "PodInitializing"}}
        return init, regular

    async def _write_status(self) -> None:
        """Write the pod's status if it changed; computed once a write slot is free, so it is the latest."""
        with self.deps.urgency:
            async with self.deps.status_slots:
                await self._write_status_now()

    async def _write_status_now(self) -> None:
        init, regular = self._views()
        base = {**self.pod, "status": self._last_status or self.pod.get("status") or {}}
        status = pod_status(
            base,
            init,
            regular,
            pod_ip=self._sandbox.ip if self._sandbox else "",
            host_ip=self.deps.node_ip,
            start_time=self._start_time or _ts(time.time()),
            sandbox_ready=self._sandbox is not None and self.runtime.sandbox_ready(self.uid),
            now=_ts(time.time()),
            failure=self._failure,
        )
        ephemeral = [
            container_status(self._view(c, self.containers[c["name"]], False))
            for c in self.spec.get("ephemeralContainers") or []
            if c.get("name") in self.containers
        ]
        if ephemeral:
            status["ephemeralContainerStatuses"] = ephemeral
        current = self.pod.get("status") or {}
        if self._last_status is not None and not status_changed(self._last_status, status):
            return
        if self._last_status is None and not status_changed(current, status):
            self._last_status = status
            return
        patch = dict(status)
        for k in current:
            if k not in patch:
                patch[k] = None
        meta = self.pod["metadata"]
        try:
            await self.deps.api.patch(
                "pods",
                meta["name"],
                {"status": patch},
                meta["namespace"],
                subresource="status",
                patch_type=PatchType.MERGE,
            )
            self._last_status = status
        except StatusError as e:
            if e.code == 404:
                return
            raise


def _terminated(st: ContainerStatus, runtime_type: str) -> Obj:
    t: Obj = {
        "exitCode": st.exit_code,
        "reason": st.reason or ("Completed" if st.exit_code == 0 else "Error"),
        "startedAt": _ts(st.started_at),
        "finishedAt": _ts(st.finished_at),
        "containerID": f"{runtime_type}://{st.id}",
    }
    if st.message:
        t["message"] = st.message
    return t
