"""The kubelet's container runtime interface (a small CRI) and the streaming interface for logs and exec."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

__all__ = [
    "ContainerConfig",
    "ContainerRuntime",
    "ContainerState",
    "ContainerStatus",
    "CreateContainerError",
    "ImagePullError",
    "Mount",
    "Sandbox",
    "SandboxConfig",
    "StreamingRuntime",
    "notify_exit",
]

log = logging.getLogger("kubelet.runtime")


def notify_exit(callbacks: Sequence[Callable[[str, str], None]], pod_uid: str, container_id: str) -> None:
    """Tell every `on_exit` callback that a container (or sandbox) of the pod has exited; one that fails is
    logged and does not stop the others."""
    for cb in callbacks:
        try:
            cb(pod_uid, container_id)
        except Exception:
            log.exception("exit callback failed")


@dataclass(frozen=True)
class SandboxConfig:
    """What a pod sandbox is made for."""

    uid: str
    namespace: str
    name: str
    host_ip: str = ""
    """Set for hostNetwork pods: the sandbox takes the node's IP instead of one from the pod CIDR."""
    hostname: str = ""
    """The containers' hostname (their HOSTNAME); "" = the pod name."""


@dataclass
class Sandbox:
    """A pod's sandbox: its IP and its directory (volumes, tmp, logs live under it)."""

    uid: str
    namespace: str
    name: str
    ip: str
    dir: Path
    hostname: str = ""

    @property
    def volumes_dir(self) -> Path:
        """Where the pod's volumes are materialised."""
        return self.dir / "volumes"


@dataclass(frozen=True)
class Mount:
    """A bind mount into a container's mount namespace."""

    source: Path
    target: str
    read_only: bool = False


@dataclass
class ContainerConfig:
    """Everything needed to start one container process."""

    name: str
    image: str
    argv: list[str]
    env: dict[str, str]
    working_dir: str = ""
    mounts: list[Mount] = field(default_factory=list)
    attempt: int = 0
    init: bool = False
    command: list[str] | None = None
    """The container's `command`, expanded (None: the image's ENTRYPOINT)."""
    args: list[str] | None = None
    """The container's `args`, expanded (None: the image's CMD, unless `command` is set)."""
    memory_limit: int = 0
    """limits.memory in bytes (0: none)."""
    nano_cpus: int = 0
    """limits.cpu in billionths of a CPU (0: none)."""
    stdin: bool = False
    """The container's `stdin`: its process reads a pipe that attaches write to (else /dev/null)."""
    stdin_once: bool = False
    """The container's `stdinOnce`: the pipe closes when the first attach that writes to it ends."""
    tty: bool = False
    """The container's `tty`: its stdin, stdout and stderr are one pseudo-terminal (the log has one stream)."""
    target_container: str = ""
    """An ephemeral container's `targetContainerName`: run in that container's namespaces ("" = its own)."""


class CreateContainerError(Exception):
    """The runtime cannot make this container (the pod shows CreateContainerError with the message)."""


class ImagePullError(Exception):
    """An image could not be pulled (the pod shows ErrImagePull, then ImagePullBackOff)."""


class ContainerState(StrEnum):
    """CRI container states."""

    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass
class ContainerStatus:
    """A container as the runtime sees it."""

    id: str
    pod_uid: str
    name: str
    image: str
    attempt: int
    state: ContainerState
    pid: int = 0
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    log_path: Path | None = None
    image_id: str = ""
    """The image's id in the runtime's store ("" when it has none: the process runtime)."""


class ContainerRuntime(Protocol):
    """Sandboxes and containers, as the kubelet drives them (modelled on CRI's RuntimeService)."""

    runtime_type: str
    """The scheme of the containers' ids in pod status (`process://…`, `docker://…`)."""

    pulls_images: bool
    """False when the runtime runs no images (the process runtime): every image counts as present."""

    async def start(self) -> None:
        """Get ready (clean up what a previous kubelet left behind)."""
        ...

    async def image_present(self, image: str) -> bool:
        """Whether the image is on this node (CRI's ImageStatus)."""
        ...

    async def pull_image(self, image: str) -> int:
        """Pull the image (ImagePullError on failure, within the runtime's pull timeout); its size in bytes."""
        ...

    async def run_pod_sandbox(self, config: SandboxConfig) -> Sandbox:
        """Create (or return the existing) sandbox: allocate the pod IP and its directories."""
        ...

    def sandbox_ready(self, uid: str) -> bool:
        """Whether the pod's sandbox exists and holds its network (a dead one is re-made by run_pod_sandbox)."""
        ...

    async def stop_pod_sandbox(self, uid: str, grace: float) -> None:
        """Stop every container of the pod."""
        ...

    async def remove_pod_sandbox(self, uid: str) -> None:
        """Free the pod's IP and remove its directories."""
        ...

    def sandboxes(self) -> list[Sandbox]:
        """The sandboxes that exist."""
        ...

    async def create_container(self, uid: str, config: ContainerConfig) -> str:
        """Create a container in the pod's sandbox; returns its id (CreateContainerError if it cannot be)."""
        ...

    async def start_container(self, container_id: str) -> None:
        """Start a created container."""
        ...

    async def stop_container(self, container_id: str, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        ...

    async def remove_container(self, container_id: str) -> None:
        """Forget an exited container (its log file stays until the sandbox goes)."""
        ...

    def container_status(self, container_id: str) -> ContainerStatus | None:
        """The container's status, or None if unknown."""
        ...

    def list_containers(self, uid: str) -> list[ContainerStatus]:
        """Every container of a pod."""
        ...

    async def exec_sync(self, container_id: str, command: list[str], timeout: float) -> tuple[int, bytes]:
        """Run a command in the container; (exit code, combined output). TimeoutError past `timeout`."""
        ...

    def on_exit(self, callback: Callable[[str, str], None]) -> None:
        """Call `callback(pod_uid, container_id)` whenever a container exits."""
        ...

    async def shutdown(self, grace: float) -> None:
        """Stop every container (the kubelet is exiting)."""
        ...


class StreamingRuntime(Protocol):
    """What the kubelet's HTTP server (logs, exec) needs from the runtime."""

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        """The CRI log file of the container's current (or previous) instance, or None."""
        ...

    async def exec_process(
        self, namespace: str, pod: str, container: str, command: list[str], tty: bool = False
    ) -> asyncio.subprocess.Process:
        """Start `command` in the container's mount namespace with its env and workingDir, stdio = PIPE;
        LookupError if the pod or container is not running."""
        ...
