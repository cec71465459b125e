"""The `docker` runtime: real images run by a Docker Engine, driven over its API (kubelet/docker_api.py).

Each pod gets a sandbox ("pause") container holding its network (and IPC) namespace; its address on
the docker network is the pod IP. App containers join it (`NetworkMode: container:<sandbox>`), with
command/args as ENTRYPOINT/CMD (as upstream), the pod's volumes (materialised under the kubelet's
root dir, as for the process runtime) bind-mounted, and limits.cpu/memory as NanoCpus/Memory.
Containers carry dockershim's labels (`io.kubernetes.pod.uid`, ...) and the node's, which is how a
restarted kubelet finds and removes what a previous one left. Output is followed through the engine
into the same CRI log files the process runtime writes, so `kubectl logs` (and `-f`, `--previous`)
work the same; exec goes through the engine's exec API.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import shutil
import socket as socket_module
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from kubelet.docker_api import DEFAULT_SOCKET, STDERR, DockerError, EngineClient, ExecStream, tar_context
from kubelet.process_runtime import cri_log_line
from kubelet.runtime import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    CreateContainerError,
    ImagePullError,
    Sandbox,
    SandboxConfig,
    notify_exit,
)

__all__ = ["PAUSE_IMAGE", "DockerRuntime", "busybox_image_context", "container_body", "parse_docker_time"]

log = logging.getLogger("kubelet.docker")

PAUSE_IMAGE = "tinykube/pause:busybox"
BUSYBOX = "/bin/busybox"
PULL_TIMEOUT = 60.0
OOM_EVENT_WAIT = 1.0  # seconds an exit with 137 waits for the engine's word of an OOM kill (`_exit_state`)
OOM_EVENT_POLL = 0.05
LABEL_NODE = "io.tinykube.node"
LABEL_OWNER = "io.tinykube.kubelet"  # which kubelet made it: what a restarted one cleans up
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_TYPE = "io.kubernetes.docker.type"
LABEL_RESTART_COUNT = "io.kubernetes.container.restartCount"


def busybox_image_context(
    busybox: bytes, files: Mapping[str, bytes] | None = None, entrypoint: list[str] | None = None
) -> bytes:
    """The build context of a tiny image needing no registry: a static busybox FROM scratch, its applets
    installed in /bin, plus `files` ({absolute path: content}, executable) and an ENTRYPOINT."""
    extra = {f"f{i}": (path, data) for i, (path, data) in enumerate((files or {}).items())}
    lines = ["FROM scratch", "COPY busybox /bin/busybox", 'RUN ["/bin/busybox", "--install", "-s", "/bin"]']
    lines += [f"COPY {name} {path}" for name, (path, _) in extra.items()]
    if entrypoint:
        lines.append(f"ENTRYPOINT {json.dumps(entrypoint)}")
    context = {"Dockerfile": (("\n".join(lines) + "\n").encode(), 0o644), "busybox": (busybox, 0o755)}
    context.update({name: (data, 0o755) for name, (_, data) in extra.items()})
    return tar_context(context)


def container_body(config: ContainerConfig, sandbox_id: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The Engine API's create body of an app container joined to the sandbox container `sandbox_id`."""
    host_config: dict[str, Any] = {
        "NetworkMode": f"container:{sandbox_id}",
        "IpcMode": f"container:{sandbox_id}",
        "Binds": [f"{m.source}:{m.target}{':ro' if m.read_only else ''}" for m in config.mounts],
    }
    if config.memory_limit:
        host_config["Memory"] = config.memory_limit
        host_config["MemorySwap"] = config.memory_limit  # no swap: past the limit is an OOM kill
    if config.nano_cpus:
        host_config["NanoCpus"] = config.nano_cpus
    body: dict[str, Any] = {
        "Image": config.image,
        "Env": [f"{k}={v}" for k, v in config.env.items()],
        "WorkingDir": config.working_dir,
        "Labels": dict(labels),
        "HostConfig": host_config,
    }
    if config.stdin:  # stdin open for attaches (no terminal: the engine's log would lose its stream framing)
        body |= {"OpenStdin": True, "StdinOnce": config.stdin_once}
    # as upstream: command replaces ENTRYPOINT (and with it the image's CMD), args replace CMD
    if config.command is not None:
        body["Entrypoint"] = config.command
        body["Cmd"] = config.args or []
    elif config.args is not None:
        body["Cmd"] = config.args
    return body


def parse_docker_time(text: str) -> float:
    """The engine's RFC3339Nano times as epoch seconds (0.0 for its zero time or garbage)."""
    if not text or text.startswith("0001-"):
        return 0.0
    base, _, frac = text.rstrip("Z").partition(".")
    try:
        t = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0
    digits = "".join(ch for ch in frac if ch.isdigit())[:6]
    return t + (int(digits) / 10 ** len(digits) if digits else 0.0)


@dataclass
class _Sandbox:
    sandbox: Sandbox
    container_id: str
    ready: bool = True
    waiter: asyncio.Task[None] | None = None


@dataclass
class _Container:
    status: ContainerStatus
    config: ContainerConfig
    docker_id: str
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False  # the kubelet stopped it: a SIGKILL's 137 is its own, no OOM kill to wait for


class DockerRuntime:
    """Sandboxes and containers as Docker containers on the engine at `socket`."""

    runtime_type = "docker"
    pulls_images = True

    def __init__(
        self,
        root_dir: Path,
        node_name: str,
        *,
        socket: str = DEFAULT_SOCKET,
        network: str = "bridge",
        pause_image: str = PAUSE_IMAGE,
        pull_timeout: float = PULL_TIMEOUT,
    ) -> None:
        self.root = root_dir
        self.pods_dir = root_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.node_name = node_name
        # one engine may serve several kubelets (compose nodes sharing the socket, a launcher cluster
        # beside them), even of the same node name: each removes only what it made
        where = f"{socket_module.gethostname()}:{root_dir.resolve()}:{node_name}"
        self.owner = hashlib.sha256(where.encode()).hexdigest()[:16]
        self.network = network
        self.pause_image = pause_image
        self.pull_timeout = pull_timeout
        self.engine = EngineClient(socket)
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._callbacks: list[Callable[[str, str], None]] = []
        self._pause_ready = asyncio.Lock()
        self._pause_checked = False

    # --- setup ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the engine answers; remove what a previous kubelet of this node left behind."""
        await self.engine.ping()
        await self._remove_labelled({LABEL_OWNER: self.owner})
        for d in self.pods_dir.iterdir():
            await asyncio.to_thread(shutil.rmtree, d, True)
        log.info("docker runtime on %s (network %s)", self.engine.socket, self.network)

    async def _remove_labelled(self, labels: dict[str, str]) -> None:
        found = await self.engine.list(labels)
        await asyncio.gather(*(self.engine.remove(c["Id"]) for c in found), return_exceptions=True)

    def _labels(self, sb: Sandbox, kind: str, container: str) -> dict[str, str]:
        return {
            LABEL_NODE: self.node_name,
            LABEL_OWNER: self.owner,
            LABEL_POD_UID: sb.uid,
            LABEL_POD_NAME: sb.name,
            LABEL_POD_NAMESPACE: sb.namespace,
            LABEL_CONTAINER_NAME: container,
            LABEL_TYPE: kind,
        }

    def on_exit(self, callback: Callable[[str, str], None]) -> None:
        """Call `callback(pod_uid, container_id)` when a container exits."""
        self._callbacks.append(callback)

    # --- images --------------------------------------------------------------------------

    async def image_present(self, image: str) -> bool:
        """Whether the engine has the image."""
        try:
            return await self.engine.image_inspect(image) is not None
        except DockerError as e:
            raise ImagePullError(e.message) from e

    async def pull_image(self, image: str) -> int:
        """Pull the image within the pull timeout; its size in bytes."""
        try:
            await self.engine.pull(image, self.pull_timeout)
            info = await self.engine.image_inspect(image)
        except DockerError as e:
            raise ImagePullError(f"Error response from daemon: {e.message}") from e
        return int((info or {}).get("Size") or 0)

    async def _ensure_pause_image(self) -> None:
        async with self._pause_ready:
            if self._pause_checked:
                return
            if await self.engine.image_inspect(self.pause_image) is None:
                if self.pause_image != PAUSE_IMAGE:
                    await self.engine.pull(self.pause_image, self.pull_timeout)
                else:
                    busybox = await asyncio.to_thread(Path(BUSYBOX).read_bytes)
                    log.info("building the sandbox image %s from %s", PAUSE_IMAGE, BUSYBOX)
                    await self.engine.build(busybox_image_context(busybox), PAUSE_IMAGE)
            self._pause_checked = True

    # --- sandboxes -----------------------------------------------------------------------

    async def run_pod_sandbox(self, config: SandboxConfig) -> Sandbox:
        """Create (or return) the pod's sandbox container; the pod IP is its address on the network."""
        if found := self._sandboxes.get(config.uid):
            if found.ready:
                return found.sandbox
            # it died (removed or killed behind the kubelet's back): a new one, same directories
            self._sandboxes.pop(config.uid, None)
            await self.engine.remove(found.container_id)
        d = self.pods_dir / config.uid
        for sub in ("volumes", "logs"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        sb = Sandbox(config.uid, config.namespace, config.name, "", d, config.hostname)
        try:
            await self._ensure_pause_image()
            host = bool(config.host_ip)
            body: dict[str, Any] = {
                "Image": self.pause_image,
                "Entrypoint": ["/bin/sleep"],
                "Cmd": ["2147483647"],
                "Labels": self._labels(sb, "podsandbox", "POD"),
                "HostConfig": {
                    "NetworkMode": "host" if host else self.network,
                    "IpcMode": "shareable",
                },
            }
            if not host:
                body["Hostname"] = config.hostname or config.name
            cid = await self.engine.create(f"k8s_POD_{config.name}_{config.namespace}_{config.uid}_0", body)
            await self.engine.start(cid)
            info = await self.engine.inspect(cid)
        except DockerError as e:
            raise RuntimeError(e.message) from e
        nets = (info.get("NetworkSettings") or {}).get("Networks") or {}
        sb.ip = config.host_ip or str((nets.get(self.network) or {}).get("IPAddress") or "")
        found = self._sandboxes[config.uid] = _Sandbox(sb, cid)
        found.waiter = asyncio.create_task(self._watch_sandbox(found), name=f"sandbox {config.name}")
        return sb

    async def _watch_sandbox(self, found: _Sandbox) -> None:
        """Mark the sandbox not ready when its container ends, and tell the kubelet."""
        with contextlib.suppress(DockerError):
            await self.engine.wait(found.container_id)
        found.ready = False
        notify_exit(self._callbacks, found.sandbox.uid, found.container_id)

    def sandbox_ready(self, uid: str) -> bool:
        """Whether the pod's sandbox container runs."""
        found = self._sandboxes.get(uid)
        return found is not None and found.ready

    def sandboxes(self) -> list[Sandbox]:
        """Every sandbox."""
        return [s.sandbox for s in self._sandboxes.values()]

    async def stop_pod_sandbox(self, uid: str, grace: float) -> None:
        """Stop every container of the pod (in parallel), then the sandbox container."""
        ids = [cid for cid, c in self._containers.items() if c.status.pod_uid == uid]
        await asyncio.gather(*(self.stop_container(cid, grace) for cid in ids))
        if found := self._sandboxes.get(uid):
            await self.engine.stop(found.container_id, 0)

    async def remove_pod_sandbox(self, uid: str) -> None:
        """Remove the pod's containers (by label, whatever made them) and its directories."""
        await self.stop_pod_sandbox(uid, 0)
        for cid in [cid for cid, c in self._containers.items() if c.status.pod_uid == uid]:
            await self.remove_container(cid)
        await self._remove_labelled({LABEL_OWNER: self.owner, LABEL_POD_UID: uid})
        if (found := self._sandboxes.pop(uid, None)) is not None and found.waiter is not None:
            found.waiter.cancel()
        d = self.pods_dir / uid
        if d.exists():
            await asyncio.to_thread(shutil.rmtree, d, True)

    # --- containers ----------------------------------------------------------------------

    async def create_container(self, uid: str, config: ContainerConfig) -> str:
        """Create the container in the pod's sandbox; returns its id."""
        found = self._sandboxes.get(uid)
        if found is None:
            raise LookupError(f"no sandbox for pod {uid}")
        sb = found.sandbox
        log_dir = sb.dir / "logs" / config.name
        log_dir.mkdir(parents=True, exist_ok=True)
        for old in log_dir.glob("*.log"):  # keep the current and the previous instance's logs
            if _attempt_of(old) < config.attempt - 1:
                old.unlink(missing_ok=True)
        path = log_dir / f"{config.attempt}.log"
        path.unlink(missing_ok=True)
        labels = {**self._labels(sb, "container", config.name), LABEL_RESTART_COUNT: str(config.attempt)}
        body = container_body(config, found.container_id, labels)
        name = f"k8s_{config.name}_{sb.name}_{sb.namespace}_{uid}_{config.attempt}_{secrets.token_hex(2)}"
        try:
            docker_id = await self.engine.create(name, body)
        except DockerError as e:
            raise CreateContainerError(e.message) from e
        status = ContainerStatus(
            id=docker_id,
            pod_uid=uid,
            name=config.name,
            image=config.image,
            attempt=config.attempt,
            state=ContainerState.CREATED,
            created_at=time.time(),
            log_path=path,
        )
        self._containers[docker_id] = _Container(status, config, docker_id)
        return docker_id

    async def start_container(self, container_id: str) -> None:
        """Start it; a start the engine refuses (no such executable...) leaves it exited with 128."""
        c = self._containers[container_id]
        log_file = _open_log(c.status.log_path)
        try:
            await self.engine.start(container_id)
            info = await self.engine.inspect(container_id)
        except DockerError as e:
            now = time.time()
            log_file.write(cri_log_line("stderr", e.message.encode()))
            log_file.close()
            c.status.state = ContainerState.EXITED
            c.status.started_at = c.status.finished_at = now
            c.status.exit_code, c.status.reason, c.status.message = 128, "StartError", e.message
            c.exited.set()
            self._notify(c)
            return
        state = info.get("State") or {}
        c.status.pid = int(state.get("Pid") or 0)
        c.status.image_id = str(info.get("Image") or "")
        c.status.started_at = parse_docker_time(state.get("StartedAt", "")) or time.time()
        c.status.state = ContainerState.RUNNING
        follower = asyncio.create_task(self._follow_logs(c, log_file), name=f"logs {c.config.name}")
        c.tasks = [follower, asyncio.create_task(self._wait(c, follower), name=f"container {c.config.name}")]

    async def _follow_logs(self, c: _Container, out: BinaryIO) -> None:
        """Copy the engine's output of the container into its CRI log, a record per line."""
        pending = {1: b"", 2: b""}
        try:
            async for stream, data in self.engine.logs(c.docker_id):
                name = "stderr" if stream == STDERR else "stdout"
                *lines, pending[stream] = (pending.get(stream, b"") + data).split(b"\n")
                if lines:
                    out.write(b"".join(cri_log_line(name, line) for line in lines))
                    out.flush()
        except (DockerError, OSError, asyncio.CancelledError) as e:
            if isinstance(e, asyncio.CancelledError):
                raise
            log.debug("log stream of %s ended: %s", c.config.name, e)
        except Exception as e:  # the engine closed the stream mid-frame
            log.debug("log stream of %s ended: %s", c.config.name, e)
        finally:
            for stream, rest in pending.items():
                if rest:
                    out.write(cri_log_line("stderr" if stream == STDERR else "stdout", rest))
            out.close()

    async def _wait(self, c: _Container, follower: asyncio.Task[None]) -> None:
        try:
            await self.engine.wait(c.docker_id)
            state = await self._exit_state(c)
        except DockerError:
            state = {}
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(follower), 2.0)
        code = int(state.get("ExitCode", 137))
        c.status.state = ContainerState.EXITED
        c.status.finished_at = parse_docker_time(state.get("FinishedAt", "")) or time.time()
        c.status.exit_code = code
        if state.get("OOMKilled"):
            c.status.reason = "OOMKilled"
        else:
            c.status.reason = "Completed" if code == 0 else "Error"
        c.exited.set()
        self._notify(c)

    async def _exit_state(self, c: _Container) -> dict[str, Any]:
        """The engine's `State` of an exited container, with its OOM kill when there was one.

        The engine hears of a container's exit and of the kernel's OOM kill on two paths, and under load (cgroup v2)
        the exit can come first: the container reads as a plain SIGKILL (137) until the OOM event lands a moment
        later (hashicorp/nomad#13119). So a 137 of a container with a memory limit, which the kubelet did not stop
        itself, is looked at again until the engine says OOMKilled or `OOM_EVENT_WAIT` passes."""
        state: dict[str, Any] = (await self.engine.inspect(c.docker_id)).get("State") or {}
        if not c.config.memory_limit or c.stopping or state.get("ExitCode") != 137:
            return state
        deadline = time.monotonic() + OOM_EVENT_WAIT
        while not state.get("OOMKilled") and time.monotonic() < deadline and not c.stopping:
            await asyncio.sleep(OOM_EVENT_POLL)
            state = (await self.engine.inspect(c.docker_id)).get("State") or {}
        return state

    def _notify(self, c: _Container) -> None:
        notify_exit(self._callbacks, c.status.pod_uid, c.status.id)

    async def stop_container(self, container_id: str, grace: float) -> None:
        """SIGTERM, SIGKILL after `grace` seconds (the engine's stop); returns once it has exited."""
        c = self._containers.get(container_id)
        if c is None or c.status.state is not ContainerState.RUNNING:
            return
        c.stopping = True
        await self.engine.stop(container_id, max(grace, 0.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(c.exited.wait(), 10)

    async def remove_container(self, container_id: str) -> None:
        """Remove the container from the engine and forget it."""
        c = self._containers.pop(container_id, None)
        await self.engine.remove(container_id)
        if c is not None:
            for t in c.tasks:
                if not t.done():
                    t.cancel()

    def container_status(self, container_id: str) -> ContainerStatus | None:
        """The container's status."""
        c = self._containers.get(container_id)
        return c.status if c else None

    def list_containers(self, uid: str) -> list[ContainerStatus]:
        """Every container of a pod, oldest first."""
        return sorted(
            (c.status for c in self._containers.values() if c.status.pod_uid == uid), key=lambda s: s.created_at
        )

    # --- exec ------------------------------------------------------------------------------

    async def exec_sync(self, container_id: str, command: list[str], timeout: float) -> tuple[int, bytes]:
        """Run `command` in the container through the engine; (exit code, output). TimeoutError past `timeout`."""
        c = self._containers.get(container_id)
        if c is None or c.status.state is not ContainerState.RUNNING:
            raise LookupError("container is not running")
        try:
            exec_id = await self.engine.exec_create(container_id, command)
            out = await asyncio.wait_for(self.engine.exec_run(exec_id), timeout)
            code = await self.engine.exec_exit_code(exec_id)
        except DockerError as e:
            return 126, e.message.encode()
        return (code if code is not None else 1), out

    # --- streaming (logs, exec) --------------------------------------------------------------

    def _find(self, namespace: str, pod: str, container: str) -> list[_Container]:
        uids = {
            s.sandbox.uid
            for s in self._sandboxes.values()
            if s.sandbox.namespace == namespace and s.sandbox.name == pod
        }
        found = [c for c in self._containers.values() if c.status.pod_uid in uids and c.status.name == container]
        return sorted(found, key=lambda c: c.status.created_at)

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        """The CRI log file of the container's current (or previous) instance."""
        found = self._find(namespace, pod, container)
        if found and (path := found[-1].status.log_path) is not None:
            want = found[-1].status.attempt - (1 if previous else 0)
            p = path.parent / f"{want}.log"
            return p if want >= 0 and p.exists() else None
        return None

    async def attach_stdin(self, namespace: str, pod: str, container: str) -> _EngineStdin | None:
        """An attach to the running container's stdin through the engine when it has `stdin: true` (None when
        not); LookupError when it is not running."""
        found = self._find(namespace, pod, container)
        if not found or found[-1].status.state is not ContainerState.RUNNING:
            raise LookupError(f"container {container} is not running in pod {namespace}/{pod}")
        c = found[-1]
        if not c.config.stdin:
            return None
        try:
            writer = await self.engine.attach_stdin(c.docker_id)
        except (DockerError, OSError, TimeoutError) as e:
            raise LookupError(f"cannot attach to container {container}: {e}") from e
        return _EngineStdin(writer, c.config.stdin_once)

    async def exec_process(
        self, namespace: str, pod: str, container: str, command: list[str], tty: bool = False
    ) -> ExecStream:
        """Start `command` in the container through the engine, its stdio on a hijacked connection."""
        found = self._find(namespace, pod, container)
        if not found or found[-1].status.state is not ContainerState.RUNNING:
            raise LookupError(f"container {container} is not running in pod {namespace}/{pod}")
        c = found[-1]
        exec_id = await self.engine.exec_create(c.docker_id, command, stdin=True, tty=tty)
        reader, writer = await self.engine.exec_attach(exec_id, tty)
        return ExecStream(self.engine, exec_id, reader, writer, tty)

    # --- shutdown ----------------------------------------------------------------------------

    async def shutdown(self, grace: float) -> None:
        """Stop every container, then remove every container of this node (tinykube leaves nothing behind)."""
        running = [cid for cid, c in self._containers.items() if c.status.state is ContainerState.RUNNING]
        await asyncio.gather(*(self.stop_container(cid, grace) for cid in running), return_exceptions=True)
        with contextlib.suppress(DockerError):
            await self._remove_labelled({LABEL_OWNER: self.owner})
        for c in self._containers.values():
            for t in c.tasks:
                t.cancel()
        for found in self._sandboxes.values():
            if found.waiter is not None:
                found.waiter.cancel()
        await self.engine.close()


class _EngineStdin:
    """One attach's connection to a container's stdin: its end is the end of this attach's stdin, which the
    engine turns into the end of the container's stdin for a `StdinOnce` container only."""

    def __init__(self, writer: asyncio.StreamWriter, once: bool) -> None:
        self._writer = writer
        self.once = once

    def write(self, data: bytes) -> None:
        """Write to the container's stdin."""
        if not self._writer.is_closing():
            self._writer.write(data)

    async def drain(self) -> None:
        """Wait until the engine takes more."""
        await self._writer.drain()

    def is_closing(self) -> bool:
        """Whether this attach's connection is closed."""
        return self._writer.is_closing()

    def close(self) -> None:
        """End this attach's stdin and its connection."""
        with contextlib.suppress(OSError, RuntimeError):
            if self._writer.can_write_eof() and not self._writer.is_closing():
                self._writer.write_eof()
        self._writer.close()

    def resize(self, width: int, height: int) -> None:
        """No terminal here: nothing to size."""


def _open_log(path: Path | None) -> BinaryIO:
    """The container's log file, opened for appending (closed by the log follower)."""
    return open(path or "/dev/null", "ab")


def _attempt_of(p: Path) -> int:
    try:
        return int(p.stem)
    except ValueError:
        return -1
